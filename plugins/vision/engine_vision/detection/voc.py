"""``vision.voc``: Pascal VOC data: ``Annotations/*.xml`` beside ``JPEGImages/``, optional ``ImageSets/Main`` lists.

VOC coordinates are 1-based pixel indices (``xmin=1`` is the first column); they become
continuous pixel boxes ``[xmin - 1, ymin - 1, xmax, ymax]``. ``difficult`` objects are left out
unless ``keep_difficult``. Mistakes are reported as for ``vision.coco``: one line and exit 2
for an unreadable XML file, a missing image or size, no class at all, an object whose class is
not in ``classes``; a warning counting the boxes dropped or clipped (errors with ``strict``).
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Annotated, Any

import torch
from annotated_types import Ge, Le, Lt

from engine import ConfigError
from engine_vision.detection.coco import BoxCheck
from engine_vision.detection.data import DetectionSource, Item, image_file_size, image_size_param


def _text(node: Any, tag: str, file: Path) -> str:
    found = node.find(tag)
    if found is None or found.text is None or not found.text.strip():
        raise ConfigError(f"{file}: no <{tag}>")
    return found.text.strip()


def _number(node: Any, tag: str, file: Path) -> float:
    text = _text(node, tag, file)
    try:
        return float(text)
    except ValueError:
        raise ConfigError(f"{file}: <{tag}> is {text!r}, not a number") from None


def parse(file: Path, images: Path) -> dict[str, Any]:
    """One VOC annotation file -> ``{"file", "height", "width", "objects": [(name, box, difficult)]}``."""
    try:
        root = ET.parse(file).getroot()
    except (ET.ParseError, OSError) as exc:
        raise ConfigError(f"cannot read VOC annotation {file}: {exc}") from None
    image = images / _text(root, "filename", file)
    if not image.is_file():
        raise ConfigError(f"image file not found: {image} (named by {file})", hint="check data.images")
    height, width = image_file_size(image)
    size = root.find("size")
    if size is not None and size.find("width") is not None and size.find("height") is not None:
        declared = (int(_number(size, "height", file)), int(_number(size, "width", file)))
        if declared != (height, width) and declared != (0, 0):
            raise ConfigError(f"{file}: <size> says {declared[1]}x{declared[0]} but {image} is {width}x{height}")
    objects = []
    for obj in root.iter("object"):
        name = _text(obj, "name", file)
        box = obj.find("bndbox")
        if box is None:
            raise ConfigError(f"{file}: object '{name}' has no <bndbox>")
        coords = [_number(box, t, file) for t in ("xmin", "ymin", "xmax", "ymax")]
        difficult = obj.find("difficult")
        hard = difficult is not None and (difficult.text or "0").strip() == "1"
        objects.append((name, [coords[0] - 1, coords[1] - 1, coords[2], coords[3]], hard))
    return {"file": image, "height": height, "width": width, "objects": objects}


def _ids(file: Path) -> list[str]:
    return [line.split()[0] for line in file.read_text(encoding="utf-8").splitlines() if line.strip()]


class Voc(DetectionSource):
    """Pascal VOC detection data: XML annotations, a folder of images, optional split lists.

    ``root/Annotations/<id>.xml`` name their image (``<filename>``, in ``root/JPEGImages``) and
    objects. With ``root/ImageSets/Main/{train,val,test}.txt`` (one id a line) those lists are the
    splits (a missing val or test list: carved out of train by the fractions); otherwise every
    annotation is split by the fractions (seeded).

    Args:
        root: the VOC folder (Annotations/, JPEGImages/, optionally ImageSets/Main/).
        annotations: folder of the XML files (default: root/Annotations).
        images: folder of the images (default: root/JPEGImages).
        classes: the class names, in label order (default: every name in the annotations, sorted).
        image_size: resize every image to [height, width] (or one int for square).
        keep_difficult: keep objects marked difficult (VOC's evaluation leaves them out).
        mean: per-channel mean to normalise with, on the [0, 1] scale (default ImageNet's).
        std: per-channel standard deviation to normalise with (default ImageNet's).
        val_fraction: fraction held out for validation (without ImageSets/Main/val.txt).
        test_fraction: fraction held out for the test (without ImageSets/Main/test.txt).
        strict: refuse boxes with a non-positive size or outside their image instead of dropping them.
        cache: keep the decoded, resized images in memory once read.
        seed: seed of the split and of the augmentation.
        augment: box-aware augmentation of the training split, e.g. {hflip: true, scale: [0.8, 1.2]};
            keys hflip, vflip, scale, crop, min_visible, brightness, contrast, saturation, noise.
    """

    name = "vision.voc"

    def __init__(
        self,
        root: str,
        annotations: str | None = None,
        images: str | None = None,
        classes: list[str] | None = None,
        image_size: int | list[int] = 256,
        keep_difficult: bool = False,
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
        base = Path(root).expanduser()
        if not base.is_dir():
            raise ConfigError(f"VOC folder not found: {base}", hint="check data.root")
        xml_dir = Path(annotations).expanduser() if annotations else base / "Annotations"
        image_dir = Path(images).expanduser() if images else base / "JPEGImages"
        files = sorted(xml_dir.glob("*.xml")) if xml_dir.is_dir() else []
        if not files:
            raise ConfigError(f"no VOC annotations (*.xml) in {xml_dir}", hint="set data.annotations to their folder")
        parsed = {f.stem: parse(f, image_dir) for f in files}
        names = sorted({name for p in parsed.values() for name, _, _ in p["objects"]})
        if classes is not None:
            unknown = sorted(set(names) - set(classes))
            if unknown:
                raise ConfigError(
                    f"{xml_dir}: objects of class(es) {', '.join(unknown)}, which data.classes does not list",
                    hint="add them to data.classes (or leave it unset: every class found)",
                )
            names = list(classes)
        if not names:
            raise ConfigError(f"{xml_dir}: the category list is empty (no <object> in any annotation)")
        self.class_names = names
        label_of = {n: i for i, n in enumerate(names)}
        check = BoxCheck(str(xml_dir), strict)
        self.items, position = [], {}
        for stem, p in parsed.items():
            boxes, labels = [], []
            for name, box, hard in p["objects"]:
                if hard and not keep_difficult:
                    continue
                kept = check(box, p["width"], p["height"], f"{stem}.xml, object '{name}'")
                if kept is not None:
                    sx, sy = self.size[1] / p["width"], self.size[0] / p["height"]
                    boxes.append([kept[0] * sx, kept[1] * sy, kept[2] * sx, kept[3] * sy])
                    labels.append(label_of[name])
            position[stem] = len(self.items)
            self.items.append(
                Item(
                    str(p["file"]),
                    torch.tensor(boxes, dtype=torch.float32).reshape(-1, 4),
                    torch.tensor(labels, dtype=torch.long),
                )
            )
        check.report()
        sets = base / "ImageSets" / "Main"
        fixed: dict[str, list[int]] = {}
        train = list(range(len(self.items)))
        if (sets / "train.txt").is_file():
            listed = {s: _ids(sets / f"{s}.txt") for s in ("train", "val", "test") if (sets / f"{s}.txt").is_file()}
            for s, ids in listed.items():
                missing = [i for i in ids if i not in position]
                if missing:
                    raise ConfigError(f"{sets / (s + '.txt')}: id {missing[0]} has no annotation in {xml_dir}")
                if s == "train":
                    train = [position[i] for i in ids]
                else:
                    fixed[s] = [position[i] for i in ids]
        self.split(fixed, train, val_fraction, test_fraction, seed)
        self._finish(mean, std, augment, cache, seed)
