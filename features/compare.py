"""Runs side by side: ``engine runs compare RUN… | SWEEP_DIR`` (no torch).

Each argument is a run directory, a cross-validation parent (``folds.json``: its figures are
the folds' means) or a sweep directory (``sweep.json`` and ``trials/NNN/``: every trial). The
table shows the config keys that differ between them as columns, the primary metric first, the
other test metrics, and wall time; it is sorted by the primary metric when they share one.

The sweep directory (written by the ``engine-sweep`` plugin) is read as data::

    DIR/sweep.json    {"metric": "val/accuracy", "direction": "max", "space": {...}, "best": {...}, …}
    DIR/results.csv   number, status, one column per space key, the metric, wall_time_s, error
    DIR/trials/NNN/   each trial: a run directory (or a cross-validation parent)
"""

from __future__ import annotations

import csv
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from engine.errors import EngineError
from engine.rundir import read_config, read_json

SWEEP_FILE = "sweep.json"


@dataclass
class Entry:
    """One compared run (or cross-validation parent): its name, config, figures."""

    name: str
    path: Path
    config: dict[str, Any]
    metrics: dict[str, float]
    status: str
    wall_time_s: float | None = None
    primary: tuple[str, str] | None = None  # (metric, "max" | "min")
    extra: dict[str, Any] = field(default_factory=dict)


def is_sweep(path: Path) -> bool:
    return (path / SWEEP_FILE).is_file()


def entries(paths: list[str | Path]) -> list[Entry]:
    """The runs ``paths`` name, sweep directories expanded into their trials."""
    out: list[Entry] = []
    for raw in paths:
        path = Path(raw).expanduser()
        if is_sweep(path):
            trials = sorted(p for p in (path / "trials").iterdir() if p.is_dir()) if (path / "trials").is_dir() else []
            if not trials:
                raise EngineError(f"sweep {path} has no trials yet")
            out += [_entry(t, f"{path.name}/{t.name}") for t in trials]
        else:
            out.append(_entry(path, path.name))
    return out


def _entry(path: Path, name: str) -> Entry:
    from engine.folds import FOLDS_FILE

    if (path / FOLDS_FILE).is_file():
        folds = read_json(path, FOLDS_FILE)
        first = path / (folds.get("runs") or ["fold-0"])[0]
        config = read_config(first) if (first / "config.yaml").is_file() else {}
        config = {k: v for k, v in config.items() if k not in ("cv", "run")}
        metrics = {k: m["mean"] for k, m in (folds.get("metrics") or {}).items()}
        primary = folds.get("primary_metric") or {}
        walls = [read_json(path / r, "summary.json").get("wall_time_s") for r in folds.get("runs") or []]
        wall = sum(w for w in walls if isinstance(w, (int, float))) or None
        pm = (primary["name"], primary.get("mode") or "max") if primary.get("name") else None
        return Entry(name, path, config, metrics, f"{folds.get('folds')} folds", wall, pm)
    if not (path / "config.yaml").is_file():
        raise EngineError(f"{path} is not a run, cross-validation or sweep directory", hint="see `engine runs list`")
    summary = read_json(path, "summary.json")
    metrics = {**summary.get("metrics", {}), **summary.get("best_metrics", {})}
    primary = summary.get("primary_metric") or {}
    pm = (primary["name"], primary.get("mode") or "max") if primary.get("name") else None
    wall = summary.get("wall_time_s")
    numbers = {k: float(v) for k, v in metrics.items() if isinstance(v, (int, float))}
    return Entry(name, path, read_config(path), numbers, str(summary.get("status", "?")), wall, pm)


def flatten(cfg: Any, prefix: str = "") -> dict[str, Any]:
    """``{"model": {"hidden": [8]}}`` -> ``{"model.hidden": [8]}``."""
    if isinstance(cfg, dict):
        out: dict[str, Any] = {}
        for k, v in cfg.items():
            out.update(flatten(v, f"{prefix}{k}."))
        return out or {prefix[:-1]: {}}
    return {prefix[:-1]: cfg}


def varied(configs: list[dict[str, Any]], ignore: tuple[str, ...] | None = None) -> dict[str, list[Any]]:
    """Flattened config keys whose values differ between ``configs``, bookkeeping sections aside.

    ``ignore`` are section names left out; by default ``run`` and the installed plugins'
    ``bookkeeping`` sections (a sweep's trial number …).
    """
    if ignore is None:
        ignore = bookkeeping_sections()
    flat = [flatten(c) for c in configs]
    keys = sorted(set().union(*flat)) if flat else []
    return {
        k: [f.get(k, "-") for f in flat]
        for k in keys
        if k.split(".", 1)[0] not in ignore and len({json.dumps(f.get(k, "-"), default=str) for f in flat}) > 1
    }


def bookkeeping_sections() -> tuple[str, ...]:
    """``run`` and every section declared ``bookkeeping`` (where a run sits, not what it trains)."""
    from engine.registry import get_registry

    return ("run", *sorted(s.name for s in get_registry().sections() if s.bookkeeping))


def sorted_by_primary(items: list[Entry]) -> list[Entry]:
    """Best first when every entry shares one primary metric; else as given."""
    primaries = {e.primary for e in items}
    if len(primaries) != 1 or None in primaries:
        return items
    ((metric, mode),) = primaries
    present = [e for e in items if metric in e.metrics]
    missing = [e for e in items if metric not in e.metrics]
    return sorted(present, key=lambda e: e.metrics[metric], reverse=mode == "max") + missing


def sweep_results(path: Path) -> tuple[dict[str, Any], list[dict[str, str]]]:
    """A sweep directory's ``sweep.json`` and the rows of its ``results.csv``."""
    meta = read_json(path, SWEEP_FILE)
    file = path / "results.csv"
    rows: list[dict[str, str]] = []
    if file.is_file():
        with file.open(newline="", encoding="utf-8") as fh:
            rows = list(csv.DictReader(fh))
    return meta, rows
