"""The ``lightning.Trainer`` a run trains with: checkpoints, early stopping, loggers, plugins' callbacks.

Nothing here writes a file: a setting Lightning refuses leaves no run directory behind.
"""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path
from typing import Any

import lightning as L
from lightning.pytorch.callbacks import EarlyStopping, LearningRateMonitor
from lightning.pytorch.loggers import CSVLogger, Logger, TensorBoardLogger

from engine._config.plan import Plan
from engine._contract.errors import EngineError
from engine._contract.protocols import HasSplits, implements
from engine._run import logs, progress
from engine._run.callbacks import EpochLines, RNGState, RunCheckpoints
from engine._run.checkpoints import AtomicCheckpointIO


def _callbacks(cfg: dict[str, Any], run_dir: Path, has_val: bool) -> tuple[list[Any], RunCheckpoints]:
    """The engine's callbacks, its checkpoint callback first; the sections' keys are their arguments."""
    ck, es = cfg["checkpoint"], cfg["early_stopping"]
    monitor = ck["monitor"] or ("val/loss" if has_val else "train/loss")
    checkpoint = RunCheckpoints(run_dir / "checkpoints", **{**ck, "monitor": monitor})
    callbacks: list[Any] = [checkpoint, RNGState()]
    if es is not None:
        callbacks.append(EarlyStopping(**{**es, "monitor": es["monitor"] or monitor, "mode": es["mode"] or ck["mode"]}))
    # Always: `engine report` plots the learning rate of every run (constant ones too).
    callbacks.append(LearningRateMonitor(logging_interval="step"))
    if logs.epoch_lines():
        callbacks.append(EpochLines())
    if logs.progress_bar() and cfg["trainer"].get("enable_progress_bar", True):
        callbacks.append(progress.progress_bar())  # epochs from 1 as in the epoch lines, no v_num
    if cfg["trainer"].get("log_every_n_steps") is None:
        callbacks.append(progress.LogInterval())
    return callbacks, checkpoint


def _loggers(run_dir: Path, trackers: list[str]) -> list[Any]:
    """CSV metrics in ``csv/<attempt>/metrics.csv`` (a resume starts attempt 1, keeping attempt 0), TensorBoard
    (when installed, or named), and the trackers ``trainer.logger`` names (MLflow, W&B: set up by their
    environment variables, ``MLFLOW_TRACKING_URI``, ``WANDB_MODE`` …; the run's name is the directory's)."""
    attempt = 0
    while (run_dir / "csv" / str(attempt) / "metrics.csv").exists():
        attempt += 1
    loggers: list[Any] = [CSVLogger(run_dir, name="csv", version=str(attempt))]
    if importlib.util.find_spec("tensorboard") or importlib.util.find_spec("tensorboardX"):
        loggers.append(TensorBoardLogger(run_dir, name="tb", version="", default_hp_metric=False))
    if "mlflow" in trackers:
        from lightning.pytorch.loggers import MLFlowLogger

        name = os.environ.get("MLFLOW_EXPERIMENT_NAME") or "engine"  # MLflow's own default store: ./mlruns
        loggers.append(MLFlowLogger(name, run_name=run_dir.name, tracking_uri=os.environ.get("MLFLOW_TRACKING_URI")))
    if "wandb" in trackers:
        from lightning.pytorch.loggers import WandbLogger

        project = os.environ.get("WANDB_PROJECT") or "engine"
        loggers.append(WandbLogger(name=run_dir.name, save_dir=run_dir, project=project))
    return loggers


def splits(datamodule: Any) -> tuple[bool, bool]:
    """Whether the data has a validation and a test split (assumed for a data module that does not say)."""
    if implements(datamodule, HasSplits):
        return datamodule.has_split("val"), datamodule.has_split("test")
    return True, True


def build_trainer(plan: Plan, run_dir: Path, datamodule: Any) -> tuple[L.Trainer, RunCheckpoints]:
    """The Trainer and its checkpoint callback; Lightning's objections become one clear error."""
    has_val, _ = splits(datamodule)
    callbacks, checkpoint = _callbacks(plan.config, run_dir, has_val)
    callbacks.append(Hyperparameters(plan.config))
    loggers = []
    for info, result in plan.registry.manager.call("engine_callbacks", config=plan.config):
        for item in result or []:
            if not isinstance(item, (L.Callback, Logger)):
                raise EngineError(
                    f"plugin '{info.name}' returned {type(item).__name__} from engine_callbacks; "
                    "expected Lightning callbacks or loggers"
                )
            (callbacks if isinstance(item, L.Callback) else loggers).append(item)
    trainer_args = dict(plan.config["trainer"])
    if not has_val:
        trainer_args.setdefault("limit_val_batches", 0)
    # A progress bar on a terminal; one line an epoch in a log; nothing with --quiet.
    trainer_args["enable_progress_bar"] = trainer_args.get("enable_progress_bar", True) and logs.progress_bar()
    if not logs.progress_bar():  # the model summary box: on a terminal or verbose, not in a log, a pipe or -q
        trainer_args.setdefault("enable_model_summary", False)
    logs.quiet_lightning()
    trackers = _loggers(run_dir, trainer_args.pop("logger", None) or []) + loggers
    plugins = trainer_args.pop("plugins", None) or []
    plugins = [*(plugins if isinstance(plugins, list) else [plugins]), AtomicCheckpointIO()]
    try:
        trainer = L.Trainer(
            default_root_dir=run_dir,
            enable_checkpointing=True,  # the run's own RunCheckpoints (a Checkpoint: Lightning adds none of its own)
            callbacks=callbacks,
            logger=trackers,
            plugins=plugins,
            **trainer_args,
        )
    except Exception as exc:  # MisconfigurationException, a device that is not there, …
        raise EngineError(
            f"lightning.Trainer refused the trainer settings {trainer_args}: {type(exc).__name__}: {exc}",
            hint="see `engine run --help` and Lightning's Trainer documentation",
        ) from exc
    return trainer, checkpoint


class Hyperparameters(L.Callback):
    """The resolved config as every logger's hyperparameters (TensorBoard's ``hparams.yaml``, MLflow's params)."""

    def __init__(self, config: dict[str, Any]) -> None:
        self.config = config

    def on_fit_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        for logger in trainer.loggers:
            logger.log_hyperparams(self.config)
