"""Baselines the recipes are measured against: a bigram language model, general-purpose compressors, the majority
class."""

from __future__ import annotations

import lzma
import math
from typing import Any

import torch

#: The compressors a user would try first: ``xz -9e`` (Python's lzma, preset 9 | EXTREME) and zstd at levels 19 and
#: 22 (the ``zstandard`` package; its maximum, ``--ultra -22`` on the command line).
COMPRESSORS = ("xz -9e", "zstd -19", "zstd --ultra -22")


def bigram_loss(train_ids: torch.Tensor, eval_ids: torch.Tensor, vocab_size: int, alpha: float = 0.1) -> float:
    """Mean next-token NLL (nats) on ``eval_ids`` of an add-``alpha`` smoothed bigram model counted on ``train_ids``.

    ``alpha`` is small on purpose: the best of a few values is what a tuned bigram reaches.
    """
    counts = torch.zeros(vocab_size, vocab_size, dtype=torch.float64)
    counts.index_put_((train_ids[:-1], train_ids[1:]), torch.ones(len(train_ids) - 1, dtype=torch.float64), True)
    probs = (counts + alpha) / (counts + alpha).sum(1, keepdim=True)
    return float(-probs[eval_ids[:-1], eval_ids[1:]].log().mean())


def best_bigram_loss(train_ids: torch.Tensor, eval_ids: torch.Tensor, vocab_size: int) -> tuple[float, float]:
    """The lowest bigram loss over smoothing values (a generous baseline), and that value."""
    return min((bigram_loss(train_ids, eval_ids, vocab_size, a), a) for a in (0.01, 0.03, 0.1, 0.3, 1.0))


def compressed_bits_per_char(text: str) -> dict[str, float | None]:
    """Bits per character of ``text`` (UTF-8) compressed alone by each of `COMPRESSORS` (None: zstandard missing).

    Container headers are counted: it is what the file on disk costs, the figure a user computes with ``xz -9e``.
    """
    if not text:
        raise ValueError("no text to compress")
    raw = text.encode("utf-8")
    sizes: dict[str, int | None] = {"xz -9e": len(lzma.compress(raw, preset=9 | lzma.PRESET_EXTREME))}
    try:
        import zstandard
    except ImportError:  # declared by engine-nlp; an install without it still gets the xz figure
        zstandard = None
    for name, level in (("zstd -19", 19), ("zstd --ultra -22", 22)):
        sizes[name] = len(zstandard.ZstdCompressor(level=level).compress(raw)) if zstandard is not None else None
    return {name: None if size is None else 8 * size / len(text) for name, size in sizes.items()}


def per_character(datamodule: Any, split: str, nll: float, cache: dict[str, dict[str, float]]) -> dict[str, float]:
    """A language model's ``bits_per_char`` on ``split`` (mean loss ``nll`` in nats per token, times the split's
    tokens, over its characters) and the compressors' on the same text (``xz_bits_per_char``, ``zstd_bits_per_char``
    at level 19; computed once per split into ``cache``). Empty when the data does not tell its characters."""
    facts = getattr(datamodule, "facts", None) or {}
    tokens, chars = (facts.get("tokens") or {}).get(split), (facts.get("characters") or {}).get(split)
    if not tokens or not chars:
        return {}
    out = {"bits_per_char": bits(nll) * tokens / chars}
    source = getattr(datamodule, "source", None)
    if split not in cache and callable(getattr(source, "split_text", None)):
        sizes = compressed_bits_per_char(source.split_text(split))
        cache[split] = {k: v for k, v in (("xz", sizes["xz -9e"]), ("zstd", sizes["zstd -19"])) if v is not None}
    return out | {f"{name}_bits_per_char": value for name, value in cache.get(split, {}).items()}


def majority_accuracy(train_labels: torch.Tensor, eval_labels: torch.Tensor) -> float:
    """Accuracy on ``eval_labels`` of always predicting the most frequent training label."""
    majority = int(torch.bincount(train_labels).argmax())
    return float((eval_labels == majority).float().mean())


def bits(nats: float) -> float:
    return nats / math.log(2)
