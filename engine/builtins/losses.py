"""Built-in losses (factories over torch.nn)."""

from __future__ import annotations

from typing import Any

from torch import nn


def cross_entropy(label_smoothing: float = 0.0, weight: list[float] | None = None) -> nn.Module:
    """Cross-entropy on logits against integer class targets.

    Args:
        label_smoothing: amount of label smoothing in [0, 1).
        weight: optional per-class weights.
    """
    import torch

    w = torch.tensor(weight, dtype=torch.float32) if weight is not None else None
    return nn.CrossEntropyLoss(weight=w, label_smoothing=label_smoothing)


def mse() -> nn.Module:
    """Mean squared error."""
    return _Regression(nn.MSELoss())


def l1() -> nn.Module:
    """Mean absolute error."""
    return _Regression(nn.L1Loss())


def huber(delta: float = 1.0) -> nn.Module:
    """Huber loss: quadratic below ``delta``, linear above.

    Args:
        delta: threshold between the quadratic and linear regimes.
    """
    return _Regression(nn.HuberLoss(delta=delta))


def bce_with_logits(pos_weight: float | None = None) -> nn.Module:
    """Binary cross-entropy on logits (binary or multi-label targets in {0, 1}).

    Args:
        pos_weight: weight of positive examples (for imbalanced data).
    """
    import torch

    pw = torch.tensor(pos_weight) if pos_weight is not None else None
    return _Regression(nn.BCEWithLogitsLoss(pos_weight=pw))


def match_target(output: Any, target: Any) -> Any:
    """``target`` cast to the output's dtype and, where they differ only by a trailing 1, its shape.

    ``(N,)`` against ``(N, 1)`` is the one difference forgiven: any other mismatch (a
    ``[B, H, C]`` target against a ``[B, H*C]`` output) raises ``ValueError`` rather than
    being reshaped, because which element is which is the model's business.
    """
    target = target.to(output.dtype)
    if target.shape == output.shape:
        return target
    if tuple(output.shape) == (*target.shape, 1) or tuple(target.shape) == (*output.shape, 1):
        return target.view_as(output)
    raise ValueError(
        f"the model's output has shape {list(output.shape)} and the target {list(target.shape)}: "
        "a regression or multi-label model must return its target's shape"
    )


class _Regression(nn.Module):
    """A loss on float targets of the output's shape (see :func:`match_target`)."""

    def __init__(self, loss: nn.Module) -> None:
        super().__init__()
        self.loss = loss

    def forward(self, output, target):  # type: ignore[no-untyped-def]
        return self.loss(output, match_target(output, target))
