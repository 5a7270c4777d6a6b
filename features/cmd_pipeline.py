"""``engine pipeline FILE``: a pipeline's stages, in order, into one directory (see :mod:`engine.pipeline`)."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from engine.console import Console, Table, format_metric


def cmd_pipeline(args: argparse.Namespace) -> int:
    from engine.commands.inspect import registry
    from engine.pipeline import run_pipeline

    reg = registry(args)
    try:
        results = run_pipeline(args.file, args.dir, dry_run=args.dry_run, registry=reg)
    except KeyboardInterrupt:
        print(f"interrupted; run `engine pipeline {args.file}` again to continue where it stopped", file=sys.stderr)
        return 130
    console = Console()
    if args.dry_run:
        from engine.commands.run import facts_note

        table = Table("stage", "what", "would", "directory")
        for r in results.values():
            action = "deploy" if r.kind == "deploy" and r.action == "train" else r.action
            table.add_row(r.name, r.description, f"{action} ({r.reason})", str(r.run_dir))
        console.print(table)
        for r in results.values():
            for note in r.notes:
                print(f"# note: stage '{r.name}': {note}", file=sys.stderr)
            for line in facts_note(r.plan).splitlines() if r.plan is not None else ():
                print(f"# stage '{r.name}': {line.removeprefix('# ')}", file=sys.stderr)
        print("# every stage is valid (dry run: nothing was built or trained)", file=sys.stderr)
        return 0
    table = Table("stage", "status", "metric", "wall time", "directory")
    for r in results.values():
        table.add_row(r.name, r.status, _metric(r.primary_metric), _wall(r.wall_time_s), str(r.run_dir))
    console.print(table)
    first = next(iter(results.values()), None)
    if first is not None:
        console.print(f"pipeline directory: {first.run_dir.parent.parent}  (pipeline.json, stages/)")
    return 0


def _metric(primary: Any) -> str:
    if isinstance(primary, dict) and isinstance(primary.get("value"), (int, float)):
        return f"{primary['name']}={format_metric(float(primary['value']))}"
    return "-"


def _wall(seconds: Any) -> str:
    return f"{seconds:.1f}s" if isinstance(seconds, (int, float)) else "-"
