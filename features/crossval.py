"""``engine run … --folds K``: the K fold runs of one config, in one parent directory (see :mod:`engine.folds`)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from engine.errors import ConfigError
from engine.folds import FOLDS_FILE, aggregate


def run_folds(
    cfg: dict[str, Any], registry: Any, folds: int, group_by: str | None = None, progress: Any = print
) -> tuple[Path, dict[str, Any]]:
    """Train the ``folds`` fold runs of the composed ``cfg``; the parent directory and what ``folds.json`` holds."""
    from engine.compose import merge
    from engine.plan import make_plan
    from engine.rundir import read_json, write_json
    from engine.runner import run, run_dir_path

    if folds < 2:
        raise ConfigError(f"--folds must be at least 2, got {folds}")
    base = make_plan(cfg, registry)  # every mistake found before the first fold trains
    named = bool(base.config["run"]["name"])
    run_cfg = base.config["run"]
    parent = Path(run_cfg["dir"]).expanduser() / run_cfg["name"] if named else run_dir_path(base)
    parent.mkdir(parents=True, exist_ok=True)
    summaries = []
    for k in range(folds):
        fold_cfg = merge(cfg, {"cv": {"folds": folds, "fold": k, "group_by": group_by}})
        fold_cfg = merge(fold_cfg, {"run": {"dir": str(parent), "name": f"fold-{k}"}})
        fold_dir = parent / f"fold-{k}"
        done = read_json(fold_dir, "summary.json") if (fold_dir / "summary.json").is_file() else {}
        plan = make_plan(fold_cfg, registry)
        if done.get("status") == "completed" and _same(fold_dir, plan.config):
            progress(f"fold {k + 1}/{folds}: completed before, skipped ({fold_dir})")
            summaries.append(done)
            continue
        progress(f"fold {k + 1}/{folds}: training {fold_dir}")
        resume = fold_dir if (fold_dir / "config.yaml").is_file() else None
        summaries.append(run(plan, resume=resume).summary)
    result = {"folds": folds, "group_by": group_by, "runs": [f"fold-{k}" for k in range(folds)]}
    result["metrics"] = aggregate(summaries)
    primary = summaries[0].get("primary_metric") or {}
    if primary.get("name") in result["metrics"]:
        figures = result["metrics"][primary["name"]]
        result["primary_metric"] = {"name": primary["name"], "mode": primary.get("mode"), **figures}
    write_json(parent / FOLDS_FILE, result)
    return parent, result


def _same(fold_dir: Path, config: dict[str, Any]) -> bool:
    from engine.rundir import read_config

    try:
        return read_config(fold_dir) == config
    except Exception:
        return False
