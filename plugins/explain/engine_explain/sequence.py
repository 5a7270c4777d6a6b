"""``engine explain`` on models that generate text: attributions of each generated token to the input tokens.

The path is chosen by protocols, never by a task's name: a task implementing `engine.protocols.Generates` whose
``output_kind`` (`engine.protocols.DeclaresIO`) is ``"text"``, with a data source implementing
`engine.protocols.EncodesText`. For each input text:

1. the source encodes it (``encode_text``) and the task generates (``generate(model, [ids])``);
2. one teacher-forced call is built from ``network_inputs([ids])``: its first argument holds the input ids
   (attributed), its last the sequence generation continues (a decoder's start tokens; for a causal LM with one
   argument, the prompt itself), extended by the generated tokens but the last;
3. output token ``t`` is explained by its logit at position ``len(start) - 1 + t`` (given its prefix), attributed
   to the input tokens through the embedding layer reading the input ids (integrated gradients, saliency,
   gradient SHAP), or by blanking each input token with ``<pad>`` (occlusion, no gradients).

The result is a matrix ``[output tokens, input tokens]``, shown with tokens as text.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import numpy as np
import torch
from torch import nn

from engine import EngineError
from engine.protocols import DeclaresIO, EncodesText, Generates, implements


def generates_text(task_class: Any) -> bool:
    """Whether a task generates text (`Generates` and ``output_kind == "text"``): explain's sequence path."""
    return implements(task_class, Generates) and implements(task_class, DeclaresIO) and task_class.output_kind == "text"


@dataclass
class Explained:
    """One input text: its tokens, the generated tokens, and ``attribution[output token, input token]``."""

    name: str
    text: str
    output_text: str
    input_tokens: list[str]
    output_tokens: list[str]
    output_ids: list[int]
    probabilities: list[float]
    attribution: np.ndarray
    files: list[Path] = field(default_factory=list)


def read_texts(paths: list[str]) -> tuple[list[str], list[str]]:
    """Input files -> texts and their names: each non-empty line of a text file; a .json string or list of strings."""
    import json

    texts, names = [], []
    for path in paths:
        try:
            raw = Path(path).expanduser().read_bytes().decode("utf-8")
        except UnicodeDecodeError as exc:
            raise EngineError(f"{path}: not UTF-8 text (byte {exc.start})", hint="save the file as UTF-8") from None
        except OSError as exc:
            raise EngineError(f"cannot read {path}: {exc.strerror or exc}") from None
        if path.lower().endswith(".json"):
            try:
                value = json.loads(raw)
            except ValueError as exc:
                raise EngineError(f"{path}: not valid JSON ({exc})") from None
            found = [value] if isinstance(value, str) else value
            if not isinstance(found, list) or not all(isinstance(v, str) for v in found):
                raise EngineError(f"{path}: a text model reads a JSON string or a list of strings")
        else:
            found = [line.strip() for line in raw.splitlines() if line.strip()]
        if not found:
            raise EngineError(f"{path}: no text in it", hint="one input per line")
        texts += found
        names += [path] if len(found) == 1 else [f"{path}[{i}]" for i in range(len(found))]
    return texts, names


@runtime_checkable
class DecodesSource(Protocol):
    """A data source with two vocabularies that shows input (source side) ids as text (explain's token labels)."""

    def decode_source(self, ids: list[int]) -> str: ...


def token_texts(source: Any, ids: list[int], facts: dict[str, Any], side: str) -> list[str]:
    """Each id as text: ``decode_tokens`` (target side); the input side by the source's ``decode_source`` when it
    has one, else ``decode_tokens`` when the vocabulary is shared. Special tokens show by their fact's name."""
    special = {v: f"<{k.removesuffix('_id')}>" for k, v in facts.items() if k.endswith("_id") and isinstance(v, int)}
    two = facts.get("src_vocab_size") is not None and facts.get("src_vocab_size") != facts.get("tgt_vocab_size")
    decode = source.decode_tokens
    if side == "source":  # the source side's own decoder when there is one, else the shared vocabulary's
        decode = source.decode_source if implements(source, DecodesSource) else None if two else source.decode_tokens
    out = []
    for i in ids:
        text = decode([i]) if decode is not None else ""
        out.append(text if text else special.get(i, f"#{i}"))
    return out


def teacher_forced(call: tuple[Any, ...], generated: list[int]) -> Callable[[torch.Tensor], tuple[Any, ...]]:
    """``ids [B, n] -> the arguments of one network call`` whose last sequence is the start + generated[:-1]."""
    gen = torch.tensor([generated[:-1]], dtype=torch.long)
    start = call[-1]

    def build(ids: torch.Tensor) -> tuple[Any, ...]:
        b = ids.shape[0]
        if len(call) == 1:  # a causal LM: the prompt is the sequence being continued
            return (torch.cat([ids, gen.to(ids.device).expand(b, -1)], 1),)
        rest = tuple(a.expand(b, *a.shape[1:]) if isinstance(a, torch.Tensor) else a for a in call[1:-1])
        return (ids, *rest, torch.cat([start.expand(b, -1), gen.to(start.device).expand(b, -1)], 1))

    return build


def decoder_start(model: nn.Module, call: tuple[Any, ...], generated: list[int]) -> tuple[Any, ...]:
    """``call`` with its last argument cut to the decoder's real start tokens.

    ``network_inputs`` gives the arguments of one decoding call, whose target prefix may hold more than the start
    (an export shape: ``<s>`` and one more token). Of the prefix's leading parts, the one under which the
    teacher-forced model best reproduces the generated tokens (argmax agreement; ties: the longer) is the start.
    A causal LM's prompt (one argument) is kept whole.
    """
    prefix = call[-1]
    if len(call) == 1 or not isinstance(prefix, torch.Tensor) or prefix.dim() != 2 or prefix.shape[1] < 2:
        return call
    wanted = torch.tensor(generated, dtype=torch.long)
    best, chosen = -1.0, call
    for k in range(prefix.shape[1], 0, -1):
        candidate = (*call[:-1], prefix[:, :k])
        with torch.no_grad():
            logits = _logits(model(*teacher_forced(candidate, generated)(call[0])))
        predicted = logits[0, k - 1 : k - 1 + len(generated)].argmax(-1).cpu()
        agree = float((predicted == wanted[: len(predicted)]).float().mean()) if len(predicted) else 0.0
        if agree > best:
            best, chosen = agree, candidate
    return chosen


def _logits(out: Any) -> torch.Tensor:
    out = out[0] if isinstance(out, (tuple, list)) else out
    if not isinstance(out, torch.Tensor) or out.dim() != 3:
        raise EngineError(
            f"the model returns {tuple(getattr(out, 'shape', ()))} for a teacher-forced call; a model generating "
            "text returns logits [batch, positions, vocabulary]"
        )
    return out


def _embedding(model: nn.Module, args: tuple[Any, ...], ids: torch.Tensor) -> nn.Embedding | None:
    """The first ``nn.Embedding`` reading the input ids (shared with a decoder or not) during one call."""
    found: list[nn.Module] = []
    handles = [
        m.register_forward_hook(lambda mod, a, _o: found.append(mod) if _reads(a, ids) and not found else None)
        for m in model.modules()
        if isinstance(m, nn.Embedding)
    ]
    try:
        with torch.no_grad():
            model(*args)
    finally:
        for handle in handles:
            handle.remove()
    return found[0] if found else None  # type: ignore[return-value]


def _reads(args: tuple[Any, ...], ids: torch.Tensor) -> bool:
    x = args[0] if args else None
    n = ids.shape[1]
    return (
        isinstance(x, torch.Tensor)
        and x.dim() == 2
        and x.shape[0] == ids.shape[0]
        and x.shape[1] >= n
        and torch.equal(x[:, :n], ids.to(x.device))
    )


def attribute(
    model: nn.Module, call: tuple[Any, ...], generated: list[int], method: str, pad_id: int, steps: int, samples: int
) -> tuple[np.ndarray, list[float]]:
    """``attribution[t, i]`` of generated token ``t`` (its logit given its prefix) to input token ``i``, and the
    probability the model gave each generated token. ``call``: ``network_inputs`` of one input (batch 1)."""
    import captum.attr as ca

    call = decoder_start(model, call, generated)
    ids = call[0]
    n, count = ids.shape[1], len(generated)
    build = teacher_forced(call, generated)
    positions = torch.arange(count) + call[-1].shape[1] - 1
    wanted = torch.tensor(generated, dtype=torch.long)

    def scores(out: Any) -> torch.Tensor:
        logits = _logits(out)
        return logits[:, positions.to(logits.device), :].gather(
            -1, wanted.to(logits.device).expand(len(logits), -1)[..., None]
        )[..., 0]

    with torch.no_grad():
        logits = _logits(model(*build(ids)))
        probs = logits[0, positions].float().softmax(-1).gather(-1, wanted[:, None])[:, 0].tolist()
    targets = list(range(count))
    many = ids.expand(count, -1)
    pads = torch.full_like(many, pad_id)
    torch.manual_seed(0)
    try:
        with torch.enable_grad():
            if method == "occlusion":
                mask = torch.arange(n)[None].expand_as(many)
                out = ca.FeatureAblation(lambda x: scores(model(*build(x)))).attribute(
                    many, baselines=pads, target=targets, feature_mask=mask
                )
                return out.float().detach().numpy(), probs
            embedding = _embedding(model, build(ids), ids)
            if embedding is None:
                raise EngineError(
                    f"no token embedding of the model reads the input ids: Captum cannot differentiate it ({method})",
                    hint="use --method occlusion, which needs no gradients",
                )
            through = _through(model, embedding, build, scores, n)
            with torch.no_grad():
                embedded, base = embedding(many), embedding(pads)
            if method == "integrated_gradients":
                out = ca.IntegratedGradients(through).attribute(
                    embedded, baselines=base, target=targets, additional_forward_args=(many,), n_steps=steps,
                    internal_batch_size=max(count, min(512, steps * count)),
                ).sum(-1)  # fmt: skip
            elif method == "saliency":
                grads = ca.Saliency(through).attribute(
                    embedded.clone().requires_grad_(True), target=targets, abs=False, additional_forward_args=(many,)
                )
                out = grads.norm(dim=-1)
            else:
                out = (
                    ca.GradientShap(through)
                    .attribute(
                        embedded, baselines=base[:1], n_samples=samples, target=targets, additional_forward_args=(many,)
                    )
                    .sum(-1)
                )
    except EngineError:
        raise
    except Exception as exc:
        raise EngineError(
            f"Captum could not compute {method} for the run's model: {type(exc).__name__}: {exc}"
        ) from None
    return out.float().detach().numpy(), probs


def _through(
    model: nn.Module, embedding: nn.Module, build: Callable[..., tuple[Any, ...]], scores: Callable[..., Any], n: int
) -> Callable[[torch.Tensor, torch.Tensor], torch.Tensor]:
    """A function of the input tokens' embeddings: the call's first read of the ids gets ``embedded`` instead."""

    def forward(embedded: torch.Tensor, ids: torch.Tensor) -> torch.Tensor:
        done: list[bool] = []

        def hook(_m: nn.Module, a: tuple[Any, ...], o: torch.Tensor) -> torch.Tensor | None:
            if done or not _reads(a, ids):
                return None
            done.append(True)
            return torch.cat([embedded.to(o.dtype), o[:, n:]], 1)

        handle = embedding.register_forward_hook(hook)
        try:
            return scores(model(*build(ids)))
        finally:
            handle.remove()

    return forward


def explain_sequences(
    run: Any,
    inputs: list[str],
    method: str,
    steps: int,
    samples: int,
    options: dict[str, Any],
    progress: bool = True,
) -> tuple[list[Explained], dict[str, Any]]:
    """Generate for each input text of ``inputs`` (files) and attribute every generated token; the run's facts too."""
    from engine.data import SourceDataModule

    texts, names = read_texts(inputs)
    datamodule = run.datamodule()
    facts = {**dict(run.facts), **dict(getattr(datamodule, "facts", {}) or {})}
    source = next(
        (o for o in (getattr(datamodule, "source", None) if isinstance(datamodule, SourceDataModule) else None,
                     datamodule) if o is not None and implements(o, EncodesText)),
        None,
    )  # fmt: skip
    if source is None:
        raise EngineError(
            "the run's task generates text but its data source cannot encode text (no encode_text/decode_tokens)",
            hint="a data source implements engine.protocols.EncodesText for explain, predict and serve",
        )
    task = run.task(facts=facts)
    model = run.model(facts=facts)
    if not isinstance(model, nn.Module):
        raise EngineError(
            f"the run's model is a {type(model).__name__}, not a torch.nn.Module: Captum cannot explain it"
        )
    pad_id = int(facts.get("pad_id", 0) or 0)
    found = []
    for name, text in _progress(list(zip(names, texts, strict=True)), progress and len(texts) > 1, method):
        ids = list(source.encode_text(text))
        with torch.no_grad():
            generated = [int(t) for t in task.generate(model, [ids], **options)[0]]
        call = tuple(task.network_inputs([ids]))
        shown = [int(t) for t in call[0][0].tolist()]  # the ids the network reads (special tokens added)
        if generated:
            matrix, probs = attribute(model, call, generated, method, pad_id, steps, samples)
        else:
            matrix, probs = np.zeros((0, len(shown)), dtype=np.float32), []
        found.append(
            Explained(
                name, text, source.decode_tokens(generated), token_texts(source, shown, facts, "source"),
                token_texts(source, generated, facts, "target"), generated, [round(p, 6) for p in probs], matrix,
            )
        )  # fmt: skip
    return found, facts


def _progress(items: list[Any], show: bool, method: str) -> Any:
    if not show:
        return items
    from tqdm import tqdm

    return tqdm(items, desc=f"explain ({method})", unit="input", leave=False, disable=None)
