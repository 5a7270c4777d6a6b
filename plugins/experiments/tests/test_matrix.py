"""The seeds x threads recipe matrix (`engine_experiments.matrix`) and its bench script."""

from __future__ import annotations

import io
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from engine_experiments.matrix import print_matrix, run_matrix

from engine.testing import parse_target

BENCH = Path(__file__).resolve().parents[1] / "bench" / "recipe_matrix.py"


def _rows(*cells: tuple[int, int, float]) -> list[dict]:
    return [
        {"recipe": "x/y", "seed": s, "threads": t, "metrics": {"test/accuracy": v}, "wall_time_s": 1.0}
        for s, t, v in cells
    ]


def test_the_matrix_names_its_worst_cell_and_whether_every_target_held() -> None:
    targets = {"x/y": [parse_target("test/accuracy >= 0.97")]}
    out = io.StringIO()
    assert print_matrix(_rows((0, 1, 1.0), (0, 2, 0.98), (1, 2, 0.99)), targets, out) is True
    assert "worst of 3 for test/accuracy >= 0.97: 0.9800 (seed 0, 2 threads) held" in out.getvalue()
    out = io.StringIO()
    assert print_matrix(_rows((0, 1, 1.0), (0, 2, 0.906)), targets, out) is False
    assert "0.9060 MISSED" in out.getvalue() and "(seed 0, 2 threads) NOT MET" in out.getvalue()
    broken = [*_rows((0, 1, 1.0)), {"recipe": "x/y", "seed": 1, "threads": 1, "metrics": {}, "error": "boom"}]
    broken[-1]["wall_time_s"] = 0.0
    out = io.StringIO()
    assert print_matrix(broken, targets, out) is False  # a cell that failed is the worst cell
    assert "(seed 1, 1 threads) NOT MET" in out.getvalue()


def test_run_matrix_sets_each_thread_count_records_failures_and_restores_the_callers() -> None:
    import torch

    before = torch.get_num_threads()
    seen = []

    def train(recipe: str, seed: int) -> dict:
        seen.append((recipe, seed, torch.get_num_threads()))
        if seed == 1:
            raise RuntimeError("diverged\nsecond line")
        return {"test/accuracy": 1.0}

    rows = run_matrix(["a/b"], [0, 1], [1, 2], train, progress=None)
    assert seen == [("a/b", 0, 1), ("a/b", 1, 1), ("a/b", 0, 2), ("a/b", 1, 2)]
    assert [r.get("error") for r in rows] == [None, "RuntimeError: diverged", None, "RuntimeError: diverged"]
    assert torch.get_num_threads() == before


def _run_dir(root: Path, name: str, accuracy: float) -> str:
    run = root / name
    run.mkdir()
    summary = {"status": "completed", "wall_time_s": 3.0, "metrics": {"test/accuracy": accuracy}}
    (run / "summary.json").write_text(json.dumps(summary))
    (run / "facts.json").write_text("{}")
    return str(run)


#: A plugin with a recipe declaring a target, as the bench reads recipes from the registry.
TARGETED = """
from engine import Recipe, hookimpl

@hookimpl
def engine_recipes():
    return [Recipe("tiny", {"model": "mlp", "data": "synthetic"}, "a recipe with a target",
                   targets=("test/accuracy >= 0.99",))]
"""


@pytest.mark.slow
def test_the_matrix_bench_tabulates_finished_runs(plugin_site: Any, tmp_path: Path) -> None:
    plugin_site("matrixdemo", TARGETED)
    runs = [_run_dir(tmp_path, "matrixdemo-tiny-seed0-threads1", 1.0)]
    runs.append(_run_dir(tmp_path, "matrixdemo-tiny-seed0-threads2", 0.98))
    out = subprocess.run([sys.executable, str(BENCH), "--runs", *runs], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert "0.9800 MISSED" in out.stdout
    assert "worst of 2 for test/accuracy >= 0.99: 0.9800 (seed 0, 2 threads)" in out.stdout
    assert "every target held in every cell: False" in out.stdout
    other = _run_dir(tmp_path, "something-else", 1.0)
    out = subprocess.run([sys.executable, str(BENCH), "--runs", other], capture_output=True, text=True)
    assert out.returncode != 0 and "not a run of this script" in out.stderr
