"""Ranking losses over ``scores [batch, 1 + negatives]`` (positive item first) and per-row weights."""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F


def _check(scores: torch.Tensor, name: str, min_columns: int) -> None:
    if scores.dim() != 2 or scores.shape[1] < min_columns:
        raise ValueError(
            f"{name} expects scores of shape [batch, 1 + negatives] with at least {min_columns} column(s), "
            f"got {tuple(scores.shape)}; recsys data sources provide them (data.num_negatives)"
        )


def _weighted_mean(per_row: torch.Tensor, weight: torch.Tensor | None) -> torch.Tensor:
    if weight is None:
        return per_row.mean()
    w = weight.to(per_row.dtype).reshape(-1)
    if w.shape[0] != per_row.shape[0]:
        raise ValueError(f"got {w.shape[0]} weights for {per_row.shape[0]} rows")
    return (per_row * w).sum() / w.sum().clamp_min(1e-12)


class BPR(nn.Module):
    """Bayesian personalised ranking: ``-log sigmoid(s_pos - s_neg)``, averaged over negatives."""

    def forward(self, scores: torch.Tensor, weight: torch.Tensor | None = None) -> torch.Tensor:
        _check(scores, "bpr", 2)
        per_row = -F.logsigmoid(scores[:, :1] - scores[:, 1:]).mean(1)
        return _weighted_mean(per_row, weight)


class SampledSoftmax(nn.Module):
    """Softmax cross-entropy of the positive among itself and the sampled negatives."""

    def __init__(self, temperature: float = 1.0) -> None:
        super().__init__()
        self.temperature = temperature

    def forward(self, scores: torch.Tensor, weight: torch.Tensor | None = None) -> torch.Tensor:
        _check(scores, "sampled_softmax", 2)
        target = torch.zeros(scores.shape[0], dtype=torch.long, device=scores.device)
        per_row = F.cross_entropy(scores / self.temperature, target, reduction="none")
        return _weighted_mean(per_row, weight)


class BCE(nn.Module):
    """Binary cross-entropy on logits: the positive labelled 1, each negative 0 (pointwise, as in NCF)."""

    def forward(self, scores: torch.Tensor, weight: torch.Tensor | None = None) -> torch.Tensor:
        _check(scores, "bce", 1)
        per_row = (F.softplus(-scores[:, 0]) + F.softplus(scores[:, 1:]).sum(1)) / scores.shape[1]
        return _weighted_mean(per_row, weight)


def bpr() -> nn.Module:
    """Bayesian personalised ranking loss (pairwise): -log sigmoid(positive score - negative score)."""
    return BPR()


def sampled_softmax(temperature: float = 1.0) -> nn.Module:
    """Sampled softmax (listwise): cross-entropy of the positive against the sampled negatives.

    Args:
        temperature: divides the scores before the softmax (models that already scale, like a
            normalised two-tower, keep 1.0).
    """
    return SampledSoftmax(temperature)


def bce() -> nn.Module:
    """Binary cross-entropy (pointwise): positive items labelled 1, sampled negatives 0."""
    return BCE()
