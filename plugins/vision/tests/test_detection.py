"""Object detection in the vision plugin: boxes and NMS, targets and losses, mAP, the detector, data, bad input."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import torch

import engine
from engine import ConfigError
from engine.testing import train_run

QUIET = ["trainer.enable_progress_bar=false", "trainer.enable_model_summary=false"]


def train(overrides: list[str], run_dir: Path, recipe: str | None = None) -> dict[str, Any]:
    return train_run(*overrides, root=run_dir, recipe=recipe).summary


def _cli(cli: Any, *args: str) -> tuple[int, str, str]:
    out = cli(*args)
    return out.returncode, out.stdout, out.stderr


# --------------------------------------------------------------------------- boxes and NMS


def test_iou_and_giou() -> None:
    from engine_vision.detection.boxes import aligned_giou, aligned_iou, box_iou

    a = torch.tensor([[0.0, 0, 10, 10]])
    b = torch.tensor([[5.0, 0, 15, 10], [20, 20, 30, 30]])
    assert box_iou(a, b)[0].tolist() == pytest.approx([50 / 150, 0.0])
    assert float(aligned_iou(a[0], b[0])) == pytest.approx(1 / 3)
    # disjoint boxes: GIoU = 0 - (hull - union) / hull, hull 30x30, union 200
    assert float(aligned_giou(a[0], b[1])) == pytest.approx(-(900 - 200) / 900)
    assert float(aligned_giou(a[0], a[0])) == pytest.approx(1.0)


def _greedy(boxes: torch.Tensor, scores: torch.Tensor, threshold: float) -> list[int]:
    from engine_vision.detection.boxes import box_iou

    order = scores.argsort(descending=True, stable=True)
    iou = box_iou(boxes[order], boxes[order])
    suppressed = torch.zeros(len(boxes), dtype=torch.bool)
    keep = []
    for i in range(len(order)):
        if not suppressed[i]:
            keep.append(int(order[i]))
            suppressed |= iou[i] > threshold
    return keep


def test_nms_is_greedy_nms() -> None:
    from engine_vision.detection.boxes import batched_nms, nms

    g = torch.Generator().manual_seed(0)
    for _ in range(50):
        n = int(torch.randint(1, 120, (1,), generator=g))
        xy = torch.rand(n, 2, generator=g) * 40
        boxes = torch.cat([xy, xy + torch.rand(n, 2, generator=g) * 20 + 1], 1)
        scores = torch.rand(n, generator=g)
        expected = _greedy(boxes, scores, 0.5)
        assert nms(boxes, scores, 0.5).tolist() == expected
        assert nms(boxes, scores, 0.5, max_keep=3).tolist() == expected[:3]
    assert nms(torch.zeros(0, 4), torch.zeros(0), 0.5).tolist() == []
    # two identical boxes of different classes both survive; of one class, the better one does
    boxes = torch.tensor([[0.0, 0, 10, 10], [0, 0, 10, 10], [1, 1, 10, 10]])
    scores = torch.tensor([0.9, 0.8, 0.7])
    assert batched_nms(boxes, scores, torch.tensor([0, 1, 0]), 0.5).tolist() == [0, 1]
    assert batched_nms(boxes, scores, torch.tensor([0, 0, 0]), 0.5).tolist() == [0]


# --------------------------------------------------------------------------- mAP


def test_mean_ap_without_torchvision() -> None:
    from engine_vision.detection.metrics import MeanAP

    if importlib.util.find_spec("torchvision") is None:  # else timm's test may have imported a working one
        assert "torchvision" not in sys.modules
    metric = MeanAP(class_metrics=True)
    target = [{"boxes": torch.tensor([[10.0, 10, 30, 30], [40, 40, 60, 60]]), "labels": torch.tensor([0, 1])}]
    perfect = [{"boxes": target[0]["boxes"], "scores": torch.tensor([0.9, 0.8]), "labels": torch.tensor([0, 1])}]
    metric.update(perfect, target)
    result = metric.compute()
    assert float(result["map"]) == pytest.approx(1.0) and float(result["map_50"]) == pytest.approx(1.0)
    assert result["map_50_per_class"].tolist() == pytest.approx([1.0, 1.0])
    # one of two objects found at IoU 0.68 (between 0.5 and 0.75), the other missed
    metric.reset()
    shifted = [
        {"boxes": torch.tensor([[14.0, 10, 34, 30]]), "scores": torch.tensor([0.9]), "labels": torch.tensor([0])}
    ]
    metric.update(shifted, target)
    result = metric.compute()
    assert float(result["map_50"]) == pytest.approx(0.5) and float(result["map_75"]) == pytest.approx(0.0)
    assert result["map_50_per_class"].tolist() == pytest.approx([1.0, 0.0])


def test_mean_ap_backends_agree() -> None:
    pytest.importorskip("pycocotools")
    from engine_vision.detection.metrics import MeanAP

    g = torch.Generator().manual_seed(1)
    preds, targets = [], []
    for _ in range(12):
        xy = torch.rand(6, 2, generator=g) * 50
        boxes = torch.cat([xy, xy + 8 + torch.rand(6, 2, generator=g) * 10], 1)
        targets.append({"boxes": boxes[:3], "labels": torch.randint(3, (3,), generator=g)})
        noisy = boxes + torch.randn(6, 4, generator=g)
        preds.append(
            {"boxes": noisy, "scores": torch.rand(6, generator=g), "labels": torch.randint(3, (6,), generator=g)}
        )
    results = []
    for backend in ("faster_coco_eval", "pycocotools"):
        metric = MeanAP(class_metrics=True, backend=backend)
        metric.update(preds, targets)
        results.append(metric.compute())
    for key in ("map", "map_50", "map_75", "mar_100", "map_per_class", "map_50_per_class"):
        assert torch.allclose(torch.as_tensor(results[0][key]).double(), torch.as_tensor(results[1][key]).double())


# --------------------------------------------------------------------------- targets and losses


def test_fcos_assignment() -> None:
    from engine_vision.detection.losses import assign

    # two levels: 4x4 locations at stride 4 (a 16x16 image) and 2x2 at stride 8
    pts4 = torch.tensor([[(x + 0.5) * 4, (y + 0.5) * 4] for y in range(4) for x in range(4)])
    pts8 = torch.tensor([[(x + 0.5) * 8, (y + 0.5) * 8] for y in range(2) for x in range(2)])
    points = torch.cat([pts4, pts8])
    strides = torch.tensor([4.0] * 16 + [8.0] * 4)
    levels = torch.tensor([0] * 16 + [1] * 4)
    small = {"boxes": torch.tensor([[0.0, 0, 8, 8]]), "labels": torch.tensor([2])}
    out = assign(points, strides, levels, [small, {"boxes": torch.zeros(0, 4), "labels": torch.zeros(0).long()}])
    positive = (out.labels[0] >= 0).nonzero().flatten().tolist()
    assert positive == [0, 1, 4, 5]  # the stride-4 locations in the box; stride 8 starts at 32 px
    assert set(out.labels[0, positive].tolist()) == {2}
    assert torch.equal(out.boxes[0, 0], small["boxes"][0])
    assert (out.labels[1] == -1).all()  # an image without boxes is all background
    # a location inside two boxes takes the smaller
    both = {"boxes": torch.tensor([[0.0, 0, 16, 16], [0, 0, 8, 8]]), "labels": torch.tensor([0, 1])}
    out = assign(points, strides, levels, [both], radius=0)
    assert int(out.labels[0, 0]) == 1 and int(out.labels[0, 15]) == 0


def test_losses_train_a_detector_on_one_batch() -> None:
    from engine_vision.detection.losses import assign, detection_loss
    from engine_vision.detection.model import Detector

    torch.manual_seed(0)
    model = Detector([3, 32, 32], 2, width=8, fpn_width=16, head_convs=1)
    x = torch.randn(2, 3, 32, 32)
    targets = [
        {"boxes": torch.tensor([[4.0, 4, 14, 14]]), "labels": torch.tensor([0])},
        {"boxes": torch.tensor([[10.0, 12, 26, 28], [0, 0, 6, 9]]), "labels": torch.tensor([1, 0])},
    ]
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    losses = []
    for classification in ("focal", "quality_focal"):
        for box_loss in ("giou", "l1", "giou_l1"):
            out = model.detect(x)
            assigned = assign(out.points, out.strides, out.levels, targets)
            loss = detection_loss(out.outputs, out.points, out.strides, assigned, 2, classification, box_loss)
            assert torch.isfinite(loss["loss"]) and loss["box"] > 0
    for _ in range(30):
        out = model.detect(x)
        assigned = assign(out.points, out.strides, out.levels, targets)
        loss = detection_loss(out.outputs, out.points, out.strides, assigned, 2)
        opt.zero_grad()
        loss["loss"].backward()
        opt.step()
        losses.append(float(loss["loss"].detach()))
    assert losses[-1] < 0.5 * losses[0]


# --------------------------------------------------------------------------- the detector and norm


@pytest.mark.parametrize(
    "params",
    [
        {},
        {"backbone": "cnn", "levels": [2, 3, 4], "width": 8},
        {"depth": 50, "width": 4, "levels": [2, 3], "extra_levels": 2},
        {"norm": "group", "head_norm": "none", "stem": "small", "width": 8},
    ],
)
def test_detector_outputs(params: dict[str, Any]) -> None:
    model = engine.create("model", "vision.detector", input_shape=[3, 64, 64], num_classes=3, **params)
    out = model.detect(torch.randn(2, 3, 64, 64))
    assert out.outputs.shape == (2, len(out.points), 5 + 3)
    assert out.points.shape == (len(out.points), 2) and out.strides.shape == out.levels.shape
    boxes = out.outputs[..., :4]
    assert (boxes[..., 2] > boxes[..., 0]).all() and (boxes[..., 3] > boxes[..., 1]).all()  # positive distances
    model.eval()
    assert torch.equal(model(torch.zeros(1, 3, 64, 64)), model.detect(torch.zeros(1, 3, 64, 64)).outputs)


def test_detector_levels_must_be_stages() -> None:
    with pytest.raises(ConfigError, match="levels must be backbone stages between 1 and 4"):
        engine.create("model", "vision.detector", input_shape=[3, 32, 32], num_classes=2, levels=[2, 5])


def test_detector_init_from_a_classifier(tmp_path: Path) -> None:
    from engine_techniques.transfer import load_weights  # model.init_from: the techniques plugin

    from engine.runs import save_weights

    classifier = engine.create(
        "model", "vision.resnet", input_shape=[3, 32, 32], num_classes=5, width=8, stem="imagenet"
    )
    for p in classifier.parameters():
        torch.nn.init.normal_(p)
    save_weights(classifier.state_dict(), tmp_path / "resnet.safetensors")
    detector = engine.create("model", "vision.detector", input_shape=[3, 32, 32], num_classes=2, width=8)
    report = load_weights(detector, str(tmp_path / "resnet.safetensors"))
    assert torch.equal(detector.stem[1].weight, classifier.stem[1].weight)
    assert torch.equal(detector.stages[2][0].conv1.weight, classifier.stages[2][0].conv1.weight)
    assert any(k.startswith("head.") for k in report["missing"])
    cnn = engine.create("model", "vision.cnn", input_shape=[3, 32, 32], num_classes=5, width=8, stages=4)
    save_weights(cnn.state_dict(), tmp_path / "cnn.safetensors")
    det = engine.create("model", "vision.detector", input_shape=[3, 32, 32], num_classes=2, backbone="cnn", width=8)
    load_weights(det, str(tmp_path / "cnn.safetensors"))
    assert torch.equal(det.features[4].weight, cnn.features[4].weight)


@pytest.mark.parametrize("name", ["cnn", "resnet"])
def test_norm_option(name: str) -> None:
    kinds = {"batch": torch.nn.BatchNorm2d, "group": torch.nn.GroupNorm}
    default = engine.create("model", f"vision.{name}", input_shape=[3, 16, 16], num_classes=3, width=8)
    batch = engine.create("model", f"vision.{name}", input_shape=[3, 16, 16], num_classes=3, width=8, norm="batch")
    assert list(default.state_dict()) == list(batch.state_dict())  # existing runs' checkpoints still load
    for norm in ("group", "none"):
        model = engine.create("model", f"vision.{name}", input_shape=[3, 16, 16], num_classes=3, width=8, norm=norm)
        assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in model.modules())
        assert any(isinstance(m, kinds["group"]) for m in model.modules()) == (norm == "group")
        model.train()
        one = model(torch.randn(1, 3, 16, 16))  # a batch of one trains: no batch statistics
        one.sum().backward()
        assert one.shape == (1, 3)
    assert any(isinstance(m, kinds["batch"]) for m in default.modules())


# --------------------------------------------------------------------------- augmentation


def test_box_augmentation_follows_the_pixels() -> None:
    from engine_vision.detection.augment import BoxAugment

    image = torch.zeros(3, 40, 40)
    image[:, 8:20, 24:36] = 1.0  # a box [24, 8, 36, 20]
    boxes, labels = torch.tensor([[24.0, 8, 36, 20]]), torch.tensor([1])
    augment = BoxAugment({"hflip": True, "vflip": True, "scale": [0.7, 1.4], "crop": 0.6}, fill=torch.zeros(3))
    kept = 0
    for seed in range(40):
        out, b, lab = augment(image, boxes, labels, torch.Generator().manual_seed(seed))
        mask = out[0] > 0.5
        if len(b) == 0:
            continue
        kept += 1
        ys, xs = mask.nonzero(as_tuple=True)
        found = torch.tensor([xs.min(), ys.min(), xs.max() + 1, ys.max() + 1], dtype=torch.float32)
        assert (b[0] - found).abs().max() <= 1.5, (seed, b, found)
        assert lab.tolist() == [1]
    assert kept > 20
    # a box cropped away is dropped with its label
    gone = BoxAugment({"crop": 0.2, "min_visible": 0.9})
    drops = [len(gone(image, boxes, labels, torch.Generator().manual_seed(s))[1]) for s in range(20)]
    assert 0 in drops


def test_detection_augmentation_seeded_and_train_only() -> None:
    from engine_vision.detection.shapes import ShapesDetect

    spec = {"hflip": True, "scale": [0.8, 1.2], "crop": 0.8, "brightness": 0.2, "saturation": 0.2, "noise": 0.02}
    a, b = (ShapesDetect(num_images=30, seed=0, augment=spec).datasets() for _ in range(2))
    plain = ShapesDetect(num_images=30, seed=0).datasets()
    assert torch.equal(a["train"][3][0], b["train"][3][0])
    assert not torch.equal(a["train"][3][0], plain["train"][3][0])
    first = a["train"][3][0]
    a["train"].set_epoch(1)
    assert not torch.equal(a["train"][3][0], first)
    assert torch.equal(a["test"][2][0], plain["test"][2][0])  # evaluation splits are never augmented


def test_bad_detection_augmentation_at_dry_run() -> None:
    def plan(override: str) -> Any:
        return engine.plan(engine.compose("vision/shapes-detect", overrides=[override]))

    with pytest.raises(ConfigError, match=r"unknown augmentation 'data\.augment\.hflp' — did you mean 'hflip'"):
        plan("data.augment.hflp=true")
    with pytest.raises(ConfigError, match=r"data\.augment\.crop must be crop a window"):
        plan("data.augment.crop=1.5")


def test_detection_data_implies_the_detection_task(coco_dir: Path) -> None:
    coco = ["data=vision.coco", f"data.annotations={coco_dir / 'annotations.json'}", "data.image_size=32"]
    cfg = engine.plan(engine.compose(None, overrides=coco)).config
    assert cfg["task"]["name"] == "vision.detection" and cfg["model"]["name"] == "vision.detector"
    assert cfg["checkpoint"]["monitor"] is None  # the task's primary metric (map_50) decides at run time


# --------------------------------------------------------------------------- data sources


def test_shapes_detect_is_seeded() -> None:
    from engine_vision.detection.shapes import ShapesDetect

    src = ShapesDetect(num_images=50, seed=2)
    facts = src.facts
    assert facts["problem"] == "detection" and facts["class_names"] == ["circle", "square", "triangle", "cross"]
    assert facts["input_shape"] == [3, 64, 64]
    json.dumps(facts)
    assert {k: len(v) for k, v in src.index.items()} == {"train": 35, "val": 5, "test": 10}
    image, target = src.datasets()["test"][0]
    assert image.shape == (3, 64, 64) and target["boxes"].shape[1] == 4 and len(target["labels"]) >= 1
    assert ((target["boxes"][:, 2:] - target["boxes"][:, :2]) >= 10).all()
    same = ShapesDetect(num_images=50, seed=2).datasets()["test"][0]
    assert torch.equal(same[0], image) and torch.equal(same[1]["boxes"], target["boxes"])
    other = ShapesDetect(num_images=50, seed=3)
    assert not torch.equal(other.index["test"], src.index["test"])


def test_coco_source(coco_dir: Path) -> None:
    from engine_vision.detection.coco import Coco

    src = Coco(annotations=str(coco_dir / "annotations.json"), image_size=48, seed=1)
    coco = json.loads((coco_dir / "annotations.json").read_text())
    assert src.class_names == ["circle", "square", "triangle", "cross"]
    assert {k: len(v) for k, v in src.index.items()} == {"train": 17, "val": 2, "test": 5}
    first = next(i for i, item in enumerate(src.items) if len(item.labels))
    ann = next(a for a in coco["annotations"] if a["image_id"] == first + 1)
    x, y, w, h = ann["bbox"]
    assert src.items[first].boxes[0].tolist() == pytest.approx([x * 1.5, y * 1.5, (x + w) * 1.5, (y + h) * 1.5])
    assert src.items[first].labels[0] == ann["category_id"] - 1
    image, target = src.datasets()["train"][0]
    assert image.shape == (3, 48, 48) and set(target) == {"boxes", "labels"}
    # separate validation annotations
    both = Coco(annotations=str(coco_dir / "annotations.json"), val_annotations=str(coco_dir / "annotations.json"))
    assert len(both.index["val"]) == 24 and len(both.index["train"]) + len(both.index["test"]) == 24


def test_voc_source(voc_dir: Path, coco_dir: Path) -> None:
    from engine_vision.detection.coco import Coco
    from engine_vision.detection.voc import Voc

    voc = Voc(root=str(voc_dir), image_size=32)
    coco = Coco(annotations=str(coco_dir / "annotations.json"), image_size=32)
    assert voc.class_names == sorted(coco.class_names)
    assert len(voc.index["test"]) == 6 and len(voc.index["train"]) + len(voc.index["val"]) == 18
    names = {c: i for i, c in enumerate(voc.class_names)}
    for v, c in zip(voc.items, coco.items, strict=True):
        assert torch.allclose(v.boxes, c.boxes)  # 1-based VOC corners read back to the same pixels
        assert [voc.class_names[i] for i in v.labels] == [coco.class_names[i] for i in c.labels]
    assert names  # every class found


def test_predict_support_maps_and_draws(coco_dir: Path, tmp_path: Path) -> None:
    from engine_vision.detection.coco import Coco
    from PIL import Image

    src = Coco(annotations=str(coco_dir / "annotations.json"), image_size=64)
    big = tmp_path / "big.png"
    Image.open(coco_dir / "images" / "0000.png").resize((96, 64)).save(big)
    x = src.load_input(str(big))
    assert x.shape == (3, 64, 64)
    record = {"detections": [{"label": "circle", "index": 0, "score": 0.9, "box": [10.0, 10.0, 30.0, 20.0]}]}
    mapped = src.outputs_for_file(str(big), record)
    assert mapped["detections"][0]["box"] == [15.0, 10.0, 45.0, 20.0]  # 96 / 64 wide, 64 / 64 high
    src.draw_outputs(str(big), mapped, str(tmp_path / "drawn.png"))
    drawn = Image.open(tmp_path / "drawn.png")
    assert drawn.size == (96 * 4, 64 * 4)  # small images are enlarged 4x (nearest): labels stay readable
    original = Image.open(big).convert("RGB")
    assert drawn.getpixel((15 * 4, 15 * 4)) != original.getpixel((15, 15))  # the box's left edge
    assert drawn.getpixel((80 * 4, 50 * 4)) == original.getpixel((80, 50))  # far from it: untouched


# --------------------------------------------------------------------------- bad input: one line, exit 2


def _coco(tmp_path: Path, coco_dir: Path, change: Any) -> Path:
    data = json.loads((coco_dir / "annotations.json").read_text())
    change(data)
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(data))
    return path


def _ann(data: dict[str, Any], **fields: Any) -> None:
    data["annotations"][0].update(fields)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda d: _ann(d, image_id=999), "refers to image id 999, which is not in 'images'"),
        (lambda d: d.update(categories=[]), "the category list is empty"),
        (lambda d: d["images"][0].update(file_name="images/nowhere.png"), "image file not found: "),
        (lambda d: _ann(d, category_id=77), "has category id 77, which is not in 'categories'"),
        (lambda d: _ann(d, bbox=[1, 2, 3]), "expected [x, y, width, height]"),
    ],
    ids=["unknown-image-id", "no-categories", "missing-image", "unknown-category", "bad-bbox"],
)
def test_bad_coco_is_one_line(tmp_path: Path, coco_dir: Path, cli: Any, change: Any, message: str) -> None:
    path = _coco(tmp_path, coco_dir, change)
    args = ["data=vision.coco", f"data.annotations={path}", f"data.images={coco_dir}", "data.image_size=32"]
    code, _, err = _cli(cli, "run", "vision/shapes-detect", *args, f"run.dir={tmp_path}", *QUIET)
    assert code == 2 and "Traceback" not in err, err
    assert err.startswith("error: ") and message in err.splitlines()[0], err


def test_bad_boxes_are_dropped_with_a_counted_warning(
    tmp_path: Path, coco_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from engine_vision.detection.coco import Coco

    def spoil(d: dict[str, Any]) -> None:
        d["annotations"][0]["bbox"] = [3, 3, 0, 5]  # zero width
        d["annotations"][1]["bbox"] = [40, 40, 5, 5]  # outside the 32x32 image
        d["annotations"][2]["bbox"] = [-4, 2, 10, 10]  # partly outside: clipped

    path = _coco(tmp_path, coco_dir, spoil)
    total = len(json.loads(path.read_text())["annotations"])
    capsys.readouterr()
    src = Coco(annotations=str(path), images=str(coco_dir), image_size=32)
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("warning: ")
    assert f"dropped 2 of {total} boxes (1 outside the image, 1 with non-positive size); clipped 1" in err
    assert sum(len(i.labels) for i in src.items) == total - 2
    assert min(float(i.boxes[:, 0].min()) for i in src.items if len(i.labels)) >= 0
    with pytest.raises(ConfigError, match=r"annotation 1 has a box \[3, 3, 3, 8\] with non-positive size"):
        Coco(annotations=str(path), images=str(coco_dir), strict=True)


def test_bad_voc_is_one_line(voc_dir: Path, tmp_path: Path, cli: Any) -> None:
    import shutil

    from engine_vision.detection.voc import Voc

    root = tmp_path / "voc"
    shutil.copytree(voc_dir, root)
    first = sorted((root / "Annotations").glob("*.xml"))[0]
    text = first.read_text()
    first.write_text(text.replace(".png</filename>", "-gone.png</filename>"))
    with pytest.raises(ConfigError, match=r"image file not found: .*-gone\.png"):
        Voc(root=str(root))
    first.write_text(text[:40])
    args = ["data=vision.voc", f"data.root={root}", f"run.dir={tmp_path}", *QUIET]
    code, _, err = _cli(cli, "run", "vision/shapes-detect", *args)
    assert code == 2 and err.startswith(f"error: cannot read VOC annotation {first}"), err
    for xml in (root / "Annotations").glob("*.xml"):
        xml.write_text(f"<annotation><filename>{xml.stem}.png</filename></annotation>")
    with pytest.raises(ConfigError, match="the category list is empty"):
        Voc(root=str(root))
    with pytest.raises(ConfigError, match=r"which data\.classes does not list"):
        Voc(root=str(voc_dir), classes=["circle"])


def test_detection_task_needs_detection_data_and_model(cli: Any, tmp_path: Path) -> None:
    code, _, err = _cli(cli, "run", "task=vision.detection", "data=vision.digits", f"run.dir={tmp_path}", *QUIET)
    assert code == 2 and "vision.detection needs detection data" in err.splitlines()[0], err
    small = ["data.num_images=20", f"run.dir={tmp_path}", *QUIET]
    code, _, err = _cli(cli, "run", "vision/shapes-detect", "model=vision.resnet", *small)
    assert code == 2 and "needs a detection model with detect(images), got ResNet" in err.splitlines()[0], err
    code, _, err = _cli(cli, "run", "vision/shapes-detect", "model.num_classes=7", *small)
    assert code == 2 and "the model predicts 7 classes, the data has 4" in err.splitlines()[0], err


# --------------------------------------------------------------------------- the task


def _task(**params: Any) -> Any:
    from engine_vision.detection.task import DetectionTask

    model = engine.create("model", "vision.detector", input_shape=[3, 32, 32], num_classes=2, width=8)
    return DetectionTask(model, None, num_classes=2, class_names=["a", "b"], input_shape=[3, 32, 32], **params)


def test_postprocess_threshold_nms_and_records() -> None:
    task = _task(score_threshold=0.3, eval_score_threshold=0.3, nms_iou=0.5, max_detections=2)
    big = 10.0  # logit: probability ~1
    out = torch.full((1, 4, 7), -big)
    out[0, :, :4] = torch.tensor([[1.0, 1, 11, 11], [1.5, 1, 11, 11], [20, 20, 40, 30], [5, 5, 9, 9]])
    out[0, :, 4] = big  # centre-ness
    out[0, 0, 5], out[0, 1, 5], out[0, 2, 6], out[0, 3, 5] = 3.0, 2.0, 1.0, -3.0
    (det,) = task.postprocess(out)
    assert det["labels"].tolist() == [0, 1]  # 1 is suppressed by 0 (same class), 3 scores below the threshold
    assert det["boxes"][1].tolist() == [20.0, 20.0, 32.0, 30.0]  # clipped to the 32x32 image
    (record,) = task.describe_outputs(out)
    assert [d["label"] for d in record["detections"]] == ["a", "b"]
    expected = float((torch.sigmoid(torch.tensor(3.0)) * torch.sigmoid(torch.tensor(big))).sqrt())
    assert record["detections"][0]["score"] == pytest.approx(expected, abs=1e-5)
    json.dumps(record)
    assert len(task.postprocess(out, score_threshold=0.01, max_detections=10)[0]["boxes"]) == 3  # + box 3
    target = [{"boxes": torch.tensor([[1.0, 1, 11, 11], [20, 20, 32, 30]]), "labels": torch.tensor([0, 1])}]
    assert task.score_outputs(out, target) == {"map": pytest.approx(1.0), "map_50": pytest.approx(1.0)}
    other = out.clone()
    other[0, 1, 5], other[0, 1, 6] = -big, 2.0  # box 1 (nearly box 0) now scores for the other class
    assert task.postprocess(other)[0]["labels"].tolist() == [0, 1]  # classes never suppress each other…
    agnostic = _task(score_threshold=0.3, nms_iou=0.5, agnostic_nms=True)
    assert agnostic.postprocess(other)[0]["labels"].tolist() == [0, 1]  # …unless agnostic: box 2 is the 1 left
    assert agnostic.postprocess(other)[0]["boxes"][1].tolist() == [20.0, 20.0, 32.0, 30.0]
    quality = _task(classification="quality_focal", score_threshold=0.0)
    assert quality.scores(out)[0, 0, 0] == pytest.approx(float(torch.sigmoid(torch.tensor(3.0))))


@pytest.mark.slow
def test_detection_trains_well_above_chance(tmp_path: Path) -> None:
    summary = train(
        [
            "data.num_images=360",
            "data.classes=2",
            "data.max_objects=3",
            "model.width=8",
            "model.fpn_width=16",
            "data.batch_size=16",
            "data.augment=null",
            "optimizer.lr=0.005",
            "trainer.max_epochs=8",
        ],
        tmp_path,
        "vision/shapes-detect",
    )
    assert summary["status"] == "completed"
    metrics = summary["metrics"]
    print(f"test/map_50 {metrics['test/map_50']:.3f} test/map {metrics['test/map']:.3f}")  # 0.50, 0.31 (seed 0)
    assert metrics["test/map_50"] > 0.3  # 128 steps; chance is 0 (the recipe reaches 0.9 in a few hundred)
    assert {"test/map", "test/map_75", "test/ap/circle", "test/ap_50/square", "val/map_50"} <= set(metrics)
    assert summary["primary_metric"]["name"] == "test/map_50"


def test_shapes_detect_command(tmp_path: Path, cli: Any) -> None:
    from engine_vision.detection.coco import Coco

    code, out, err = _cli(cli, "vision", "shapes-detect", str(tmp_path / "d"), "--images", "5", "--size", "40")
    assert code == 0, err
    assert "wrote 5 images of 40x40 px" in out
    src = Coco(annotations=str(tmp_path / "d" / "annotations.json"), image_size=40, val_fraction=0, test_fraction=0)
    assert len(src.items) == 5 and src.class_names == ["circle", "square", "triangle", "cross"]
    code, _, err = _cli(cli, "vision", "shapes-detect", str(tmp_path / "d"))
    assert code == 2 and "already exists" in err


def test_detection_listing_stays_torch_free() -> None:
    code = (
        "import sys, engine\n"
        "assert 'vision.detector' in engine.list_components('model')\n"
        "engine.plan(engine.compose('vision/shapes-detect', overrides=['data.augment.hflip=true']))\n"
        "heavy = [m for m in ('torch', 'numpy', 'PIL', 'torchmetrics') if m in sys.modules]\n"
        "assert not heavy, heavy\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
