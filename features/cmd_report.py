"""``engine report RUN… | SWEEP_DIR``."""

from __future__ import annotations

import argparse
from pathlib import Path


def cmd_report(args: argparse.Namespace) -> int:
    """``engine report RUN… | SWEEP_DIR``: the runs' curves, or a sweep's report."""
    from engine.compare import is_sweep
    from engine.report import report
    from engine.report_sweep import sweep_report

    paths = [Path(p).expanduser() for p in args.runs]
    if len(paths) == 1 and is_sweep(paths[0]):
        result = sweep_report(paths[0], Path(args.out).expanduser() if args.out else None)
    else:
        result = report(list(args.runs), args.out)
    panels = f"  (panels: {', '.join(result['panels'])})" if "panels" in result else ""
    print(f"figure:  {result['png']}{panels}")
    if "curves" in result:
        print(f"curves:  {result['curves']}")
    print(f"summary: {result['markdown']}")
    return 0
