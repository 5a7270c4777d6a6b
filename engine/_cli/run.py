"""``engine run``: compose, plan, train; the end-of-run table."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import Any

import yaml

from engine._cli.console import Console, Table, format_metric, styled
from engine._cli.inspect import registry
from engine._config.compose import compose, load_file
from engine._config.plan import make_plan
from engine._contract.errors import EngineError
from engine._run.resume import check_resume
from engine._run.runner import train
from engine._run.runs import find_run


def compose_from_args(
    args: argparse.Namespace, reg: Any, notes: list[str] | None = None
) -> tuple[dict[str, Any], Path | None]:
    """``[RECIPE] KEY=VALUE…`` (and ``-c`` files, ``--resume RUN``) composed; ``notes`` as `compose`'s."""
    recipe = None
    overrides: list[str] = []
    for item in args.items:
        if "=" in item:
            overrides.append(item)
        elif recipe is None and not overrides and args.resume is None:
            recipe = item
        else:
            raise EngineError(
                f"cannot read '{item[:60]}': not an override (expected key=value)",
                hint="only one recipe name may come first; for example model=mlp",
            )
    resume = base = None
    if args.resume:
        resume = find_run(args.resume)  # also a name as `engine runs list` prints it
        if not (resume / "config.yaml").is_file():
            raise EngineError(f"{resume} is not a run directory (no config.yaml)", hint="see `engine runs list`")
        base = load_file(resume / "config.yaml")
    return compose(reg, recipe, args.config or [], overrides, base=base, notes=notes), resume


def cmd_run(args: argparse.Namespace) -> int:
    """Compose, let a plugin take over (``engine_run_main``), plan, then print the config (dry run) or train."""
    reg, dropped = registry(args), []
    cfg, resume = compose_from_args(args, reg, dropped)
    code = reg.manager.first("engine_run_main", args=args, config=cfg)  # a plugin's options (--folds K) take over
    if code is not None:
        return int(code)
    plan = make_plan(cfg, reg)
    for note in plan.notes:
        print(f"# note: {note}", file=sys.stderr)
    if args.dry_run:
        for note in dropped:  # recipe keys a swapped component dropped
            print(f"# note: {note}", file=sys.stderr)
        if resume is not None:
            check_resume(plan, resume)  # a new length the run's scheduler cannot follow is refused here too
        sys.stdout.write(yaml.safe_dump(plan.config, sort_keys=False))
        print(plan.facts_note(), file=sys.stderr)
        print("# config is valid (dry run: nothing was built or trained)", file=sys.stderr)
        return 0
    result = train(plan, resume=resume)
    if os.environ.get("LOCAL_RANK", "0") != "0":
        return 0
    console = Console()
    console.print(results_table(result.summary))
    console.print(f"wall time {result.summary['wall_time_s']:.1f} s, {result.summary['global_step']} steps")
    console.print(f"run directory: {result.run_dir}")
    return 0


def results_table(summary: dict[str, Any]) -> Table:
    """Evaluation metrics (every ``split/name`` but ``train/``: val, test, a plugin's ``heldout/`` …), the primary
    first: final beside the best checkpoint's (which the test pass measures)."""
    final, best = summary.get("metrics", {}), summary.get("best_metrics", {})
    primary = (summary.get("primary_metric") or {}).get("name")
    step = summary.get("best_step")
    keys = sorted(k for k in {*final, *best} if "/" in k and not k.startswith("train/"))
    keys.sort(key=lambda k: k != primary)
    tested_best = bool(summary.get("best_checkpoint"))
    table = Table("metric", "final", "best checkpoint" + (f" (step {step})" if step is not None else ""))
    for key in keys:
        last = None if tested_best and not key.startswith("val/") and key in best else final.get(key)
        name = styled(key + " *", "bold") if key == primary else key
        table.add_row(name, format_metric(last), format_metric(best.get(key)))
    return table
