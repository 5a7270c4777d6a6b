"""The run collections this plugin writes, described for every command that reads runs (torch-free).

- a cross-validation parent (``folds.json``): one row of figures, the folds' means
  (``expand=False``), members ``fold-0`` … ``fold-K-1``;
- a pipeline directory (``pipeline.json``): its stages in order (``expand=True``).

Commands ask `engine.run_collection` (the ``engine_run_collection`` hook), so a sweep
directory, described by its own plugin, is expanded and summarised the same way.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from engine import EngineError, RunCollection
from engine.runs import read_config, read_json
from engine_experiments.folds import FOLDS_FILE
from engine_experiments.pipeline_state import PIPELINE_FILE, STAGES, read_state


def describe(path: Path) -> RunCollection | None:
    """``path`` as a cross-validation or a pipeline, else None (also when its records cannot be read)."""
    try:
        if (path / FOLDS_FILE).is_file():
            return cross_validation(path)
        if (path / PIPELINE_FILE).is_file():
            return pipeline(path)
    except EngineError:  # a damaged record: not listed as a collection, rather than failing every listing
        return None
    return None


def cross_validation(path: Path) -> RunCollection:
    """A cross-validation parent: its folds, and the folds' means as its figures."""
    folds = read_json(path, FOLDS_FILE)
    runs = [str(r) for r in folds.get("runs") or []] or [f"fold-{k}" for k in range(int(folds.get("folds") or 0))]
    members = [(r, path / r) for r in runs]
    metrics = {k: m["mean"] for k, m in (folds.get("metrics") or {}).items() if isinstance(m, dict) and "mean" in m}
    figures: dict[str, Any] = {"status": _cv_status(folds, [_summary(p) for _, p in members]), "metrics": metrics}
    primary = folds.get("primary_metric") or {}
    if primary.get("name"):
        figures["primary_metric"] = {
            "name": primary["name"],
            "mode": primary.get("mode") or "max",
            "value": primary.get("mean"),
        }
    summaries = [_summary(p) for _, p in members]
    walls = [s.get("wall_time_s") for s in summaries]
    figures["wall_time_s"] = sum(w for w in walls if isinstance(w, (int, float))) or None
    started = sorted(str(s["started"]) for s in summaries if s.get("started"))
    if started:
        figures["started"] = started[0]
    config: dict[str, Any] = {}
    first = members[0][1] if members else None
    if first is not None and (first / "config.yaml").is_file():
        config = {k: v for k, v in read_config(first).items() if k not in ("cv", "run")}
    return RunCollection("cross-validation", path, members, figures, config, expand=False)


def _cv_status(folds: dict[str, Any], summaries: list[dict[str, Any]]) -> str:
    """``5 folds`` when complete; else how far it got (``2/5 folds, failed``, or ``incomplete``: running or stopped)."""
    total = folds.get("folds")
    if folds.get("status", "completed") == "completed":  # records before the status was written are complete
        return f"{total} folds"
    done = sum(s.get("status") == "completed" for s in summaries)
    states = {str(s.get("status")) for s in summaries if s and s.get("status") != "completed"}
    state = "failed" if "failed" in states else "interrupted" if "interrupted" in states else "incomplete"
    return f"{done}/{total} folds, {state}"


def pipeline(path: Path) -> RunCollection:
    """A pipeline directory: its stages in order, its status and start."""
    state = read_state(path)
    names = [str(n) for n, r in (state.get("stages") or {}).items() if isinstance(r, dict)]
    figures = {k: state[k] for k in ("status", "started") if state.get(k)}
    return RunCollection("pipeline", path, [(n, path / STAGES / n) for n in names], figures)


def _summary(run_dir: Path) -> dict[str, Any]:
    try:
        return read_json(run_dir, "summary.json")
    except EngineError:
        return {}
