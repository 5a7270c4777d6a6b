"""Detection runs (vision.detection): deploy verifies boxes, predict prints and draws them, serve answers them.

The task describes its own outputs (``engine_deploy.protocols.DescribesOutputs``): the network's
raw outputs go through the task's post-processing (scores, NMS) whether they come from eager
PyTorch or a deployed artifact.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import torch

pytest.importorskip("engine_vision")
#: Each trains a vision model first (10-15 s on 2 cores) and exports it several times.
pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def detect_run(train: Any, tmp_path_factory: pytest.TempPathFactory) -> Path:
    quick = [
        "data.num_images=48",
        "data.batch_size=8",
        "model.width=8",
        "model.fpn_width=16",
        "model.head_convs=1",
        "task.score_threshold=0.05",  # an untrained detector scores low: keep a few boxes to look at
        "task.max_detections=5",
        "trainer.max_epochs=1",
        "trainer.limit_train_batches=2",
        "trainer.limit_val_batches=1",
        "trainer.limit_test_batches=2",
    ]
    root = tmp_path_factory.mktemp("detect")
    return Path(train(*quick, root=root, recipe="vision/shapes-detect", name="detect").run_dir)


@pytest.fixture(scope="module")
def images(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    from engine_vision.detection.shapes import write_detection_set
    from PIL import Image

    root = tmp_path_factory.mktemp("images")
    write_detection_set(root, 3, 64, 4, seed=7)
    big = root / "big.png"
    Image.open(root / "images" / "0000.png").resize((128, 96)).save(big)
    return {"one": root / "images" / "0000.png", "two": root / "images" / "0001.png", "big": big}


@pytest.fixture(scope="module")
def detect_onnx(detect_run: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    from engine_deploy.deploy import deploy

    out = tmp_path_factory.mktemp("detect-onnx")
    deploy(detect_run, "onnx", out=out, samples=16, timing=False)
    return out


def test_onnx_export_verifies_outputs_and_boxes(detect_onnx: Path) -> None:
    manifest = json.loads((detect_onnx / "manifest.json").read_text())
    v = manifest["verification"]
    assert v["passed"] and v["max_abs_diff"] <= v["tolerance"]
    assert manifest["problem"] == "detection" and manifest["input"]["shape"] == ["batch", 3, 64, 64]
    assert manifest["output"]["shape"][0] == "batch" and manifest["output"]["shape"][2] == 5 + 4
    assert v["described"]["same_records"] == 1.0 and v["described"]["max_box_diff"] <= 0.5
    assert v["metric"]["name"] == "test/map_50" and v["metric"]["eager"] == pytest.approx(v["metric"]["artifact"])
    assert set(v["metrics"]) == {"test/map", "test/map_50"}
    assert manifest["postprocessing"]["task"]["name"] == "vision.detection"
    assert "top1_agreement" not in v


@pytest.mark.parametrize("target", ["torchscript", "export"])
def test_torch_targets_verify_too(detect_run: Path, tmp_path: Path, target: str) -> None:
    from engine_deploy.deploy import deploy

    manifest = deploy(detect_run, target, out=tmp_path, samples=8, timing=False)
    assert manifest["verification"]["passed"] and manifest["verification"]["described"]["same_records"] == 1.0


def test_predictor_boxes_eager_and_onnx(detect_run: Path, detect_onnx: Path, images: dict[str, Path]) -> None:
    from engine_deploy.predictor import Predictor

    eager, onnx = Predictor(detect_run), Predictor(detect_run, detect_onnx)
    assert eager.describer is not None and onnx.backend == "deploy.onnx"
    paths = [str(images["one"]), str(images["big"])]
    x, _, files = eager.read_files(paths)
    assert x.shape == (2, 3, 64, 64) and files == paths
    records, records_onnx = eager.predict(x), onnx.predict(onnx.read(paths)[0])
    assert [len(r["detections"]) for r in records] == [len(r["detections"]) for r in records_onnx]
    assert 1 <= len(records[0]["detections"]) <= 5
    for a, b in zip(records[0]["detections"], records_onnx[0]["detections"], strict=True):
        assert a["label"] == b["label"] and max(abs(p - q) for p, q in zip(a["box"], b["box"], strict=True)) < 0.05
    d = records[0]["detections"][0]
    assert set(d) == {"label", "index", "score", "box"} and d["label"] in ("circle", "square", "triangle", "cross")
    # the big image is the first one at 2x width, 1.5x height (resampled twice, so nearly the same pixels):
    # its boxes come back in its own pixels
    big = eager.for_file(records[1], str(images["big"]))["detections"][0]["box"]
    small = records[0]["detections"][0]["box"]
    assert big == pytest.approx([small[0] * 2, small[1] * 1.5, small[2] * 2, small[3] * 1.5], abs=1.0)
    assert eager.for_file(records[0], None) == records[0]
    assert eager.metadata()["outputs"]["described_by"]["name"] == "vision.detection"


def test_predict_command_prints_and_draws(
    cli: Any, detect_run: Path, detect_onnx: Path, images: dict[str, Path], tmp_path: Path
) -> None:
    from PIL import Image

    out = tmp_path / "boxes.png"
    r = cli("predict", str(detect_run), str(images["big"]), "--out", str(out), "--json")
    assert r.returncode == 0, r.stderr
    (line,) = [json.loads(x) for x in r.stdout.splitlines()]
    assert line["input"] == str(images["big"]) and line["drawn"] == str(out) and line["detections"]
    assert all(0 <= v <= 128 for d in line["detections"] for v in d["box"][::2])
    assert Image.open(out).size == (128 * 3, 96 * 3)  # small images are drawn enlarged (labels stay readable)
    two = [str(images["one"]), str(images["two"])]
    drawn = ["--out", str(tmp_path / "drawn"), "--min-score", "0.0"]
    r = cli("predict", str(detect_run), *two, "--artifact", str(detect_onnx), *drawn)
    assert r.returncode == 0, r.stderr
    assert "label" in r.stdout and "score" in r.stdout and "(deploy.onnx; drawn:" in r.stdout
    assert sorted(p.name for p in (tmp_path / "drawn").iterdir()) == ["0000.png", "0001.png"]
    r = cli("predict", str(detect_run), str(images["one"]), "--json", "--min-score", "1.1")
    assert r.returncode == 0 and json.loads(r.stdout)["detections"] == []


def test_predict_command_mistakes(cli: Any, detect_run: Path, mlp_run: Path, tmp_path: Path) -> None:
    sample = tmp_path / "x.json"
    sample.write_text(json.dumps(torch.zeros(3, 64, 64).tolist()))
    r = cli("predict", str(detect_run), str(sample), "--out", str(tmp_path / "o.png"))
    assert r.returncode == 2 and "--out draws on image files" in r.stderr and "Traceback" not in r.stderr
    r = cli("predict", str(detect_run), str(sample), "--json")
    assert r.returncode == 0 and "detections" in json.loads(r.stdout), (
        r.stderr
    )  # model-shaped JSON works without drawing
    (tmp_path / "row.json").write_text(json.dumps([0.0] * 12))
    r = cli("predict", str(mlp_run), str(tmp_path / "row.json"), "--out", "o.png")
    assert r.returncode == 2 and "--out is for detection runs; this run predicts classification" in r.stderr


def test_serve_returns_boxes(detect_run: Path) -> None:
    import urllib.request

    from engine_deploy.predictor import Predictor
    from engine_deploy.server import BackgroundServer, create_app

    app = create_app(Predictor(detect_run), max_batch_size=4, max_wait_ms=5, max_body_bytes=4_000_000)
    image = torch.zeros(3, 64, 64)
    image[:, 20:40, 10:30] = 2.0
    body = json.dumps({"inputs": [image.tolist(), image.tolist()]}).encode()
    with BackgroundServer(app) as url:
        req = urllib.request.Request(f"{url}/predict", data=body, headers={"content-type": "application/json"})
        with urllib.request.urlopen(req, timeout=60) as resp:
            answer = json.loads(resp.read())
        with urllib.request.urlopen(f"{url}/metadata", timeout=60) as resp:
            meta = json.loads(resp.read())
    assert len(answer["predictions"]) == 2 and answer["predictions"][0] == answer["predictions"][1]
    for d in answer["predictions"][0]["detections"]:
        assert set(d) == {"label", "index", "score", "box"} and len(d["box"]) == 4
    assert meta["problem"] == "detection" and meta["outputs"]["described_by"]["name"] == "vision.detection"
