"""``vision.coco``: COCO-format JSON annotations (``images``, ``annotations``, ``categories``) and an image folder.

What cannot be trained on ends the run with one line (exit 2): an unreadable or malformed
file, an empty category list, an annotation naming an image id or category id the file does
not have, a missing image. Boxes that are individually wrong are dropped (or clipped) and
counted in one warning line (``strict=true`` makes them errors too): a non-positive width or
height, a box entirely outside its image (one partly outside is clipped to it). Crowd
annotations (``iscrowd: 1``) are left out, as COCO's evaluation ignores them.
"""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import Annotated, Any

import torch
from annotated_types import Ge, Le, Lt

from engine import ConfigError
from engine_vision.detection.data import DetectionSource, Item, image_file_size, image_size_param, warn


class BoxCheck:
    """Checks boxes against their image: keeps, clips or drops each, counting why (one warning at the end)."""

    def __init__(self, where: str, strict: bool) -> None:
        self.where, self.strict = where, strict
        self.total = 0
        self.dropped: Counter[str] = Counter()
        self.clipped = 0

    def __call__(self, box: list[float], width: int, height: int, what: str) -> list[float] | None:
        """``[x1, y1, x2, y2]`` clipped to the image, or None when the box is dropped."""
        self.total += 1
        x1, y1, x2, y2 = box
        why = None
        if not x2 > x1 or not y2 > y1:
            why = "with non-positive size"
        elif x2 <= 0 or y2 <= 0 or x1 >= width or y1 >= height:
            why = "outside the image"
        if why is not None:
            if self.strict:
                raise ConfigError(
                    f"{self.where}: {what} has a box {_fmt(box)} {why} (image {width}x{height})",
                    hint="fix the annotation, or set data.strict=false to drop such boxes with a warning",
                )
            self.dropped[why] += 1
            return None
        clipped = [max(0.0, x1), max(0.0, y1), min(float(width), x2), min(float(height), y2)]
        if clipped != [x1, y1, x2, y2]:
            if self.strict:
                raise ConfigError(
                    f"{self.where}: {what} has a box {_fmt(box)} extending beyond its image ({width}x{height})",
                    hint="fix the annotation, or set data.strict=false to clip such boxes with a warning",
                )
            self.clipped += 1
        return clipped

    def report(self) -> None:
        dropped = sum(self.dropped.values())
        if dropped or self.clipped:
            parts = [f"{n} {why}" for why, n in sorted(self.dropped.items())]
            text = f"dropped {dropped} of {self.total} boxes ({', '.join(parts)})" if dropped else ""
            if self.clipped:
                text += ("; " if text else "") + f"clipped {self.clipped} to their image"
            warn(f"{self.where}: {text}")


def _fmt(box: list[float]) -> str:
    return "[" + ", ".join(f"{v:g}" for v in box) + "]"


def _load_json(path: Path) -> dict[str, Any]:
    if not path.is_file():
        raise ConfigError(f"annotation file not found: {path}")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (ValueError, UnicodeDecodeError) as exc:
        raise ConfigError(f"cannot read annotations {path}: {exc}") from None
    if not isinstance(data, dict) or not isinstance(data.get("images"), list):
        raise ConfigError(f"{path} is not COCO-format annotations (no 'images' list)")
    return data


def read_coco(
    path: Path, images: Path, size: tuple[int, int], strict: bool, categories: list[dict[str, Any]] | None = None
) -> tuple[list[dict[str, Any]], list[Item]]:
    """The categories (sorted by id) and one `Item` per image of COCO file ``path``.

    ``categories``: those of the training file, which every other split must use.
    """
    data = _load_json(path)
    cats = data.get("categories")
    if not isinstance(cats, list) or not cats:
        raise ConfigError(f"{path}: the category list is empty", hint="COCO files list their classes in 'categories'")
    try:
        cats = sorted(({"id": int(c["id"]), "name": str(c.get("name", c["id"]))} for c in cats), key=lambda c: c["id"])
    except (KeyError, TypeError, ValueError):
        raise ConfigError(f"{path}: every category needs an integer 'id' (and a 'name')") from None
    if categories is not None and [c["id"] for c in cats] != [c["id"] for c in categories]:
        raise ConfigError(f"{path}: its categories differ from the training annotations'")
    label_of = {c["id"]: i for i, c in enumerate(cats)}
    info: dict[int, dict[str, Any]] = {}
    for entry in data["images"]:
        if not isinstance(entry, dict) or "id" not in entry or "file_name" not in entry:
            raise ConfigError(f"{path}: every image needs an 'id' and a 'file_name', got {str(entry)[:80]}")
        if entry["id"] in info:
            raise ConfigError(f"{path}: image id {entry['id']} appears twice in 'images'")
        file = images / str(entry["file_name"])
        if not file.is_file():
            raise ConfigError(
                f"image file not found: {file} (image id {entry['id']} of {path})",
                hint="set data.images (data.val_images …) to the folder holding the files",
            )
        height, width = image_file_size(file)
        declared = (entry.get("height"), entry.get("width"))
        if None not in declared and (int(declared[0]), int(declared[1])) != (height, width):  # type: ignore[arg-type]
            raise ConfigError(
                f"{path}: image id {entry['id']} is declared {declared[1]}x{declared[0]} but {file} is {width}x{height}"
            )
        info[entry["id"]] = {"file": file, "height": height, "width": width, "boxes": [], "labels": []}
    check = BoxCheck(str(path), strict)
    crowd = 0
    for ann in data.get("annotations") or []:
        what = f"annotation {ann.get('id', '?')}" if isinstance(ann, dict) else "an annotation"
        if not isinstance(ann, dict) or "image_id" not in ann or "bbox" not in ann or "category_id" not in ann:
            raise ConfigError(f"{path}: {what} needs 'image_id', 'category_id' and 'bbox'")
        image = info.get(ann["image_id"])
        if image is None:
            raise ConfigError(
                f"{path}: {what} refers to image id {ann['image_id']}, which is not in 'images'",
                hint="every annotation's image_id must be the id of an entry of 'images'",
            )
        if ann["category_id"] not in label_of:
            raise ConfigError(f"{path}: {what} has category id {ann['category_id']}, which is not in 'categories'")
        if ann.get("iscrowd", 0):
            crowd += 1
            continue
        bbox = ann["bbox"]
        if not isinstance(bbox, list) or len(bbox) != 4 or not all(isinstance(v, (int, float)) for v in bbox):
            raise ConfigError(f"{path}: {what} has bbox {str(bbox)[:60]}; expected [x, y, width, height]")
        x, y, w, h = (float(v) for v in bbox)
        box = check([x, y, x + w, y + h], image["width"], image["height"], what)
        if box is not None:
            sx, sy = size[1] / image["width"], size[0] / image["height"]
            image["boxes"].append([box[0] * sx, box[1] * sy, box[2] * sx, box[3] * sy])
            image["labels"].append(label_of[ann["category_id"]])
    check.report()
    if crowd:
        warn(f"{path}: left out {crowd} crowd annotation(s) (iscrowd: 1)")
    items = [
        Item(
            str(v["file"]),
            torch.tensor(v["boxes"], dtype=torch.float32).reshape(-1, 4),
            torch.tensor(v["labels"], dtype=torch.long),
        )
        for v in info.values()
    ]
    return cats, items


class Coco(DetectionSource):
    """COCO-format detection data: a JSON file of ``images``, ``annotations`` and ``categories``, and images.

    Boxes are COCO's ``[x, y, width, height]`` in pixels; category ids may be any integers
    (labels are their order by id; class names the categories' names). Images are resized
    to ``image_size`` (boxes with them) and kept in memory once read. Without ``val_annotations`` /
    ``test_annotations`` those splits are carved out of the training file by the fractions (seeded).

    Args:
        annotations: the training annotations (COCO JSON).
        images: folder of the training images (file_name is relative to it); default: the JSON's folder.
        val_annotations: validation annotations (COCO JSON), instead of a fraction of the training file.
        val_images: folder of the validation images (default: the folder of images).
        test_annotations: test annotations (COCO JSON), instead of a fraction of the training file.
        test_images: folder of the test images (default: the folder of images).
        image_size: resize every image to [height, width] (or one int for square).
        mean: per-channel mean to normalise with, on the [0, 1] scale (default ImageNet's).
        std: per-channel standard deviation to normalise with (default ImageNet's).
        val_fraction: fraction of the training images held out for validation (without val_annotations).
        test_fraction: fraction of the training images held out for the test (without test_annotations).
        strict: refuse boxes with a non-positive size or outside their image instead of dropping them.
        cache: keep the decoded, resized images in memory once read.
        seed: seed of the split and of the augmentation.
        augment: box-aware augmentation of the training split, e.g. {hflip: true, scale: [0.8, 1.2]};
            keys hflip, vflip, scale, crop, min_visible, brightness, contrast, saturation, noise.
    """

    name = "vision.coco"

    def __init__(
        self,
        annotations: str,
        images: str | None = None,
        val_annotations: str | None = None,
        val_images: str | None = None,
        test_annotations: str | None = None,
        test_images: str | None = None,
        image_size: int | list[int] = 256,
        mean: list[float] | None = None,
        std: list[float] | None = None,
        val_fraction: Annotated[float, Ge(0), Lt(1)] = 0.1,
        test_fraction: Annotated[float, Ge(0), Lt(1)] = 0.2,
        strict: bool = False,
        cache: bool = True,
        seed: Annotated[int, Ge(0), Le(4294967295)] = 0,
        augment: dict[str, float | bool | list[float]] | None = None,
    ) -> None:
        self.size = image_size_param(image_size)
        train_file = Path(annotations).expanduser()
        folder = Path(images).expanduser() if images else train_file.parent
        cats, self.items = read_coco(train_file, folder, self.size, strict)
        self.class_names = [c["name"] for c in cats]
        train = list(range(len(self.items)))
        fixed: dict[str, list[int]] = {}
        for split, file, where in (("val", val_annotations, val_images), ("test", test_annotations, test_images)):
            if file:
                _, items = read_coco(
                    Path(file).expanduser(), Path(where).expanduser() if where else folder, self.size, strict, cats
                )
                fixed[split] = list(range(len(self.items), len(self.items) + len(items)))
                self.items += items
        self.split(fixed, train, val_fraction, test_fraction, seed)
        self._finish(mean, std, augment, cache, seed)
