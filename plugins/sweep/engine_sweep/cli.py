"""``engine sweep``, and `sweep`, the same from Python.

::

    from engine_sweep.cli import sweep
    meta = sweep("core/mlp-synthetic", ["trainer.max_epochs=3"], space={"optimizer.lr": "loguniform(1e-4,1e-1)"},
                 metric="val/accuracy", trials=10, dir="sweeps/lr")
    meta["best"]  # {"number": 7, "value": 0.93, "params": {"optimizer.lr": 0.0061}, "run": "trials/007"}
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from engine import EngineError
from engine.console import Console, Table, format_metric
from engine_sweep import records as rec
from engine_sweep.settings import SEARCH_OPTIONS

_FLAGS = ("config", "trials", "metric", "direction", "dir", "resume", *SEARCH_OPTIONS)


def sweep(
    recipe: str | None = None,
    overrides: Sequence[str] = (),
    space: dict[str, str] | None = None,
    quiet: bool = False,
    **options: Any,
) -> dict[str, Any]:
    """Run a sweep (or ``resume="DIR"`` one) as ``engine sweep`` does; its ``sweep.json`` content.

    ``options`` are the command's flags with underscores: ``metric``, ``trials``, ``dir``,
    ``sampler``, ``pruner``, ``jobs``, ``backend``, ``folds``, ``config`` (a list of files) …
    """
    unknown = set(options) - set(_FLAGS)
    if unknown:
        raise TypeError(f"sweep() got unknown options: {', '.join(sorted(unknown))}")
    items = ([recipe] if recipe else []) + list(overrides)
    space_items = [f"{k}={v}" for k, v in (space or {}).items()]
    args = argparse.Namespace(items=items, space=space_items, disable=[], **{k: options.get(k) for k in _FLAGS})
    return execute(args, quiet=quiet)[0]


def cmd_sweep(args: argparse.Namespace) -> int:
    return execute(args)[1]


def execute(args: argparse.Namespace, quiet: bool = False) -> tuple[dict[str, Any], int]:
    """Start or resume the sweep ``args`` describe, run it, print its table; (sweep.json, exit code)."""
    from engine_sweep import context
    from engine_sweep import settings as st

    started = time.time()
    disable = tuple(getattr(args, "disable", None) or ())
    if args.resume:
        root = Path(args.resume).expanduser()
        meta = rec.read_meta(root)
        settings = st.resumed(args, meta)
    else:
        settings, run_parts = st.gather(args)
    if args.resume:
        sw = context.reopen(root, settings, meta, disable)
    else:
        sw = context.start(settings, run_parts, args.dir, disable)
    if settings["backend"] == "optuna" and (settings.get("jobs") or 1) == 1:
        checked = time.time() - started
        import lightning  # noqa: F401 - what any `engine run` imports first; not the sweep's overhead

        started = time.time() - checked
    sw.started, sw.quiet = started, quiet
    out = _Output(quiet)
    out.header(sw, bool(args.resume))
    try:
        if settings["backend"] == "ray":
            from engine_sweep.ray_backend import run_ray

            run_ray(sw, resume=bool(args.resume))
        else:
            from engine_sweep.optuna_backend import run_optuna

            run_optuna(sw, resume=bool(args.resume))
    except KeyboardInterrupt:
        sw.publish("interrupted")
        print(f"interrupted; continue with `engine sweep --resume {sw.root}`", file=sys.stderr)
        return sw.meta, 130
    except EngineError:
        sw.publish("stopped")
        raise
    except BaseException:
        sw.publish("failed")
        raise
    sw.publish("completed")
    out.table(sw)
    return sw.meta, 0 if sw.meta.get("best") else 1


class _Output:
    def __init__(self, quiet: bool) -> None:
        self.console = None if quiet else Console()

    def header(self, sw: Any, resumed: bool) -> None:
        if self.console is None:
            return
        s = sw.settings
        done = sum(1 for r in sw.records.values() if r.get("status") in rec.FINISHED)
        what = f"resuming {sw.root} ({done}/{s['trials']} finished)" if resumed else f"sweep {sw.root}"
        how = f"{s['sampler']} sampler, {s['pruner']} pruner, {s['backend']}"
        if s.get("jobs"):
            how += f", {s['jobs']} at a time"
        self.console.print(f"{what}: {s['trials']} trials, {s['direction']} {s['metric']} ({how})")

    def table(self, sw: Any) -> None:
        if self.console is None:
            return
        s, meta = sw.settings, sw.meta
        rows = rec.ranked(sw.records, s["direction"])
        from engine_sweep.space import cell

        table = Table("trial", "status", s["metric"], *sw.dims, "wall time")
        for r in rows[:10]:
            wall = r.get("wall_time_s")
            table.add_row(
                f"{r['number']:03d}",
                r["status"],
                format_metric(r.get("value")),
                *(cell(r["params"][k]) if k in r.get("params", {}) else "-" for k in sw.dims),
                f"{wall:.1f}s" if isinstance(wall, (int, float)) else "-",
            )
        self.console.print(table)
        if len(rows) > 10:
            self.console.print(f"… {len(rows) - 10} more in {sw.root / rec.RESULTS_FILE}")
        counts = meta.get("counts", {})
        self.console.print(", ".join(f"{n} {k}" for k, n in counts.items() if n) + f" in {meta['wall_time_s']:.1f} s")
        best = meta.get("best")
        if best:
            params = " ".join(f"{k}={cell(v)}" for k, v in best["params"].items())
            self.console.print(f"best: trial {best['number']:03d} {s['metric']}={best['value']:.4f}  {params}")
            self.console.print(f"best run: {sw.root / best['run']}")
        else:
            self.console.print("no trial completed")
        self.console.print(f"sweep directory: {sw.root}  (results.csv, sweep.json, best_summary.json)")
