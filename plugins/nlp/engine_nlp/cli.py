"""Handlers of the plugin's commands: ``engine generate`` and ``engine nlp baselines``."""

from __future__ import annotations

import argparse
from typing import Any, Protocol, runtime_checkable

from engine import EngineError
from engine.runs import inside


@runtime_checkable
class Generates(Protocol):
    """A language model ``engine generate`` can sample from (``engine_nlp.models.GPT`` is one)."""

    def generate(
        self, idx: Any, max_new_tokens: int, temperature: float = 1.0, top_k: int | None = None, generator: Any = None
    ) -> Any:
        """``idx [B, T]`` followed by ``max_new_tokens`` sampled tokens (temperature 0: greedy)."""
        ...


def _tokenizer(run: Any) -> Any:
    from engine_nlp.tokenizer import TextTokenizer

    path = inside(run.path, "tokenizer.json")
    if not path.is_file():
        raise EngineError(
            f"run {run.path} has no tokenizer.json",
            hint="generate works on runs of the nlp plugin's data sources (e.g. `engine run nlp/char-gpt`)",
        )
    return TextTokenizer.load(path)


def generate_text(
    run_path: str,
    prompt: str,
    max_new_tokens: int = 200,
    temperature: float = 0.8,
    top_k: int | None = 40,
    seed: int = 0,
    which: str = "best",
) -> str:
    """Sample a continuation of ``prompt`` from the language model of run ``run_path``; returns the whole text."""
    from engine.runs import open_run

    if max_new_tokens < 0:
        raise EngineError(f"--max-new-tokens must be >= 0, got {max_new_tokens}")
    if temperature < 0:
        raise EngineError(f"--temperature must be >= 0 (0 is greedy), got {temperature}")
    if top_k is not None and top_k < 0:
        raise EngineError(f"--top-k must be >= 0 (0 keeps every token), got {top_k}")
    run = open_run(run_path)
    tok = _tokenizer(run)
    ids = tok.encode_prompt(prompt) if prompt else []
    if not ids:
        start = tok.encode("\n")
        if not start or tok.unknown_chars("\n"):
            raise EngineError("give a non-empty --prompt", hint="this run's tokenizer cannot start from a newline")
        ids = start[-1:]
    import torch

    model = run.model(which)  # the task's primary slot: the language model
    if not isinstance(model, Generates):
        raise EngineError(
            f"run {run.path} is not a language model (its model {type(model).__name__} cannot generate)",
            hint="train one with `engine run nlp/char-gpt`",
        )
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        out = model.generate(
            torch.tensor([ids], dtype=torch.long), max_new_tokens, temperature, top_k or None, generator=gen
        )
    text = tok.decode(out[0].tolist())
    return prompt + text[len(tok.decode(ids)) :] if prompt else text


def generate(args: argparse.Namespace) -> int:
    text = generate_text(
        args.run, args.prompt, args.max_new_tokens, args.temperature, args.top_k, args.seed, args.checkpoint
    )
    print(text)
    return 0


def baselines(args: argparse.Namespace) -> int:
    """Print a run's metrics next to the baseline of its kind (bigram LM or majority class)."""
    import torch

    from engine.runs import open_run
    from engine_nlp.baselines import best_bigram_loss, bits, majority_accuracy

    run = open_run(args.run)
    metrics = run.summary.get("metrics") or {}
    dm = run.datamodule()
    source = getattr(dm, "source", None)
    rows: list[tuple[str, str, str]] = []
    if source is not None and hasattr(source, "ids"):
        v = int(dm.facts["vocab_size"])
        for split in ("val", "test"):
            if split not in source.ids:
                continue
            loss, alpha = best_bigram_loss(source.ids["train"], source.ids[split], v)
            model = metrics.get(f"{split}/loss")
            rows.append(
                (
                    f"{split}/loss (nats/token)",
                    f"{model:.4f} ({bits(model):.3f} bits)" if model is not None else "-",
                    f"{loss:.4f} ({bits(loss):.3f} bits, bigram, add-{alpha:g})",
                )
            )
            compressed = _compressor_rows(source, split, model)
            rows += compressed
            dynamic = metrics.get(f"{split}/dynamic_bits_per_char")
            if dynamic is not None and compressed:  # task.dynamic_eval_lrs: the model adapting to the text it reads
                rows.append((f"{split} bits/char (dynamic eval)", f"{dynamic:.3f}", compressed[0][2]))
    elif source is not None and hasattr(source, "class_names"):
        splits = dm.splits
        train = torch.stack([splits["train"][i][1] for i in range(len(splits["train"]))])
        for split in ("val", "test"):
            if split not in splits:
                continue
            labels = torch.stack([splits[split][i][1] for i in range(len(splits[split]))])
            model = metrics.get(f"{split}/accuracy")
            rows.append(
                (
                    f"{split}/accuracy",
                    f"{model:.4f}" if model is not None else "-",
                    f"{majority_accuracy(train, labels):.4f} (majority class)",
                )
            )
    elif source is not None and callable(getattr(source, "baseline_scores", None)):  # translation: copy, dictionary
        for split in ("val", "test"):
            base = source.baseline_scores(split)
            for name in ("bleu", "chrf") if base else ():
                model = metrics.get(f"{split}/{name}")
                rows.append(
                    (
                        f"{split}/{name}",
                        f"{model:.2f}" if model is not None else "-",
                        f"{base['copy_' + name]:.2f} (copy), {base['dict_' + name]:.2f} (word dictionary)",
                    )
                )
    else:
        raise EngineError(f"run {run.path} does not use an nlp data source", hint="see `engine runs list`")
    width = max(len(r[0]) for r in rows)
    print(f"{'metric'.ljust(width)}  {'run':<26}  baseline")
    for name, model_value, base in rows:
        print(f"{name.ljust(width)}  {model_value:<26}  {base}")
    return 0


def _compressor_rows(source: object, split: str, model: float | None) -> list[tuple[str, str, str]]:
    """Bits per character of the split's text: the run's (its loss over the split's tokens, per character) beside
    xz and zstd compressing the same text alone."""
    from engine_nlp.baselines import bits, compressed_bits_per_char

    text = (getattr(source, "_texts", None) or {}).get(split)
    if not text:
        return []
    tokens = len(source.ids[split])  # type: ignore[attr-defined]
    run = f"{bits(model) * tokens / len(text):.3f}" if model is not None else "-"
    return [
        (
            f"{split} bits/char",
            run,
            f"{value:.3f} ({name})" if value is not None else f"- ({name}: pip install zstandard)",
        )
        for name, value in compressed_bits_per_char(text).items()
    ]
