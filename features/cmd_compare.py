"""``engine runs compare RUN… | SWEEP_DIR``: one table of runs, their differing settings and figures."""

from __future__ import annotations

import argparse
from typing import Any

from engine.console import Console, Table, format_metric, styled


def cmd_runs_compare(args: argparse.Namespace) -> int:
    from engine.compare import entries, flatten, sorted_by_primary, varied

    items = sorted_by_primary(entries(list(args.runs)))
    params = varied([e.config for e in items])
    first = items[0].primary
    primary = first[0] if first and all(e.primary == first for e in items) else None
    others = sorted({k for e in items for k in e.metrics if k.startswith("test/") and k != primary})
    others = others or sorted({k for e in items for k in e.metrics if k.startswith("val/") and k != primary})
    metrics = ([primary] if primary else []) + others[: args.max_metrics]
    heads = [styled(k + " *", "bold") if k == primary else k for k in metrics]
    table = Table("run", "status", *params, *heads, "wall time")
    for e in items:
        flat = flatten(e.config)
        table.add_row(
            e.name,
            e.status,
            *(_cell(flat.get(k, "-")) for k in params),
            *(format_metric(e.metrics.get(k)) for k in metrics),
            f"{e.wall_time_s:.1f}s" if isinstance(e.wall_time_s, (int, float)) else "-",
        )
    console = Console()
    console.print(table)
    if not params:
        console.print("(the runs have the same config apart from their names)")
    return 0


def _cell(value: Any) -> str:
    return format_metric(value) if isinstance(value, float) else str(value)
