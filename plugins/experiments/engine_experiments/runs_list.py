"""``engine runs list``: run directories oldest first; every run collection in the directory grouped.

A pipeline's stages are listed together in stage order as ``PIPELINE/STAGE`` (with their live
status: ``pending``, ``stale``, ``interrupted``), a sweep's members as ``SWEEP/MEMBER``, a
cross-validation as one row of its fold means. Collections are recognised through
`engine.run_collection`, so any plugin's collections are listed (torch-free). Without ``--dir``, the
runs directory (``$ENGINE_RUNS_DIR``, else ``runs``) and the sweeps and pipelines written to their
default places (``sweeps/``, ``pipelines/``) are listed. ``--json``: the rows as a JSON list (docs/cli.md).
"""

from __future__ import annotations

import argparse
import json
import sys
from datetime import datetime
from pathlib import Path
from typing import Any

import engine
from engine import EngineError
from engine.console import Console, Table
from engine.runs import inside, runs_root
from engine.runs import status as run_status
from engine_experiments.notes import label, shown_metric, wall
from engine_experiments.pipeline_state import STAGES, stage_rows

Row = dict[str, Any]  # name, path, kind, status, started, primary_metric, wall_time_s (+ the shown metric)
Group = tuple[str, list[Row]]  # sort key (the first start), rows kept together
#: Where `engine sweep` and `engine pipeline` write when not told: listed with the runs when --dir is not given.
COLLECTION_DIRS = ("sweeps", "pipelines")


def cmd_runs_list(args: argparse.Namespace) -> int:
    root = Path(args.dir).expanduser() if args.dir else runs_root()
    if args.dir and not root.is_dir():
        raise EngineError(f"runs directory not found: {root}", hint="give --dir a directory holding runs")
    groups = _groups(root, "")
    if not args.dir:  # the sweeps and pipelines in their default places, by their path
        for place in (Path(p) for p in COLLECTION_DIRS if Path(p).resolve() != root.resolve()):
            groups += [g for child in _children(place) for g in _collection(child, f"{place}/{child.name}/")]
    ordered = [row for _, rows in sorted(groups, key=lambda g: (g[0], g[1][0]["name"])) for row in rows]
    if args.json:
        sys.stdout.write(json.dumps([{k: v for k, v in r.items() if k != "shown"} for r in ordered], indent=2) + "\n")
        return 0
    console = Console()
    if not ordered:
        console.print(f"no runs in {root}/")
        return 0
    table = Table("run", "started", "status", "metric", "wall time")
    for r in ordered:
        started = str(r["started"] or "-").replace("T", " ")[:16]
        table.add_row(r["name"], started, r["status"], r["shown"], wall(r["wall_time_s"]))
    console.print(table)
    return 0


def _children(root: Path) -> list[Path]:
    return sorted(p for p in root.iterdir() if p.is_dir()) if root.is_dir() else []


def _groups(root: Path, prefix: str) -> list[Group]:
    """The runs and collections in ``root`` (or ``root``'s own members when it is a collection)."""
    own = engine.run_collection(root) if root.is_dir() else None
    if own is not None and own.expand:  # --dir a pipeline (a sweep …): its members, unprefixed
        return _collection_groups(own, prefix)
    groups: list[Group] = []
    for child in _children(root) if own is None or not own.expand else []:
        summary = _summary(child)
        if summary is not None:
            row = _row(prefix + child.name, run_status(summary), summary, child)
            groups.append((row["started"] or "-", [row]))
        else:
            groups += _collection(child, prefix + child.name + "/")
    return groups


def _collection(path: Path, prefix: str) -> list[Group]:
    collection = engine.run_collection(path)
    if collection is None:
        return []
    return _collection_groups(collection, prefix) if collection.expand else [_one_row(collection, prefix[:-1])]


def _summary(run_dir: Path) -> dict[str, Any] | None:
    try:
        file = inside(run_dir, "summary.json")  # a link leading out of the run is not read
        data = json.loads(file.read_text()) if file.is_file() else None
    except (OSError, ValueError, EngineError):
        return None
    return data if isinstance(data, dict) else None


def _primary(s: dict[str, Any]) -> dict[str, Any] | None:
    """``{"name", "value"}`` of the primary metric (a test or validation metric for runs that named none)."""
    shown = shown_metric(s)
    if shown == "-":
        return None
    name = shown.rsplit("=", 1)[0]
    primary = s.get("primary_metric")
    value = primary["value"] if isinstance(primary, dict) and primary.get("name") == name else s["metrics"][name]
    return {"name": name, "value": value} | ({"mode": primary["mode"]} if (primary or {}).get("mode") else {})


def _row(name: str, status: str, s: dict[str, Any], where: Path, kind: str = "run") -> Row:
    started = s.get("started")
    if not started and where.exists():
        started = datetime.fromtimestamp(where.stat().st_mtime).isoformat()
    return {
        "name": name,
        "path": str(where),
        "kind": kind,
        "status": status,
        "started": str(started) if started else None,
        "primary_metric": _primary(s),
        "wall_time_s": s.get("wall_time_s") if isinstance(s.get("wall_time_s"), (int, float)) else None,
        "shown": shown_metric(s),
    }


def _collection_groups(collection: Any, prefix: str) -> list[Group]:
    """A collection's members as rows ``PREFIX/MEMBER``, in its order, sorted as one by the first start."""
    if collection.kind == "pipeline":  # this plugin's own: stages with their live status
        path = collection.path
        rows = [_row(prefix + n, s, summary, path / STAGES / n) for n, s, summary in stage_rows(path)]
    else:
        rows = []
        for name, member in collection.members:
            summary = _summary(member)
            if summary is not None:
                rows.append(_row(prefix + label(name), run_status(summary), summary, member))
                continue
            inner = engine.run_collection(member) if member.is_dir() else None
            if inner is not None:  # a cross-validated trial
                rows.append(_one_row(inner, prefix + label(name))[1][0])
    if not rows:
        return []
    return [(min((r["started"] for r in rows if r["started"]), default="-"), rows)]


def _one_row(collection: Any, name: str | None = None) -> Group:
    """A collection shown as one row of its figures (a cross-validation: its folds' means)."""
    figures = dict(collection.figures)
    row = _row(name or collection.path.name, str(figures.get("status") or collection.kind), figures, Path())
    row.update(path=str(collection.path), kind=collection.kind, started=str(figures.get("started") or "") or None)
    return row["started"] or "-", [row]
