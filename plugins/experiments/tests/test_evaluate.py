"""``engine evaluate``: a run measured again, the task's own evaluation options, ensembles of runs."""

from __future__ import annotations

import csv
import random
from pathlib import Path
from typing import Any

import pytest
from engine_experiments.evaluate import ensemble, evaluate, predictions, scores

import engine
from engine import EngineError

SHAPE = ["data.num_features=6", "data.num_classes=3", "trainer.max_epochs=4"]


@pytest.fixture(scope="module")
def teacher(tmp_path_factory: pytest.TempPathFactory, tiny_run: Any) -> Path:
    """One trained run shared by the module (trained with settings and a cache of its own)."""
    root = tmp_path_factory.mktemp("teacher")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("ENGINE_CACHE_DIR", str(root / "cache"))
        mp.setenv("ENGINE_HOME", str(root / "home"))
        engine.get_registry(fresh=True)
        return Path(tiny_run(root, "teacher", *SHAPE, "model.hidden=[32]").run_dir)


def test_evaluate_reports_the_test_metrics_of_the_best_checkpoint(cli: Any, teacher: Path) -> None:
    summary = engine.open_run(teacher).summary
    out = cli("evaluate", str(teacher))
    assert out.returncode == 0, out.stderr
    assert f"{summary['best_metrics']['test/accuracy']:.4f}" in out.stdout
    bad = cli("evaluate", str(teacher), "episodes=3")
    assert bad.returncode == 2 and "has no evaluation options (got episodes)" in bad.stderr
    assert cli("evaluate", "episodes=3").returncode == 2  # no run at all


def test_ensemble_averages_members(cli: Any, teacher: Path, tiny_run: Any, tmp_path: Path) -> None:
    other = tiny_run(tmp_path, "seed1", *SHAPE, "seed=1", "model.hidden=[32]", "trainer.max_epochs=2").run_dir
    result = ensemble([str(teacher), str(other)])
    assert set(result) == {"teacher", "seed1", "ensemble"}
    assert set(result["ensemble"]) == {"accuracy", "f1", "nll"}
    assert result["teacher"]["accuracy"] == pytest.approx(evaluate(str(teacher))["test/accuracy"], abs=1e-6)
    p1, y, *_ = predictions(str(teacher))
    p2, *_ = predictions(str(other))
    assert result["ensemble"] == pytest.approx(scores((p1 + p2) / 2, y, "classification"))
    out = cli("evaluate", str(teacher), str(other), "--ensemble")
    assert out.returncode == 0, out.stderr
    assert "ensemble" in out.stdout and "test/accuracy" in out.stdout and "test/nll" in out.stdout
    assert "ensemble of 2: accuracy" in out.stdout
    import json

    data = json.loads(cli("evaluate", str(teacher), str(other), "--ensemble", "--json").stdout)
    assert set(data["runs"]) == {"teacher", "seed1"} and data["ensemble"] == pytest.approx(result["ensemble"])
    different = tiny_run(tmp_path, "other-data", *SHAPE, "data.num_samples=200", "trainer.max_epochs=1").run_dir
    with pytest.raises(EngineError, match=r"do not share their test split.*num_samples"):
        ensemble([str(teacher), str(different)])
    with pytest.raises(EngineError, match="at least two runs"):
        ensemble([str(teacher)])


def _labels_table(file: Path) -> None:
    rng = random.Random(0)
    with file.open("w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["a", "b", "c", "y1", "y2"])
        for _ in range(240):
            a, b, c = (rng.gauss(0, 1) for _ in range(3))
            writer.writerow([f"{a:.4f}", f"{b:.4f}", f"{c:.4f}", int(a > 0), int(b + c > 0)])


def test_a_multilabel_ensemble_is_scored_as_multilabel(cli: Any, tmp_path: Path) -> None:
    """The problem type's own metrics (accuracy, f1 over labels), not regression's MAE/MSE (the old copy)."""
    from engine.testing import train_run

    file = tmp_path / "labels.csv"
    _labels_table(file)
    data = ["model=mlp", "model.hidden=[16]", "data=csv", f"data.path={file}", "data.label=[y1,y2]"]
    runs = [
        str(train_run(*data, "trainer.max_epochs=2", f"seed={s}", root=tmp_path, name=f"s{s}").run_dir) for s in (0, 1)
    ]
    result = ensemble(runs)
    assert set(result["ensemble"]) == {"accuracy", "f1"}
    (p1, y, facts, *_), (p2, *_) = predictions(runs[0]), predictions(runs[1])
    assert facts["problem"] == "multilabel" and p1.min() >= 0 and p1.max() <= 1
    from engine.tasks import score

    assert result["ensemble"] == pytest.approx(score((p1 + p2) / 2, y, "multilabel", logits=False))
    out = cli("evaluate", *runs, "--ensemble")
    assert out.returncode == 0, out.stderr
    assert "test/f1" in out.stdout and "mae" not in out.stdout and "ensemble of 2: f1" in out.stdout


MODEL = """
from engine import Component, Recipe, hookimpl

@hookimpl
def engine_models():
    return [Component("net", "engine_acme_models:Net", "a linear model under its own name")]

@hookimpl
def engine_recipes():
    return [Recipe("demo", {"model": "net", "data": "synthetic", "trainer": {"max_epochs": 1}})]
"""

NET = """
from torch import nn


class Net(nn.Sequential):
    def __init__(self, in_features: int, out_features: int) -> None:
        super().__init__(nn.Linear(in_features, out_features))
"""


@pytest.mark.slow
def test_evaluating_a_run_whose_plugin_is_gone_names_its_distribution(
    cli: Any, plugin_site: Any, tmp_path: Path
) -> None:
    from engine.testing import run_cli

    site = plugin_site("acme", MODEL, version="2.3", extra={"engine_acme_models": NET})
    out = run_cli("run", "acme/demo", "data.num_samples=200", f"run.dir={tmp_path}", "run.name=r", "-q")
    assert out.returncode == 0, out.stderr
    for path in site.glob("engine_acme*"):
        if path.is_dir():
            for f in path.iterdir():
                f.unlink()
            path.rmdir()
        else:
            path.unlink()
    gone = run_cli("evaluate", str(tmp_path / "r"))
    assert gone.returncode == 2
    assert "trained with plugin 'acme' (engine-acme 2.3), which is not installed here" in gone.stderr
    assert "engine plugins install engine-acme==2.3" in gone.stderr


COUNTING = """
from engine import Component, hookimpl

SLOTS = {"model": "model", "loss": "loss", "optimizer": "optimizer", "scheduler": "scheduler"}


@hookimpl
def engine_tasks():
    return [
        Component("counting", "engine_counting_task:Counting", "supervised, evaluated its own way", slots=SLOTS,
                  defaults={"optimizer": "adamw", "loss": None, "scheduler": None}, required_slots=("model",))
    ]
"""

COUNTING_TASK = """
from engine.tasks import SupervisedTask


class Counting(SupervisedTask):
    def evaluate_run(self, datamodule, episodes: int = 3, seed: int = 0) -> dict:
        return {"eval/episodes": float(episodes), "eval/seed": float(seed)}
"""


def test_a_tasks_own_evaluation_takes_checked_options(
    cli: Any, plugin_site: Any, tiny_run: Any, tmp_path: Path
) -> None:
    plugin_site("counting", COUNTING, extra={"engine_counting_task": COUNTING_TASK})
    run = str(tiny_run(tmp_path, "r", "task=counting.counting").run_dir)
    out = cli("evaluate", run, "episodes=5")
    assert out.returncode == 0, out.stderr
    rows = {line.split()[0]: line.split()[1] for line in out.stdout.splitlines()[1:]}
    assert float(rows["eval/episodes"]) == 5 and float(rows["eval/seed"]) == 0  # defaults filled in
    bad = cli("evaluate", run, "episodes=many")
    assert bad.returncode == 2 and "evaluate.episodes must be int" in bad.stderr
    typo = cli("evaluate", run, "epsiodes=5")
    assert typo.returncode == 2 and "unknown parameter 'evaluate.epsiodes'" in typo.stderr
    assert "did you mean 'episodes'" in typo.stderr


def test_evaluating_an_interrupted_run_says_it_is_incomplete(cli: Any, teacher: Path, tmp_path: Path) -> None:
    import json
    import shutil

    run = Path(shutil.copytree(teacher, tmp_path / "stopped"))
    summary = json.loads((run / "summary.json").read_text())
    summary.update(status="interrupted", epoch=2)
    (run / "summary.json").write_text(json.dumps(summary))
    out = cli("evaluate", str(run))
    assert out.returncode == 0, out.stderr
    warned = [line for line in out.stderr.splitlines() if "incomplete" in line]
    assert warned == [
        f"warning: run {run} is incomplete (interrupted after 2 of 4 epochs): evaluating its checkpoint so far"
    ]
    assert out.stdout.splitlines()[1].split() == ["status", "interrupted", "after", "2", "of", "4", "epochs"]
    done = cli("evaluate", str(teacher))
    assert "incomplete" not in done.stderr and "status" not in done.stdout


def test_evaluate_json_of_a_run_named_as_runs_list_names_it(
    cli: Any, teacher: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import json

    monkeypatch.setenv("ENGINE_RUNS_DIR", str(teacher.parent))
    out = cli("evaluate", "teacher", "--json")
    assert out.returncode == 0, out.stderr
    data = json.loads(out.stdout)  # JSON alone on stdout
    assert set(data) == {"split", "checkpoint", "runs"} and (data["split"], data["checkpoint"]) == ("test", "best")
    summary = engine.open_run(teacher).summary
    assert data["runs"]["teacher"]["test/accuracy"] == pytest.approx(summary["best_metrics"]["test/accuracy"])
