"""The ``sweep`` config section: which trial of which sweep a run is (set by ``engine sweep``, off otherwise).

Light on purpose (a dataclass, no torch, no Optuna): the engine reads its keys from this source
to validate configs. ``engine sweep`` sets it in every trial's overrides; the plugin's
``engine_callbacks`` turns it into the callback that reports the metric after each validation
(to the sweep's Optuna study, or to Ray Tune) and stops a trial the pruner or scheduler gives up on.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any, Literal

from annotated_types import Ge

from engine import ConfigError


@dataclass
class SweepTrial:
    """The trial of an `engine sweep` this run is; `engine sweep` sets it, a plain run leaves it off.

    Args:
        backend: where the intermediate values go: the sweep's Optuna study, or Ray Tune's session.
        storage: the Optuna storage URL of the sweep (sqlite:///DIR/study.db).
        study: the study's name in that storage.
        trial_id: the trial's id in the storage (optuna backend).
        number: the trial's number in the sweep (trials/NNN).
        metric: the metric reported after each validation, e.g. val/accuracy.
        pruner: how poor trials are stopped early: median, halving (successive halving) or none.
        prune_startup: finished trials before the pruner may stop any.
        prune_warmup: validations of a trial before it may be stopped.
        steps_per_fold: validations of one fold, when the trial cross-validates: fold k reports from step
            k * steps_per_fold on, so every trial's step s is the same fold and epoch.
    """

    backend: Literal["optuna", "ray"] = "optuna"
    storage: str | None = None
    study: str = "sweep"
    trial_id: Annotated[int, Ge(0)] | None = None
    number: Annotated[int, Ge(0)] = 0
    metric: str = "val/loss"
    pruner: Literal["median", "halving", "none"] = "median"
    prune_startup: Annotated[int, Ge(0)] = 5
    prune_warmup: Annotated[int, Ge(0)] = 1
    steps_per_fold: Annotated[int, Ge(1)] = 1000


class MetricMissing(ConfigError):
    """The sweep's metric is not among what the trial's run logs (``available``)."""

    def __init__(self, metric: str, available: list[str]) -> None:
        from engine import did_you_mean

        super().__init__(
            f"--metric {metric}: the run never logs it{did_you_mean(metric, available)}",
            hint="it logs: " + (", ".join(available) if available else "nothing"),
        )
        self.metric, self.available = metric, available


def check_sweep(values: dict[str, Any], where: str, config: dict[str, Any]) -> None:
    """An optuna trial needs its storage and trial id (``engine sweep`` sets both)."""
    if values["backend"] == "optuna" and values["pruner"] != "none":
        missing = [k for k in ("storage", "trial_id") if values[k] is None]
        if missing:
            raise ConfigError(
                f"{where}: an optuna trial needs {' and '.join(f'{where}.{k}' for k in missing)}",
                hint="this section is set by `engine sweep`; drop it (sweep=null) to run the trial on its own",
            )
