"""Cross-validation: ``engine run … --folds K [--group-by COLUMN]``, the ``cv`` section and the fold dealing."""

from __future__ import annotations

import csv
import json
import re
import subprocess
import sys
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from engine_experiments.folds import fold_of_each

import engine

#: ``python -c ENGINE_ALONE ARGS…``: the ``engine`` command in a fresh interpreter, exit 3 if it imported torch.
ENGINE_ALONE = """
import runpy, sys
sys.argv[0], code = "engine", 0
try:
    runpy.run_module("engine", run_name="__main__")
except SystemExit as exc:
    code = exc.code
sys.exit(code or ("torch" in sys.modules) * 3)
"""
CAPTURE: dict[str, Any] = {"capture_output": True, "text": True, "timeout": 120}


def test_folds_are_stratified_grouped_or_shuffled_and_partition_the_pool() -> None:
    targets = [i % 3 for i in range(30)]
    folds = fold_of_each(30, 5, seed=0, targets=targets)
    for k in range(5):
        assert Counter(t for t, f in zip(targets, folds, strict=True) if f == k) == {0: 2, 1: 2, 2: 2}
    groups = [i // 4 for i in range(30)]  # 8 groups
    by_group = fold_of_each(30, 3, seed=0, groups=groups)
    assert all(len({f for g2, f in zip(groups, by_group, strict=True) if g2 == g}) == 1 for g in set(groups))
    assert sorted(Counter(fold_of_each(10, 3, seed=1)).values()) == [3, 3, 4]


def test_fold_runs_validate_on_disjoint_folds(tiny: list[str]) -> None:
    seen: list[set[tuple[float, ...]]] = []
    for k in range(3):
        plan = engine.plan(engine.compose(overrides=[*tiny, "cv.folds=3", f"cv.fold={k}"]))
        splits = engine.build(plan).datamodule.splits
        seen.append({tuple(x.tolist()) for x, _ in splits["val"]})
        train = {tuple(x.tolist()) for x, _ in splits["train"]}
        assert not train & seen[-1]
    assert not (seen[0] & seen[1] or seen[0] & seen[2] or seen[1] & seen[2])
    assert sum(len(s) for s in seen) == 300 - 60  # the pooled train + val samples; test (20 %) untouched


def test_the_cv_section_is_checked_and_is_bookkeeping(tiny: list[str]) -> None:
    with pytest.raises(engine.ConfigError, match=r"cv.fold must be below cv.folds \(3\), got 3"):
        engine.plan(engine.compose(overrides=[*tiny, "cv.folds=3", "cv.fold=3"]))
    assert engine.plan(engine.compose(overrides=tiny)).config["cv"] is None  # off unless set
    (cv,) = [s for s in engine.get_registry().list("section") if s.name == "cv"]
    assert cv.bookkeeping and cv.optional and cv.plugin == "experiments"


def test_folds_options_mistakes_are_one_line(cli: Any, tiny: list[str], tmp_path: Path) -> None:
    out = cli("run", *tiny, "--group-by", "patient")
    assert out.returncode == 2 and "error: --group-by needs --folds K" in out.stderr
    assert "Traceback" not in out.stderr
    out = cli("run", *tiny, "--folds", "1", f"run.dir={tmp_path}")
    assert out.returncode == 2 and "--folds must be at least 2, got 1" in out.stderr
    run = tmp_path / "r"
    run.mkdir()
    (run / "config.yaml").write_text("seed: 0\n")
    out = cli("run", "--resume", str(run), "--folds", "3")
    assert out.returncode == 2 and "--folds does not combine with --resume" in out.stderr


def test_dry_run_with_folds_plans_fold_0_without_torch(tmp_path: Path, tiny: list[str]) -> None:
    done = subprocess.run([sys.executable, "-c", ENGINE_ALONE, "run", *tiny, "--folds", "4", "--dry-run"], **CAPTURE)
    assert done.returncode == 0, done.stderr
    assert "cv:\n  folds: 4\n  fold: 0\n  group_by: null\n" in done.stdout
    assert "# config is valid (dry run: nothing was built or trained)" in done.stderr


def test_cross_validation_writes_fold_runs_and_mean_std(cli: Any, tiny: list[str], tmp_path: Path) -> None:
    out = cli("run", *tiny, f"run.dir={tmp_path}", "run.name=cv", "--folds", "3")
    assert out.returncode == 0, out.stderr
    assert "test/accuracy *" in out.stdout and "±" in out.stdout
    result = json.loads((tmp_path / "cv" / "folds.json").read_text())
    acc = result["metrics"]["test/accuracy"]
    assert len(acc["values"]) == 3 and min(acc["values"]) <= acc["mean"] <= max(acc["values"])
    assert result["primary_metric"]["name"] == "test/accuracy"
    assert [p.name for p in sorted((tmp_path / "cv").glob("fold-*"))] == ["fold-0", "fold-1", "fold-2"]
    again = cli("run", *tiny, f"run.dir={tmp_path}", "run.name=cv", "--folds", "3")  # nothing retrained
    assert again.returncode == 0 and again.stderr.count("completed before, skipped") == 3

    collection = engine.run_collection(tmp_path / "cv")
    assert collection is not None and collection.kind == "cross-validation" and not collection.expand
    assert [name for name, _ in collection.members] == ["fold-0", "fold-1", "fold-2"]
    assert collection.figures["primary_metric"] == {"name": "test/accuracy", "mode": "max", "value": acc["mean"]}
    assert "cv" not in collection.config and collection.config["model"]["hidden"] == [16]
    listed = cli("runs", "list", "--dir", str(tmp_path))
    assert listed.returncode == 0 and "cv" in listed.stdout and "3 folds" in listed.stdout
    evaluated = cli("evaluate", str(tmp_path / "cv" / "fold-1"))  # a fold reopens on its own fold's data
    assert evaluated.returncode == 0, evaluated.stderr
    assert f"{acc['values'][1]:.4f}" in evaluated.stdout


def _table(file: Path) -> None:
    rows = [{"a": i * 0.1, "b": (i % 7) * 1.0, "patient": f"p{i // 6}", "label": i % 2} for i in range(120)]
    with file.open("w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)


def test_group_by_keeps_groups_in_one_fold_and_names_unknown_columns(cli: Any, tmp_path: Path) -> None:
    file = tmp_path / "t.csv"
    _table(file)
    base = ["model=mlp", "data=csv", f"data.path={file}", "data.features=[a,b]", "trainer.max_epochs=1"]
    bad = cli("run", *base, f"run.dir={tmp_path}", "run.name=g", "--folds", "3", "--group-by", "pateint")
    assert bad.returncode == 2 and "did you mean 'patient'" in bad.stderr
    good = cli("run", *base, f"run.dir={tmp_path}", "run.name=g2", "--folds", "3", "--group-by", "patient", "-q")
    assert good.returncode == 0, good.stderr
    assert "grouped by patient" in good.stdout
    vals = []
    for k in range(3):
        plan = engine.open_run(tmp_path / "g2" / f"fold-{k}").plan()
        splits = engine.build(plan).datamodule.splits
        vals.append({tuple(x.tolist()) for x, _ in splits["val"]})
    assert sum(map(len, vals)) == len(set().union(*vals))


OWN_DATAMODULE = """
from engine import Component, hookimpl

@hookimpl
def engine_data_sources():
    facts = ("problem", "num_classes", "in_features", "out_features")
    return [Component("blocks", "engine_blocks_data:Blocks", "a LightningDataModule of its own", facts=facts)]
"""

BLOCKS = """
import lightning as L
import torch
from torch.utils.data import DataLoader, TensorDataset


class Blocks(L.LightningDataModule):
    facts = {"problem": "classification", "num_classes": 2, "in_features": 4, "out_features": 2}

    def __init__(self) -> None:
        super().__init__()

    def train_dataloader(self):
        return DataLoader(TensorDataset(torch.randn(16, 4), torch.randint(0, 2, (16,))), batch_size=8)
"""


def test_data_with_its_own_datamodule_cannot_be_cross_validated(cli: Any, plugin_site: Any, tmp_path: Path) -> None:
    plugin_site("blocks", OWN_DATAMODULE, extra={"engine_blocks_data": BLOCKS})
    out = cli("run", "model=mlp", "data=blocks", "--folds", "2", f"run.dir={tmp_path}", "run.name=cv")
    assert out.returncode == 2, out.stderr
    assert "cross-validation needs a data source of labelled samples; 'blocks.blocks' builds its own datamodule" in (
        out.stderr
    )
    assert not (tmp_path / "cv" / "fold-0").exists()  # refused before the fold's run directory exists


def test_runs_list_and_compare_show_a_cross_validation_that_did_not_finish(
    cli: Any, tiny: list[str], tmp_path: Path, tiny_run: Any
) -> None:
    """Issue 35, defect 8: a --folds parent is listed from its first fold (it was missing until all folds ended)."""
    from engine_experiments.crossval import run_folds

    def stop(line: str) -> None:
        if line.startswith("fold 2/3: training"):
            raise KeyboardInterrupt  # the process stopped after the first fold

    cfg = engine.compose(None, overrides=[*tiny, f"run.dir={tmp_path}", "run.name=cv"])
    with pytest.raises(KeyboardInterrupt):
        run_folds(cfg, engine.get_registry(), 3, progress=stop)
    listed = cli("runs", "list", "--dir", str(tmp_path))
    assert listed.returncode == 0 and "1/3 folds, incomplete" in listed.stdout, listed.stdout
    rows = json.loads(cli("runs", "list", "--dir", str(tmp_path), "--json").stdout)
    assert [(r["name"], r["kind"]) for r in rows] == [("cv", "cross-validation")]
    tiny_run(tmp_path, "plain")
    compared = cli("runs", "compare", str(tmp_path / "cv"), str(tmp_path / "plain"), "--json")
    assert compared.returncode == 0, compared.stderr
    assert {r["name"]: r["status"] for r in json.loads(compared.stdout)["runs"]}["cv"] == "1/3 folds, incomplete"


def test_runs_compare_shows_cv_for_every_run_and_a_dash_without_folds(
    cli: Any, tiny: list[str], tmp_path: Path
) -> None:
    """Issue 35, defect 8: `cv` shown for each compared run, `-` for a run without folds (never `None`)."""
    from engine_experiments.crossval import run_folds

    from engine.testing import train_run

    run_folds(engine.compose(None, overrides=[*tiny, f"run.dir={tmp_path}", "run.name=cv"]), engine.get_registry(), 2)
    train_run(*tiny, root=tmp_path, name="plain")
    runs = [str(tmp_path / "plain"), str(tmp_path / "cv"), str(tmp_path / "cv" / "fold-1")]
    out = cli("runs", "compare", *runs, "--all")  # runs as columns
    assert out.returncode == 0, out.stderr
    names = out.stdout.splitlines()[0].split()
    cv = next(line for line in out.stdout.splitlines() if line.startswith("cv "))
    cells = dict(zip(names, re.split(r"\s{2,}", cv.strip())[1:], strict=True))
    assert cells == {"plain": "-", "cv": "2 folds", "fold-1": "fold 2/2"}, out.stdout
    assert "None" not in out.stdout  # empty settings (checkpoint.monitor …) read "-" like absent ones
    data = json.loads(cli("runs", "compare", str(tmp_path / "cv"), str(tmp_path / "plain"), "--json").stdout)
    assert {r["name"]: r["cv"] for r in data["runs"]} == {"cv": "2 folds", "plain": None}
