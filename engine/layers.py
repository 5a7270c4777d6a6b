"""Layers several plugins' models share (imports torch: for target modules, not plugin modules)."""

from __future__ import annotations

from typing import Literal

from torch import nn

from engine._contract.errors import ConfigError

Norm = Literal["batch", "group", "none"]


def norm_layer(kind: str, channels: int, dims: int = 2) -> nn.Module:
    """The normalisation after a convolution: ``batch`` (BatchNorm), ``group`` (GroupNorm) or ``none``.

    GroupNorm (Wu & He 2018) uses up to 32 groups of at least 4 channels each (the largest divisor
    of ``channels`` that allows it): per-sample statistics, so it works where BatchNorm cannot
    (per-sample gradients for differential privacy, batches of one). ``dims`` is 1 for
    ``Conv1d`` features ``[B, C, T]``, 2 for ``Conv2d`` maps ``[B, C, H, W]``.
    """
    if kind == "batch":
        return nn.BatchNorm1d(channels) if dims == 1 else nn.BatchNorm2d(channels)
    if kind == "group":
        groups = max(g for g in range(1, max(1, min(32, channels // 4)) + 1) if channels % g == 0)
        return nn.GroupNorm(groups, channels)
    if kind == "none":
        return nn.Identity()
    raise ConfigError(f"norm must be batch, group or none, got {kind!r}")
