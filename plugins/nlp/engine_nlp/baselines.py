"""Baselines the recipes are measured against: a bigram language model, the majority class."""

from __future__ import annotations

import math

import torch


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


def majority_accuracy(train_labels: torch.Tensor, eval_labels: torch.Tensor) -> float:
    """Accuracy on ``eval_labels`` of always predicting the most frequent training label."""
    majority = int(torch.bincount(train_labels).argmax())
    return float((eval_labels == majority).float().mean())


def bits(nats: float) -> float:
    return nats / math.log(2)
