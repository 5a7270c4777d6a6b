"""``engine run`` and ``engine runs list`` (which lists a pipeline directory's stages too, grouped)."""

from __future__ import annotations

import argparse
import json
import os
import sys
from datetime import datetime
from pathlib import Path
from typing import Any

from engine.console import Console, Table, format_metric, styled
from engine.errors import EngineError
from engine.rundir import status as run_status


def compose_from_args(args: argparse.Namespace, reg: Any) -> tuple[dict[str, Any], Path | None]:
    """``[RECIPE] KEY=VALUE…`` (and ``-c`` files, ``--resume RUN``) composed."""
    from engine.compose import compose, load_file

    recipe = None
    overrides: list[str] = []
    for item in args.items:
        if "=" in item:
            overrides.append(item)
        elif recipe is None and not overrides and args.resume is None:
            recipe = item
        else:
            raise EngineError(
                f"cannot read '{item}': expected key=value",
                hint="only one recipe name may come first; for example model=mlp",
            )
    resume = base = None
    if args.resume:
        resume = Path(args.resume)
        if not (resume / "config.yaml").is_file():
            raise EngineError(f"{resume} is not a run directory (no config.yaml)", hint="see `engine runs list`")
        base = load_file(resume / "config.yaml")
    return compose(reg, recipe, args.config or [], overrides, base=base), resume


def cmd_run(args: argparse.Namespace) -> int:
    import yaml

    from engine.commands.inspect import registry
    from engine.plan import make_plan

    reg = registry(args)
    cfg, resume = compose_from_args(args, reg)
    if args.group_by and not args.folds:
        raise EngineError("--group-by needs --folds K", hint="e.g. --folds 5 --group-by patient")
    if args.folds is not None:
        if resume is not None:
            raise EngineError(
                "--folds does not combine with --resume",
                hint="run the same command with the same run.name: completed folds are skipped, others resumed",
            )
        if not args.dry_run:
            return _run_folds(cfg, reg, args.folds, args.group_by)
        cfg = {**cfg, "cv": {"folds": args.folds, "fold": 0, "group_by": args.group_by}}
    plan = make_plan(cfg, reg)
    for note in plan.notes:
        print(f"# note: {note}", file=sys.stderr)
    if args.dry_run:
        sys.stdout.write(yaml.safe_dump(plan.config, sort_keys=False))
        print(facts_note(plan), file=sys.stderr)
        print("# config is valid (dry run: nothing was built or trained)", file=sys.stderr)
        return 0
    from engine.runner import run

    result = run(plan, resume=resume)
    if os.environ.get("LOCAL_RANK", "0") != "0":
        return 0
    console = Console()
    console.print(results_table(result.summary))
    s = result.summary
    console.print(f"wall time {s['wall_time_s']:.1f} s, {s['global_step']} steps")
    console.print(f"run directory: {result.run_dir}")
    return 0


def _run_folds(cfg: dict[str, Any], reg: Any, folds: int, group_by: str | None) -> int:
    from engine.crossval import run_folds

    parent, result = run_folds(cfg, reg, folds, group_by, progress=lambda line: print(line, file=sys.stderr))
    table = Table("metric", "mean ± std", "folds")
    primary = (result.get("primary_metric") or {}).get("name")
    keys = sorted(result["metrics"], key=lambda k: (k != primary, not k.startswith("test/"), k))
    for key in keys:
        m = result["metrics"][key]
        name = styled(key + " *", "bold") if key == primary else key
        table.add_row(name, f"{m['mean']:.4f} ± {m['std']:.4f}", " ".join(f"{v:.4f}" for v in m["values"]))
    console = Console()
    console.print(table)
    console.print(f"{folds} folds ({'grouped by ' + group_by if group_by else 'stratified by class when classes'})")
    console.print(f"run directory: {parent}  (folds.json, fold-0 … fold-{folds - 1})")
    return 0


def results_table(summary: dict[str, Any]) -> Table:
    """Validation and test metrics: final values beside the best checkpoint's, the primary metric first.

    Test metrics are measured on the best checkpoint (when there is one), so they sit in its column.
    """
    final, best = summary.get("metrics", {}), summary.get("best_metrics", {})
    primary = (summary.get("primary_metric") or {}).get("name")
    step = summary.get("best_step")
    keys = sorted(k for k in {*final, *best} if k.startswith(("test/", "val/")))
    keys.sort(key=lambda k: k != primary)
    tested_best = bool(summary.get("best_checkpoint"))
    table = Table("metric", "final", "best checkpoint" + (f" (step {step})" if step is not None else ""))
    for key in keys:
        last = None if key.startswith("test/") and tested_best else final.get(key)
        name = styled(key + " *", "bold") if key == primary else key
        table.add_row(name, format_metric(last), format_metric(best.get(key)))
    return table


def _shown_metric(s: dict[str, Any]) -> str:
    primary = s.get("primary_metric")
    if isinstance(primary, dict) and isinstance(primary.get("value"), (int, float)):
        return f"{primary['name']}={primary['value']:.4f}"
    metrics = s.get("metrics", {})  # runs from before tasks named their primary metric
    key = next((k for k in sorted(metrics) if k.startswith("test/") and k != "test/loss"), None)
    key = key or next((k for k in sorted(metrics) if k.startswith("val/")), None)
    return f"{key}={metrics[key]:.4f}" if key and isinstance(metrics[key], (int, float)) else "-"


def facts_note(plan: Any) -> str:
    """What the data source will tell the run, and which parameters that fills (``--dry-run``)."""
    name = plan.data.qualified_name
    if not plan.data.facts:
        return f"# data facts: {name} declares none (its facts are known once it is loaded)"
    filled = ", ".join(plan.from_facts) or "nothing (every parameter named like a fact is set)"
    return (
        f"# data facts of {name} (values known once it is loaded): {', '.join(plan.data.facts)}\n"
        f"# filled from them: {filled}"
    )


def cmd_runs_list(args: argparse.Namespace) -> int:
    from engine.pipeline import is_pipeline

    root = Path(args.dir)
    groups: list[tuple[str, list[tuple[str, str, str, str, str]]]] = []  # (sort key, rows), a pipeline's together
    if is_pipeline(root):
        groups += _pipeline_groups(root, "")
    for summary_file in sorted(root.glob("*/summary.json")):
        try:
            s = json.loads(summary_file.read_text())
        except (OSError, ValueError):
            continue
        if isinstance(s, dict):
            row = _row(summary_file.parent.name, run_status(s), s, summary_file.parent)
            groups.append((row[-1], [row]))
    for child in sorted(root.glob("*/pipeline.json")):
        groups += _pipeline_groups(child.parent, child.parent.name + "/")
    console = Console()
    if not groups:
        console.print(f"no runs in {root}/")
        return 0
    table = Table("run", "started", "status", "metric", "wall time")
    for _, rows in sorted(groups, key=lambda g: (g[0], g[1][0][0])):
        for name, status, shown, wall, started in rows:
            table.add_row(name, started.replace("T", " ")[:16], status, shown, wall)
    console.print(table)
    return 0


def _row(name: str, status: str, s: dict[str, Any], where: Path) -> tuple[str, str, str, str, str]:
    wall = f"{s['wall_time_s']:.1f}s" if isinstance(s.get("wall_time_s"), (int, float)) else "-"
    started = s.get("started")
    if not started and where.exists():
        started = datetime.fromtimestamp(where.stat().st_mtime).isoformat()
    return name, status, _shown_metric(s), wall, str(started or "-")


def _pipeline_groups(pipeline_dir: Path, prefix: str) -> list[tuple[str, list[tuple[str, str, str, str, str]]]]:
    """A pipeline's stages as rows ``PREFIX/STAGE``, in stage order, sorted as one by the first start."""
    from engine.pipeline import STAGES, stage_rows

    rows = [
        _row(prefix + name, status, s, pipeline_dir / STAGES / name) for name, status, s in stage_rows(pipeline_dir)
    ]
    if not rows:
        return []
    return [(min((r[-1] for r in rows if r[-1] != "-"), default="-"), rows)]
