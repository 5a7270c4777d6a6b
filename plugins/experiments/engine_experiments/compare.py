"""``engine runs compare RUN… | COLLECTION…``: runs side by side (no torch).

Each argument is a run directory or a run collection (`engine.run_collection`): a collection
whose members are listed one by one (a sweep's trials, a pipeline's stages) is expanded into them,
one that sums its members up (a cross-validation: its folds' means) is one row. The table shows
the config keys that differ between them as columns, the primary metric first, the other test
metrics, and wall time; it is sorted by the primary metric the runs share (runs without it, an
interrupted one, last). A table wider than the terminal is turned: runs as columns, keys as rows
(``--all``: every config key and metric, always turned).
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import engine
from engine import EngineError
from engine.console import Console, Table, format_metric, styled
from engine.runs import find_run, read_config, read_json
from engine_experiments.notes import label


@dataclass
class Entry:
    """One compared run (or collection summed up as one row): its name, config, figures."""

    name: str
    path: Path
    config: dict[str, Any]
    metrics: dict[str, float]
    status: str
    wall_time_s: float | None = None
    primary: tuple[str, str] | None = None  # (metric, "max" | "min")
    extra: dict[str, Any] = field(default_factory=dict)


def entries(paths: list[str | Path]) -> list[Entry]:
    """The runs ``paths`` name, collections that list their members expanded into them."""
    out: list[Entry] = []
    for raw in paths:
        path = find_run(raw)  # a path, or a name as `engine runs list` prints it
        collection = engine.run_collection(path) if path.is_dir() else None
        if collection is not None and collection.expand:
            named = [(member, f"{path.name}/{label(name)}") for name, member in collection.members]
            found = [e for member, name in named if (e := member_entry(member, name))]
            if not found:
                raise EngineError(f"{collection.kind} {path} has no runs yet")
            out += found
        elif collection is not None:
            out.append(collection_entry(collection, path.name))
        else:
            out.append(run_entry(path, path.name))
    return out


def member_entry(path: Path, name: str) -> Entry | None:
    """A collection's member as an entry: a run, or a collection summed up; None for anything else (a step)."""
    if (path / "config.yaml").is_file():
        return run_entry(path, name)
    inner = engine.run_collection(path) if path.is_dir() else None
    return collection_entry(inner, name) if inner is not None else None


def collection_entry(collection: Any, name: str) -> Entry:
    """A collection as one row: its figures (a cross-validation's means) and the config its members share."""
    figures = collection.figures
    primary = figures.get("primary_metric") or {}
    pm = (primary["name"], primary.get("mode") or "max") if primary.get("name") else None
    metrics = {k: float(v) for k, v in (figures.get("metrics") or {}).items() if _number(v)}
    status = str(figures.get("status") or collection.kind)
    extra = {"cv": f"{len(collection.members)} folds"} if collection.kind == "cross-validation" else {}
    return Entry(name, collection.path, dict(collection.config), metrics, status, figures.get("wall_time_s"), pm, extra)


def run_entry(path: Path, name: str) -> Entry:
    if not (path / "config.yaml").is_file():
        raise EngineError(f"{path} is not a run, cross-validation or sweep directory", hint="see `engine runs list`")
    summary = read_json(path, "summary.json")
    metrics = {**summary.get("metrics", {}), **summary.get("best_metrics", {})}
    primary = summary.get("primary_metric") or {}
    pm = (primary["name"], primary.get("mode") or "max") if primary.get("name") else None
    numbers = {k: float(v) for k, v in metrics.items() if _number(v)}
    status = str(summary.get("status", "?"))
    config = read_config(path)
    cv = config.get("cv") if isinstance(config.get("cv"), dict) else None
    extra = {"cv": f"fold {int(cv.get('fold') or 0) + 1}/{cv.get('folds')}"} if cv else {}
    return Entry(name, path, config, numbers, status, summary.get("wall_time_s"), pm, extra)


def _number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


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
    ``bookkeeping`` sections (a sweep's trial number, a fold …).
    """
    if ignore is None:
        ignore = bookkeeping_sections()
    flat = [flatten(c) for c in configs]
    keys = sorted(set().union(*flat)) if flat else []
    return {
        k: [f.get(k, "-") for f in flat]
        for k in keys
        if k.split(".", 1)[0] not in ignore and len({json.dumps(_unset(f.get(k)), default=str) for f in flat}) > 1
    }


def _unset(value: Any) -> Any:
    """A value, with None and an absent key made one (``-``): both mean the setting is not used."""
    return "-" if value is None else value


def bookkeeping_sections() -> tuple[str, ...]:
    """``run`` and every section declared ``bookkeeping`` (where a run sits, not what it trains)."""
    return ("run", *sorted(s.name for s in engine.get_registry().list("section") if s.bookkeeping))


def shared_primary(items: list[Entry]) -> tuple[str, str] | None:
    """The primary metric the entries that have one share (an interrupted run without one aside); else None."""
    primaries = {e.primary for e in items if e.primary is not None}
    return next(iter(primaries)) if len(primaries) == 1 else None


def sorted_by_primary(items: list[Entry]) -> list[Entry]:
    """Best first by the primary metric the entries share; entries without it (interrupted) last, as given."""
    shared = shared_primary(items)
    if shared is None:
        return items
    metric, mode = shared
    present = [e for e in items if metric in e.metrics]
    missing = [e for e in items if metric not in e.metrics]
    return sorted(present, key=lambda e: e.metrics[metric], reverse=mode == "max") + missing


def cmd_runs_compare(args: argparse.Namespace) -> int:
    items = sorted_by_primary(entries(list(args.runs)))
    names = [e.name for e in items]
    for e in items:  # two runs of one name (runs/a/seed0, runs/b/seed0): told apart by their parent directory
        e.name = f"{e.path.parent.name}/{e.name}" if names.count(e.name) > 1 else e.name
    everything = getattr(args, "all", False)
    params = varied([e.config for e in items]) if not everything else _all_keys([e.config for e in items])
    primary = (shared_primary(items) or (None,))[0]
    others = sorted({k for e in items for k in e.metrics if k.startswith("test/") and k != primary})
    if everything:
        others = sorted({k for e in items for k in e.metrics if k != primary})
    else:
        others = others or sorted({k for e in items for k in e.metrics if k.startswith("val/") and k != primary})
        others = others[: args.max_metrics]
    metrics = ([primary] if primary else []) + others
    if args.json:
        sys.stdout.write(json.dumps(_json(items, params, primary), indent=2, default=str) + "\n")
        return 0
    rows: list[tuple[Any, list[str]]] = [("status", [e.status for e in items])]
    if any("cv" in e.extra for e in items):  # cross-validation: the folds of each (the cv section is bookkeeping)
        rows.append(("cv", [e.extra.get("cv", "-") for e in items]))
    rows += [(k, [_cell(flatten(e.config).get(k, "-")) for e in items]) for k in params]
    rows += [
        (styled(k + " *", "bold") if k == primary else k, [format_metric(e.metrics.get(k)) for e in items])
        for k in metrics
    ]
    walls = [f"{e.wall_time_s:.1f}s" if isinstance(e.wall_time_s, (int, float)) else "-" for e in items]
    rows.append(("wall time", walls))
    table = Table("run", *(head for head, _ in rows))
    for i, e in enumerate(items):
        table.add_row(e.name, *(cells[i] for _, cells in rows))
    if max(map(len, table.lines())) > _width() or everything:
        # Too wide for the terminal (or everything asked for): the runs as columns, the keys as rows.
        keys = min(32, max(len(str(head)) for head, _ in rows))
        room = max(8, (_width() - keys - 2) // len(items) - 2)
        table = Table("", *(_clip(e.name, room) for e in items))
        for head, cells in rows:
            table.add_row(_clip(head, keys), *(_clip(c, room) for c in cells))
    console = Console()
    console.print(table)
    if not params:
        console.print("(the runs have the same config apart from their names)")
    return 0


def _all_keys(configs: list[dict[str, Any]]) -> dict[str, list[Any]]:
    """Every flattened config key (bookkeeping sections aside), for ``--all``."""
    ignore = bookkeeping_sections()
    flat = [flatten(c) for c in configs]
    keys = sorted(k for k in set().union(*flat) if k.split(".", 1)[0] not in ignore)
    return {k: [f.get(k, "-") for f in flat] for k in keys}


def _width() -> int:
    """The terminal's width (``COLUMNS``; 120 in a pipe)."""
    import shutil

    return shutil.get_terminal_size((120, 24)).columns


def _clip(text: str, room: int) -> str:
    """``text`` cut to ``room`` characters (``…`` marks the cut)."""
    return text if len(text) <= room else text[: room - 1] + "…"


def _cell(value: Any) -> str:
    """A config value: floats to 4 significant digits (``1e-08``, ``0.003``), not 4 decimals."""
    if value is None:  # a setting left empty reads like one that is absent: `-`, never `None`
        return "-"
    return f"{value:.4g}" if isinstance(value, float) else str(value)


def _json(items: list[Entry], params: dict[str, list[Any]], primary: str | None) -> dict[str, Any]:
    """``runs compare --json`` (docs/cli.md): the varied keys, the shared primary metric, each run in order."""
    runs = []
    for e in items:
        flat = flatten(e.config)
        pm = {"name": e.primary[0], "mode": e.primary[1], "value": e.metrics.get(e.primary[0])} if e.primary else None
        runs.append(
            {"name": e.name, "path": str(e.path), "status": e.status, "config": {k: flat.get(k) for k in params}}
            | {"primary_metric": pm, "metrics": e.metrics, "wall_time_s": e.wall_time_s, "cv": e.extra.get("cv")}
        )
    return {"varied": list(params), "primary_metric": primary, "runs": runs}
