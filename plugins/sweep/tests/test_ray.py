"""``--backend ray``: the same sweep on Ray Tune (OptunaSearch + ASHA) on a local Ray of 2 CPUs."""

from __future__ import annotations

import csv
import json
import time
from pathlib import Path

import pytest


@pytest.fixture
def local_ray():
    """A local Ray (127.0.0.1, 2 CPUs, no dashboard), shut down after the test."""
    ray = pytest.importorskip("ray")
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, _node_ip_address="127.0.0.1")
    try:
        yield ray
    finally:
        ray.shutdown()


@pytest.mark.slow
def test_ray_backend_runs_two_trials_into_the_same_sweep_directory(local_ray, base: list[str], tmp_path: Path) -> None:
    from engine_sweep.cli import sweep

    root = tmp_path / "ray"
    started = time.perf_counter()
    meta = sweep(
        base[0],
        [*base[1:], "trainer.max_epochs=3"],
        space={"optimizer.lr": "loguniform(1e-3,1e-1)", "model.hidden": "choice([8],[16])"},
        metric="val/accuracy",
        trials=2,
        backend="ray",
        dir=str(root),
    )
    wall = time.perf_counter() - started
    print(f"\nray sweep of 2 trials: {wall:.1f} s wall (trials {meta['trial_wall_time_s']:.1f} s)")
    assert meta["backend"] == "ray" and meta["status"] == "completed" and meta["finished"] == 2
    with (root / "results.csv").open() as fh:
        rows = list(csv.DictReader(fh))
    assert next(list(r) for r in rows) == [
        "number",
        "status",
        "optimizer.lr",
        "model.hidden",
        "val/accuracy",
        "wall_time_s",
        "error",
    ]
    assert sorted(int(r["number"]) for r in rows) == [0, 1]
    assert all(r["status"] in ("completed", "pruned") for r in rows)
    completed = [r for r in rows if r["status"] == "completed"]
    assert completed and meta["best"]["run"] == f"trials/{int(completed[0]['number']):03d}"
    for r in completed:
        summary = json.loads((root / f"trials/{int(r['number']):03d}" / "summary.json").read_text())
        assert summary["status"] == "completed"
        assert summary["best_metrics"]["val/accuracy"] == pytest.approx(float(r["val/accuracy"]))
    assert (root / "best_summary.json").is_file() and (root / "ray").is_dir()
    import optuna  # Ray's OptunaSearch kept its study in the sweep's study.db

    study = optuna.load_study(study_name="sweep", storage=f"sqlite:///{root / 'study.db'}")
    assert len(study.get_trials(deepcopy=False)) == 2


def test_the_searcher_numbers_trials_and_the_ledger_pickles(tmp_path: Path) -> None:
    """Without starting Ray: resumed trials keep their numbers, new ones follow; the pruner maps to a
    scheduler; and the ledger (with its sweep) pickles, as Ray pickles the Tuner's callbacks."""
    pytest.importorskip("ray")
    from engine_sweep.context import Sweep
    from engine_sweep.ray_backend import Ledger, Numbered, Stop, _scheduler
    from engine_sweep.space import parse_space
    from ray import cloudpickle
    from ray.tune.schedulers import ASHAScheduler, FIFOScheduler

    class Inner:
        def suggest(self, trial_id: str) -> dict[str, float]:
            return {"optimizer.lr": 0.01}

    numbered = Numbered(Inner(), "val/accuracy", "max", first=5, reuse=[2])
    assert [numbered.suggest(str(i))["engine_number"] for i in range(3)] == [2, 5, 6]
    settings = {"metric": "val/accuracy", "direction": "max", "pruner": "halving", "prune_warmup": 1}
    settings.update(prune_startup=5, folds=None)
    sweep = Sweep(tmp_path, {"steps_per_fold": 3}, settings, parse_space({"optimizer.lr": "uniform(0,1)"}))
    assert isinstance(_scheduler(sweep), ASHAScheduler)
    assert isinstance(_scheduler(Sweep(tmp_path, {}, {**settings, "pruner": "none"}, sweep.dims)), FIFOScheduler)
    again = cloudpickle.loads(cloudpickle.dumps(Ledger(sweep, Stop())))
    assert again.sweep.settings == settings and again.sweep.root == tmp_path
