"""``engine runs list``: run directories oldest first; every run collection in the directory grouped.

A pipeline's stages are listed together in stage order as ``PIPELINE/STAGE`` (with their live
status: ``pending``, ``stale``, ``interrupted``), a sweep's members as ``SWEEP/MEMBER``, a
cross-validation as one row of its fold means. Collections are recognised through
`engine.run_collection`, so any plugin's collections are listed (torch-free).
"""

from __future__ import annotations

import argparse
import json
from datetime import datetime
from pathlib import Path
from typing import Any

import engine
from engine import EngineError
from engine.console import Console, Table
from engine.runs import inside
from engine.runs import status as run_status
from engine_experiments.notes import label, shown_metric, wall
from engine_experiments.pipeline_state import STAGES, stage_rows

Row = tuple[str, str, str, str, str]  # name, status, metric, wall time, started
Group = tuple[str, list[Row]]  # sort key (the first start), rows kept together


def cmd_runs_list(args: argparse.Namespace) -> int:
    root = Path(args.dir)
    groups: list[Group] = []
    own = engine.run_collection(root) if root.is_dir() else None
    if own is not None and own.expand:  # --dir a pipeline (a sweep …): its members, unprefixed
        groups += _collection_groups(own, "")
    listed = root.is_dir() and (own is None or not own.expand)
    children = sorted(p for p in root.iterdir() if p.is_dir()) if listed else []
    for child in children:
        summary = _summary(child)
        if summary is not None:
            row = _row(child.name, run_status(summary), summary, child)
            groups.append((row[-1], [row]))
            continue
        collection = engine.run_collection(child)
        if collection is not None:
            groups += _collection_groups(collection, child.name + "/") if collection.expand else [_one_row(collection)]
    console = Console()
    if not groups:
        console.print(f"no runs in {root}/")
        return 0
    table = Table("run", "started", "status", "metric", "wall time")
    for _, rows in sorted(groups, key=lambda g: (g[0], g[1][0][0])):
        for name, status, shown, seconds, started in rows:
            table.add_row(name, started.replace("T", " ")[:16], status, shown, seconds)
    console.print(table)
    return 0


def _summary(run_dir: Path) -> dict[str, Any] | None:
    try:
        file = inside(run_dir, "summary.json")  # a link leading out of the run is not read
        data = json.loads(file.read_text()) if file.is_file() else None
    except (OSError, ValueError, EngineError):
        return None
    return data if isinstance(data, dict) else None


def _row(name: str, status: str, s: dict[str, Any], where: Path) -> Row:
    started = s.get("started")
    if not started and where.exists():
        started = datetime.fromtimestamp(where.stat().st_mtime).isoformat()
    return name, status, shown_metric(s), wall(s.get("wall_time_s")), str(started or "-")


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
    return [(min((r[-1] for r in rows if r[-1] != "-"), default="-"), rows)]


def _one_row(collection: Any, name: str | None = None) -> Group:
    """A collection shown as one row of its figures (a cross-validation: its folds' means)."""
    figures = dict(collection.figures)
    started = str(figures.get("started") or "-")
    row = (
        name or collection.path.name,
        str(figures.get("status") or collection.kind),
        shown_metric(figures),
        wall(figures.get("wall_time_s")),
        started,
    )
    return started, [row]
