"""The ``lightning.Trainer`` a run trains with: checkpoints, early stopping, loggers, plugins' callbacks.

Built before the run directory exists (nothing here writes a file), so that a setting Lightning
refuses, or a plugin's ``engine_callbacks`` that raises, leaves nothing behind.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from engine._config.plan import Plan
from engine._contract.errors import EngineError
from engine._contract.protocols import HasSplits, implements
from engine._plugins.registry import Registry


def _callbacks(cfg: dict[str, Any], run_dir: Path, has_val: bool) -> tuple[list[Any], Any]:
    from lightning.pytorch.callbacks import EarlyStopping, LearningRateMonitor

    from engine._run.callbacks import RNGState, RunCheckpoints

    ck = cfg["checkpoint"]
    monitor = ck["monitor"] or ("val/loss" if has_val else "train/loss")
    checkpoint = RunCheckpoints(
        run_dir / "checkpoints",
        monitor,
        mode=ck["mode"],
        save_top_k=ck["save_top_k"],
        save_last=ck["save_last"],
        every_n_epochs=ck["every_n_epochs"],
        every_n_train_steps=ck["every_n_train_steps"],
    )
    callbacks: list[Any] = [checkpoint, RNGState()]
    es = cfg["early_stopping"]
    if es is not None:
        callbacks.append(
            EarlyStopping(
                monitor=es["monitor"] or monitor,
                patience=es["patience"],
                mode=es["mode"] or ck["mode"],
                min_delta=es["min_delta"],
            )
        )
    # Always: `engine report` plots the learning rate of every run (constant ones too).
    callbacks.append(LearningRateMonitor(logging_interval="step"))
    return callbacks, checkpoint


def _loggers(run_dir: Path) -> list[Any]:
    """CSV metrics in ``csv/<attempt>/metrics.csv`` (a resume starts attempt 1, keeping attempt 0), TensorBoard."""
    import importlib.util

    from lightning.pytorch.loggers import CSVLogger, TensorBoardLogger

    attempt = 0
    while (run_dir / "csv" / str(attempt) / "metrics.csv").exists():
        attempt += 1
    loggers: list[Any] = [CSVLogger(run_dir, name="csv", version=str(attempt))]
    if importlib.util.find_spec("tensorboard") or importlib.util.find_spec("tensorboardX"):
        loggers.append(TensorBoardLogger(run_dir, name="tb", version="", default_hp_metric=False))
    return loggers


def _plugin_extras(registry: Registry, cfg: dict[str, Any]) -> tuple[list[Any], list[Any]]:
    from lightning.pytorch import Callback
    from lightning.pytorch.loggers import Logger

    callbacks, loggers = [], []
    for info, result in registry.manager.call("engine_callbacks", config=cfg):
        for item in result or []:
            if isinstance(item, Callback):
                callbacks.append(item)
            elif isinstance(item, Logger):
                loggers.append(item)
            else:
                raise EngineError(
                    f"plugin '{info.name}' returned {type(item).__name__} from engine_callbacks; "
                    "expected Lightning callbacks or loggers"
                )
    return callbacks, loggers


def splits(datamodule: Any) -> tuple[bool, bool]:
    if implements(datamodule, HasSplits):
        return datamodule.has_split("val"), datamodule.has_split("test")
    return True, True


def build_trainer(plan: Plan, run_dir: Path, datamodule: Any) -> tuple[Any, Any]:
    """The Trainer and its checkpoint callback; Lightning's objections become one clear error."""
    import lightning as L

    from engine._run import logs
    from engine._run.callbacks import EpochLines
    from engine._run.checkpoints import AtomicCheckpointIO

    has_val, _ = splits(datamodule)
    callbacks, checkpoint = _callbacks(plan.config, run_dir, has_val)
    extra_callbacks, extra_loggers = _plugin_extras(plan.registry, plan.config)
    trainer_args = dict(plan.config["trainer"])
    if not has_val:
        trainer_args.setdefault("limit_val_batches", 0)
    # A progress bar on a terminal; one line an epoch in a log; nothing with --quiet.
    trainer_args["enable_progress_bar"] = trainer_args.get("enable_progress_bar", True) and logs.progress_bar()
    if logs.epoch_lines():
        callbacks.append(EpochLines())
    if logs.verbosity() <= logs.QUIET:
        trainer_args.setdefault("enable_model_summary", False)
    plugins = trainer_args.pop("plugins", None) or []
    plugins = [*(plugins if isinstance(plugins, list) else [plugins]), AtomicCheckpointIO()]
    try:
        trainer = L.Trainer(
            default_root_dir=run_dir,
            enable_checkpointing=False,  # the run's own checkpoints: RunCheckpoints
            callbacks=callbacks + extra_callbacks,
            logger=_loggers(run_dir) + extra_loggers,
            plugins=plugins,
            **trainer_args,
        )
    except Exception as exc:  # MisconfigurationException, a device that is not there, …
        raise EngineError(
            f"lightning.Trainer refused the trainer settings {trainer_args}: {type(exc).__name__}: {exc}",
            hint="see `engine run --help` and Lightning's Trainer documentation",
        ) from exc
    return trainer, checkpoint
