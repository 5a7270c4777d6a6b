"""Augmentation on image tensors ``(C, H, W)``, seeded per sample and epoch.

Configured from the data section as a mapping::

    engine run vision/digits data.augment.rotate=10 data.augment.shift=0.1 data.augment.scale=[0.9,1.1]

Keys (all optional; an empty mapping or ``None`` means no augmentation):

==========  ==========================  =====================================================
key         value                       effect
==========  ==========================  =====================================================
rotate      degrees ``d``               rotate by a uniform angle in ``[-d, d]``
shift       fraction ``f``              translate by up to ``f`` of the width/height
scale       ``[lo, hi]`` or ``s``       zoom by a factor in ``[lo, hi]`` (``s``: ``[1-s, 1+s]``)
shear       degrees ``d``               shear by a uniform angle in ``[-d, d]``
hflip       bool                        mirror left-right with probability 1/2
vflip       bool                        mirror top-bottom with probability 1/2
noise       std ``s``                   add Gaussian noise of std ``s`` (in normalised units)
erase       fraction ``f``              blank a random square of side up to ``f`` of the image
==========  ==========================  =====================================================

The geometric ops are composed into one affine map applied with bilinear
``grid_sample``; the background is filled with the value of a blank pixel
(``fill``, set by the data source: 0 in raw units, normalised).

Augmentation is applied to the training split only. Each sample's random draw
comes from a generator seeded with ``(seed, epoch, index)``: a run is
reproducible, resumes onto the same augmentations, and each epoch sees new
ones. The epoch is kept in shared memory so DataLoader workers see it.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import torch
import torch.nn.functional as F
from torch.utils.data import Dataset

from engine_vision.spec import AUGMENT_KEYS, check_augment


class Augment:
    """A random augmentation of one ``(C, H, W)`` tensor, drawn from a given generator."""

    def __init__(self, spec: Mapping[str, Any] | None, fill: torch.Tensor | float = 0.0) -> None:
        spec = check_augment(dict(spec or {}), where="data.augment")
        self.rotate = float(spec.get("rotate", 0.0))
        self.shift = float(spec.get("shift", 0.0))
        scale = spec.get("scale", None)
        if scale is None:
            self.scale = (1.0, 1.0)
        elif isinstance(scale, (int, float)):
            self.scale = (1.0 - float(scale), 1.0 + float(scale))
        else:
            self.scale = (float(scale[0]), float(scale[1]))
        self.shear = float(spec.get("shear", 0.0))
        self.hflip = bool(spec.get("hflip", False))
        self.vflip = bool(spec.get("vflip", False))
        self.noise = float(spec.get("noise", 0.0))
        self.erase = float(spec.get("erase", 0.0))
        self.fill = torch.as_tensor(fill, dtype=torch.float32)
        self.spec = spec

    @property
    def active(self) -> bool:
        return bool(
            self.rotate
            or self.shift
            or self.scale != (1.0, 1.0)
            or self.shear
            or self.hflip
            or self.vflip
            or self.noise
            or self.erase
        )

    @property
    def geometric(self) -> bool:
        return bool(self.rotate or self.shift or self.scale != (1.0, 1.0) or self.shear)

    def __call__(self, x: torch.Tensor, g: torch.Generator) -> torch.Tensor:
        if not self.active:
            return x
        c, h, w = x.shape
        u = torch.rand(10, generator=g).tolist()  # a fixed number of draws per sample
        fill = self.fill.reshape(-1, 1, 1) if self.fill.dim() else self.fill
        if self.geometric:
            angle = math.radians((2 * u[0] - 1) * self.rotate)
            shear = math.radians((2 * u[1] - 1) * self.shear)
            s = self.scale[0] + (self.scale[1] - self.scale[0]) * u[2]
            tx, ty = (2 * u[3] - 1) * self.shift * 2, (2 * u[4] - 1) * self.shift * 2  # grid units span 2
            # Forward map A = s * R(angle) @ Shear; sample the input at A^-1 (p - t) for each output p.
            cos, sin, k = math.cos(angle), math.sin(angle), math.tan(shear)
            a11, a12, a21, a22 = s * cos, s * (cos * k - sin), s * sin, s * (sin * k + cos)
            det = a11 * a22 - a12 * a21
            i11, i12, i21, i22 = a22 / det, -a12 / det, -a21 / det, a11 / det
            theta = torch.tensor(
                [[[i11, i12, -(i11 * tx + i12 * ty)], [i21, i22, -(i21 * tx + i22 * ty)]]], dtype=torch.float32
            )
            grid = F.affine_grid(theta, [1, c, h, w], align_corners=False)
            # Sample (x - fill) so the area outside the image takes the blank value.
            x = F.grid_sample((x - fill)[None], grid, mode="bilinear", padding_mode="zeros", align_corners=False)[0]
            x = x + fill
        if self.hflip and u[5] < 0.5:
            x = x.flip(-1)
        if self.vflip and u[6] < 0.5:
            x = x.flip(-2)
        if self.erase:
            side_h = max(1, round(h * self.erase * u[7]))
            side_w = max(1, round(w * self.erase * u[7]))
            top = min(int(u[8] * (h - side_h + 1)), h - side_h)
            left = min(int(u[9] * (w - side_w + 1)), w - side_w)
            x = x.clone()
            x[:, top : top + side_h, left : left + side_w] = (
                fill if not torch.is_tensor(fill) else fill.expand(c, side_h, side_w)
            )
        if self.noise:
            x = x + self.noise * torch.randn(x.shape, generator=g)
        return x


class SeededEpochs:
    """A dataset drawing each sample's augmentation from a generator seeded by ``(seed, epoch, index)``.

    The epoch lives in a shared-memory tensor, set by `AugmentEpoch` (a
    Lightning callback the plugin adds to every run) at the start of each
    training epoch, so worker processes see it too.
    """

    seed: int

    def _init_epochs(self, seed: int) -> None:
        self.seed = seed
        self._epoch = torch.zeros(1, dtype=torch.long).share_memory_()

    @property
    def epoch(self) -> int:
        return int(self._epoch[0])

    def set_epoch(self, epoch: int) -> None:
        self._epoch[0] = epoch

    def generator(self, index: int) -> torch.Generator:
        key = (self.seed * 1_000_003 + self.epoch) * 10_000_019 + index
        return torch.Generator().manual_seed(key % (2**63 - 1))


class AugmentedDataset(SeededEpochs, Dataset):
    """``(augment(x[i]), y[i])`` with a generator seeded by ``(seed, epoch, i)`` (see `SeededEpochs`)."""

    def __init__(self, x: torch.Tensor, y: torch.Tensor, augment: Augment, seed: int) -> None:
        if len(x) != len(y):
            raise ValueError(f"inputs and targets differ in length: {len(x)} vs {len(y)}")
        self.x, self.y, self.augment = x, y, augment
        self._init_epochs(seed)

    def __len__(self) -> int:
        return len(self.x)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        return self.augment(self.x[index], self.generator(index)), self.y[index]


def make_callback() -> Any:
    """The Lightning callback telling augmented training sets the current epoch."""
    from lightning.pytorch import Callback

    class AugmentEpoch(Callback):
        """Set the epoch on augmented training datasets (for per-epoch, per-sample seeds)."""

        def on_train_epoch_start(self, trainer: Any, pl_module: Any) -> None:
            dm = getattr(trainer, "datamodule", None)
            splits = getattr(dm, "splits", None) if dm is not None else None
            train = splits.get("train") if isinstance(splits, Mapping) else None
            if isinstance(train, SeededEpochs):
                train.set_epoch(trainer.current_epoch)

    return AugmentEpoch()


__all__ = ["AUGMENT_KEYS", "Augment", "AugmentedDataset", "SeededEpochs", "make_callback"]
