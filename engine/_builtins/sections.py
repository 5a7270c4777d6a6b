"""The core's own config sections (`engine.Section`): dataclasses read from this source, so keep it light."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, Literal

from annotated_types import Ge

from engine._contract.errors import ConfigError


@dataclass
class Checkpoint:
    """Which checkpoints a run keeps: best.ckpt by a metric, last.ckpt at every opportunity.

    Args:
        monitor: metric deciding the best checkpoint (default: val/loss, or train/loss).
        mode: whether lower or higher is better.
        save_top_k: how many best checkpoints to keep (best.ckpt, best-2.ckpt …; 0 none, -1 all).
        save_last: also keep last.ckpt (needed by --resume).
        every_n_epochs: consider a best checkpoint every N epochs.
        every_n_train_steps: checkpoint every N optimizer steps instead.
    """

    monitor: str | None = None
    mode: Literal["min", "max"] = "min"
    save_top_k: Annotated[int, Ge(-1)] = 1
    save_last: bool = True
    every_n_epochs: Annotated[int, Ge(1)] = 1
    every_n_train_steps: Annotated[int, Ge(1)] | None = None


@dataclass
class EarlyStopping:
    """Stop when a metric stops improving (Lightning's ``EarlyStopping``); off unless a key is set.

    Args:
        monitor: metric to watch (default: the checkpoint monitor).
        patience: evaluations without improvement before stopping.
        mode: whether lower or higher is better (default: checkpoint mode).
        min_delta: smallest change that counts as improvement.
    """

    monitor: str | None = None
    patience: Annotated[int, Ge(0)] = 3
    mode: Literal["min", "max"] | None = None
    min_delta: Annotated[float, Ge(0)] = 0.0


@dataclass
class Run:
    """Where the run directory goes.

    Args:
        dir: directory holding run directories (default: $ENGINE_RUNS_DIR, else runs).
        name: run directory name (default: <model>-<data>-<timestamp>): one name inside dir, no path.
    """

    dir: str | None = None
    name: str | None = None


def check_run(values: dict[str, Any], where: str, config: dict[str, Any]) -> dict[str, Any]:
    """``run.name`` is one directory name inside ``run.dir`` (not a path out of it); ``run.dir``'s ``~user`` exists.

    An unset ``run.dir`` is ``$ENGINE_RUNS_DIR``, else ``runs`` (a config file or override wins over both).
    """
    values = {**values, "dir": values.get("dir") or os.environ.get("ENGINE_RUNS_DIR") or "runs"}
    name, hint = (
        values.get("name") or "",
        f"set {where}.name=NAME (no '/' or '..'), and {where}.dir=PATH for where runs go",
    )
    if len(name.encode()) > 255:
        raise ConfigError(f"{where}.name is too long for a directory name ({len(name.encode())} bytes, at most 255)")
    if name in (".", "..") or any(c in name for c in "/\\\0"):
        raise ConfigError(
            f"{where}.name={name[:60]!r} is not a directory name: a run goes inside {where}.dir", hint=hint
        )
    try:
        Path(values.get("dir") or ".").expanduser()
        if "\0" in values.get("dir", ""):
            raise RuntimeError("a path cannot hold a null character")
    except RuntimeError as exc:  # ~nosuchuser: no such user
        why = "no such user's home directory" if "home" in str(exc) else str(exc)
        raise ConfigError(f"{where}.dir={str(values['dir'])[:60]!r}: {why}", hint=f"set {where}.dir=PATH") from None
    return values


@dataclass
class OptimizerKeys:
    """Keys every optimizer slot accepts besides the optimizer's own parameters.

    Args:
        param_groups: per-group settings: [{params: 'features.*', lr: 1e-4}, ...] (globs on parameter names;
            the rest: defaults).
    """

    param_groups: list[dict[str, Any]] = field(default_factory=list)


def check_param_groups(values: dict[str, Any], where: str, config: dict[str, Any]) -> None:
    """Each group names parameters by glob; its settings are checked against the optimizer by the plan."""
    for i, group in enumerate(values.get("param_groups") or []):
        patterns = group.get("params")
        if isinstance(patterns, str):
            patterns = [patterns]
        if not patterns or not all(isinstance(p, str) and p for p in patterns):
            raise ConfigError(
                f"{where}.param_groups[{i}] needs 'params': a glob pattern or a list of them on parameter names",
                hint=f"for example {where}.param_groups=[{{params: 'features.*', lr: 1e-4}}]",
            )


def check_supervised(values: dict[str, Any], where: str, config: dict[str, Any]) -> None:
    """A classifier needs ``num_classes``: refuse, at plan time, data that declares its facts but not that one."""
    from engine._plugins.registry import get_registry

    try:
        data = get_registry().resolve("data", config["data"]["name"])
    except ConfigError:  # a source registered on another registry than the default one: its plan judges it
        return
    if values.get("problem") == "regression" or values.get("num_classes") is not None or not data.facts:
        return
    if not {"num_classes", "problem"} & set(data.facts):
        task = f"task={data.task} (the task this data is for)" if data.task else "task=NAME (the task this data is for)"
        raise ConfigError(
            f"task 'core.supervised' ({values.get('problem')}) needs num_classes, and data '{data.qualified_name}' "
            f"provides only {', '.join(data.facts)}",
            hint=f"set {task}, or task.problem=regression / task.num_classes=N",
        )
