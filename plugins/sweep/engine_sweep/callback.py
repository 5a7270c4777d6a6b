"""The callback a trial's Trainer gets (through ``engine_callbacks``): the metric after each validation.

- ``optuna``: reported to the trial in the sweep's study (``trial.report``); when the study's
  pruner says so (``trial.should_prune()``) the run stops at the end of that epoch
  (``trainer.should_stop``), is tested with its best checkpoint like any run, and its
  ``summary.json`` says ``"sweep": {"pruned": true, …}``. A cross-validating trial raises
  `optuna.TrialPruned` instead, so that its remaining folds do not train.
- ``ray``: reported to Ray Tune (``ray.tune.report``), whose scheduler (ASHA) stops the trial.

Steps are validations: ``trainer.current_epoch`` (plus ``fold * steps_per_fold`` for fold ``fold``
of a cross-validating trial), so step ``s`` of every trial is the same fold and epoch.
"""

from __future__ import annotations

import math
import sys
from typing import Any

import lightning as L

from engine_sweep.study import make_pruner, rdb_storage


def reporter(section: dict[str, Any], config: dict[str, Any]) -> L.Callback:
    """The callback for the trial ``section`` describes."""
    fold = (config.get("cv") or {}).get("fold")
    offset = int(fold) * section["steps_per_fold"] if fold is not None else 0
    if section["backend"] == "ray":
        return RayReporter(section["metric"], offset)
    return OptunaPruning(section, offset, cross_validating=fold is not None)


def _metric(trainer: Any, name: str) -> float | None:
    value = trainer.callback_metrics.get(name)
    if value is None:
        return None
    number = float(value)
    return None if math.isnan(number) else number


class _Reporter(L.Callback):
    """After a trial's first validation: a ``val/`` or ``train/`` metric the run does not log stops it, named."""

    metric: str
    checked = False

    def on_sanity_check_end(self, trainer: Any, pl_module: Any) -> None:
        """Check the metric on the sanity check's figures: before the run's checkpoints look for it (their
        ``checkpoint.monitor`` is the sweep's metric) at the end of the first validation."""
        if trainer.is_global_zero and self.metric.startswith("val/") and trainer.callback_metrics:
            self._value(trainer)

    def _value(self, trainer: Any) -> float | None:
        if not self.checked:
            self.checked = True
            if self.metric.startswith(("val/", "train/")) and self.metric not in trainer.callback_metrics:
                from engine_sweep.section import MetricMissing

                logged = sorted(k for k in trainer.callback_metrics if k.startswith(("val/", "train/", "test/")))
                raise MetricMissing(self.metric, logged)
        return _metric(trainer, self.metric)


class OptunaPruning(_Reporter):
    """Report the metric to the sweep's Optuna trial after each validation; stop the run when pruned."""

    def __init__(self, section: dict[str, Any], offset: int = 0, cross_validating: bool = False) -> None:
        self.section, self.offset, self.cross_validating = section, offset, cross_validating
        self.metric = section["metric"]
        self.trial: Any = None
        self.active = True
        self.pruned_at: int | None = None
        self.reported = 0
        self.reported_steps: set[int] = set()

    def _trial(self) -> Any:
        if self.trial is None:
            import optuna

            s = self.section
            storage = rdb_storage(s["storage"])
            pruner = make_pruner(s["pruner"], s["prune_startup"], s["prune_warmup"])
            study = optuna.load_study(study_name=s["study"], storage=storage, pruner=pruner)
            self.trial = optuna.trial.Trial(study, s["trial_id"])
            frozen = storage.get_trial(s["trial_id"])
            self.reported_steps = set(frozen.intermediate_values)  # a resumed trial validates some epochs again
            state = frozen.state
            if state != optuna.trial.TrialState.RUNNING:  # a finished trial resumed on its own: nothing to report
                where = f"trial {s['number']} is {state.name.lower()} in its study"
                print(f"sweep: {where}; not reporting", file=sys.stderr)
                self.active = False
        return self.trial

    def on_validation_end(self, trainer: Any, pl_module: Any) -> None:
        if trainer.sanity_checking or not trainer.is_global_zero:
            return
        value = self._value(trainer)
        if value is None or not self.active or self.section["pruner"] == "none":
            return  # a metric only logged at test time: the trial is judged at its end
        trial = self._trial()
        if not self.active:
            return
        step = self.offset + trainer.current_epoch
        if step in self.reported_steps:
            return
        self.reported_steps.add(step)
        trial.report(value, step)
        self.reported += 1
        if trial.should_prune():
            self.pruned_at = step
            if self.cross_validating:
                import optuna

                raise optuna.TrialPruned(f"pruned at step {step} ({self.metric}={value:.4g})")
            trainer.should_stop = True

    def summary_info(self) -> dict[str, Any]:
        info = {"number": self.section["number"], "pruned": self.pruned_at is not None, "reported": self.reported}
        if self.pruned_at is not None:
            info["pruned_at_step"] = self.pruned_at
        return {"sweep": info}


class RayReporter(_Reporter):
    """Report the metric to Ray Tune after each validation (its scheduler decides whether the trial goes on)."""

    def __init__(self, metric: str, offset: int = 0) -> None:
        self.metric, self.offset = metric, offset

    def on_validation_end(self, trainer: Any, pl_module: Any) -> None:
        if trainer.sanity_checking or not trainer.is_global_zero:
            return
        value = self._value(trainer)
        if value is None:
            return
        from ray import tune

        try:
            tune.get_context().get_trial_id()
        except Exception:
            return  # not inside a Ray Tune trial (the run resumed on its own)
        tune.report({self.metric: value, "epoch": self.offset + trainer.current_epoch})
