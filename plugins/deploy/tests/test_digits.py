"""On the vision plugin's digits model (when engine_vision is installed): every target verifies."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

pytest.importorskip("engine_vision")
#: Each trains a vision model first (10-15 s on 2 cores) and exports it several times.
pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def digits_run(train: Any, tmp_path_factory: pytest.TempPathFactory) -> Path:
    quick = [
        "trainer.max_epochs=1",
        "trainer.limit_train_batches=4",
        "trainer.limit_val_batches=1",
        "trainer.limit_test_batches=1",
        "model.width=8",
    ]
    return Path(train(*quick, root=tmp_path_factory.mktemp("digits"), recipe="vision/digits", name="digits").run_dir)


@pytest.mark.parametrize("target", ["torchscript", "export", "onnx", "int8"])
def test_digits_every_target_verifies(digits_run: Path, tmp_path: Path, target: str) -> None:
    from engine_deploy.deploy import deploy

    deploy(digits_run, target, out=tmp_path, samples=96, timing=False)
    manifest = json.loads((tmp_path / "manifest.json").read_text())
    assert manifest["verification"]["passed"]
    assert manifest["input"]["shape"] == ["batch", 1, 8, 8]
    assert manifest["class_names"] == [str(i) for i in range(10)]
    assert manifest["preprocessing"]["scale"] == pytest.approx(1 / 16)


def test_digits_predict_reads_the_sources_own_npy(digits_run: Path, tmp_path: Path) -> None:
    from engine_deploy.predictor import Predictor

    raw = np.zeros((8, 8), dtype=np.float32)
    raw[1:7, 3:5] = 16  # a "1": raw 0..16 pixels, read by the digits source's load_input
    np.save(tmp_path / "one.npy", raw)
    predictor = Predictor(digits_run)
    x, names = predictor.read([str(tmp_path / "one.npy")])
    assert x.shape == (1, 1, 8, 8) and names == [str(tmp_path / "one.npy")]
    record = predictor.predict(x, 3)[0]
    assert record["label"] in [str(i) for i in range(10)] and len(record["top"]) == 3
