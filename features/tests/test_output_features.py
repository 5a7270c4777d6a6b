"""What users see: logs in a non-terminal run, report panels, and the messages of issue 25."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from engine.testing import run_cli

ROOT = Path(__file__).resolve().parents[1]
TINY = ["model=mlp", "data=synthetic", "data.num_samples=200", "model.hidden=[8]", "trainer.max_epochs=2"]

MODEL = """
from engine import Component, Recipe, hookimpl

@hookimpl
def engine_models():
    return [Component("net", "engine.builtins.models:MLP", "an MLP under another name")]

@hookimpl
def engine_recipes():
    return [Recipe("demo", {"model": "net", "data": "synthetic", "trainer": {"max_epochs": 1}})]
"""


# --------------------------------------------------------------------------- logs


def test_report_draws_a_baseline_in_its_metrics_panel_and_leaves_out_timing_and_constants() -> None:
    from engine.report import figure, line_style, panels

    rows = _rows(
        6,
        **{
            "train/loss": lambda i: 1 / (i + 1),
            "val/loss": lambda i: 1.2 / (i + 1),
            "val/hr@10": lambda i: 0.1 * i,
            "val/pop_hr@10": lambda i: 0.2 + 0.001 * i,
            "train/tokens_per_s": lambda i: 1000 + i,
            "lr-AdamW": lambda i: 1e-3,
        },
    )
    fig, titles, skipped = figure([("a", rows), ("b", rows)])
    assert titles == ["loss", "hr@10"]  # two runs, one panel each; no lr or timing panels
    assert skipped == {"lr-AdamW": "constant 0.0010, 0.0010", "train/tokens_per_s": "timing"}
    assert dict(panels(set(rows[0]), skipped))["hr@10"] == ["val/hr@10", "val/pop_hr@10"]
    assert line_style("val/pop_hr@10", ["val/hr@10", "val/pop_hr@10"])["linestyle"] == "--"
    assert line_style("val/hr@10", ["val/hr@10", "val/pop_hr@10"])["linestyle"] == "-"
    panel = fig.axes[1]
    styles = {line.get_label(): line.get_linestyle() for line in panel.get_lines()}
    assert styles == {
        "a val/hr@10": "-",
        "a val/pop_hr@10 (baseline)": "--",
        "b val/hr@10": "-",
        "b val/pop_hr@10 (baseline)": "--",
    }
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    top = fig._suptitle.get_window_extent(renderer)
    for ax in fig.axes:
        assert not top.overlaps(ax.title.get_window_extent(renderer))
        assert not top.overlaps(ax.get_window_extent(renderer))


def test_report_md_names_what_it_left_out(tmp_path: Path) -> None:
    out = run_cli("run", *TINY, "trainer.max_epochs=3", f"run.dir={tmp_path}", "run.name=r", "-q")
    assert out.returncode == 0, out.stderr
    from engine.report import report

    written = report([str(tmp_path / "r")])
    assert "learning rate" not in written["panels"]  # AdamW at a constant lr
    assert "Not drawn:" in written["text"] and "constant" in written["text"]


def test_evaluating_a_run_whose_plugin_is_gone_names_its_distribution(plugin_site, tmp_path: Path) -> None:
    site = plugin_site("acme", MODEL, version="2.3")
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


def test_new_plugin_accepts_a_hyphenated_name(tmp_path: Path) -> None:
    out = run_cli("new", "plugin", "acme-widgets", cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    root = tmp_path / "engine-acme-widgets"
    assert (root / "src" / "engine_acme_widgets").is_dir() or (root / "engine_acme_widgets").is_dir()
    assert "acme_widgets = " in (root / "pyproject.toml").read_text()
    assert f"engine plugins install -e {root.name}" in out.stdout and "engine run acme_widgets/demo" in out.stdout
    bad = run_cli("new", "plugin", "9-lives", cwd=tmp_path)
    assert bad.returncode == 2 and "acme-widgets: package engine_acme_widgets" in bad.stderr


def test_runs_list_sorts_by_start(tmp_path: Path) -> None:
    for name, started in (("b-first", "2026-01-01T10:00:00"), ("a-second", "2026-01-02T09:00:00")):
        (tmp_path / name).mkdir()
        summary = {"status": "completed", "started": started, "wall_time_s": 1.0}
        (tmp_path / name / "summary.json").write_text(json.dumps(summary))
    out = run_cli("runs", "list", "--dir", str(tmp_path))
    assert out.returncode == 0, out.stderr
    assert out.stdout.index("b-first") < out.stdout.index("a-second")
    assert "2026-01-01 10:00" in out.stdout


