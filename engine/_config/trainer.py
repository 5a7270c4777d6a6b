"""The ``trainer`` section: ``lightning.Trainer`` arguments, checked against its signature and the names it knows.

Only uncommon ``accelerator`` and ``strategy`` names import Lightning (to look them up in its registries).
"""

from __future__ import annotations

from typing import Any

from engine._config.params import check_params, describe
from engine._config.signature import read_signature
from engine._contract.errors import ConfigError, did_you_mean

TRAINER_TARGET = "lightning.pytorch.trainer.trainer:Trainer"

#: Trainer arguments the engine sets itself, and what to set instead.
RESERVED_TRAINER = {
    "callbacks": "add callbacks from a plugin's engine_callbacks hook",
    "logger": "the engine logs CSV (and TensorBoard when installed) into the run directory",
    "default_root_dir": "set run.dir instead",
    "enable_checkpointing": "configure the checkpoint section instead",
}

_PRECISION_NAMES = "64-true 32-true 16-true 16-mixed bf16-true bf16-mixed transformer-engine transformer-engine-float16"
PRECISIONS = (64, 32, 16, "64", "32", "16", "bf16", *_PRECISION_NAMES.split())
PROFILERS = ("simple", "advanced", "pytorch", "xla")
#: Accelerators and strategies every Lightning 2 install knows (others are looked up).
ACCELERATORS = ("auto", "cpu", "gpu", "cuda", "mps", "tpu")
STRATEGIES = ("auto", "ddp", "ddp_spawn", "ddp_fork", "ddp_notebook", "fsdp", "single_device", "deepspeed", "xla")


def check_trainer(trainer: Any) -> dict[str, Any]:
    """The ``trainer`` section checked; only the keys the user set (Lightning keeps its own defaults)."""
    if not isinstance(trainer, dict):
        raise ConfigError(f"'trainer' must be a mapping of lightning.Trainer arguments, got {describe(trainer)}")
    for key, why in RESERVED_TRAINER.items():
        if key in trainer:
            raise ConfigError(f"trainer.{key} is set by the engine", hint=why)
    checked = check_params("trainer", "lightning.Trainer", trainer, read_signature(TRAINER_TARGET))
    trainer = {k: v for k, v in checked.items() if k in trainer}
    precision = trainer.get("precision")
    if precision is not None and precision not in PRECISIONS:
        names = [str(p) for p in PRECISIONS]
        raise ConfigError(
            f"trainer.precision={precision!r} is not a precision Lightning knows{did_you_mean(str(precision), names)}",
            hint="e.g. 32-true, 16-mixed, bf16-mixed, 64-true",
        )
    profiler = trainer.get("profiler")
    if isinstance(profiler, str) and profiler.lower() not in PROFILERS:
        raise ConfigError(
            f"trainer.profiler={profiler!r} is not a profiler Lightning knows{did_you_mean(profiler, PROFILERS)}",
            hint=f"choose one of {', '.join(PROFILERS)}",
        )
    for key, common in (("accelerator", ACCELERATORS), ("strategy", STRATEGIES)):
        value = trainer.get(key)
        if isinstance(value, str) and value not in common:
            known = _registered(key)
            if value not in known:
                raise ConfigError(
                    f"trainer.{key}={value!r} is not a{'n' if key[0] == 'a' else ''} {key} Lightning knows"
                    f"{did_you_mean(value, known)}",
                    hint=f"Lightning knows: {', '.join(sorted(known))}",
                )
    return trainer


def _registered(key: str) -> list[str]:
    """Every accelerator or strategy name Lightning has registered (imports Lightning)."""
    if key == "accelerator":
        from lightning.pytorch.accelerators import AcceleratorRegistry

        return ["auto", "gpu", *AcceleratorRegistry.available_accelerators()]
    from lightning.pytorch.strategies import StrategyRegistry

    return ["auto", *StrategyRegistry.available_strategies()]
