"""Mixtures of 2-D Gaussians: the mode-collapse benchmark of the unrolled-GAN / VEEGAN line of papers."""

from __future__ import annotations

import math
from typing import Annotated, Any, Literal

import torch
from annotated_types import Ge, Le

from engine import ConfigError
from engine.data import ArrayDataset, DataSource


def mixture_modes(
    layout: str, num_modes: int = 8, radius: float = 2.0, grid_size: int = 5, spacing: float = 2.0
) -> torch.Tensor:
    """Mode centres, ``(K, 2)``: ``num_modes`` evenly on a circle, or a centred ``grid_size``² lattice."""
    if layout == "ring":
        angles = torch.arange(num_modes, dtype=torch.float64) * (2 * math.pi / num_modes)
        return (torch.stack([angles.cos(), angles.sin()], 1) * radius).float()
    ticks = (torch.arange(grid_size, dtype=torch.float32) - (grid_size - 1) / 2) * spacing
    gx, gy = torch.meshgrid(ticks, ticks, indexing="ij")
    return torch.stack([gx.flatten(), gy.flatten()], 1)


class GaussianMixture(DataSource):
    """Samples of a mixture of equally weighted 2-D Gaussians with a shared, small standard deviation.

    ``layout=ring``: ``num_modes`` (8) modes evenly spaced on a circle of radius 2;
    ``layout=grid``: a ``grid_size`` x ``grid_size`` (5x5 = 25) lattice with spacing 2,
    centred at the origin (modes at -4, -2, 0, 2, 4). Both use std 0.02, the
    values of the 2-D experiments of VEEGAN (Srivastava et al., 2017) that
    extended the unrolled-GAN ring. Items are ``(point, mode index)``; the facts
    ``modes`` and ``mode_std`` let the GAN task count covered modes and
    high-quality samples (within 3 std of a mode).

    Args:
        layout: ring (modes on a circle) or grid (modes on a square lattice).
        num_modes: number of modes on the ring (layout=ring).
        radius: radius of the ring (layout=ring).
        grid_size: modes per side of the grid (layout=grid).
        spacing: distance between neighbouring grid modes (layout=grid).
        std: standard deviation of each Gaussian.
        num_samples: training samples.
        val_samples: validation samples.
        test_samples: test samples.
        seed: seed of the samples.
    """

    def __init__(
        self,
        layout: Literal["ring", "grid"] = "ring",
        num_modes: Annotated[int, Ge(1)] = 8,
        radius: float = 2.0,
        grid_size: int = 5,
        spacing: float = 2.0,
        std: float = 0.02,
        num_samples: Annotated[int, Ge(1)] = 50000,
        val_samples: Annotated[int, Ge(0)] = 2500,
        test_samples: Annotated[int, Ge(0)] = 2500,
        seed: Annotated[int, Ge(0), Le(4294967295)] = 0,
    ) -> None:
        if layout not in ("ring", "grid"):
            raise ConfigError(f"data.layout must be ring or grid, got {layout!r}")
        if num_modes < 1 or grid_size < 1:
            raise ConfigError("data.num_modes and data.grid_size must be at least 1")
        if std <= 0 or radius <= 0 or spacing <= 0:
            raise ConfigError("data.std, data.radius and data.spacing must be positive")
        if num_samples < 1 or val_samples < 0 or test_samples < 0:
            raise ConfigError("data.num_samples must be positive and val/test_samples not negative")
        self.layout, self.std = layout, float(std)
        self.modes = mixture_modes(layout, num_modes, radius, grid_size, spacing)
        g = torch.Generator().manual_seed(seed)
        self._splits: dict[str, ArrayDataset] = {}
        for split, n in (("train", num_samples), ("val", val_samples), ("test", test_samples)):
            if n == 0:
                continue
            which = torch.randint(len(self.modes), (n,), generator=g)
            x = self.modes[which] + torch.randn(n, 2, generator=g) * self.std
            self._splits[split] = ArrayDataset(x, which)

    @property
    def facts(self) -> dict[str, Any]:
        return {
            "in_features": 2,
            "input_shape": [2],
            "num_classes": len(self.modes),
            "modes": self.modes.tolist(),
            "mode_std": self.std,
            "layout": self.layout,
        }

    def datasets(self) -> dict[str, ArrayDataset]:
        return dict(self._splits)
