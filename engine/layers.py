"""Layers several plugins' models share (imports torch: for target modules, not plugin modules)."""

from __future__ import annotations

from typing import Literal

from torch import nn

from engine._contract.errors import ConfigError

Norm = Literal["batch", "group", "none"]


def norm_layer(kind: str, channels: int, dims: int = 2) -> nn.Module:
    """The normalisation after a convolution: ``batch`` (BatchNorm), ``group`` (GroupNorm) or ``none``.

    GroupNorm uses up to 32 groups of at least 4 channels (per-sample statistics: it works with
    per-sample gradients and batches of one). ``dims``: 1 for ``Conv1d`` features, 2 for ``Conv2d`` maps.
    """
    if kind == "batch":
        return nn.BatchNorm1d(channels) if dims == 1 else nn.BatchNorm2d(channels)
    if kind == "group":
        groups = max(g for g in range(1, max(1, min(32, channels // 4)) + 1) if channels % g == 0)
        return nn.GroupNorm(groups, channels)
    if kind == "none":
        return nn.Identity()
    raise ConfigError(f"norm must be batch, group or none, got {kind!r}")
