"""``engine report``: training curves and a Markdown summary; what help and listing import."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("matplotlib")


def _rows(n: int, **series: Any) -> list[dict[str, float]]:
    return [{"step": float(i), **{k: float(f(i)) for k, f in series.items()}} for i in range(n)]


def test_report_draws_a_baseline_in_its_metrics_panel_and_leaves_out_timing_and_constants() -> None:
    from engine_experiments.report import figure, line_style, panels

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
    top = fig.texts[0].get_window_extent(renderer)  # the suptitle
    for ax in fig.axes:
        assert not top.overlaps(ax.title.get_window_extent(renderer))
        assert not top.overlaps(ax.get_window_extent(renderer))


def test_report_marks_the_best_checkpoint_labels_y_axes_and_keeps_identical_runs_apart() -> None:
    from engine_experiments.report import figure

    rows = _rows(
        10,
        **{
            "train/loss": lambda i: 1 / (i + 1),
            "val/loss": lambda i: 1.2 / (i + 1),
            "val/accuracy": lambda i: 0.1 * i,
            "lr-AdamW": lambda i: 1e-3 * (1 - i / 10),
        },
    )
    fig, titles, _ = figure([("seed0", rows), ("seed0'", rows)], best={"seed0": 6.0, "seed0'": 6.0})
    assert titles == ["loss", "accuracy", "learning rate"]
    for ax, title in zip(fig.axes, titles, strict=True):
        assert ax.get_ylabel() == title
        marks = [line for line in ax.get_lines() if line.get_gid() == "best"]
        assert [m.get_xdata()[0] for m in marks] == [5.0, 5.0]  # at each run's best evaluation (CSV step 5)
        assert "seed0 best" in ax.get_legend_handles_labels()[1]
    lines = {line.get_label(): line for line in fig.axes[0].get_lines()}
    # Two identical runs: their curves coincide, so each run has its own markers and dashes.
    assert lines["seed0 val/loss"].get_marker() != lines["seed0' val/loss"].get_marker()
    assert lines["seed0 train/loss"].get_linestyle() != lines["seed0' train/loss"].get_linestyle()
    one, _, _ = figure([("r", rows)], best={"r": 3.0})
    assert "best checkpoint" in one.axes[0].get_legend_handles_labels()[1]


def test_report_md_shows_the_config_as_yaml_with_short_floats(tmp_path: Path) -> None:
    from types import SimpleNamespace

    import yaml
    from engine_experiments.report import markdown

    config = {"model": {"name": "core.mlp", "dropout": 0.30000000000000004}, "optimizer": {"lr": 0.1 + 0.2}}
    summary = {"status": "completed", "metrics": {"test/accuracy": 0.9}, "wall_time_s": 2.0}
    text = markdown([SimpleNamespace(path=tmp_path / "r", config=config, summary=summary)], "curves.png")
    block = text.split("## Config")[1].split("```yaml\n")[1].split("```")[0]
    assert yaml.safe_load(block) == {"model": {"name": "core.mlp", "dropout": 0.3}, "optimizer": {"lr": 0.3}}
    assert "0000000" not in text and "{'" not in text  # no 16 digits, no Python dicts
    other = {**config, "optimizer": {"lr": 0.1 + 0.2, "betas": [0.9, 0.1 + 0.2]}}
    two = markdown(
        [SimpleNamespace(path=tmp_path / n, config=c, summary=summary) for n, c in (("a", config), ("b", other))],
        "curves.png",
    )
    assert "| optimizer.betas | - | [0.9, 0.3] |" in two


def test_report_of_one_run_goes_into_it_and_names_what_it_left_out(cli: Any, tiny_run: Any, tmp_path: Path) -> None:
    run = tiny_run(tmp_path, "r", "trainer.max_epochs=2").run_dir
    out = cli("report", str(run))
    assert out.returncode == 0, out.stderr
    assert f"summary: {run / 'report' / 'report.md'}" in out.stdout
    text = (run / "report" / "report.md").read_text()
    assert "Not drawn:" in text and "constant" in text and "## Config" in text
    missing = cli("report", str(tmp_path / "nope"))
    assert missing.returncode == 2 and "run directory not found" in missing.stderr


def test_report_writes_png_and_markdown(cli: Any, tiny_run: Any, tmp_path: Path) -> None:
    first = tiny_run(tmp_path, "first", "model.hidden=[32]", "trainer.max_epochs=3").run_dir
    other = tiny_run(tmp_path, "lr", "model.hidden=[32]", "optimizer.lr=0.01", "trainer.max_epochs=2").run_dir
    out = cli("report", str(first), str(other), "--out", str(tmp_path / "rep"))
    assert out.returncode == 0, out.stderr
    png = tmp_path / "rep" / "curves.png"
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 10_000
    text = (tmp_path / "rep" / "report.md").read_text()
    assert "| optimizer.lr | 0.0010 | 0.0100 |" in text and "## Runs" in text
    assert "loss" in out.stdout and "learning rate" not in out.stdout  # each run's lr is constant: in the table
    assert "`lr-AdamW` (constant 0.0010, 0.0100)" in text


def test_help_and_listing_stay_torch_free() -> None:
    code = (
        "import runpy, sys\n"
        "for argv in (['report', '--help'], ['evaluate', '--help'], ['pipeline', '--help'], ['runs', 'list']):\n"
        "    sys.argv = ['engine', *argv]\n"
        "    try:\n        runpy.run_module('engine', run_name='__main__')\n    except SystemExit:\n        pass\n"
        "assert 'torch' not in sys.modules and 'matplotlib' not in sys.modules, sorted(sys.modules)\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "--ensemble" in done.stdout and "--out DIR" in done.stdout and "${stages.NAME}" in done.stdout


def test_a_collections_scatter_has_a_title(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from engine_experiments import report_collection

    figures: list[Any] = []
    monkeypatch.setattr(report_collection, "save_png", lambda fig, file: figures.append(fig))
    rows = [
        {"name": f"trials/{i}", "value": v, "config": {"optimizer": {"lr": lr}}}
        for i, (v, lr) in enumerate(((0.5, 1e-3), (0.7, 1e-2)))
    ]
    report_collection._scatter(rows, "val/accuracy", ["optimizer.lr"], rows[1], tmp_path / "s.png", "Sweep lr")
    assert figures[0].get_suptitle() == "Sweep lr" and figures[0].axes[0].get_ylabel() == "val/accuracy"
