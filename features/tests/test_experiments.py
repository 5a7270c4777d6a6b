"""Cross-validation (``--folds``), run comparison (``runs compare``), sweep reports, torchrun: one directory."""

from __future__ import annotations

import csv
import json
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest

import engine
from engine.cli import main
from engine.folds import fold_of_each

QUIET = ["trainer.enable_progress_bar=false", "trainer.enable_model_summary=false"]
TINY = ["model=mlp", "model.hidden=[16]", "data=synthetic", "data.num_samples=300", "trainer.max_epochs=1", *QUIET]


def test_folds_are_stratified_grouped_or_shuffled_and_partition_the_pool() -> None:
    targets = [i % 3 for i in range(30)]
    folds = fold_of_each(30, 5, seed=0, targets=targets)
    for k in range(5):
        assert Counter(t for t, f in zip(targets, folds, strict=True) if f == k) == {0: 2, 1: 2, 2: 2}
    groups = [i // 4 for i in range(30)]  # 8 groups
    by_group = fold_of_each(30, 3, seed=0, groups=groups)
    assert all(len({f for g2, f in zip(groups, by_group, strict=True) if g2 == g}) == 1 for g in set(groups))
    assert sorted(Counter(fold_of_each(10, 3, seed=1)).values()) == [3, 3, 4]


def test_fold_runs_validate_on_disjoint_folds() -> None:
    from engine.build import build_data
    from engine.compose import compose
    from engine.plan import make_plan

    reg = engine.get_registry()
    seen: list[set[tuple[float, ...]]] = []
    for k in range(3):
        plan = make_plan(compose(reg, None, [], [*TINY, "cv.folds=3", f"cv.fold={k}"]), reg)
        dm = build_data(plan)
        seen.append({tuple(x.tolist()) for x, _ in dm.splits["val"]})
        train = {tuple(x.tolist()) for x, _ in dm.splits["train"]}
        assert not train & seen[-1]
    assert not (seen[0] & seen[1] or seen[0] & seen[2] or seen[1] & seen[2])
    assert sum(len(s) for s in seen) == 300 - 60  # the pooled train + val samples; test (20 %) untouched


def test_cross_validation_writes_fold_runs_and_mean_std(tmp_path: Path, capsys) -> None:
    assert main(["run", *TINY, f"run.dir={tmp_path}", "run.name=cv", "--folds", "3"]) == 0
    out = capsys.readouterr().out
    assert "test/accuracy *" in out and "±" in out
    result = json.loads((tmp_path / "cv" / "folds.json").read_text())
    acc = result["metrics"]["test/accuracy"]
    assert len(acc["values"]) == 3 and min(acc["values"]) <= acc["mean"] <= max(acc["values"])
    assert result["primary_metric"]["name"] == "test/accuracy"
    assert [p.name for p in sorted((tmp_path / "cv").glob("fold-*"))] == ["fold-0", "fold-1", "fold-2"]
    assert main(["run", *TINY, f"run.dir={tmp_path}", "run.name=cv", "--folds", "3"]) == 0  # again: nothing retrained
    assert capsys.readouterr().err.count("completed before, skipped") == 3


def test_group_by_keeps_groups_in_one_fold_and_names_unknown_columns(tmp_path: Path, capsys) -> None:
    rows = [{"a": i * 0.1, "b": (i % 7) * 1.0, "patient": f"p{i // 6}", "label": i % 2} for i in range(120)]
    file = tmp_path / "t.csv"
    with file.open("w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    base = ["model=mlp", "data=csv", f"data.path={file}", "data.features=[a,b]", "trainer.max_epochs=1", *QUIET]
    assert main(["run", *base, f"run.dir={tmp_path}", "run.name=g", "--folds", "3", "--group-by", "pateint"]) == 2
    assert "did you mean 'patient'" in capsys.readouterr().err
    assert main(["run", *base, f"run.dir={tmp_path}", "run.name=g2", "--folds", "3", "--group-by", "patient"]) == 0


def test_runs_compare_shows_what_differs(tmp_path: Path, capsys) -> None:
    for name, lr in (("slow", "1e-4"), ("fast", "3e-2")):
        assert main(["run", *TINY, f"optimizer.lr={lr}", f"run.dir={tmp_path}", f"run.name={name}"]) == 0
    capsys.readouterr()
    assert main(["runs", "compare", str(tmp_path / "slow"), str(tmp_path / "fast")]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert "optimizer.lr" in lines[0] and "test/accuracy *" in lines[0]
    assert {lines[1].split()[0], lines[2].split()[0]} == {"slow", "fast"}
    assert main(["runs", "compare", str(tmp_path / "nothing")]) == 2


def _fake_sweep(tmp_path: Path) -> Path:
    """A sweep directory as engine-sweep writes it, with real tiny trials."""
    sweep = tmp_path / "sweep"
    rows = []
    for i, lr in enumerate((1e-4, 3e-3, 3e-2)):
        name = f"{i:03d}"
        assert main(["run", *TINY, f"optimizer.lr={lr}", f"run.dir={sweep / 'trials'}", f"run.name='{name}'"]) == 0
        summary = json.loads((sweep / "trials" / name / "summary.json").read_text())
        metric = summary["best_metrics"]["val/accuracy"]
        rows.append({"number": i, "status": "completed", "optimizer.lr": lr, "val/accuracy": metric, "wall_time_s": 1})
    best = max(rows, key=lambda r: r["val/accuracy"])
    meta = {
        "metric": "val/accuracy",
        "direction": "max",
        "space": {"optimizer.lr": "loguniform(1e-4,1e-1)"},
        "trials": 3,
        "backend": "optuna",
        "best": {
            "number": best["number"],
            "value": best["val/accuracy"],
            "params": {"optimizer.lr": best["optimizer.lr"]},
            "run": f"trials/{best['number']:03d}",
        },
    }
    (sweep / "sweep.json").write_text(json.dumps(meta))
    with (sweep / "results.csv").open("w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=[*rows[0], "error"])
        writer.writeheader()
        writer.writerows(sorted(rows, key=lambda r: -r["val/accuracy"]))
    return sweep


def test_a_sweep_directory_is_compared_and_reported(tmp_path: Path, capsys) -> None:
    pytest.importorskip("matplotlib")
    sweep = _fake_sweep(tmp_path)
    capsys.readouterr()
    assert main(["runs", "compare", str(sweep)]) == 0
    out = capsys.readouterr().out
    assert out.count("sweep/") == 3 and "optimizer.lr" in out.splitlines()[0]
    assert main(["report", str(sweep)]) == 0
    assert (sweep / "report" / "sweep.png").stat().st_size > 1000 and (sweep / "report" / "curves.png").is_file()
    assert "finished trials of 3" in (sweep / "report" / "report.md").read_text()


def test_torchrun_writes_one_run_directory(tmp_path: Path) -> None:
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node=2", "--standalone", "-m", "engine"]
    cmd += ["run", *TINY, "trainer.strategy=ddp", "trainer.accelerator=cpu", "trainer.devices=2"]
    out = subprocess.run([*cmd, f"run.dir={tmp_path}"], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    (run,) = [p for p in tmp_path.iterdir() if (p / "config.yaml").is_file()]  # both ranks: one directory
    assert json.loads((run / "summary.json").read_text())["status"] == "completed"
