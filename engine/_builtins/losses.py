"""Built-in losses (factories over torch.nn)."""

from __future__ import annotations

from typing import Annotated

import torch
from annotated_types import Ge, Gt, Lt
from torch import nn

from engine._builtins.problems import match_target


def cross_entropy(
    label_smoothing: Annotated[float, Ge(0), Lt(1)] = 0.0, weight: list[Annotated[float, Ge(0)]] | None = None
) -> nn.Module:
    """Cross-entropy on logits against integer class targets.

    Args:
        label_smoothing: amount of label smoothing in [0, 1).
        weight: optional per-class weights.
    """
    w = torch.tensor(weight, dtype=torch.float32) if weight is not None else None
    return nn.CrossEntropyLoss(weight=w, label_smoothing=label_smoothing)


def mse() -> nn.Module:
    """Mean squared error."""
    return _Regression(nn.MSELoss())


def l1() -> nn.Module:
    """Mean absolute error."""
    return _Regression(nn.L1Loss())


def huber(delta: Annotated[float, Gt(0)] = 1.0) -> nn.Module:
    """Huber loss: quadratic below ``delta``, linear above.

    Args:
        delta: threshold between the quadratic and linear regimes.
    """
    return _Regression(nn.HuberLoss(delta=delta))


def bce_with_logits(pos_weight: Annotated[float, Gt(0)] | None = None) -> nn.Module:
    """Binary cross-entropy on logits (binary or multi-label targets in {0, 1}).

    Args:
        pos_weight: weight of positive examples (for imbalanced data).
    """
    pw = torch.tensor(pos_weight) if pos_weight is not None else None
    return _Regression(nn.BCEWithLogitsLoss(pos_weight=pw))


class _Regression(nn.Module):
    """A loss on float targets of the output's shape (see `match_target`)."""

    def __init__(self, loss: nn.Module) -> None:
        super().__init__()
        self.loss = loss

    def forward(self, output, target):  # type: ignore[no-untyped-def]
        return self.loss(output, match_target(output, target))
