"""One input rule for predict, serve and explain (docs/plugins/deploy.md#inputs).

Inputs are raw (digit pixels 0..16) and the run's recorded preprocessing is applied by one
function, `engine_deploy.inputs.prepare`; a sample has the sample shape (``[1, 8, 8]``, or
``[8, 8]`` for 1-channel images), a batch a leading batch dim; ``--preprocessed`` /
``"preprocessed": true`` takes model-form inputs; ``engine deploy`` writes a raw ``sample.json``.
"""

from __future__ import annotations

import json
import urllib.request
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from engine_deploy.inputs import as_array, prepare, unprepare

PRE = {"value_range": [0, 16], "scale": 1 / 16, "mean": [0.3], "std": [0.4]}


def test_one_channel_images_take_every_shape_and_one_preprocessing() -> None:
    raw = np.arange(5 * 64, dtype=np.float32).reshape(5, 8, 8) % 17
    want = (raw[:, None] / 16 - 0.3) / 0.4
    for value in (raw[:, None], raw):  # [5, 1, 8, 8] and [5, 8, 8]: the same batch
        x, warning = prepare(as_array(value, [1, 8, 8]), PRE)
        assert x.shape == (5, 1, 8, 8) and warning is None
        np.testing.assert_allclose(x, want, rtol=1e-5)
    for value in (raw[0], raw[0][None], raw[0].tolist()):  # one sample: [8, 8] or [1, 8, 8]
        x, _ = prepare(as_array(value, [1, 8, 8]), PRE)
        np.testing.assert_allclose(x, want[:1], rtol=1e-5)
    kept, _ = prepare(as_array(want, [1, 8, 8]), PRE, preprocessed=True)
    np.testing.assert_allclose(kept, want, rtol=1e-6)
    np.testing.assert_array_equal(unprepare(kept, PRE), raw[:, None])  # deploy's sample.json: raw again


def test_table_rows_are_standardised_per_feature_and_far_values_warned() -> None:
    pre = {"mean": [1.0, 10.0], "std": [2.0, 5.0]}
    x, warning = prepare(as_array([[3.0, 20.0]], [2]), pre)
    np.testing.assert_allclose(x, [[1.0, 2.0]])
    assert warning is None
    _, warning = prepare(as_array([[3.0, 2000.0]], [2]), pre, where="rows.csv")
    assert warning is not None and "rows.csv" in warning and "standard deviations" in warning
    identity = {"mean": [0.0, 0.0], "std": [1.0, 1.0]}  # data.standardize=false: no statistics recorded
    assert prepare(as_array([[3.0, 2000.0]], [2]), identity)[1] is None
    _, warning = prepare(as_array(np.full((1, 8, 8), 255.0), [1, 8, 8]), PRE)  # 0..255 pixels for 0..16 data
    assert warning is not None and "0..16" in warning


def test_tokens_and_runs_without_preprocessing_are_kept() -> None:
    ids = as_array([[1, 2, 3]], [3], "int64")
    assert prepare(ids, PRE)[0] is ids
    rows = as_array([[1.0, 2.0]], [2])
    assert prepare(rows, None)[0] is rows


# --------------------------------------------------------------------------- on a digits run

vision = pytest.importorskip("engine_vision")


@pytest.fixture(scope="module")
def digits_run(train: Any, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The digits CNN with its shipped weights (test accuracy 1.0), one step at a negligible lr: seconds."""
    root = tmp_path_factory.mktemp("digits")
    quick = ["model.weights=digits", "optimizer.lr=1e-8", "trainer.max_epochs=1", "trainer.limit_train_batches=1",
             "trainer.limit_val_batches=1", "trainer.limit_test_batches=1"]  # fmt: skip
    return Path(train(*quick, root=root, recipe="vision/digits", name="digits").run_dir)


@pytest.fixture(scope="module")
def raw_digits() -> np.ndarray:
    """The first 0, 1, 2, 3 and 4 of scikit-learn's digits, raw pixels 0..16, ``(5, 8, 8)``."""
    from sklearn.datasets import load_digits

    bunch = load_digits()
    return np.stack([bunch.images[list(bunch.target).index(d)] for d in range(5)]).astype(np.float32)


LABELS = ["0", "1", "2", "3", "4"]


@pytest.mark.slow
def test_predict_reads_every_shape_raw(digits_run: Path, raw_digits: np.ndarray, tmp_path: Path, cli: Any) -> None:
    files = {"nchw": raw_digits[:, None], "nhw": raw_digits}
    for name, value in files.items():
        np.save(tmp_path / f"{name}.npy", value)
    for d in range(5):
        np.save(tmp_path / f"digit{d}.npy", raw_digits[d])  # (8, 8)
    (tmp_path / "batch.json").write_text(json.dumps(raw_digits.tolist()))
    for inputs in (["nchw.npy"], ["nhw.npy"], [f"digit{d}.npy" for d in range(5)], ["batch.json"]):
        r = cli("predict", str(digits_run), *[str(tmp_path / i) for i in inputs], "--json")
        assert r.returncode == 0, r.stderr
        assert [json.loads(line)["label"] for line in r.stdout.splitlines()] == LABELS, inputs
        assert "warning" not in r.stderr
    pre = json.loads((digits_run / "facts.json").read_text())["preprocessing"]
    np.save(tmp_path / "model_form.npy", prepare(raw_digits[:, None], pre)[0])
    r = cli("predict", str(digits_run), str(tmp_path / "model_form.npy"), "--preprocessed", "--json")
    assert [json.loads(line)["label"] for line in r.stdout.splitlines()] == LABELS
    r = cli("predict", str(digits_run), str(tmp_path / "model_form.npy"), "--json")  # normalised, read as raw
    assert r.returncode == 0 and "warning:" in r.stderr and "--preprocessed" in r.stderr


@pytest.mark.slow
def test_deploy_writes_a_raw_sample_that_predict_and_the_artifact_take(
    digits_run: Path, raw_digits: np.ndarray, tmp_path: Path, cli: Any
) -> None:
    from engine_deploy.deploy import deploy

    out = tmp_path / "ts"
    manifest = deploy(digits_run, "torchscript", out=out, samples=32, timing=False)
    sample = json.loads((out / "sample.json").read_text())
    assert manifest["sample"] == "sample.json" and np.asarray(sample["inputs"]).shape == (1, 1, 8, 8)
    pixels = np.asarray(sample["inputs"])
    assert pixels.min() >= 0 and pixels.max() <= 16 and np.array_equal(pixels, np.round(pixels))  # raw
    eager = cli("predict", str(digits_run), str(out / "sample.json"), "--json")
    exported = cli("predict", str(digits_run), str(out / "sample.json"), "--artifact", str(out), "--json")
    assert eager.returncode == exported.returncode == 0, eager.stderr + exported.stderr
    assert json.loads(eager.stdout)["label"] == json.loads(exported.stdout)["label"]
    assert "warning" not in eager.stderr
    np.save(tmp_path / "nchw.npy", raw_digits[:, None])
    r = cli("predict", str(digits_run), str(tmp_path / "nchw.npy"), "--artifact", str(out), "--json")
    assert [json.loads(line)["label"] for line in r.stdout.splitlines()] == LABELS


def _post(url: str, payload: Any) -> tuple[int, Any]:
    body = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
    req = urllib.request.Request(f"{url}/predict", data=body, headers={"content-type": "application/json"})
    with urllib.request.urlopen(req, timeout=30) as resp:
        return resp.status, json.loads(resp.read())


@pytest.mark.slow
def test_serve_applies_the_same_rule(digits_run: Path, raw_digits: np.ndarray, tmp_path: Path) -> None:
    import torch
    from engine_deploy.deploy import sample_json
    from engine_deploy.predictor import Predictor
    from engine_deploy.server import BackgroundServer, create_app

    predictor = Predictor(digits_run)
    model_form = prepare(raw_digits[:, None], predictor.preprocessing)[0]
    with BackgroundServer(create_app(predictor, max_batch_size=8, max_wait_ms=5)) as url:
        for inputs in (raw_digits[:, None].tolist(), raw_digits.tolist()):
            status, out = _post(url, {"inputs": inputs})
            assert status == 200 and [p["label"] for p in out["predictions"]] == LABELS and "warnings" not in out
        status, out = _post(url, {"inputs": raw_digits[2].tolist()})  # one (8, 8) digit
        assert [p["label"] for p in out["predictions"]] == ["2"]
        status, out = _post(url, {"inputs": model_form.tolist(), "preprocessed": True})
        assert [p["label"] for p in out["predictions"]] == LABELS
        status, out = _post(url, {"inputs": (raw_digits * 16).tolist()})  # 0..255 pixels: far outside 0..16
        assert status == 200 and "0..16" in out["warnings"][0]
        sample = sample_json(torch.from_numpy(model_form[3:4]), predictor.preprocessing)
        status, out = _post(url, sample.encode())  # curl -d @sample.json
        assert status == 200 and [p["label"] for p in out["predictions"]] == ["3"]
