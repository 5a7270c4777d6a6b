"""``vision.shapes_detect``: generated images of several coloured shapes on cluttered backgrounds, and boxes.

Image ``i`` of seed ``s`` is drawn from its own generator (``numpy.random.default_rng([s, i])``):
a background of a random colour with a gradient and pixel noise, clutter (thin lines of any
colour, small dots, faint blotches of nearly the background's colour), then ``min_objects`` to
``max_objects`` filled shapes (circle, square, triangle, cross, diamond) of random colour
(standing out from the background) and size that do not overlap. A box is the exact extent of
its shape's pixels. Images are generated when first used and kept;
the train/val/test split is a seeded permutation of the image indices, so ``seed`` changes
images and split together.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import numpy as np
import torch
from annotated_types import Ge, Le, Lt

from engine import ConfigError
from engine_vision.detection.data import DetectionSource, Item

SHAPES = ("circle", "square", "triangle", "cross", "diamond")


def _outline(shape: str, cx: float, cy: float, r: float) -> list[tuple[float, float]] | None:
    if shape == "triangle":
        return [(cx, cy - r), (cx - r, cy + r), (cx + r, cy + r)]
    if shape == "diamond":
        return [(cx, cy - r), (cx + r, cy), (cx, cy + r), (cx - r, cy)]
    return None


def render(
    seed: int,
    index: int,
    size: int = 64,
    classes: int = 4,
    objects: tuple[int, int] = (1, 5),
    sizes: tuple[float, float] = (0.16, 0.4),
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Image ``index`` of ``seed``: uint8 ``(size, size, 3)``, boxes ``(n, 4)`` xyxy pixels, labels ``(n,)``."""
    from PIL import Image, ImageDraw

    rng = np.random.default_rng([seed, index])
    base = rng.integers(0, 120, size=3).astype(np.float32)
    tilt = rng.uniform(-40, 40, size=(2, 3)).astype(np.float32)
    ramp = np.linspace(-0.5, 0.5, size, dtype=np.float32)
    pixels = base + ramp[None, :, None] * tilt[0] + ramp[:, None, None] * tilt[1]
    pixels = pixels + rng.normal(0, 8, size=(size, size, 3))
    img = Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8), "RGB")
    draw = ImageDraw.Draw(img)
    for _ in range(int(rng.integers(2, 6))):  # faint blotches, close to the background colour
        colour = tuple(int(v) for v in np.clip(base + np.clip(rng.normal(0, 12, 3), -25, 25), 0, 255))
        x, y = rng.uniform(0, size, 2)
        rx, ry = rng.uniform(0.05, 0.2, 2) * size
        draw.ellipse([x - rx, y - ry, x + rx, y + ry], fill=colour)
    for _ in range(int(rng.integers(3, 9))):  # thin lines of any colour
        colour = tuple(int(v) for v in rng.integers(0, 256, 3))
        draw.line([tuple(rng.uniform(0, size, 2)), tuple(rng.uniform(0, size, 2))], fill=colour, width=1)
    for _ in range(int(rng.integers(2, 8))):  # small dots
        colour = tuple(int(v) for v in rng.integers(0, 256, 3))
        x, y = rng.uniform(0, size, 2)
        r = rng.uniform(0.5, 1.5)
        draw.ellipse([x - r, y - r, x + r, y + r], fill=colour)
    boxes: list[list[float]] = []
    labels: list[int] = []
    taken: list[tuple[float, float, float, float]] = []
    for _ in range(int(rng.integers(objects[0], objects[1] + 1))):
        label = int(rng.integers(0, classes))
        for _attempt in range(30):  # a place that overlaps no earlier shape (2 px apart)
            r = rng.uniform(*sizes) * size / 2
            cx, cy = rng.uniform(r, size - r, 2)
            if all(cx + r + 2 < a or cx - r - 2 > c or cy + r + 2 < b or cy - r - 2 > d for a, b, c, d in taken):
                break
        else:
            continue
        taken.append((cx - r, cy - r, cx + r, cy + r))
        colour = tuple(int(v) for v in rng.integers(0, 256, 3))
        while np.abs(np.asarray(colour) - base).max() < 70:  # stands out from the background (blotches do not)
            colour = tuple(int(v) for v in rng.integers(0, 256, 3))
        mask = Image.new("L", (size, size), 0)
        pen = ImageDraw.Draw(mask)
        shape = SHAPES[label]
        if shape == "circle":
            pen.ellipse([cx - r, cy - r, cx + r, cy + r], fill=255)
        elif shape == "square":
            pen.rectangle([cx - r, cy - r, cx + r, cy + r], fill=255)
        elif shape == "cross":
            t = max(1.0, r / 3)
            pen.rectangle([cx - r, cy - t, cx + r, cy + t], fill=255)
            pen.rectangle([cx - t, cy - r, cx + t, cy + r], fill=255)
        else:
            pen.polygon(_outline(shape, cx, cy, r), fill=255)
        m = np.asarray(mask) > 0
        ys, xs = np.nonzero(m)
        if len(xs) == 0:
            continue
        img.paste(Image.new("RGB", (size, size), colour), (0, 0), mask)
        boxes.append([float(xs.min()), float(ys.min()), float(xs.max() + 1), float(ys.max() + 1)])
        labels.append(label)
    return np.asarray(img), np.asarray(boxes, dtype=np.float32).reshape(-1, 4), np.asarray(labels, dtype=np.int64)


class ShapesDetect(DetectionSource):
    """Generated detection data: several coloured shapes per image on cluttered backgrounds, with boxes.

    Args:
        num_images: images in all splits together.
        image_size: side of the square images in pixels.
        classes: how many of the shapes circle, square, triangle, cross, diamond (in that order).
        min_objects: fewest shapes in an image.
        max_objects: most shapes in an image (fewer when they do not fit without overlapping).
        min_size: smallest shape, as a fraction of the image side.
        max_size: largest shape, as a fraction of the image side.
        val_fraction: fraction of the images for validation.
        test_fraction: fraction of the images for the held-out test.
        seed: seed of the images, the split and the augmentation (recipes set it to the run's seed).
        augment: box-aware augmentation of the training split, e.g. {hflip: true, scale: [0.8, 1.2]};
            keys hflip, vflip, scale, crop, min_visible, brightness, contrast, saturation, noise.
    """

    name = "vision.shapes_detect"

    def __init__(
        self,
        num_images: Annotated[int, Ge(3)] = 3000,
        image_size: Annotated[int, Ge(16)] = 64,
        classes: Annotated[int, Ge(1), Le(5)] = 4,
        min_objects: Annotated[int, Ge(0)] = 1,
        max_objects: Annotated[int, Ge(1)] = 5,
        min_size: float = 0.16,
        max_size: float = 0.4,
        val_fraction: Annotated[float, Ge(0), Lt(1)] = 0.1,
        test_fraction: Annotated[float, Ge(0), Lt(1)] = 0.2,
        seed: Annotated[int, Ge(0), Le(4294967295)] = 0,
        augment: dict[str, float | bool | list[float]] | None = None,
    ) -> None:
        if not 1 <= classes <= len(SHAPES):
            raise ConfigError(f"data.classes must be between 1 and {len(SHAPES)}, got {classes}")
        if min_objects > max_objects:
            raise ConfigError(f"data.min_objects ({min_objects}) is above data.max_objects ({max_objects})")
        if not 0 < min_size <= max_size < 1:
            raise ConfigError(f"need 0 < data.min_size <= data.max_size < 1, got {min_size} and {max_size}")
        self.size = (image_size, image_size)
        self.class_names = list(SHAPES[:classes])
        self.options: dict[str, Any] = {
            "size": image_size,
            "classes": classes,
            "objects": (min_objects, max_objects),
            "sizes": (min_size, max_size),
        }
        self.data_seed = seed
        self.items = [Item(i, torch.zeros(0, 4), torch.zeros(0, dtype=torch.long)) for i in range(num_images)]
        self.split({}, list(range(num_images)), val_fraction, test_fraction, seed)
        self._finish(None, None, augment, True, seed)

    def decode(self, i: int) -> torch.Tensor:
        """Render image ``i``; its item's boxes and labels are known from then on (the dataset reads them after)."""
        pixels, boxes, labels = render(self.data_seed, i, **self.options)
        self.items[i] = Item(i, torch.from_numpy(boxes), torch.from_numpy(labels))
        return torch.from_numpy(pixels.copy()).permute(2, 0, 1)


def write_detection_set(root: Path, count: int, size: int, classes: int, seed: int) -> dict[str, Any]:
    """Write ``root/images/<i>.png`` and ``root/annotations.json`` (COCO) of generated shapes; return the JSON."""
    from PIL import Image

    (root / "images").mkdir(parents=True, exist_ok=True)
    coco: dict[str, Any] = {
        "images": [],
        "annotations": [],
        "categories": [{"id": i + 1, "name": n} for i, n in enumerate(SHAPES[:classes])],
    }
    for i in range(count):
        pixels, boxes, labels = render(seed, i, size, classes)
        name = f"images/{i:04d}.png"  # relative to the JSON's folder, vision.coco's default data.images
        Image.fromarray(pixels, "RGB").save(root / name)
        coco["images"].append({"id": i + 1, "file_name": name, "width": size, "height": size})
        for box, label in zip(boxes.tolist(), labels.tolist(), strict=True):
            x1, y1, x2, y2 = box
            coco["annotations"].append(
                {
                    "id": len(coco["annotations"]) + 1,
                    "image_id": i + 1,
                    "category_id": label + 1,
                    "bbox": [x1, y1, x2 - x1, y2 - y1],
                    "area": (x2 - x1) * (y2 - y1),
                    "iscrowd": 0,
                }
            )
    (root / "annotations.json").write_text(json.dumps(coco, indent=1) + "\n", encoding="utf-8")
    return coco
