"""engine predict: files in, labels and probabilities out, eager or from a deployed artifact."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch


@pytest.fixture(scope="module")
def samples(mlp_run: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    from engine_deploy.common import split_inputs

    from engine.runs import open_run

    x, _, _ = split_inputs(open_run(mlp_run).datamodule(), 5)
    root = tmp_path_factory.mktemp("inputs")
    files = {
        "one": root / "one.json",
        "batch": root / "batch.json",
        "wrapped": root / "wrapped.json",
        "npy": root / "x.npy",
        "csv": root / "rows.csv",
    }
    files["one"].write_text(json.dumps(x[0].tolist()))
    files["batch"].write_text(json.dumps(x[:2].tolist()))
    files["wrapped"].write_text(json.dumps({"inputs": x[2].tolist()}))
    np.save(files["npy"], x[:3].numpy())
    header = ",".join([*(f"x{i}" for i in range(12)), "label"])
    files["csv"].write_text(header + "\n" + "\n".join(",".join(map(str, r)) + ",class_0" for r in x[:2].tolist()))
    torch.save(x, root / "x.pt")
    return files


def test_predict_files_eager_and_artifact_agree(mlp_run: Path, onnx_dir: Path, samples: dict[str, Path]) -> None:
    from engine_deploy.predictor import Predictor

    eager = Predictor(mlp_run)
    onnx = Predictor(mlp_run, onnx_dir)
    assert onnx.backend == "deploy.onnx"
    paths = [str(samples[k]) for k in ("one", "batch", "wrapped", "npy", "csv")]
    xe, names = eager.read(paths)
    xo, _ = onnx.read(paths)
    assert xe.shape == (1 + 2 + 1 + 3 + 2, 12) and len(names) == 9
    re, ro = eager.predict(xe, 2), onnx.predict(xo, 2)
    assert [r["label"] for r in re] == [r["label"] for r in ro]
    for r in re:
        assert r["label"].startswith("class_") and 0 < r["probability"] <= 1 and len(r["top"]) == 2
    # the CSV rows are the same samples as the batch file, read by feature name
    assert [r["label"] for r in re[1:3]] == [r["label"] for r in re[7:9]]


def test_predict_command_json(cli: Any, mlp_run: Path, onnx_dir: Path, samples: dict[str, Path]) -> None:
    r = cli("predict", str(mlp_run), str(samples["batch"]), "--artifact", str(onnx_dir), "--json", "--top", "4")
    assert r.returncode == 0, r.stderr
    lines = [json.loads(line) for line in r.stdout.splitlines()]
    assert len(lines) == 2 and len(lines[0]["top"]) == 4
    assert 0.5 < sum(t["probability"] for t in lines[0]["top"]) <= 1 + 1e-3  # top 4 of 6 classes
    r = cli("predict", str(mlp_run), str(samples["one"]))
    assert r.returncode == 0 and "class_" in r.stdout and "(eager)" in r.stdout


def test_rows_are_raw_and_standardised_unless_preprocessed(mlp_run: Path, tmp_path: Path) -> None:
    from engine_deploy.predictor import Predictor

    from engine.runs import open_run

    pre = open_run(mlp_run).facts["preprocessing"]
    standardised = torch.randn(2, 12)
    raw = standardised * torch.tensor(pre["std"]) + torch.tensor(pre["mean"])
    (tmp_path / "raw.json").write_text(json.dumps(raw.tolist()))
    x, _ = Predictor(mlp_run).read([str(tmp_path / "raw.json")])
    assert torch.allclose(x, standardised, atol=1e-4)
    (tmp_path / "model.json").write_text(json.dumps(standardised.tolist()))
    x, _ = Predictor(mlp_run).read([str(tmp_path / "model.json")], preprocessed=True)
    assert torch.allclose(x, standardised, atol=1e-6)


@pytest.mark.parametrize(
    ("content", "name", "message"),
    [
        ("[[1, 2], [3]]", "ragged.json", "nested list of numbers"),
        ("[1, 2, 3]", "short.json", "expected one sample of shape [12]"),
        ('{"x": 1}', "nokey.json", "'inputs' key"),
        ("{not json", "broken.json", "not valid JSON"),
        ('[["a","b","c","d","e","f","g","h","i","j","k","l"]]', "text.json", "nested list of numbers"),
        ("x0,x1\n1,oops\n", "bad.csv", "not a number"),
        ("hello", "x.txt", "unsupported input type"),
    ],
)
def test_bad_inputs_are_one_clear_line(mlp_run: Path, tmp_path: Path, content: str, name: str, message: str) -> None:
    from engine_deploy.inputs import InputError
    from engine_deploy.predictor import Predictor

    (tmp_path / name).write_text(content)
    with pytest.raises(InputError, match=message.replace("[", r"\[").replace("]", r"\]")):
        Predictor(mlp_run).read([str(tmp_path / name)])


def test_bad_predict_command(cli: Any, mlp_run: Path, tmp_path: Path) -> None:
    r = cli("predict", str(mlp_run), str(tmp_path / "missing.json"))
    assert r.returncode == 2 and "input file not found" in r.stderr and "Traceback" not in r.stderr
    (tmp_path / "x.json").write_text(json.dumps([0.0] * 12))
    r = cli("predict", str(mlp_run), str(tmp_path / "x.json"), "--artifact", str(tmp_path))
    assert r.returncode == 2 and "no deployed artifact" in r.stderr
    r = cli("predict", str(mlp_run), "x.json", "--top", "0")
    assert r.returncode == 2 and "--top must be >= 1" in r.stderr


@pytest.fixture(scope="module")
def table_runs(train: Any, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A multi-label run and a two-target regression run on one CSV table."""
    g = np.random.default_rng(0)
    x = g.normal(size=(300, 3))
    labels = np.stack([x[:, 0] > 0, x[:, 1] + x[:, 2] > 0.3], 1).astype(int)
    root = tmp_path_factory.mktemp("table")
    rows = ["a,b,c,red,big,r1,r2"] + [
        f"{a},{b},{c},{p},{q},{a + b},{b - c}" for (a, b, c), (p, q) in zip(x.tolist(), labels.tolist(), strict=True)
    ]
    (root / "t.csv").write_text("\n".join(rows) + "\n")
    common = ["model=mlp", "data=csv", f"data.path={root / 't.csv'}", "data.features=[a,b,c]", "trainer.max_epochs=2"]
    return {
        "multilabel": Path(train(*common, "data.label=[red,big]", root=root, name="ml").run_dir),
        "regression": Path(train(*common, "data.label=[r1,r2]", root=root, name="reg").run_dir),
        "rows": root / "t.csv",
    }


def test_predict_keeps_each_samples_output_shape(table_runs: dict[str, Path]) -> None:
    from engine_deploy.predictor import Predictor

    predictor = Predictor(table_runs["regression"])
    x, _ = predictor.read([str(table_runs["rows"])])
    assert [len(r["value"]) for r in predictor.predict(x[:3])] == [2, 2, 2]
    forecasts = predictor.describe(torch.arange(3 * 12 * 2, dtype=torch.float32).view(3, 12, 2))
    assert np.array(forecasts[1]["value"]).shape == (12, 2) and forecasts[1]["value"][0] == [24.0, 25.0]
    assert predictor.describe(torch.tensor([[0.5], [1.5]])) == [{"value": 0.5}, {"value": 1.5}]


def test_predict_a_multilabel_run(cli: Any, table_runs: dict[str, Path]) -> None:
    r = cli("predict", str(table_runs["multilabel"]), str(table_runs["rows"]), "--json")
    assert r.returncode == 0, r.stderr
    first = json.loads(r.stdout.splitlines()[0])
    assert set(first["labels"]) <= {"red", "big"} and {t["label"] for t in first["top"]} == {"red", "big"}
    assert all(0 <= t["probability"] <= 1 for t in first["top"])
    r = cli("predict", str(table_runs["multilabel"]), str(table_runs["rows"]))
    assert r.returncode == 0 and "labels" in r.stdout and "probabilities" in r.stdout
