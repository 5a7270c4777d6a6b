"""``engine pipeline FILE``: a pipeline's stages, in order, into one directory (see `.pipeline`)."""

from __future__ import annotations

import argparse
import sys

from engine.console import Console, Table
from engine_experiments.notes import metric_cell, wall


def cmd_pipeline(args: argparse.Namespace) -> int:
    from engine_experiments.pipeline import run_pipeline

    try:
        results = run_pipeline(args.file, args.dir, dry_run=args.dry_run)
    except KeyboardInterrupt:
        print(f"interrupted; run `engine pipeline {args.file}` again to continue where it stopped", file=sys.stderr)
        return 130
    console = Console()
    if args.dry_run:
        table = Table("stage", "what", "would", "directory")
        for r in results.values():
            action = r.kind if r.kind != "train" and r.action == "train" else r.action
            table.add_row(r.name, r.description, f"{action} ({r.reason})", str(r.run_dir))
        console.print(table)
        for r in results.values():
            for note in r.notes:
                print(f"# note: stage '{r.name}': {note}", file=sys.stderr)
            for line in r.plan.facts_note().splitlines() if r.plan is not None else ():
                print(f"# stage '{r.name}': {line.removeprefix('# ')}", file=sys.stderr)
        print("# every stage is valid (dry run: nothing was built or trained)", file=sys.stderr)
        return 0
    table = Table("stage", "status", "metric", "wall time", "directory")
    for r in results.values():
        table.add_row(r.name, r.status, metric_cell(r.primary_metric), wall(r.wall_time_s), str(r.run_dir))
    console.print(table)
    first = next(iter(results.values()), None)
    if first is not None:
        console.print(f"pipeline directory: {first.run_dir.parent.parent}  (pipeline.json, stages/)")
    return 0
