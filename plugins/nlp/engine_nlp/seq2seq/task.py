"""The seq2seq task: teacher-forced cross-entropy with label smoothing; BLEU/chrF of generated text; beam search."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Annotated, Any

import lightning as L
import torch
import torch.nn.functional as F
import torchmetrics
from annotated_types import Ge, Le, Lt
from torch import nn

from engine import ConfigError, did_you_mean
from engine.data import sample_batch
from engine.protocols import EncodesText, implements
from engine.tasks import eval_mode
from engine_nlp.seq2seq import decoding
from engine_nlp.seq2seq.data import pad_batch
from engine_nlp.seq2seq.metrics import position_accuracy, text_scores

OPTIONS = ("max_new_tokens", "beam", "length_penalty", "temperature", "top_k", "seed", "cache", "batch_size")


class Seq2SeqTask(L.LightningModule):
    """Sequence to sequence on ``(src [B, S], tgt [B, T])`` batches, ``tgt`` = ``<s> ids </s>`` right-padded.

    Trains ``model(src, tgt[:, :-1])`` against ``tgt[:, 1:]`` (cross-entropy, label smoothing, padding ignored).
    Validation and test log ``loss``, ``token_accuracy`` (teacher-forced, padding excluded), and on generated
    text ``bleu`` and ``chrf`` (sacrebleu, corpus level, 0-100) and ``exact_match``; the test also logs the copy
    and word-dictionary baselines of the data (``test/copy_bleu``, ``test/dict_bleu`` ...) when it has them.

    Args:
        label_smoothing: cross-entropy label smoothing.
        val_generate: sentences decoded (greedy) per validation, the first of the split (0: no BLEU in validation).
        test_beam: beam size of the test's decoding (1: greedy).
        length_penalty: beam score ``sum log p / length ** length_penalty``.
        max_target_length: longest output in tokens with ``<s>`` and ``</s>`` (from the data's facts).
        pad_id: padding id (from the facts).
        bos_id: ``<s>`` (from the facts).
        eos_id: ``</s>`` (from the facts).
    """

    input_kind = "text"
    output_kind = "text"

    def __init__(
        self,
        model: nn.Module,
        optimizer: Callable[..., torch.optim.Optimizer],
        bos_id: Annotated[int, Ge(0)],
        eos_id: Annotated[int, Ge(0)],
        scheduler: Callable[..., Any] | None = None,
        label_smoothing: Annotated[float, Ge(0), Lt(1)] = 0.1,
        val_generate: Annotated[int, Ge(0)] = 256,
        test_beam: Annotated[int, Ge(1), Le(64)] = 1,
        length_penalty: float = 1.0,
        max_target_length: Annotated[int, Ge(3)] = 64,
        pad_id: Annotated[int, Ge(0)] = 0,
    ) -> None:
        super().__init__()
        self.model, self.optimizer_factory, self.scheduler_factory = model, optimizer, scheduler
        self.bos_id, self.eos_id, self.pad_id = bos_id, eos_id, pad_id
        self.label_smoothing, self.val_generate = label_smoothing, val_generate
        self.test_beam, self.length_penalty, self.max_target_length = test_beam, length_penalty, max_target_length
        self.nll = nn.ModuleDict({s: torchmetrics.MeanMetric() for s in ("val", "test")})
        self.acc = nn.ModuleDict({s: torchmetrics.MeanMetric() for s in ("val", "test")})
        self._gen: dict[str, tuple[list, list]] = {}
        #: ids -> text of the target side (the data source's `decode_tokens`), set when the task meets its data.
        self.detokenize: Callable[[Sequence[int]], str] | None = None

    @property
    def primary_metric(self) -> tuple[str, str]:
        return ("bleu", "max")

    # ------------------------------------------------------------------ checks
    def check_data(self, datamodule: Any) -> None:
        """One forward pass on two training pairs: data or a model that does not fit fails here, clearly."""
        batch = sample_batch(datamodule)
        if not (isinstance(batch, (tuple, list)) and len(batch) == 2 and all(_ids(b) for b in batch)):
            raise ConfigError(
                "the seq2seq task needs (source ids [B, S], target ids [B, T]) batches; this data yields "
                f"{_shape(batch)}",
                hint="use data=nlp.parallel_text or data=nlp.synthetic_translation",
            )
        src, tgt = batch
        try:
            with eval_mode(self.model):
                out = self.model(src, tgt[:, :-1])
        except Exception as exc:
            raise ConfigError(f"the model does not fit the data: {type(exc).__name__}: {exc}") from exc
        if not isinstance(out, torch.Tensor) or out.dim() != 3 or out.shape[:2] != tgt[:, :-1].shape:
            raise ConfigError(
                f"the model returns {_shape(out)} for target prefixes {tuple(tgt[:, :-1].shape)}; a seq2seq model "
                "returns logits [B, T, target vocabulary]",
                hint="use model=nlp.seq2seq",
            )
        if int(tgt.max()) >= out.shape[-1]:
            raise ConfigError(f"target id {int(tgt.max())} is outside the model's vocabulary of {out.shape[-1]}")

    def setup(self, stage: str) -> None:
        dm = getattr(self.trainer, "datamodule", None) if self._trainer is not None else None
        source = getattr(dm, "source", None)
        if source is not None and implements(source, EncodesText):
            self.detokenize = source.decode_tokens

    # ------------------------------------------------------------------ training
    def forward(self, src: torch.Tensor, tgt_in: torch.Tensor) -> torch.Tensor:
        return self.model(src, tgt_in)

    def _loss(self, logits: torch.Tensor, tgt_out: torch.Tensor) -> torch.Tensor:
        return F.cross_entropy(
            logits.reshape(-1, logits.shape[-1]).float(),
            tgt_out.reshape(-1),
            ignore_index=self.pad_id,
            label_smoothing=self.label_smoothing,
        )

    def training_step(self, batch: Any, batch_idx: int) -> torch.Tensor:
        src, tgt = batch
        loss = self._loss(self.model(src, tgt[:, :-1]), tgt[:, 1:])
        self.log("train/loss", loss, prog_bar=True, batch_size=len(src))
        return loss

    def _evaluate(self, batch: Any, split: str, batch_idx: int) -> None:
        src, tgt = batch
        logits = self.model(src, tgt[:, :-1])
        target = tgt[:, 1:]
        real = target != self.pad_id
        n = int(real.sum())
        self.nll[split].update(self._loss(logits, target), weight=n)
        self.acc[split].update((logits.argmax(-1) == target)[real].float().mean(), weight=n)
        outs, refs = self._gen.setdefault(split, ([], []))
        budget = self.val_generate if split == "val" else len(src)
        take = min(len(src), budget - len(outs))
        if take > 0:
            beam = self.test_beam if split == "test" else 1
            outs += self.generate(self.model, [_unpad(r, self.pad_id) for r in src[:take]], beam=beam)
            refs += [_unpad(r, self.pad_id)[1:-1] for r in tgt[:take]]

    def validation_step(self, batch: Any, batch_idx: int) -> None:
        self._evaluate(batch, "val", batch_idx)

    def test_step(self, batch: Any, batch_idx: int) -> None:
        self._evaluate(batch, "test", batch_idx)

    def _log_epoch(self, split: str) -> None:
        if self.nll[split].update_count == 0:
            return
        self.log(f"{split}/loss", self.nll[split].compute(), prog_bar=True)
        self.log(f"{split}/token_accuracy", self.acc[split].compute())
        self.nll[split].reset()
        self.acc[split].reset()
        outs, refs = self._gen.pop(split, ([], []))
        if outs:
            scores = self.score_outputs(outputs=outs, targets=refs)
            for name in ("bleu", "chrf", "exact_match"):
                self.log(f"{split}/{name}", scores[name], prog_bar=name == "bleu")
        if split == "test":
            source = getattr(getattr(self.trainer, "datamodule", None), "source", None)
            if callable(getattr(source, "baseline_scores", None)):
                for name, value in source.baseline_scores("test").items():
                    self.log(f"test/{name}", value)

    def on_validation_epoch_end(self) -> None:
        self._log_epoch("val")

    def on_test_epoch_end(self) -> None:
        self._log_epoch("test")

    def configure_optimizers(self) -> Any:
        from engine.tasks import configure_optimizers

        return configure_optimizers(self, self.optimizer_factory, self.scheduler_factory)

    # ------------------------------------------------------------------ Generates / ScoresOutputs
    def network_inputs(self, inputs: list[list[int]]) -> tuple[torch.Tensor, torch.Tensor]:
        """``(src [B, S] right-padded, target prefix [B, 2] = <s> and one more token)``: one decoding call."""
        src = pad_batch(inputs, self.pad_id)
        prefix = torch.tensor([[self.bos_id, self.bos_id]] * len(inputs), dtype=torch.long)
        return src, prefix

    def generate(self, network: Callable[..., Any], inputs: list[list[int]], **options: Any) -> list[list[int]]:
        """Generated target ids (without ``<s>``/``</s>``) per input of source ids.

        Options: ``beam`` (1: greedy), ``length_penalty`` (beam), ``max_new_tokens`` (default: the data's
        longest target), ``temperature`` (> 0: sample, greedy only), ``top_k``, ``seed``, ``cache`` (use the
        model's KV cache when ``network`` has one; a deployed artifact recomputes the whole prefix),
        ``batch_size`` (inputs decoded together).
        """
        for key in options:
            if key not in OPTIONS:
                raise ConfigError(
                    f"unknown decoding option '{key}'{did_you_mean(key, OPTIONS)}; options: {', '.join(OPTIONS)}"
                )
        beam = int(options.get("beam", 1))
        max_new = int(options.get("max_new_tokens") or self.max_target_length - 1)
        temperature = float(options.get("temperature") or 0.0)
        batch_size = int(options.get("batch_size") or 64)
        if beam < 1 or max_new < 1 or temperature < 0 or batch_size < 1:
            raise ConfigError(f"decoding needs beam >= 1, max_new_tokens >= 1, temperature >= 0 (got {options})")
        if beam > 1 and temperature > 0:
            raise ConfigError("beam search is deterministic: give either beam > 1 or temperature > 0")
        if any(not row for row in inputs):
            raise ConfigError("an input has no tokens: give non-empty text")
        gen = torch.Generator().manual_seed(int(options["seed"])) if options.get("seed") is not None else None
        was_training = getattr(network, "training", False)
        if isinstance(network, nn.Module):
            network.eval()
        out: list[list[int]] = []
        try:
            with torch.no_grad():
                for i in range(0, len(inputs), batch_size):
                    chunk = inputs[i : i + batch_size]
                    src = pad_batch(chunk, self.pad_id).to(_device(network))
                    step = decoding.stepper(network, src, options.get("cache", True))
                    if beam > 1:
                        lp = float(options.get("length_penalty", self.length_penalty))
                        out += decoding.beam_search(step, len(chunk), self.bos_id, self.eos_id, max_new, beam, lp)
                    else:
                        top_k = options.get("top_k")
                        out += decoding.greedy(step, len(chunk), self.bos_id, self.eos_id, max_new, temperature,
                                               int(top_k) if top_k else None, gen)  # fmt: skip
        finally:
            if was_training:
                network.train()
        return out

    def score_outputs(self, outputs: Sequence[Any], targets: Sequence[Any]) -> dict[str, float]:
        """BLEU, chrF (sacrebleu, 0-100), exact match of the texts and position-wise token accuracy of generated
        ids against reference ids (``<s>``, ``</s>`` and padding dropped from both). Texts come from the data's
        target tokenizer (`detokenize`); without one, ids are the words. Given texts (what ``engine deploy``
        passes a text task), the text metrics of those texts."""
        if all(isinstance(t, str) for t in [*outputs, *targets]):
            return text_scores(list(outputs), list(targets))
        specials = {self.bos_id, self.eos_id, self.pad_id}
        outputs = [[int(i) for i in o if int(i) not in specials] for o in outputs]
        targets = [[int(i) for i in t if int(i) not in specials] for t in targets]
        text = self.detokenize or (lambda ids: " ".join(map(str, ids)))
        hyps, refs = [text(o) for o in outputs], [text(t) for t in targets]
        return {**text_scores(hyps, refs), "token_accuracy": position_accuracy(outputs, targets)}


def _device(network: Any) -> torch.device:
    """Where a torch network's weights are (CPU for any other callable)."""
    if isinstance(network, nn.Module):
        for p in network.parameters():
            return p.device
    return torch.device("cpu")


def _unpad(row: torch.Tensor, pad_id: int) -> list[int]:
    ids = row.tolist()
    while ids and ids[-1] == pad_id:
        ids.pop()
    return ids


def _ids(x: Any) -> bool:
    return isinstance(x, torch.Tensor) and x.dim() == 2 and not x.is_floating_point()


def _shape(value: Any) -> Any:
    if isinstance(value, (tuple, list)):
        return tuple(_shape(v) for v in value)
    return tuple(value.shape) if isinstance(value, torch.Tensor) else type(value).__name__
