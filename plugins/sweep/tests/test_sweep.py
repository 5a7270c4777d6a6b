"""Optuna sweeps end to end: the sweep directory contract, failures, a missing metric, pruning, --jobs, --folds."""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any

import pytest
import yaml

METRIC = ["--metric", "val/accuracy"]


def read_json(path: Path) -> dict[str, Any]:
    return json.loads(path.read_text())


def _rows(root: Path) -> list[dict[str, str]]:
    with (root / "results.csv").open() as fh:
        return list(csv.DictReader(fh))


def _study_states(root: Path) -> list[str]:
    import optuna

    study = optuna.load_study(study_name="sweep", storage=f"sqlite:///{root / 'study.db'}")
    return [t.state.name for t in study.get_trials(deepcopy=False)]


def test_a_four_trial_optuna_sweep_writes_the_sweep_directory(cli: Any, base: list[str], tmp_path: Path) -> None:
    root = tmp_path / "lr"
    space = ["--space", "optimizer.lr=loguniform(1e-3,1e-1)", "--space", "model.hidden=choice([8],[16,16])"]
    r = cli("sweep", *base, *space, "--trials", "4", *METRIC, "--dir", str(root))
    assert r.returncode == 0, r.stderr
    assert "trial 003" in r.stdout and "best: trial" in r.stdout and "sweep directory:" in r.stdout

    meta = read_json(root / "sweep.json")
    assert meta["metric"] == "val/accuracy" and meta["direction"] == "max" and meta["backend"] == "optuna"
    assert meta["space"] == {"optimizer.lr": "loguniform(1e-3,1e-1)", "model.hidden": "choice([8],[16,16])"}
    assert meta["trials"] == 4 and meta["status"] == "completed"
    assert meta["base"]["recipe"] == "core/mlp-synthetic" and meta["base"]["overrides"] == base[1:]

    rows = _rows(root)
    assert list(rows[0]) == ["number", "status", "optimizer.lr", "model.hidden", "val/accuracy", "wall_time_s", "error"]
    assert sorted(int(r["number"]) for r in rows) == [0, 1, 2, 3]
    values = [float(r["val/accuracy"]) for r in rows]
    assert values == sorted(values, reverse=True)  # best first
    assert all(r["status"] == "completed" and float(r["wall_time_s"]) > 0 and not r["error"] for r in rows)

    best = meta["best"]
    assert best["run"] == f"trials/{best['number']:03d}" and best["value"] == values[0]
    assert set(best["params"]) == {"optimizer.lr", "model.hidden"} and best["params"]["model.hidden"] in ([8], [16, 16])
    best_run = root / best["run"]
    assert read_json(root / "best_summary.json") == read_json(best_run / "summary.json")
    for n in range(4):
        run = root / f"trials/{n:03d}"
        summary = read_json(run / "summary.json")
        assert summary["status"] == "completed" and (run / "checkpoints" / "best.ckpt").is_file()
        config = yaml.safe_load((run / "config.yaml").read_text())
        record = read_json(root / "records" / f"{n:03d}.json")
        assert config["optimizer"]["lr"] == record["params"]["optimizer.lr"]
        assert config["model"]["hidden"] == record["params"]["model.hidden"]
        assert config["checkpoint"]["monitor"] == "val/accuracy" and config["checkpoint"]["mode"] == "max"
        assert config["sweep"]["number"] == n and config["sweep"]["storage"].endswith("study.db")
        assert summary["best_metrics"]["val/accuracy"] == record["value"]
    assert _study_states(root) == ["COMPLETE"] * 4


def test_a_sweep_yaml_and_a_failing_trial(cli: Any, tmp_path: Path) -> None:
    file = tmp_path / "sweep.yaml"
    file.write_text(
        yaml.safe_dump(
            {
                "recipe": "core/mlp-synthetic",
                "overrides": ["trainer.max_epochs=1", "scheduler=null"],
                "metric": "val/accuracy",
                "sampler": "grid",
                "space": {"model.hidden": "choice([8],[1000000000000])"},  # plans; refused at build: no memory
                "data": {"num_samples": 240, "num_features": 6},  # run config, as with `engine run -c`
                "model": {"name": "mlp"},
            }
        )
    )
    root = tmp_path / "yaml"
    r = cli("sweep", "-c", str(file), "--dir", str(root))
    assert r.returncode == 0, r.stderr  # one trial failed, the sweep went on and found a best
    rows = _rows(root)
    assert [(r["status"], r["model.hidden"]) for r in rows] == [("completed", "[8]"), ("failed", "[1000000000000]")]
    assert "memory is available" in rows[1]["error"] and rows[1]["val/accuracy"] == ""
    meta = read_json(root / "sweep.json")
    assert meta["trials"] == 2 and meta["counts"] == {"completed": 1, "pruned": 0, "failed": 1}
    assert meta["base"]["files"] == ["config/base-0.yaml"]
    good = root / f"trials/{int(rows[0]['number']):03d}"
    assert yaml.safe_load((good / "config.yaml").read_text())["data"]["num_samples"] == 240
    assert sorted(_study_states(root)) == ["COMPLETE", "FAIL"]

    # --fail-fast: the failing trial (first with this seed) stops the sweep, exit 1
    root = tmp_path / "fast"
    r = cli("sweep", "-c", str(file), "--dir", str(root), "--fail-fast")
    assert r.returncode == 1 and "--fail-fast: trial 000 failed" in r.stderr
    assert [r["status"] for r in _rows(root)] == ["failed"] and read_json(root / "sweep.json")["status"] == "stopped"


def test_a_metric_the_run_never_logs_stops_the_sweep_at_the_first_trial(
    cli: Any, base: list[str], tmp_path: Path
) -> None:
    root = tmp_path / "typo"
    space = ["--space", "optimizer.lr=loguniform(1e-3,1e-1)"]
    r = cli("sweep", *base, *space, "--trials", "5", "--metric", "val/acc", "--dir", str(root))
    assert r.returncode == 2
    assert "error: --metric val/acc: trial 000 never logged it — did you mean 'val/accuracy'" in r.stderr
    assert "val/accuracy" in r.stderr.splitlines()[1]  # the hint lists what it logs
    assert len(_rows(root)) == 1 and not (root / "records" / "001.json").exists()


def test_median_pruning_stops_a_poor_trial_early(cli: Any, base: list[str], tmp_path: Path) -> None:
    root = tmp_path / "pruned"
    args = [*base, "trainer.max_epochs=4", "--sampler", "grid", "--space", "optimizer.lr=choice(1e-7,0.05)"]
    prune = ["--pruner", "median", "--prune-startup", "1", "--prune-warmup", "0"]
    r = cli("sweep", *args, *prune, *METRIC, "--dir", str(root))
    assert r.returncode == 0, r.stderr
    rows = {r["optimizer.lr"]: r for r in _rows(root)}
    assert rows["0.05"]["status"] == "completed" and rows["1e-07"]["status"] == "pruned"
    poor = root / f"trials/{int(rows['1e-07']['number']):03d}"
    summary = read_json(poor / "summary.json")
    assert summary["status"] == "completed" and summary["sweep"]["pruned"] is True  # stopped, tested, kept
    assert summary["epochs"] < 4
    assert read_json(root / "sweep.json")["best"]["params"] == {"optimizer.lr": 0.05}
    assert sorted(_study_states(root)) == ["COMPLETE", "PRUNED"]


@pytest.mark.slow
def test_jobs_run_trials_in_processes_dividing_the_threads(cli: Any, base: list[str], tmp_path: Path) -> None:
    from engine_sweep.trial import threads_per_job

    root = tmp_path / "jobs"
    args = [*base, "trainer.max_epochs=1", "--space", "optimizer.lr=loguniform(1e-3,1e-1)", "--trials", "2"]
    r = cli("sweep", *args, "--jobs", "2", *METRIC, "--dir", str(root))
    assert r.returncode == 0, r.stderr
    records = [read_json(root / "records" / f"{n:03d}.json") for n in range(2)]
    assert all(r["status"] == "completed" for r in records)
    assert {r["threads"] for r in records} == {threads_per_job(2)}
    pids = {read_json(root / r["run"] / "summary.json")["pid"] for r in records}
    assert len(pids) == 2 and not pids & {__import__("os").getpid()}  # two worker processes, not this one


def test_folds_pass_through_and_the_trial_metric_is_the_fold_mean(cli: Any, base: list[str], tmp_path: Path) -> None:
    from engine_sweep.trial import cross_validation

    cross_validation()  # the core has cross-validation (engine run --folds K)
    root = tmp_path / "cv"
    args = [*base, "trainer.max_epochs=1", "--space", "optimizer.lr=loguniform(1e-3,1e-1)", "--trials", "2"]
    r = cli("sweep", *args, "--folds", "2", *METRIC, "--dir", str(root))
    assert r.returncode == 0, r.stderr
    for r in _rows(root):
        trial = root / f"trials/{int(r['number']):03d}"
        folds = read_json(trial / "folds.json")
        figures = folds.get("metrics", folds)["val/accuracy"]
        assert float(r["val/accuracy"]) == pytest.approx(figures["mean"]) and len(figures["values"]) == 2
        assert (trial / "fold-0" / "summary.json").is_file() and (trial / "fold-1" / "summary.json").is_file()
    best = read_json(root / "sweep.json")["best"]
    assert read_json(root / "best_summary.json") == read_json(root / best["run"] / "folds.json")
