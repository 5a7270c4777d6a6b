"""A run: plan -> objects -> ``lightning.Trainer`` -> run directory.

Lightning does the training; the runner only assembles the Trainer (checkpoints,
early stopping, loggers, plugin callbacks) and records the run::

    runs/<name>/
      config.yaml        the resolved config (re-runnable with -c)
      environment.json   plugin distributions and versions, library versions, command
      facts.json         what the data source reported
      (data artifacts)   whatever the data source's save_artifacts(run_dir) writes, e.g. tokenizer.json
      checkpoints/       best.ckpt, last.ckpt
      csv/0/metrics.csv  every logged metric (CSVLogger; a resume writes csv/1/, …)
      tb/                TensorBoard events, when TensorBoard is installed
      summary.json       status, final and best-checkpoint metrics, the task's primary metric, wall time

Everything that can fail on the user's input (building the data, the task, the plugins'
callbacks, the Trainer itself) happens before the run directory is created: a failed build
leaves nothing behind.
"""

from __future__ import annotations

import os
import platform
import sys
import time
import warnings
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from engine.errors import EngineError
from engine.plan import Plan, make_plan
from engine.protocols import ChecksData, HasPrimaryMetric, HasSplits, ReportsSummary, SavesArtifacts, implements
from engine.registry import Registry
from engine.rundir import to_jsonable, write_json

RUN_DIR_ENV = "ENGINE_RUN_DIR"


@dataclass
class RunResult:
    run_dir: Path
    summary: dict[str, Any]


def run_dir_path(plan: Plan) -> Path:
    """Where the run goes (not created yet); DDP worker processes get rank zero's through the environment."""
    inherited = os.environ.get(RUN_DIR_ENV)
    if inherited and os.environ.get("LOCAL_RANK", "0") != "0":
        return Path(inherited)  # a DDP worker started by Lightning: the directory rank 0 made
    cfg = plan.config
    root = Path(cfg["run"]["dir"]).expanduser()
    name = cfg["run"]["name"]
    if not name:
        primary = plan.primary
        parts = [p.split(".")[-1] for p in (primary.component.name if primary else None, plan.data.name) if p]
        name = "-".join([*parts, datetime.now().strftime("%Y%m%d-%H%M%S")])
    path = root / name
    if path.exists() and any(path.iterdir()) and not cfg["run"]["name"]:
        i = 1
        while (root / f"{name}-{i}").exists():
            i += 1
        path = root / f"{name}-{i}"
    elif path.exists() and any(path.iterdir()):
        raise EngineError(
            f"run directory {path} already exists",
            hint=f"continue it with `engine run --resume {path}`, or choose another run.name",
        )
    return path


def environment(registry: Registry) -> dict[str, Any]:
    from importlib.metadata import PackageNotFoundError, version

    libs = {}
    for lib in ("torch", "lightning", "torchmetrics", "omegaconf", "pluggy"):
        try:
            libs[lib] = version(lib)
        except PackageNotFoundError:
            libs[lib] = None
    plugins = [
        {"plugin": p.name, "distribution": p.distribution, "version": p.version, "status": p.status, "error": p.error}
        for p in registry.manager.infos()
    ]
    return {
        "plugins": plugins,
        "libraries": libs,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "command": sys.argv,
    }


def _callbacks(cfg: dict[str, Any], run_dir: Path, has_val: bool) -> tuple[list[Any], Any]:
    from lightning.pytorch.callbacks import EarlyStopping, LearningRateMonitor

    from engine.callbacks import BestCheckpoint, RNGState

    ck = cfg["checkpoint"]
    monitor = ck["monitor"] or ("val/loss" if has_val else "train/loss")
    checkpoint = BestCheckpoint(
        dirpath=run_dir / "checkpoints",
        filename="best",
        monitor=monitor,
        mode=ck["mode"],
        save_top_k=ck["save_top_k"],
        save_last=ck["save_last"],
        every_n_epochs=None if ck["every_n_train_steps"] else ck["every_n_epochs"],
        every_n_train_steps=ck["every_n_train_steps"],
        auto_insert_metric_name=False,
        enable_version_counter=False,
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
    for info, result in registry.manager.call_each("engine_callbacks", config=cfg):
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


def _splits(datamodule: Any) -> tuple[bool, bool]:
    if implements(datamodule, HasSplits):
        return datamodule.has_split("val"), datamodule.has_split("test")
    return True, True


def _trainer(plan: Plan, run_dir: Path, datamodule: Any) -> tuple[Any, Any]:
    """The Trainer and its checkpoint callback; Lightning's objections become one clear error."""
    import lightning as L

    has_val, _ = _splits(datamodule)
    callbacks, checkpoint = _callbacks(plan.config, run_dir, has_val)
    extra_callbacks, extra_loggers = _plugin_extras(plan.registry, plan.config)
    trainer_args = dict(plan.config["trainer"])
    if not has_val:
        trainer_args.setdefault("limit_val_batches", 0)
    try:
        trainer = L.Trainer(
            default_root_dir=run_dir,
            callbacks=callbacks + extra_callbacks,
            logger=_loggers(run_dir) + extra_loggers,
            **trainer_args,
        )
    except Exception as exc:  # MisconfigurationException, a device that is not there, …
        raise EngineError(
            f"lightning.Trainer refused the trainer settings {trainer_args}: {type(exc).__name__}: {exc}",
            hint="see `engine run --help` and Lightning's Trainer documentation",
        ) from exc
    return trainer, checkpoint


def run(plan: Plan | dict[str, Any], registry: Registry | None = None, resume: Path | None = None) -> RunResult:
    """Train (and test) the planned run (a :class:`Plan`, or a validated config and its registry).

    ``resume`` continues that run directory from its last checkpoint.
    """
    import lightning as L

    from engine.build import build_data, build_task

    if not isinstance(plan, Plan):
        if registry is None:
            raise TypeError("run(config) needs the registry the config was validated with")
        plan = make_plan(plan, registry)
    warnings.filterwarnings("ignore", message=".*exists and is not empty.*")
    warnings.filterwarnings("ignore", message=".*LeafSpec.*")
    warnings.filterwarnings("ignore", message=".*smaller than the logging interval.*")
    started = time.time()
    L.seed_everything(plan.config["seed"], workers=True, verbose=False)
    last = resume / "checkpoints" / "last.ckpt" if resume is not None else None
    if last is not None and not last.is_file():
        raise EngineError(
            f"nothing to resume in {resume}: no checkpoints/last.ckpt",
            hint=f"start it again with -c {resume / 'config.yaml'}",
        )
    # Build everything before creating the run directory: a mistake found here leaves nothing behind.
    # A resumed run keeps its own artifacts (tokenizer …), not ones rebuilt from data that may have changed.
    datamodule = build_data(plan, artifacts=resume)
    facts = dict(datamodule.facts)
    model = build_task(plan, facts)
    if implements(model, ChecksData):
        model.check_data(datamodule)  # e.g. one forward pass: a model that does not fit the data fails here, clearly
    run_dir = resume if resume is not None else run_dir_path(plan)
    trainer, checkpoint = _trainer(plan, run_dir, datamodule)

    run_dir.mkdir(parents=True, exist_ok=True)
    previous_env = os.environ.get(RUN_DIR_ENV)
    os.environ[RUN_DIR_ENV] = str(run_dir)  # DDP workers re-run the command: same directory
    try:
        return _run(plan, run_dir, last, datamodule, facts, model, trainer, checkpoint, started)
    finally:
        if previous_env is None:
            os.environ.pop(RUN_DIR_ENV, None)
        else:
            os.environ[RUN_DIR_ENV] = previous_env


def _run(
    plan: Plan,
    run_dir: Path,
    last: Path | None,
    datamodule: Any,
    facts: dict[str, Any],
    model: Any,
    trainer: Any,
    checkpoint: Any,
    started: float,
) -> RunResult:
    import yaml

    cfg = plan.config
    rank_zero = int(os.environ.get("RANK", os.environ.get("LOCAL_RANK", 0))) == 0
    summary: dict[str, Any] = {"status": "running", "run_dir": str(run_dir), "seed": cfg["seed"]}
    if rank_zero:
        (run_dir / "config.yaml").write_text(yaml.safe_dump(cfg, sort_keys=False), encoding="utf-8")
        write_json(run_dir / "environment.json", environment(plan.registry))
        write_json(run_dir / "facts.json", facts)
        write_json(run_dir / "summary.json", summary)
        if implements(datamodule, SavesArtifacts):
            datamodule.save_artifacts(run_dir)  # e.g. a tokenizer trained on this run's data

    _, has_test = _splits(datamodule)
    try:
        trainer.fit(model, datamodule=datamodule, ckpt_path=str(last) if last is not None else None)
        if trainer.interrupted:
            raise KeyboardInterrupt
        _save_final_last(trainer, checkpoint)
        fit_metrics = dict(trainer.callback_metrics.items())
        test_metrics: dict[str, Any] = {}
        if has_test and trainer.limit_test_batches != 0:
            best = "best" if checkpoint.best_model_path else None
            results = trainer.test(model, datamodule=datamodule, ckpt_path=best, verbose=False)
            test_metrics = results[0] if results else {}
    except BaseException as exc:
        summary.update(
            status="interrupted" if isinstance(exc, (KeyboardInterrupt, SystemExit)) else "failed",
            error=f"{type(exc).__name__}: {exc}",
            wall_time_s=round(time.time() - started, 3),
            global_step=trainer.global_step,
            epoch=trainer.current_epoch,
        )
        if rank_zero:
            write_json(run_dir / "summary.json", summary)
        raise
    best_metrics = {**checkpoint.best_metrics, **(test_metrics if checkpoint.best_model_path else {})}
    summary.update(
        status="completed",
        metrics={**fit_metrics, **test_metrics},
        best_metrics=best_metrics,
        best_step=checkpoint.best_step,
        primary_metric=primary_metric(model, {**fit_metrics, **test_metrics}, best_metrics),
        best_checkpoint=_relative(checkpoint.best_model_path, run_dir),
        best_score=checkpoint.best_model_score,
        monitor=checkpoint.monitor,
        last_checkpoint=_relative(checkpoint.last_model_path, run_dir),
        global_step=trainer.global_step,
        epochs=trainer.current_epoch,
        wall_time_s=round(time.time() - started, 3),
    )
    summary.update(_technique_info(trainer, model))
    if trainer.is_global_zero:
        write_json(run_dir / "summary.json", summary)
    return RunResult(run_dir, to_jsonable(summary))


def primary_metric(task: Any, final: dict[str, Any], best: dict[str, Any]) -> dict[str, Any] | None:
    """The metric the task is judged by (``test/NAME``, else ``val/NAME``) with its best and final values."""
    name, mode = task.primary_metric if implements(task, HasPrimaryMetric) else ("loss", "min")
    for key in (f"test/{name}", f"val/{name}"):
        if key in final or key in best:
            value = best.get(key, final.get(key))
            return {"name": key, "mode": mode, "value": _number(value), "final": _number(final.get(key))}
    return None


def _number(value: Any) -> Any:
    return float(value) if value is not None and not isinstance(value, (str, bool)) else value


def _save_final_last(trainer: Any, checkpoint: Any) -> None:
    """Write ``last.ckpt`` at the final step when Lightning did not.

    Lightning saves ``last`` when it validates or ends an epoch; a run that stops at
    ``max_steps`` between two of those would otherwise lose its final steps on resume.
    """
    if not checkpoint.save_last or trainer.fast_dev_run:
        return
    if checkpoint._last_global_step_saved == trainer.global_step:
        return
    path = Path(checkpoint.dirpath) / "last.ckpt"
    trainer.save_checkpoint(path)
    checkpoint.last_model_path = str(path)


def _technique_info(trainer: Any, model: Any) -> dict[str, Any]:
    """What training techniques report for summary.json: weights loaded (``init_from``), frozen
    parameters, and anything a callback returns from ``summary_info()`` (pruning: sparsity)."""
    from engine.transfer import init_reports

    info: dict[str, Any] = {}
    transfer = init_reports(model)
    if transfer:
        info["transfer"] = transfer
    for callback in trainer.callbacks:
        if implements(callback, ReportsSummary):
            info.update(callback.summary_info())
    return info


def _relative(path: str | None, root: Path) -> str | None:
    if not path:
        return None
    try:
        return str(Path(path).relative_to(root))
    except ValueError:
        return path
