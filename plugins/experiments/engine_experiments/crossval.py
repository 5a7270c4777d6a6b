"""``engine run … --folds K``: the K fold runs of one config, in one parent directory (see `.folds`).

::

    from engine_experiments.crossval import run_folds

    parent, result = run_folds(engine.compose("core/mlp-synthetic"), engine.get_registry(), 5)
    result["metrics"]["test/accuracy"]["mean"], result["primary_metric"]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

import engine
from engine import EngineError
from engine.console import Console, Table, styled
from engine.runs import read_config, read_json, write_json
from engine_experiments.folds import FOLDS_FILE, aggregate


def run_folds(
    cfg: dict[str, Any], registry: Any, folds: int, group_by: str | None = None, progress: Any = print
) -> tuple[Path, dict[str, Any]]:
    """Train the ``folds`` fold runs of the composed ``cfg``; the parent directory and what ``folds.json`` holds."""
    if folds < 2:
        raise engine.ConfigError(f"--folds must be at least 2, got {folds}")
    base = engine.plan(cfg, registry=registry)  # every mistake found before the first fold trains
    parent = _parent(base)
    parent.mkdir(parents=True, exist_ok=True)
    result: dict[str, Any] = {"folds": folds, "group_by": group_by, "runs": [f"fold-{k}" for k in range(folds)]}
    # Recorded before the first fold trains: `runs list` shows a cross-validation running, failed or interrupted.
    write_json(parent / FOLDS_FILE, {**result, "status": "running"})
    summaries = []
    for k in range(folds):
        run = {**(cfg.get("run") or {}), "dir": str(parent), "name": f"fold-{k}"}
        fold_cfg = {**cfg, "cv": {"folds": folds, "fold": k, "group_by": group_by}, "run": run}
        fold_dir = parent / f"fold-{k}"
        done = read_json(fold_dir, "summary.json") if (fold_dir / "summary.json").is_file() else {}
        plan = engine.plan(fold_cfg, registry=registry)
        if done.get("status") == "completed" and _same(fold_dir, plan.config):
            progress(f"fold {k + 1}/{folds}: completed before, skipped ({fold_dir})")
            summaries.append(done)
            continue
        progress(f"fold {k + 1}/{folds}: training {fold_dir}")
        resume = fold_dir if (fold_dir / "config.yaml").is_file() else None
        summaries.append(engine.train(plan, resume=resume).summary)
    result["status"] = "completed"
    result["metrics"] = aggregate(summaries)
    primary = summaries[0].get("primary_metric") or {}
    if primary.get("name") in result["metrics"]:
        figures = result["metrics"][primary["name"]]
        result["primary_metric"] = {"name": primary["name"], "mode": primary.get("mode"), **figures}
    write_json(parent / FOLDS_FILE, result)
    return parent, result


def _parent(plan: Any) -> Path:
    """The parent directory: ``run.dir/run.name`` (a rerun continues it), else a new ``<model>-<data>-<time>``."""
    run = plan.config["run"]
    root = Path(run["dir"]).expanduser()
    if run["name"]:
        return root / run["name"]
    name = plan.default_run_name()
    path, i = root / name, 1
    while path.exists() and any(path.iterdir()):
        path, i = root / f"{name}-{i}", i + 1
    return path


def _same(fold_dir: Path, config: dict[str, Any]) -> bool:
    try:
        return read_config(fold_dir) == config
    except Exception:
        return False


def run_main(args: argparse.Namespace, config: dict[str, Any]) -> int:
    """``engine run`` with ``--folds`` (or ``--group-by``): check the options, then train or plan the folds."""
    folds, group_by = getattr(args, "folds", None), getattr(args, "group_by", None)
    if group_by and not folds:
        raise EngineError("--group-by needs --folds K", hint="e.g. --folds 5 --group-by patient")
    if getattr(args, "resume", None):
        raise EngineError(
            "--folds does not combine with --resume",
            hint="run the same command with the same run.name: completed folds are skipped, others resumed",
        )
    registry = engine.get_registry()
    if not args.dry_run:
        return _train_folds(config, registry, folds, group_by)
    import yaml

    plan = engine.plan({**config, "cv": {"folds": folds, "fold": 0, "group_by": group_by}}, registry=registry)
    for note in plan.notes:
        print(f"# note: {note}", file=sys.stderr)
    sys.stdout.write(yaml.safe_dump(plan.config, sort_keys=False))
    print(plan.facts_note(), file=sys.stderr)
    print("# config is valid (dry run: nothing was built or trained)", file=sys.stderr)
    return 0


def _train_folds(cfg: dict[str, Any], registry: Any, folds: int, group_by: str | None) -> int:
    parent, result = run_folds(cfg, registry, folds, group_by, progress=lambda line: print(line, file=sys.stderr))
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
