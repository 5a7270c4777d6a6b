"""What the detection sources share: items, splits, decoding, augmentation, batching, files for ``engine predict``.

A source holds one `Item` per image (where its pixels come from, its boxes and labels
in the pixels of the model's input, ``image_size``) and yields ``(image, target)`` samples: the
image ``(3, H, W)`` normalised with ``mean``/``std``, the target ``{"boxes": (n, 4) xyxy,
"labels": (n,)}``. Images are resized to ``image_size`` (boxes scaled with them), decoded when
first used and kept in memory (``cache``). `collate` stacks the images and keeps the
targets a list (``collate_fn``). For ``engine predict``, `DetectionSource.load_input` reads
an image file as training did, `DetectionSource.outputs_for_file` maps a record's boxes
to that file's pixels and `DetectionSource.draw_outputs` draws them on it.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset

from engine import ConfigError, EngineError
from engine.data import DataSource, split_indices
from engine_vision.augment import SeededEpochs
from engine_vision.data import _open
from engine_vision.detection.augment import BoxAugment

IMAGENET_MEAN = [0.485, 0.456, 0.406]
IMAGENET_STD = [0.229, 0.224, 0.225]
PALETTE = [(230, 25, 75), (60, 180, 75), (255, 225, 25), (0, 130, 200), (245, 130, 48), (145, 30, 180)]
PALETTE += [(70, 240, 240), (240, 50, 230), (210, 245, 60), (250, 190, 212), (0, 128, 128), (220, 190, 255)]


@dataclass
class Item:
    """One image: its file (or an index for generated ones), boxes in model-input pixels, labels."""

    source: str | int
    boxes: torch.Tensor  # (n, 4) float32, xyxy in pixels of the resized image
    labels: torch.Tensor  # (n,) int64


def warn(message: str) -> None:
    """One warning line on stderr (dropped or clipped boxes: the data is still usable)."""
    print(f"warning: {message}", file=sys.stderr)


def image_size_param(image_size: int | Sequence[int]) -> tuple[int, int]:
    hw = [image_size, image_size] if isinstance(image_size, int) else list(image_size)
    if len(hw) != 2 or any(not isinstance(s, int) or s < 8 for s in hw):
        raise ConfigError(f"data.image_size must be a size >= 8 or [height, width], got {image_size}")
    return int(hw[0]), int(hw[1])


def read_rgb(file: Path, size: tuple[int, int]) -> torch.Tensor:
    """An image file as uint8 ``(3, H, W)`` resized (bilinear) to ``size``; ConfigError when unreadable."""
    from PIL import Image

    img = _open(file).convert("RGB")
    if (img.height, img.width) != size:
        img = img.resize((size[1], size[0]), Image.Resampling.BILINEAR)
    return torch.from_numpy(np.asarray(img, dtype=np.uint8).copy()).permute(2, 0, 1)


def image_file_size(file: Path) -> tuple[int, int]:
    """``(height, width)`` of an image file, read from its header; ConfigError when it is not an image."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(file) as img:
            return img.height, img.width
    except (UnidentifiedImageError, OSError, ValueError) as exc:
        raise ConfigError(f"cannot read image {file}: {exc}", hint="remove or replace the file") from None


def collate(batch: list[tuple[torch.Tensor, dict[str, torch.Tensor]]]) -> tuple[torch.Tensor, list[dict[str, Any]]]:
    """Images stacked into ``(N, 3, H, W)``; targets kept as a list (a different number of boxes each)."""
    return torch.stack([image for image, _ in batch]), [target for _, target in batch]


class DetectionDataset(SeededEpochs, Dataset):
    """The samples of one split: ``(normalised image, {"boxes", "labels"})``, augmented when given one."""

    def __init__(self, source: DetectionSource, indices: Sequence[int], augment: BoxAugment | None, seed: int) -> None:
        self.source, self.indices, self.augment = source, [int(i) for i in indices], augment
        self._init_epochs(seed)

    def __len__(self) -> int:
        return len(self.indices)

    def __getitem__(self, k: int) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        i = self.indices[k]
        image = self.source.pixels(i).float() / 255.0  # first: a generated item knows its boxes once drawn
        item = self.source.items[i]
        boxes, labels = item.boxes.clone(), item.labels.clone()
        if self.augment is not None and self.augment.active:
            image, boxes, labels = self.augment(image, boxes, labels, self.generator(k))
        return self.source.normalise(image), {"boxes": boxes.reshape(-1, 4), "labels": labels}


class DetectionSource(DataSource):
    """Base of the detection sources: facts, splits, decoding with a cache, augmentation, predict support.

    Subclasses set ``class_names``, ``items``, ``size`` (H, W), ``index`` (split -> item indices)
    and implement `decode` (item index -> uint8 ``(3, H, W)``), then call `_finish`.
    """

    class_names: list[str]
    items: list[Item]
    size: tuple[int, int]
    index: dict[str, torch.Tensor]
    seed: int
    name = "detection"

    collate_fn: Callable[[list[Any]], Any] | None = staticmethod(collate)  # type: ignore[assignment]

    def _finish(
        self,
        mean: Sequence[float] | None,
        std: Sequence[float] | None,
        augment: dict[str, Any] | None,
        cache: bool,
        seed: int,
    ) -> None:
        if not self.class_names:
            raise ConfigError(f"{self.name}: the category list is empty", hint="the annotations must name classes")
        mean_, std_ = list(mean or IMAGENET_MEAN), list(std or IMAGENET_STD)
        if len(mean_) == 1:
            mean_ *= 3
        if len(std_) == 1:
            std_ *= 3
        if len(mean_) != 3 or len(std_) != 3 or any(s <= 0 for s in std_):
            raise ConfigError(f"data.mean and data.std need 1 or 3 values (std > 0), got {mean_} and {std_}")
        self.mean = torch.tensor(mean_, dtype=torch.float32)
        self.std = torch.tensor(std_, dtype=torch.float32)
        self.augment = BoxAugment(augment, fill=self.mean)
        self.cache = cache
        self.seed = seed
        self._pixels: dict[int, torch.Tensor] = {}

    def split(
        self, fixed: dict[str, list[int]], train: list[int], val_fraction: float, test_fraction: float, seed: int
    ) -> None:
        """``index`` from the splits given as their own files (``fixed``) and fractions of ``train`` for the rest."""
        vf = 0.0 if "val" in fixed else val_fraction
        tf = 0.0 if "test" in fixed else test_fraction
        inner = split_indices(len(train), vf, tf, seed)
        base = torch.tensor(train, dtype=torch.long)
        self.index = {s: base[i] for s, i in inner.items()}
        for s, items in fixed.items():
            self.index[s] = torch.tensor(items, dtype=torch.long)
        if "train" not in self.index or not len(self.index["train"]):
            raise ConfigError(f"{self.name}: no training images", hint="check the annotations and the fractions")

    # ---------------------------------------------------------------- pixels

    def decode(self, i: int) -> torch.Tensor:
        """Item ``i``'s image as uint8 ``(3, H, W)`` at ``size`` (files: read and resized)."""
        return read_rgb(Path(str(self.items[i].source)), self.size)

    def pixels(self, i: int) -> torch.Tensor:
        if not self.cache:
            return self.decode(i)
        found = self._pixels.get(i)
        if found is None:
            found = self._pixels[i] = self.decode(i)
        return found

    def normalise(self, image: torch.Tensor) -> torch.Tensor:
        return (image - self.mean.view(-1, 1, 1)) / self.std.view(-1, 1, 1)

    # ---------------------------------------------------------------- the DataSource protocol

    @property
    def facts(self) -> dict[str, Any]:
        h, w = self.size
        return {
            "problem": "detection",
            "num_classes": len(self.class_names),
            "class_names": list(self.class_names),
            "input_shape": [3, h, w],
            "in_channels": 3,
            "image_size": [h, w],
            "preprocessing": {
                "resize": [h, w],
                "resample": "bilinear",
                "channels": "RGB",
                "channel_order": "CHW",
                "value_range": [0, 255],
                "scale": 1 / 255,
                "mean": self.mean.tolist(),
                "std": self.std.tolist(),
                "boxes": "xyxy, in pixels of the resized image",
            },
        }

    def datasets(self) -> dict[str, Dataset]:
        return {
            split: DetectionDataset(self, idx.tolist(), self.augment if split == "train" else None, self.seed)
            for split, idx in self.index.items()
            if len(idx)
        }

    # ---------------------------------------------------------------- engine predict

    def load_input(self, path: str | os.PathLike[str]) -> torch.Tensor:
        """One image file as the model sees it, ``(3, H, W)``: RGB, resized to ``image_size``, normalised."""
        file = Path(path).expanduser()
        if not file.is_file():
            raise EngineError(f"input file not found: {file}")
        return self.normalise(read_rgb(file, self.size).float() / 255.0)

    def outputs_for_file(self, path: str, record: dict[str, Any]) -> dict[str, Any]:
        """``record`` with its boxes in the pixels of image file ``path`` (they are in ``image_size`` pixels)."""
        h0, w0 = image_file_size(Path(path).expanduser())
        sy, sx = h0 / self.size[0], w0 / self.size[1]
        scale = (sx, sy, sx, sy)
        detections = [
            {**d, "box": [round(v * k, 2) for v, k in zip(d["box"], scale, strict=True)]}
            for d in record.get("detections", [])
        ]
        return {**record, "detections": detections}

    def draw_outputs(self, path: str, record: dict[str, Any], out: str) -> None:
        """Draw ``record``'s boxes (in the file's pixels) with their labels and scores on ``path``; write ``out``.

        An image smaller than 256 px a side is enlarged by a whole factor first (nearest
        neighbour), so that labels stay readable on the 64 px images of the shapes recipe.
        """
        from PIL import Image, ImageDraw

        img = _open(Path(path).expanduser()).convert("RGB")
        k = max(1, -(-256 // max(1, min(img.size))))
        if k > 1:
            img = img.resize((img.width * k, img.height * k), Image.Resampling.NEAREST)
        draw = ImageDraw.Draw(img)
        line = max(1, round(min(img.size) / 200))
        for d in record.get("detections", []):
            colour = PALETTE[int(d.get("index", 0)) % len(PALETTE)]
            x1, y1, x2, y2 = (v * k for v in d["box"])
            draw.rectangle([x1, y1, x2, y2], outline=colour, width=line)
            text = f"{d['label']} {d['score']:.2f}"
            left, top, right, bottom = draw.textbbox((x1, y1), text)
            ty = y1 - (bottom - top) - 2 if y1 - (bottom - top) - 2 >= 0 else y1
            draw.rectangle([x1, ty, x1 + (right - left) + 2, ty + (bottom - top) + 2], fill=colour)
            draw.text((x1 + 1, ty), text, fill=(0, 0, 0))
        target = Path(out).expanduser()
        target.parent.mkdir(parents=True, exist_ok=True)
        try:
            img.save(target)
        except (OSError, ValueError, KeyError) as exc:
            raise EngineError(f"cannot write {target}: {exc}", hint="use a .png or .jpg file name") from None
