"""A sweep's settings from the command line and sweep YAML files, checked before any trial starts.

Later wins: the defaults, each ``-c FILE`` (its sweep keys; the rest of the file is run config),
the command's flags. A sweep YAML::

    recipe: core/mlp-synthetic      # optional: the run every trial starts from
    overrides: [trainer.max_epochs=3]
    metric: val/accuracy
    direction: max
    trials: 20
    space:
      optimizer.lr: loguniform(1e-4,1e-1)
      model.hidden: choice([32],[64,64])
    data: {num_samples: 2000}       # anything else: the run's config, as with `engine run -c`
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from engine import ConfigError, EngineError

#: How to search, the same in a sweep YAML, on the command line and in ``sweep()`` (recorded in sweep.json).
SEARCH_OPTIONS = (
    "sampler",
    "grid_points",
    "pruner",
    "prune_startup",
    "prune_warmup",
    "sampler_seed",
    "jobs",
    "fail_fast",
    "folds",
    "group_by",
    "backend",
    "address",
    "storage",
    "cpus_per_trial",
)
#: Keys of a sweep YAML that are the sweep's (everything else in the file is run config).
SWEEP_KEYS = ("space", "metric", "direction", "trials", *SEARCH_OPTIONS, "recipe", "overrides")
DEFAULTS: dict[str, Any] = {
    "sampler": "tpe",
    "grid_points": 5,
    "prune_startup": 5,
    "prune_warmup": 1,
    "sampler_seed": 0,
    "jobs": None,
    "fail_fast": False,
    "backend": "optuna",
    "cpus_per_trial": 1.0,
}
#: What ``--resume`` may change: how the remaining trials run, not what they search.
RESUMABLE = ("trials", "jobs", "fail_fast", "address", "cpus_per_trial")
CHOICES = {
    "sampler": ("tpe", "random", "grid"),
    "pruner": ("median", "halving", "none"),
    "direction": ("max", "min"),
    "backend": ("optuna", "ray"),
}
DEFAULT_TRIALS = 20


def split_items(items: list[str]) -> tuple[str | None, list[str]]:
    """``[RECIPE] KEY=VALUE…`` -> the recipe and the overrides (as ``engine run`` reads them)."""
    recipe, overrides = None, []
    for item in items:
        if "=" in item:
            overrides.append(item)
        elif recipe is None and not overrides:
            recipe = item
        else:
            raise EngineError(
                f"cannot read '{item}': expected key=value",
                hint="only one recipe name may come first; for example model=mlp",
            )
    return recipe, overrides


def read_sweep_file(path: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """A ``-c`` file as (its sweep keys, the run config it holds besides them)."""
    from engine import read_config_file

    data = read_config_file(path)
    sweep = {k: data.pop(k) for k in SWEEP_KEYS if k in data}
    space = sweep.get("space")
    if space is not None and not isinstance(space, dict):
        raise ConfigError(f"{path}: 'space' must be a mapping of KEY: EXPR, not {type(space).__name__}")
    if "overrides" in sweep and not (
        isinstance(sweep["overrides"], list) and all(isinstance(o, str) for o in sweep["overrides"])
    ):
        raise ConfigError(f"{path}: 'overrides' must be a list of KEY=VALUE strings")
    return sweep, data


def gather(args: argparse.Namespace) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """The settings of a new sweep (flags over files over defaults) and the run configs its files hold."""
    from engine_sweep.space import parse_item

    settings: dict[str, Any] = dict(DEFAULTS)
    space: dict[str, str] = {}
    run_parts: list[dict[str, Any]] = []
    recipe, overrides = split_items(args.items)
    file_overrides: list[str] = []
    for path in args.config or []:
        sweep, run_part = read_sweep_file(path)
        space.update({str(k): v for k, v in (sweep.pop("space", None) or {}).items()})
        file_overrides += sweep.pop("overrides", None) or []
        if sweep.get("recipe") is not None and recipe is None:
            recipe = sweep["recipe"]
        sweep.pop("recipe", None)
        settings.update({k: v for k, v in sweep.items() if v is not None})
        if run_part:
            run_parts.append(run_part)
    for item in args.space:
        key, expr = parse_item(item)
        space[key] = expr
    for key in SWEEP_KEYS:
        value = getattr(args, key, None)
        if value is not None and key not in ("space", "recipe", "overrides"):
            settings[key] = value
    settings.update(space=space, recipe=recipe, overrides=[*file_overrides, *overrides])
    return check(settings), run_parts


def check(settings: dict[str, Any]) -> dict[str, Any]:
    """Types and ranges of the settings; the metric's direction and the pruner's default filled in."""
    from engine_sweep.records import default_direction

    if not settings.get("metric"):
        raise ConfigError(
            "a sweep needs --metric NAME (the metric to optimise)",
            hint="e.g. --metric val/accuracy or --metric val/loss (what the run logs: its summary.json)",
        )
    if not isinstance(settings["metric"], str):
        raise ConfigError(f"metric must be a name such as val/accuracy, got {settings['metric']!r}")
    for key, choices in CHOICES.items():
        value = settings.get(key)
        if value is not None and value not in choices:
            raise ConfigError(f"{key} must be one of {', '.join(choices)}, got {value!r}")
    settings["direction"] = settings.get("direction") or default_direction(settings["metric"])
    settings["pruner"] = settings.get("pruner") or ("halving" if settings["backend"] == "ray" else "median")
    for key, low in (("trials", 1), ("grid_points", 1), ("prune_startup", 0), ("prune_warmup", 0), ("jobs", 1)):
        value = settings.get(key)
        if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < low):
            raise ConfigError(f"{key.replace('_', '-')} must be an integer >= {low}, got {value!r}")
    if settings.get("folds") is not None and (not isinstance(settings["folds"], int) or settings["folds"] < 2):
        raise ConfigError(f"--folds must be an integer >= 2, got {settings['folds']!r}")
    if settings.get("group_by") and not settings.get("folds"):
        raise ConfigError("--group-by needs --folds K", hint="e.g. --folds 5 --group-by patient")
    cpus = settings.get("cpus_per_trial")
    if isinstance(cpus, bool) or not isinstance(cpus, (int, float)) or cpus <= 0:
        raise ConfigError(f"--cpus-per-trial must be a number > 0, got {cpus!r}")
    if settings["backend"] == "optuna" and (settings.get("address") or settings.get("storage")):
        raise ConfigError("--address and --storage are for --backend ray")
    return settings


def resumed(args: argparse.Namespace, meta: dict[str, Any]) -> dict[str, Any]:
    """The settings of a sweep to resume: its own (sweep.json), with what ``--resume`` may change."""
    given = [f"--{k.replace('_', '-')}" for k in SWEEP_KEYS if k not in RESUMABLE and getattr(args, k, None)]
    if args.items or args.config or args.space:
        given.append("a run or space")
    if given or args.dir:
        raise EngineError(
            f"--resume takes the sweep's settings from {Path(args.resume) / 'sweep.json'}; not {', '.join(given)}",
            hint="only --trials, --jobs, --fail-fast, --address and --cpus-per-trial change how it continues",
        )
    settings = {**DEFAULTS, **meta.get("options", {})}
    settings.update(
        metric=meta["metric"],
        direction=meta["direction"],
        space=meta["space"],
        trials=meta["trials"],
        backend=meta["backend"],
        recipe=meta["base"].get("recipe"),
        overrides=list(meta["base"].get("overrides", [])),
    )
    for key in RESUMABLE:
        value = getattr(args, key, None)
        if value is not None:
            settings[key] = value
    if settings["trials"] < meta.get("finished", 0):
        raise ConfigError(f"--trials {settings['trials']}: the sweep has finished {meta['finished']} already")
    return check(settings)
