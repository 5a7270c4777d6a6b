"""The core's own config sections, declared as any plugin declares one (:class:`engine.Section`).

Each section is a dataclass: its fields are the keys, with types, defaults and ``Args:`` docs
read from this source without importing it (so ``--dry-run`` stays torch-free). The ``check_*``
functions are the sections' ``check`` targets: called once types are checked, they catch values
that cannot work together, before anything is built. This module imports nothing heavy.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, Literal

from annotated_types import Ge

from engine.errors import ConfigError


@dataclass
class Checkpoint:
    """Which checkpoints a run keeps (Lightning's ``ModelCheckpoint``).

    Args:
        monitor: metric deciding the best checkpoint (default: val/loss, or train/loss).
        mode: whether lower or higher is better.
        save_top_k: how many best checkpoints to keep.
        save_last: also keep last.ckpt (needed by --resume).
        every_n_epochs: checkpoint every N epochs.
        every_n_train_steps: checkpoint every N optimizer steps instead.
    """

    monitor: str | None = None
    mode: Literal["min", "max"] = "min"
    save_top_k: Annotated[int, Ge(-1)] = 1
    save_last: bool = True
    every_n_epochs: Annotated[int, Ge(0)] = 1
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
class Prune:
    """Prune weights during training with a sparsity schedule (see docs/techniques.md); off unless a key is set.

    Args:
        amount: final fraction of pruned weights (unstructured) or channels (structured), in (0, 1).
        method: l1_unstructured: smallest |w|; random_unstructured; ln_structured: whole output channels by L2 norm.
        scope: unstructured: rank weights across all layers (global) or per layer.
        start_epoch: first epoch that prunes, at its end (default: half of trainer.max_epochs).
        end_epoch: epoch reaching the final amount (default: three quarters of trainer.max_epochs); later ones
            fine-tune.
        schedule: how the sparsity grows from start to end epoch (cubic: fast first).
    """

    amount: float = 0.5
    method: Literal["l1_unstructured", "random_unstructured", "ln_structured"] = "l1_unstructured"
    scope: Literal["global", "layer"] = "global"
    start_epoch: int | None = None
    end_epoch: int | None = None
    schedule: Literal["cubic", "linear"] = "cubic"


@dataclass
class Run:
    """Where the run directory goes.

    Args:
        dir: directory holding run directories.
        name: run directory name (default: <model>-<data>-<timestamp>).
    """

    dir: str = "runs"
    name: str | None = None


@dataclass
class CrossValidation:
    """Which fold of a K-fold cross-validation this run is (``engine run --folds K`` sets it; see engine.folds).

    Args:
        folds: number of folds the training and validation samples are dealt into.
        fold: the fold held out for validation (0 … folds-1); the others train.
        group_by: a column the data source groups samples by: no group in two folds (default: stratified by class).
    """

    folds: Annotated[int, Ge(2)] = 5
    fold: Annotated[int, Ge(0)] = 0
    group_by: str | None = None


@dataclass
class ModelKeys:
    """Keys every model slot accepts besides the model's own parameters (transfer learning).

    Args:
        init_from: run directory (its best checkpoint), or a weights file: .ckpt, .safetensors, or a state dict
            saved by torch (.pth, .pt, .bin; read as data, never unpickled), mapped by the model's adapters
            when it comes from another library (timm, Hugging Face).
        weights: weights the model's plugin ships, by name (`engine components show MODEL` lists them).
        init_skip: glob patterns of parameters not to load (kept freshly initialised), e.g. [head.*].
        init_strict: fail on missing or unexpected keys instead of reporting them.
        init_mismatch: parameters whose shape differs (a head for other classes): fail, or keep them freshly
            initialised.
        freeze: glob patterns of parameters to freeze, e.g. [features.*].
        unfreeze_at_epoch: unfreeze the frozen parameters when this epoch starts.
    """

    init_from: str | None = None
    weights: str | None = None
    init_skip: list[str] = field(default_factory=list)
    init_strict: bool = False
    init_mismatch: Literal["error", "reinit"] = "error"
    freeze: list[str] | str = field(default_factory=list)
    unfreeze_at_epoch: int | None = None


@dataclass
class OptimizerKeys:
    """Keys every optimizer slot accepts besides the optimizer's own parameters.

    Args:
        param_groups: per-group settings: [{params: 'features.*', lr: 1e-4}, ...] (globs on parameter names;
            the rest: defaults).
    """

    param_groups: list[dict[str, Any]] = field(default_factory=list)


# --------------------------------------------------------------------------- checks


def check_prune(values: dict[str, Any], where: str, config: dict[str, Any]) -> None:
    """The prune section makes sense: amount in (0, 1), epochs in order, time left to fine-tune."""
    amount = values["amount"]
    if not 0.0 < amount < 1.0:
        raise ConfigError(
            f"{where}.amount must be between 0 and 1 (exclusive), got {amount}", hint=f"e.g. {where}.amount=0.5"
        )
    start, end = values["start_epoch"], values["end_epoch"]
    if start is not None and start < 0:
        raise ConfigError(f"{where}.start_epoch must be >= 0, got {start}")
    if start is not None and end is not None and end < start:
        raise ConfigError(f"{where}.end_epoch ({end}) comes before {where}.start_epoch ({start})")
    trainer = config.get("trainer") or {}
    epochs = trainer.get("max_epochs", 10)
    if isinstance(epochs, int) and epochs > 0 and "max_steps" not in trainer:
        last = max(start or 0, end if end is not None else 0)
        if last >= epochs - 1:
            raise ConfigError(
                f"{where}: the last pruning epoch ({last}) leaves no epoch of fine-tuning within "
                f"trainer.max_epochs={epochs}",
                hint="lower prune.end_epoch or raise trainer.max_epochs (the best checkpoint is chosen among "
                "epochs after the final prune)",
            )


def check_cv(values: dict[str, Any], where: str, config: dict[str, Any]) -> None:
    """The held-out fold is one of the folds."""
    if values["fold"] >= values["folds"]:
        raise ConfigError(f"{where}.fold must be below {where}.folds ({values['folds']}), got {values['fold']}")


def check_model_keys(values: dict[str, Any], where: str, config: dict[str, Any]) -> dict[str, Any]:
    """``init_*`` keys need ``init_from``, which must exist; ``unfreeze_at_epoch`` needs ``freeze``.

    Returns the keys with a single ``freeze``/``init_skip`` pattern made a list.
    """
    values = {k: [v] if k in ("freeze", "init_skip") and isinstance(v, str) else v for k, v in values.items()}
    source = values.get("init_from")
    if source is not None and values.get("weights") is not None:
        raise ConfigError(f"{where}.init_from and {where}.weights both name weights to load", hint="keep one of them")
    for key in ("init_skip", "init_strict", "init_mismatch"):
        if key in values and source is None and values.get("weights") is None:
            raise ConfigError(f"{where}.{key} needs {where}.init_from", hint=f"set {where}.init_from=RUN_DIR")
    if source is not None:
        check_run_dir(source, f"{where}.init_from", checkpoint_ok=True)
    epoch = values.get("unfreeze_at_epoch")
    if epoch is not None:
        if not values.get("freeze"):
            raise ConfigError(
                f"{where}.unfreeze_at_epoch needs {where}.freeze", hint=f"e.g. {where}.freeze=[features.*]"
            )
        if epoch < 1:
            raise ConfigError(f"{where}.unfreeze_at_epoch must be >= 1, got {epoch}", hint="or drop freeze altogether")
    for pattern in values.get("freeze") or []:
        if not pattern:
            raise ConfigError(f"{where}.freeze holds an empty pattern")
    return values


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


def check_run_dir(path: str, where: str, checkpoint_ok: bool = False) -> Path:
    """``path`` is a run directory (or, with ``checkpoint_ok``, a checkpoint file); a ConfigError otherwise.

    A path :func:`engine.rundir.planned_runs` announces (an earlier pipeline stage's run) is accepted.
    """
    from engine.rundir import expand, is_planned

    run = expand(path, where)
    if is_planned(run):  # a pipeline's earlier stage writes it before this run starts
        return run
    what = "a run directory (see `engine runs list`)" + (
        " or a weights file (.ckpt, .safetensors, .pth, .bin)" if checkpoint_ok else ""
    )
    if not run.exists():
        raise ConfigError(f"{where}: {run} does not exist", hint=f"give {what}")
    if run.is_file() and checkpoint_ok:
        return run
    if not run.is_dir() or not (run / "config.yaml").is_file():
        raise ConfigError(f"{where}: {run} is not a run directory (no config.yaml)", hint=f"give {what}")
    return run
