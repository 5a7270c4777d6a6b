"""The ``trainer`` section: ``lightning.Trainer`` arguments, checked against its signature and the names it knows.

Only uncommon ``accelerator`` and ``strategy`` names import Lightning (to look them up in its registries).
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from engine._config.params import check_params, clip, describe
from engine._config.signature import Signature, read_signature
from engine._contract.errors import ConfigError, did_you_mean

TRAINER_TARGET = "lightning.pytorch.trainer.trainer:Trainer"

#: Trainer arguments the engine sets itself, and what to set instead.
RESERVED_TRAINER = {
    "callbacks": "add callbacks from a plugin's engine_callbacks hook",
    "default_root_dir": "set run.dir instead",
    "enable_checkpointing": "configure the checkpoint section instead",
}

_PRECISION_NAMES = "64-true 32-true 16-true 16-mixed bf16-true bf16-mixed transformer-engine transformer-engine-float16"
PRECISIONS = (64, 32, 16, "64", "32", "16", "bf16", *_PRECISION_NAMES.split())
PROFILERS = ("simple", "advanced", "pytorch", "xla")
#: ``trainer.logger``: experiment trackers (Lightning's loggers), beside the run directory's CSV, and their package.
LOGGERS = {"csv": "lightning", "tensorboard": "tensorboard", "mlflow": "mlflow", "wandb": "wandb"}
#: Accelerators and strategies every Lightning 2 install knows (others are looked up).
ACCELERATORS = ("auto", "cpu", "gpu", "cuda", "mps", "tpu")
STRATEGIES = ("auto", "ddp", "ddp_spawn", "ddp_fork", "ddp_notebook", "fsdp", "single_device", "deepspeed", "xla")

_BATCHES = "Annotated[int, Ge(0)] | Annotated[float, Ge(0), Le(1)] | None"  # a count, or a fraction of the batches
#: The ranges ``lightning.Trainer`` (its loops and connectors) checks when constructed, checked at --dry-run.
RANGES = dict.fromkeys(
    ("limit_train_batches", "limit_val_batches", "limit_test_batches", "limit_predict_batches"), _BATCHES
)
RANGES |= {
    "overfit_batches": _BATCHES.removesuffix(" | None"),
    "val_check_interval": "Annotated[int, Ge(1)] | Annotated[float, Gt(0), Le(1)] | str | dict | None",
    "num_nodes": "Annotated[int, Ge(1)]",
    "devices": "Literal[-1] | Annotated[int, Ge(1)] | Annotated[list[Annotated[int, Ge(0)]], MinLen(1)] | str",
    "fast_dev_run": "bool | Annotated[int, Ge(0)]",
    "max_epochs": "Annotated[int, Ge(-1)] | None",
    "min_epochs": "Annotated[int, Ge(0)] | None",
    "max_steps": "Annotated[int, Ge(-1)]",
    "min_steps": "Annotated[int, Ge(0)] | None",
    "accumulate_grad_batches": "Annotated[int, Ge(1)]",
    "gradient_clip_val": "Annotated[float, Ge(0)] | None",
    "gradient_clip_algorithm": "Literal['value', 'norm'] | None",
    "check_val_every_n_epoch": "Annotated[int, Ge(1)] | None",
    "num_sanity_val_steps": "Annotated[int, Ge(-1)] | None",
    "log_every_n_steps": "Annotated[int, Ge(0)] | None",
    "reload_dataloaders_every_n_epochs": "Annotated[int, Ge(0)]",
}


def check_trainer(trainer: Any) -> dict[str, Any]:
    """The ``trainer`` section checked; only the keys the user set (Lightning keeps its own defaults)."""
    if not isinstance(trainer, dict):
        raise ConfigError(f"'trainer' must be a mapping of lightning.Trainer arguments, got {describe(trainer)}")
    for key, why in RESERVED_TRAINER.items():
        if key in trainer:
            raise ConfigError(f"trainer.{key} is set by the engine", hint=why)
    trackers = check_loggers(trainer.get("logger"))
    trainer = {k: v for k, v in trainer.items() if k != "logger"}
    sig = read_signature(TRAINER_TARGET)
    if sig is not None:
        sig = Signature(tuple(replace(p, annotation=RANGES.get(p.name, p.annotation)) for p in sig.params), sig.open)
    checked = check_params("trainer", "lightning.Trainer", trainer, sig)
    trainer = {k: v for k, v in checked.items() if k in trainer} | ({"logger": trackers} if trackers else {})
    if trainer.get("barebones"):
        raise ConfigError("trainer.barebones=true cannot work here: the engine always keeps checkpoints and logs")
    if isinstance(trainer.get("val_check_interval"), float) and "check_val_every_n_epoch" in trainer:
        if trainer["check_val_every_n_epoch"] is None:
            raise ConfigError(
                "trainer.val_check_interval must be a whole number of batches when check_val_every_n_epoch is null",
                hint="e.g. trainer.val_check_interval=100, or leave check_val_every_n_epoch set",
            )
    precision = trainer.get("precision")
    if precision is not None and precision not in PRECISIONS:
        names = [str(p) for p in PRECISIONS]
        raise ConfigError(
            f"trainer.precision={clip(repr(precision))} is not a precision Lightning knows"
            f"{did_you_mean(str(precision), names)}",
            hint="e.g. 32-true, 16-mixed, bf16-mixed, 64-true",
        )
    profiler = trainer.get("profiler")
    if isinstance(profiler, str) and profiler.lower() not in PROFILERS:
        raise ConfigError(
            f"trainer.profiler={clip(repr(profiler))} is not a profiler Lightning knows"
            f"{did_you_mean(profiler, PROFILERS)}",
            hint=f"choose one of {', '.join(PROFILERS)}",
        )
    for key, common in (("accelerator", ACCELERATORS), ("strategy", STRATEGIES)):
        value = trainer.get(key)
        if isinstance(value, str) and value not in common:
            known = _registered(key)
            if value not in known:
                raise ConfigError(
                    f"trainer.{key}={clip(repr(value))} is not a{'n' if key[0] == 'a' else ''} {key} Lightning knows"
                    f"{did_you_mean(value, known)}",
                    hint=f"Lightning knows: {', '.join(sorted(known))}",
                )
    strategy, accelerator = str(trainer.get("strategy")), trainer.get("accelerator")
    if strategy.startswith("fsdp") and accelerator not in ("cuda", "gpu"):  # what Lightning's connector requires
        hint = "on CPU, trainer.strategy=ddp with trainer.devices=2 runs two processes; or leave the strategy unset"
        raise ConfigError(f"trainer.strategy={strategy} needs CUDA GPUs (trainer.accelerator=cuda)", hint=hint)
    if strategy.startswith("deepspeed") and not _installed("deepspeed"):
        hint = "pip install deepspeed (it trains on CUDA GPUs), or leave trainer.strategy unset"
        raise ConfigError(f"trainer.strategy={strategy} needs the deepspeed package, which is not installed", hint=hint)
    return trainer


def _installed(package: str) -> bool:
    import importlib.util

    return importlib.util.find_spec(package) is not None


def check_loggers(value: Any) -> list[str]:
    """``trainer.logger``: a tracker's name or a list of them (`LOGGERS`), each package installed."""
    import importlib.util

    names = [value] if isinstance(value, str) else value if isinstance(value, list) else None
    if value is None:
        return []
    if names is None or not all(isinstance(n, str) for n in names):
        raise ConfigError(f"trainer.logger must be a name or a list of names, got {describe(value)}")
    for name in names:
        if name not in LOGGERS:
            raise ConfigError(
                f"trainer.logger={clip(repr(name))} is not a logger the engine knows{did_you_mean(name, LOGGERS)}",
                hint=f"choose among {', '.join(LOGGERS)} (the run's CSV is always kept)",
            )
        if importlib.util.find_spec(LOGGERS[name]) is None:
            raise ConfigError(f"trainer.logger={name} needs the package {LOGGERS[name]}", hint=f"pip install {name}")
    return list(dict.fromkeys(names))


def _registered(key: str) -> list[str]:
    """Every accelerator or strategy name Lightning has registered (imports Lightning)."""
    if key == "accelerator":
        from lightning.pytorch.accelerators import AcceleratorRegistry

        return ["auto", "gpu", *AcceleratorRegistry.available_accelerators()]
    from lightning.pytorch.strategies import StrategyRegistry

    return ["auto", *StrategyRegistry.available_strategies()]
