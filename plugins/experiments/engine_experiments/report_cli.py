"""``engine report RUN… | COLLECTION``: the runs' curves, or a collection's report (a sweep's)."""

from __future__ import annotations

import argparse
from pathlib import Path

import engine


def cmd_report(args: argparse.Namespace) -> int:
    from engine_experiments.report import report
    from engine_experiments.report_collection import collection_report

    paths = [Path(p).expanduser() for p in args.runs]
    collection = engine.run_collection(paths[0]) if len(paths) == 1 and paths[0].is_dir() else None
    if collection is not None and (collection.figures.get("primary_metric") or {}).get("name"):
        result = collection_report(collection, Path(args.out).expanduser() if args.out else None)
    else:
        result = report(list(args.runs), args.out)
    panels = f"  (panels: {', '.join(result['panels'])})" if "panels" in result else ""
    print(f"figure:  {result['png']}{panels}")
    if "curves" in result:
        print(f"curves:  {result['curves']}")
    print(f"summary: {result['markdown']}")
    return 0
