"""A sweep directory as a collection of runs (the ``engine_run_collection`` hook; torch-free).

Commands that read runs (``engine runs list``, ``runs compare``, ``report``) know nothing of
``sweep.json``: they ask the hook, and a sweep answers with its trials (``NNN``, ``trials/NNN``:
ordinary run directories, or cross-validation parents when the trials cross-validate), its best
trial and its figures as one row::

    import engine

    sweep = engine.run_collection("sweeps/lr")
    sweep.kind, sweep.best                     # "sweep", "007"
    sweep.members[0]                           # ("000", Path("sweeps/lr/trials/000"))
    sweep.figures["primary_metric"]            # {"name": "val/accuracy", "mode": "max", "value": 0.93}
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from engine import RunCollection
from engine.runs import read_json, status
from engine_sweep.records import FOLDS_FILE, SWEEP_FILE


def describe(path: Path) -> RunCollection | None:
    """The sweep in ``path``; None when ``path`` holds no sweep this plugin wrote."""
    if not (path / SWEEP_FILE).is_file():
        return None
    meta = read_json(path, SWEEP_FILE)
    if not isinstance(meta.get("metric"), str):
        return None  # some other tool's sweep.json
    best = meta.get("best") or {}
    best_dir = path / best["run"] if isinstance(best.get("run"), str) else None
    figures: dict[str, Any] = {
        "status": status(meta),
        "metrics": _metrics(best_dir) if best_dir is not None else {},
        "primary_metric": {"name": meta["metric"], "mode": meta.get("direction"), "value": best.get("value")},
        "wall_time_s": meta.get("wall_time_s"),
        "started": meta.get("created"),
    }
    return RunCollection(
        "sweep",
        path,
        members=[(trial.name, trial) for trial in trials(path)],
        figures=figures,
        best=best_dir.name if best_dir is not None else None,
        expand=True,
    )


def trials(path: Path) -> list[Path]:
    """The sweep's trial directories that hold a run (or a cross-validation), by number."""
    root = path / "trials"
    if not root.is_dir():
        return []
    found = [p for p in root.iterdir() if p.is_dir() and p.name.isdigit()]
    return sorted(p for p in found if (p / "config.yaml").is_file() or (p / FOLDS_FILE).is_file())


def _metrics(trial: Path) -> dict[str, float]:
    """A trial's figures: its run's final and best-checkpoint metrics, or its folds' means."""
    if (trial / FOLDS_FILE).is_file():
        folds = read_json(trial, FOLDS_FILE)
        figures = folds.get("metrics", folds)
        return {k: float(v["mean"]) for k, v in figures.items() if isinstance(v, dict) and _real(v.get("mean"))}
    summary = read_json(trial, "summary.json") if (trial / "summary.json").is_file() else {}
    metrics = {**(summary.get("metrics") or {}), **(summary.get("best_metrics") or {})}
    return {k: float(v) for k, v in metrics.items() if _real(v)}


def _real(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)
