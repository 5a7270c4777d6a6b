"""A sweep directory described through ``engine_run_collection``: what ``runs list|compare`` and ``report`` read."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

import engine

#: The base run of every trial (as conftest's BASE): the core's MLP on 300 samples, one epoch.
TINY = ["data.num_samples=300", "data.num_features=8", "model.hidden=[16]", "trainer.max_epochs=1", "scheduler=null"]


@pytest.fixture(scope="module")
def lr_sweep(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Three one-epoch trials of the core's MLP, learning rate searched (a few seconds)."""
    from engine_sweep.cli import sweep

    root = tmp_path_factory.mktemp("sweeps") / "lr"
    space = {"optimizer.lr": "loguniform(1e-3,1e-1)"}
    sweep("core/mlp-synthetic", TINY, space, quiet=True, metric="val/accuracy", trials=3, dir=str(root))
    return root


def test_a_sweep_is_a_collection_of_its_trials(lr_sweep: Path) -> None:
    sweep = engine.run_collection(lr_sweep)
    assert sweep is not None and sweep.kind == "sweep" and sweep.path == lr_sweep and sweep.expand
    assert sweep.members == [(f"{n:03d}", lr_sweep / "trials" / f"{n:03d}") for n in range(3)]
    meta = json.loads((lr_sweep / "sweep.json").read_text())
    assert sweep.best == f"{meta['best']['number']:03d}"
    figures = sweep.figures
    assert figures["status"] == "completed" and figures["wall_time_s"] == meta["wall_time_s"]
    assert figures["primary_metric"] == {"name": "val/accuracy", "mode": "max", "value": meta["best"]["value"]}
    best = json.loads((lr_sweep / meta["best"]["run"] / "summary.json").read_text())
    assert figures["metrics"]["val/accuracy"] == best["best_metrics"]["val/accuracy"]
    assert figures["metrics"]["test/accuracy"] == best["metrics"]["test/accuracy"]


def test_other_directories_are_not_sweeps(lr_sweep: Path, tmp_path: Path) -> None:
    from engine_sweep.collection import describe

    assert engine.run_collection(lr_sweep / "trials" / "000") is None  # a run
    assert engine.run_collection(tmp_path) is None
    (tmp_path / "sweep.json").write_text('{"what": "another tool\'s file"}')
    assert describe(tmp_path) is None


def test_a_killed_sweep_without_trials_yet(tmp_path: Path) -> None:
    """Running, but its process is gone: interrupted; no finished trial: no best, no metrics."""
    meta = {"metric": "val/loss", "direction": "min", "status": "running", "pid": 2**22 + 7, "best": None}
    meta["host"] = __import__("socket").gethostname()
    (tmp_path / "sweep.json").write_text(json.dumps(meta))
    (tmp_path / "trials" / "000").mkdir(parents=True)  # asked, killed before it wrote anything
    sweep = engine.run_collection(tmp_path)
    assert sweep is not None and sweep.members == [] and sweep.best is None
    assert sweep.figures["status"] == "interrupted" and sweep.figures["metrics"] == {}
    assert sweep.figures["primary_metric"] == {"name": "val/loss", "mode": "min", "value": None}


def test_runs_compare_and_report_read_the_sweep(cli: Any, lr_sweep: Path) -> None:
    """The experiments plugin's commands, through the collection (they need engine-experiments)."""
    pytest.importorskip("matplotlib")
    r = cli("runs", "compare", str(lr_sweep))
    assert r.returncode == 0, r.stderr
    assert r.stdout.count("lr/") == 3 and "optimizer.lr" in r.stdout.splitlines()[0]
    r = cli("report", str(lr_sweep))
    assert r.returncode == 0, r.stderr
    report = lr_sweep / "report"
    assert (report / "sweep.png").stat().st_size > 1000 and (report / "curves.png").is_file()
    assert "finished trials of 3" in (report / "report.md").read_text()
