from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def shapes_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small folder of generated coloured-shape PNGs: 3 classes x 24 images of 16x16."""
    from engine_vision.shapes import write_shapes

    return write_shapes(tmp_path_factory.mktemp("shapes"), per_class=24, size=16, classes=3, seed=0)


@pytest.fixture(autouse=True, scope="session")
def _threads(one_thread: None) -> None:
    """One intra-op thread (engine.testing's ``one_thread``): oversubscribed threads slow tiny models down 5x."""


@pytest.fixture(scope="session")
def coco_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small COCO-format set the tests write: 24 generated 32x32 images, annotations.json (4 shapes)."""
    from engine_vision.detection.shapes import write_detection_set

    root = tmp_path_factory.mktemp("coco")
    write_detection_set(root, count=24, size=32, classes=4, seed=5)
    return root


@pytest.fixture(scope="session")
def voc_dir(coco_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The same images as a Pascal VOC folder: Annotations/*.xml (1-based corners), JPEGImages/, ImageSets/Main."""
    import json
    import shutil

    root = tmp_path_factory.mktemp("voc")
    coco = json.loads((coco_dir / "annotations.json").read_text())
    names = {c["id"]: c["name"] for c in coco["categories"]}
    shutil.copytree(coco_dir / "images", root / "JPEGImages")
    (root / "Annotations").mkdir()
    for image in coco["images"]:
        objects = ""
        for ann in coco["annotations"]:
            if ann["image_id"] == image["id"]:
                x, y, w, h = ann["bbox"]
                objects += (
                    f"<object><name>{names[ann['category_id']]}</name><difficult>0</difficult><bndbox>"
                    f"<xmin>{x + 1:g}</xmin><ymin>{y + 1:g}</ymin><xmax>{x + w:g}</xmax><ymax>{y + h:g}</ymax>"
                    "</bndbox></object>"
                )
        stem = Path(image["file_name"]).stem
        (root / "Annotations" / f"{stem}.xml").write_text(
            f"<annotation><filename>{Path(image['file_name']).name}</filename><size><width>{image['width']}</width>"
            f"<height>{image['height']}</height><depth>3</depth></size>{objects}</annotation>"
        )
    sets = root / "ImageSets" / "Main"
    sets.mkdir(parents=True)
    stems = [Path(i["file_name"]).stem for i in coco["images"]]
    (sets / "train.txt").write_text("\n".join(stems[:18]) + "\n")
    (sets / "test.txt").write_text("\n".join(stems[18:]) + "\n")
    return root
