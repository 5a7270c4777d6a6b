"""Box-aware augmentation of ``(C, H, W)`` images in [0, 1] and their boxes, seeded per sample and epoch.

Configured like the classification augmentation (``data.augment.KEY=VALUE``, checked torch-free
by `engine_vision.spec.check_detect_augment`, so ``--dry-run`` reports mistakes)::

    engine run vision/shapes-detect data.augment.hflip=true data.augment.scale=[0.8,1.25] data.augment.crop=0.7

Geometric ops (scale jitter, crop) form one zoom-and-shift applied with bilinear
``grid_sample``; the boxes follow, are clipped to the image, and a box keeping less than
``min_visible`` (0.3) of its area, or less than a pixel a side, is dropped with its label.
The uncovered canvas takes the fill colour (the data's mean, i.e. 0 once normalised). Colour
ops (brightness, contrast, saturation) and noise follow. Each sample draws a fixed number of
numbers from its own generator (`engine_vision.augment.SeededEpochs`), so runs are
reproducible and each epoch sees new draws.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
import torch.nn.functional as F

from engine_vision.detection.boxes import box_area
from engine_vision.spec import check_detect_augment

_GREY = torch.tensor([0.299, 0.587, 0.114])


class BoxAugment:
    """A random, box-aware augmentation drawn from a given generator (see the module doc)."""

    def __init__(self, spec: Mapping[str, Any] | None, fill: torch.Tensor | None = None) -> None:
        spec = check_detect_augment(dict(spec or {}))
        self.hflip = bool(spec.get("hflip", False))
        self.vflip = bool(spec.get("vflip", False))
        scale = spec.get("scale")
        if scale is None:
            self.scale = (1.0, 1.0)
        elif isinstance(scale, (int, float)):
            self.scale = (1.0 - float(scale), 1.0 + float(scale))
        else:
            self.scale = (float(scale[0]), float(scale[1]))
        self.crop = float(spec.get("crop", 1.0))
        self.min_visible = float(spec.get("min_visible", 0.3))
        self.brightness = float(spec.get("brightness", 0.0))
        self.contrast = float(spec.get("contrast", 0.0))
        self.saturation = float(spec.get("saturation", 0.0))
        self.noise = float(spec.get("noise", 0.0))
        self.fill = fill if fill is not None else torch.zeros(3)
        self.spec = spec

    @property
    def geometric(self) -> bool:
        return self.scale != (1.0, 1.0) or self.crop < 1.0

    @property
    def active(self) -> bool:
        return bool(
            self.geometric
            or self.hflip
            or self.vflip
            or self.brightness
            or self.contrast
            or self.saturation
            or self.noise
        )

    def __call__(
        self, image: torch.Tensor, boxes: torch.Tensor, labels: torch.Tensor, g: torch.Generator
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """``image`` (C, H, W) in [0, 1], ``boxes`` (n, 4) xyxy pixels, ``labels`` (n,) -> the augmented three."""
        if not self.active:
            return image, boxes, labels
        c, h, w = image.shape
        u = torch.rand(12, generator=g).tolist()  # a fixed number of draws per sample
        if self.geometric:
            s = self.scale[0] + (self.scale[1] - self.scale[0]) * u[0]
            side = self.crop + (1.0 - self.crop) * u[1]  # the crop window's side, a fraction of the image
            zoom = s / side
            # the visible window of the input: width w / zoom, its left edge x0 (inside the image when
            # zooming in, the image somewhere inside the canvas when zooming out)
            x0 = (w - w / zoom) * u[2]
            y0 = (h - h / zoom) * u[3]
            theta = torch.tensor(
                [[[1 / zoom, 0.0, 2 * x0 / w + 1 / zoom - 1], [0.0, 1 / zoom, 2 * y0 / h + 1 / zoom - 1]]],
                dtype=image.dtype,
            )
            grid = F.affine_grid(theta, [1, c, h, w], align_corners=False)
            fill = self.fill.to(image.dtype).reshape(-1, 1, 1)[:c]
            image = F.grid_sample((image - fill)[None], grid, mode="bilinear", align_corners=False)[0] + fill
            if len(boxes):
                shifted = (boxes - torch.tensor([x0, y0, x0, y0], dtype=boxes.dtype)) * zoom
                clipped = torch.stack(
                    [
                        shifted[:, 0].clamp(0, w),
                        shifted[:, 1].clamp(0, h),
                        shifted[:, 2].clamp(0, w),
                        shifted[:, 3].clamp(0, h),
                    ],
                    1,
                )
                kept = box_area(clipped) >= self.min_visible * box_area(shifted).clamp_min(1e-6)
                kept &= ((clipped[:, 2:] - clipped[:, :2]) >= 1.0).all(1)
                boxes, labels = clipped[kept], labels[kept]
        if self.hflip and u[4] < 0.5:
            image = image.flip(-1)
            boxes = torch.stack([w - boxes[:, 2], boxes[:, 1], w - boxes[:, 0], boxes[:, 3]], 1)
        if self.vflip and u[5] < 0.5:
            image = image.flip(-2)
            boxes = torch.stack([boxes[:, 0], h - boxes[:, 3], boxes[:, 2], h - boxes[:, 1]], 1)
        if self.brightness:
            image = image * (1 + (2 * u[6] - 1) * self.brightness)
        if self.contrast:
            mean = image.mean()
            image = (image - mean) * (1 + (2 * u[7] - 1) * self.contrast) + mean
        if self.saturation and c == 3:
            grey = (image * _GREY.to(image.dtype).view(3, 1, 1)).sum(0, keepdim=True)
            image = grey + (image - grey) * (1 + (2 * u[8] - 1) * self.saturation)
        if self.noise:
            image = image + self.noise * torch.randn(image.shape, generator=g)
        return image.clamp(0, 1), boxes, labels
