"""``engine nlp perplexity RUN FILE``: a language model's loss on any text file (nats, bits per token, perplexity).

The file is encoded with the run's tokenizer and cut into windows of the model's context; each window predicts
its next tokens. With ``stride`` < context the windows overlap and only the tokens a window adds are scored,
so each token is predicted with up to ``context - stride`` tokens of history (the sliding-window estimate);
the default (stride = context) scores each token once in non-overlapping blocks, as ``val/perplexity`` does.
"""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path
from typing import Any

from engine import EngineError


def perplexity(
    network: Any, ids: list[int], context: int, stride: int | None = None, batch_size: int = 8
) -> dict[str, float]:
    """Token-weighted mean negative log-likelihood of ``ids`` under ``network`` (called like the model)."""
    import torch
    import torch.nn.functional as F

    stride = context if stride is None else stride
    if len(ids) < 2:
        raise EngineError("the text is too short: it needs at least 2 tokens")
    if not 1 <= stride <= context:
        raise EngineError(f"--stride must be between 1 and the context length {context}, got {stride}")
    windows: list[tuple[int, int]] = []  # (start, first scored position in the window)
    start, scored_to = 0, 0
    while scored_to < len(ids) - 1:
        end = min(start + context, len(ids) - 1)
        windows.append((start, scored_to - start))
        scored_to = end
        start = max(0, min(start + stride, len(ids) - 1 - context))
        if end == len(ids) - 1:
            break
    total, count = 0.0, 0
    data = torch.tensor(ids, dtype=torch.long)
    with torch.inference_mode():
        for b in range(0, len(windows), batch_size):
            chunk = windows[b : b + batch_size]
            for length in sorted({min(context, len(ids) - 1 - s) for s, _ in chunk}):  # same-length windows batch
                same = [(s, f) for s, f in chunk if min(context, len(ids) - 1 - s) == length]
                x = torch.stack([data[s : s + length] for s, _ in same])
                y = torch.stack([data[s + 1 : s + 1 + length] for s, _ in same])
                out = network(x)
                logits = torch.as_tensor(out[0] if isinstance(out, (list, tuple)) else out).float()
                nll = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), y.reshape(-1), reduction="none")
                nll = nll.view(len(same), length)
                for row, (_, first) in enumerate(same):
                    total += float(nll[row, first:].sum())
                    count += length - first
    loss = total / count
    return {"tokens": count, "loss": loss, "bits_per_token": loss / math.log(2), "perplexity": math.exp(loss)}


def command(args: argparse.Namespace) -> int:
    """``engine nlp perplexity RUN FILE``."""
    from engine.runs import inside, open_run
    from engine_nlp.tokenizer import TextTokenizer

    file = Path(args.file)
    if not file.is_file():
        raise EngineError(f"text file not found: {file}")
    try:
        text = file.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise EngineError(f"{file} is not UTF-8 text ({exc.reason} at byte {exc.start})") from exc
    run = open_run(args.run)
    tok_file = inside(run.path, "tokenizer.json")
    if not tok_file.is_file():
        raise EngineError(f"run {run.path} has no tokenizer.json", hint="use a run of nlp.text_files or similar")
    tok = TextTokenizer.load(tok_file)
    unknown = tok.unknown_chars(text)
    ids = tok.encode(text)
    model = run.model(args.checkpoint).eval()
    context = getattr(model, "context_length", None)
    if not isinstance(context, int):
        raise EngineError(f"run {run.path}'s model has no context_length: is it a language model?")
    vocab = getattr(model, "vocab_size", None)
    if isinstance(vocab, int) and ids and max(ids) >= vocab:
        raise EngineError(f"the run's tokenizer gives id {max(ids)}, outside its model's vocabulary of {vocab}")
    result = {"run": str(run.path), "file": str(file), **perplexity(model, ids, context, args.stride)}
    if unknown:
        result["unknown_characters"] = len(unknown)
    if args.json:
        print(json.dumps(result))
        return 0
    print(f"{file}: {result['tokens']} tokens scored with {run.path.name} (context {context})")
    print(f"loss {result['loss']:.4f} nats/token   bits/token {result['bits_per_token']:.4f}   "
          f"perplexity {result['perplexity']:.3f}")  # fmt: skip
    if unknown:
        print(f"note: {len(unknown)} character(s) of the file are unknown to the character tokenizer (<unk>)")
    return 0
