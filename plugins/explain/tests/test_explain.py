"""engine explain on feature vectors: the conformance kit, correct rankings, the files written, bad input."""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

DECISIVE = {"x1", "x4"}  # as in conftest.py: only these columns decide the label
METHODS = ("integrated_gradients", "saliency", "occlusion", "gradient_shap")


def test_plugin_passes_the_conformance_kit(engine_check: Any, cli: Any) -> None:
    assert engine_check("explain") == []  # a command only: no component to build, and the plugin loads
    done = cli("explain", "--help")
    assert done.returncode == 0
    text = done.stdout
    assert "integrated_gradients" in text and "attributions.json" in text and "examples:" in text


def _mean_abs(report: Any) -> np.ndarray:
    return np.mean([np.abs(item.attribution) for item in report.items], axis=0)


@pytest.mark.slow
@pytest.mark.parametrize("method", METHODS)
def test_attributions_rank_exactly_the_decisive_features_first(
    table_run: Path, rows: Path, method: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from engine_explain.explain import explain

    # the ranking only: no bar chart drawn for each of the 48 inputs (most of the time; test_files_tables_and_batching
    # checks the charts)
    monkeypatch.setattr("engine_explain.render.bars_png", lambda path, *args, **kwargs: path)
    report = explain(table_run, [str(rows)], method=method, out=table_run / "x" / method)
    summary = json.loads((table_run / "summary.json").read_text())
    assert summary["metrics"]["val/accuracy"] > 0.9  # the model learned the rule
    assert report.kind == "features" and len(report.items) == 48
    names = report.feature_names
    top = {names[i] for i in np.argsort(-_mean_abs(report))[:2]}
    assert top == DECISIVE, f"{method} ranks {top} first"
    # and by a wide margin: each decisive feature weighs at least 3x any noise feature (measured: 7-12x)
    mean = _mean_abs(report)
    decisive = [names.index(n) for n in sorted(DECISIVE)]
    assert mean[decisive].min() > 3 * np.delete(mean, decisive).max()


@pytest.mark.slow
def test_files_tables_and_batching(table_run: Path, rows: Path, cli: Any, tmp_path: Path) -> None:
    from engine_explain.explain import explain

    out = tmp_path / "ig"
    r = cli("explain", str(table_run), str(rows), "--out", str(out), "--top", "3")
    assert r.returncode == 0, r.stderr
    assert "mean |attribution| over 48 inputs" in r.stdout and {"x1", "x4"} <= set(r.stdout.split())
    pngs = sorted(out.glob("*.png"))
    assert len(pngs) == 48 and pngs[0].name == "000-rows-0.png"
    with (out / "attributions.csv").open() as fh:
        table = list(csv.DictReader(fh))
    assert len(table) == 48 * 8 and table[0]["rank"] == "1"
    record = json.loads((out / "attributions.json").read_text())["inputs"][0]
    assert record["features"] == [f"x{i}" for i in range(8)] and len(record["attribution"]) == 8
    # batches of 5 (a smaller last one) give the same attributions as one batch of 48
    small = explain(table_run, [str(rows)], batch_size=5, out=tmp_path / "small")
    np.testing.assert_allclose(
        np.stack([i.attribution for i in small.items]), np.array([r["attribution"] for r in _records(out)]), atol=1e-5
    )


def _records(out: Path) -> list[dict[str, Any]]:
    return json.loads((out / "attributions.json").read_text())["inputs"]


def test_one_input_shows_a_ranked_table_and_a_target(table_run: Path, cli: Any, tmp_path: Path) -> None:
    sample = tmp_path / "one.json"
    sample.write_text(json.dumps([0.0, 2.0, 0.0, 0.0, -2.0, 0.0, 0.0, 0.0]))  # clearly "pos"
    r = cli("explain", str(table_run), str(sample), "--target", "neg", "-m", "occlusion")
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert "predicted pos" in lines[0] and "explaining neg" in lines[0]
    assert lines[1].split() == ["rank", "feature", "value", "attribution"]
    assert {lines[2].split()[1], lines[3].split()[1]} == DECISIVE
    assert float(lines[2].split()[3]) < 0  # evidence against "neg"
    r = cli("explain", str(table_run), str(sample), "--json", "--out", str(tmp_path / "j"))
    record = json.loads(r.stdout.splitlines()[0])
    assert record["target"] == "pos" and record["prediction"]["label"] == "pos"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--method", "lime"], "unknown attribution method 'lime'"),
        (["--method", "shap"], "did you mean 'gradient_shap'?"),
        (["--target", "maybe"], "--target 'maybe' is neither a class of the run nor an output index"),
        (["--target", "7"], "--target 7 is out of range: the model has 2 outputs"),
        (["--steps", "1"], "--steps must be >= 2"),
    ],
)
def test_bad_options_are_one_line(table_run: Path, rows: Path, cli: Any, args: list[str], message: str) -> None:
    r = cli("explain", str(table_run), str(rows), *args)
    _one_line(r.returncode, r.stdout, r.stderr, message)


def _one_line(code: int, out: str, err: str, message: str) -> None:
    lines = err.strip().splitlines()
    assert code == 2 and out == "" and lines[0].startswith("error: ") and message in lines[0], err
    assert len(lines) == 1 or (len(lines) == 2 and lines[1].startswith("  hint: "))


def test_an_input_of_the_wrong_shape(table_run: Path, cli: Any, tmp_path: Path) -> None:
    bad = tmp_path / "bad.npy"
    np.save(bad, np.zeros((2, 5), dtype=np.float32))
    r = cli("explain", str(table_run), str(bad))
    _one_line(
        r.returncode, r.stdout, r.stderr, "expected one sample of shape [8] or a batch [batch, 8], got shape [2, 5]"
    )


@pytest.mark.slow
def test_a_model_captum_cannot_differentiate(
    table_run: Path, rows: Path, cli: Any, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    import torch
    from engine_deploy import common

    real = common.eager_model

    class Hard(torch.nn.Module):
        """The run's model behind an argmax: its outputs carry no gradient back to the input."""

        def __init__(self, inner: torch.nn.Module) -> None:
            super().__init__()
            self.inner = inner

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            logits = self.inner(x)
            return torch.nn.functional.one_hot(logits.argmax(-1), logits.shape[-1]).float()

    monkeypatch.setattr(common, "eager_model", lambda run, datamodule=None: Hard(real(run, datamodule)))
    r = cli("explain", str(table_run), str(rows))
    _one_line(r.returncode, r.stdout, r.stderr, "Captum cannot differentiate the run's model")
    assert "--method occlusion" in r.stderr
    r = cli("explain", str(table_run), str(rows), "-m", "occlusion", "--out", str(tmp_path / "o"))
    assert r.returncode == 0, r.stderr  # perturbation needs no gradient


def test_input_kinds_and_language_model_outputs() -> None:
    import torch
    from engine_explain.explain import input_kind
    from engine_explain.methods import logits

    assert input_kind({}, torch.zeros(2, 8)) == "features"
    assert input_kind({}, torch.zeros(2, 1, 8, 8)) == "image"
    assert input_kind({"n_mels": 40}, torch.zeros(2, 1, 40, 50)) == "spectrogram"
    assert input_kind({}, torch.zeros(2, 5, 7)) == "matrix"
    assert input_kind({"vocab_size": 9}, torch.zeros(2, 16, dtype=torch.long)) == "text"

    class LM(torch.nn.Module):
        def forward(self, idx: torch.Tensor) -> torch.Tensor:
            return torch.arange(idx.shape[1] * 3.0).reshape(1, -1, 3).expand(len(idx), -1, -1)

    assert logits(LM())(torch.zeros(2, 4, dtype=torch.long)).tolist() == [[9.0, 10.0, 11.0]] * 2  # last position
