"""A run: plan -> objects -> ``lightning.Trainer`` -> a run directory (its files: ``docs/concepts.md``).

Everything that can fail on the user's input (the data, the task, the plugins' callbacks, the Trainer)
is built before the run directory is created: a failed build leaves nothing behind.
"""

from __future__ import annotations

import os
import platform
import signal
import sys
import time
import warnings
from contextlib import suppress
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from engine._config.plan import Plan
from engine._contract.errors import EngineError
from engine._contract.events import RunFinished
from engine._contract.protocols import (
    ChecksData,
    ChecksRun,
    HasPrimaryMetric,
    ReportsSummary,
    SavesArtifacts,
    implements,
)
from engine._plugins.files import remove_stale_temps, write_text_atomic
from engine._plugins.registry import Registry
from engine._run.resume import check_resume
from engine._run.runs import LOCK_FILE, WEIGHTS_FILE, inside, lock_run, read_json, to_jsonable, unlock_run, write_json

RUN_DIR_ENV = "ENGINE_RUN_DIR"


@dataclass
class RunResult:
    """What `train` returns: the run directory and its summary (``summary.json``)."""

    run_dir: Path
    summary: dict[str, Any]


class RunInterrupted(KeyboardInterrupt):
    """A run stopped by Ctrl-C (exit code 130) or SIGTERM (143): its directory, recorded ``interrupted``, resumes."""

    def __init__(self, run_dir: Path, exit_code: int = 130) -> None:
        super().__init__(f"interrupted: {run_dir}")
        self.run_dir, self.exit_code = run_dir, exit_code


def _new_run_dir(plan: Plan) -> Path:
    """A new run's directory, claimed (created and locked): ``run.name``, else model, data and time (``-1`` …)."""
    run = plan.config["run"]
    root, name = Path(run["dir"]).expanduser(), run["name"] or plan.default_run_name()
    i = 0
    while True:
        path, i = root / (f"{name}-{i}" if i else name), i + 1
        try:
            path.mkdir(parents=True, exist_ok=True)
            if _claim(path):
                return path
        except OSError as exc:
            raise _unwritable(path, exc) from None
        if run["name"]:
            raise EngineError(
                f"run directory {path} already exists",
                hint=f"continue it with `engine run --resume {path}`, or choose another run.name",
            )


def _claim(path: Path) -> bool:
    """Whether this process took ``path`` (empty, or holding a dead process's lock): two runs never share one."""
    if path.is_symlink() or any(p.name != LOCK_FILE for p in path.iterdir()):
        return False
    try:
        lock_run(path)
    except EngineError:
        return False  # another new run took it first
    if [p.name for p in path.iterdir()] == [LOCK_FILE]:
        return True
    unlock_run(path)  # a run that ended while we looked
    return False


def shared_run_dir(plan: Plan) -> Path:
    """The run directory, named by rank 0 of a multi-process launch (torchrun, SLURM) for all the others.

    Each process runs ``engine run`` on its own: rank 0 tells the others over the default process group, set up
    here as Lightning would (gloo on CPU, nccl on GPUs) and then used by Lightning's DDP as it is.
    """
    inherited = os.environ.get(RUN_DIR_ENV)
    if inherited and os.environ.get("LOCAL_RANK", "0") != "0":
        return Path(inherited)  # a DDP worker Lightning started: rank 0's directory, through the environment
    from lightning.fabric.plugins.environments import SLURMEnvironment, TorchElasticEnvironment

    env = next((cls() for cls in (TorchElasticEnvironment, SLURMEnvironment) if cls.detect()), None)
    if env is None or env.world_size() <= 1:
        return _new_run_dir(plan)
    import torch
    import torch.distributed as dist

    if not dist.is_initialized():
        os.environ.setdefault("MASTER_ADDR", env.main_address)
        os.environ.setdefault("MASTER_PORT", str(env.main_port))
        gpu = torch.cuda.is_available() and plan.config["trainer"].get("accelerator") not in ("cpu",)
        if gpu:
            torch.cuda.set_device(env.local_rank())
        dist.init_process_group("nccl" if gpu else "gloo", rank=env.global_rank(), world_size=env.world_size())
    chosen = [str(_new_run_dir(plan)) if env.global_rank() == 0 else None]
    dist.broadcast_object_list(chosen, src=0)
    return Path(str(chosen[0]))


def environment(registry: Registry) -> dict[str, Any]:
    """``environment.json``: plugins, library versions, Python, platform and command line."""
    from importlib.metadata import PackageNotFoundError, version

    libs: dict[str, str | None] = dict.fromkeys(("torch", "lightning", "torchmetrics", "omegaconf", "pluggy"))
    for lib in libs:
        with suppress(PackageNotFoundError):
            libs[lib] = version(lib)
    plugins = [
        {"plugin": p.name, "distribution": p.distribution, "version": p.version, "status": p.status, "error": p.error}
        for p in registry.manager.infos()
    ]
    return {
        "plugins": plugins,
        "libraries": libs,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "command": ["engine" if i == 0 else a for i, a in enumerate(sys.argv)],
    }


def train(plan: Plan, resume: Path | None = None) -> RunResult:
    """Train (and test) the planned run; ``resume`` continues that run directory from its newest checkpoint."""
    if resume is not None and (done := check_resume(plan, resume)) is not None:
        return RunResult(resume, done)  # completed, nothing left to train: left alone
    from unittest.mock import patch  # here: it imports asyncio, too slow for --dry-run's import of this module

    import lightning as L

    from engine._run.build import build
    from engine._run.checkpoints import resume_point
    from engine._run.trainer import build_trainer

    for noise in ("exists and is not empty", "LeafSpec", "smaller than the logging interval"):
        warnings.filterwarnings("ignore", message=f".*{noise}.*")
    started = time.time()
    rank_zero = int(os.environ.get("RANK", os.environ.get("LOCAL_RANK", 0))) == 0
    if resume is not None and rank_zero:
        inside(resume)  # no link in it leads out: what it reads and what Lightning writes stay in the run
        lock_run(resume)  # refused while another process trains it
    run_dir = resume
    try:
        L.seed_everything(plan.config["seed"], workers=True, verbose=False)
        last = resume_point(resume) if resume is not None else None
        # A resumed run keeps its own artifacts (tokenizer …), not ones rebuilt from data that may have changed.
        built = build(plan, artifacts=resume)
        if implements(built.task, ChecksData):
            built.task.check_data(built.datamodule)  # one forward pass: a model that does not fit the data fails here
        run_dir = run_dir or shared_run_dir(plan)  # a new run's directory: created and locked (rank 0)
        trainer, checkpoint = build_trainer(plan, run_dir, built.datamodule)
        for callback in trainer.callbacks:
            if implements(callback, ChecksRun):
                callback.check_run(trainer, built.task, built.datamodule)
        with patch.dict(os.environ, {RUN_DIR_ENV: str(run_dir)}):  # DDP workers re-run the command: same directory
            return _fit(plan, run_dir, last, built, trainer, checkpoint, started)
    finally:
        dist = sys.modules.get("torch.distributed")  # a process group's threads left running at exit abort a rank
        if dist is not None and dist.is_available() and dist.is_initialized():
            dist.destroy_process_group()
        if run_dir is not None:
            unlock_run(run_dir)
            with suppress(OSError):
                run_dir.rmdir()  # a new run that failed before writing anything leaves nothing behind


def _fit(
    plan: Plan, run_dir: Path, last: Path | None, built: Any, trainer: Any, checkpoint: Any, started: float
) -> RunResult:
    import socket

    import yaml

    from engine._run.callbacks import Started
    from engine._run.trainer import splits

    cfg, datamodule, model = plan.config, built.datamodule, built.task
    rank_zero = int(os.environ.get("RANK", os.environ.get("LOCAL_RANK", 0))) == 0
    try:
        previous = read_json(run_dir, "summary.json")
    except EngineError:
        previous = {}  # unreadable: the attempt starting now writes a new one
    # Wall time is the sum of the attempts' (a killed attempt's is lost); each attempt's is kept beside it.
    attempts = previous.get("attempts_wall_time_s") or [previous[k] for k in ("wall_time_s",) if k in previous]

    def wall_time() -> dict[str, Any]:
        now = round(time.time() - started, 3)
        return {"wall_time_s": round(sum(attempts) + now, 3), "attempts_wall_time_s": [*attempts, now]}

    summary: dict[str, Any] = {
        "status": "running",
        # the first attempt's start: `engine runs list` sorts by it
        "started": previous.get("started") or datetime.fromtimestamp(started).isoformat(timespec="seconds"),
        "seed": cfg["seed"],
        "pid": os.getpid(),
        "host": socket.gethostname(),
        **({"attempts_wall_time_s": attempts} if attempts else {}),
    }
    if previous.get("status") == "completed":
        summary["previous"] = previous  # put back if this attempt fails: a completed run keeps its figures
    written, resumed = [], (run_dir / "config.yaml").is_file()

    def records() -> None:  # the run as trained; a resumed run's once it has started (a failed resume keeps the old)
        if rank_zero and not written:
            written.append(True)
            write_text_atomic(run_dir / "config.yaml", yaml.safe_dump(cfg, sort_keys=False))
            write_json(run_dir / "environment.json", environment(plan.registry))
            write_json(run_dir / "facts.json", built.facts)
            if implements(datamodule, SavesArtifacts):
                datamodule.save_artifacts(run_dir)  # e.g. a tokenizer trained on this run's data

    if rank_zero:
        try:
            for directory in (run_dir, run_dir / "checkpoints"):
                remove_stale_temps(directory)  # what a killed attempt was writing
            if not resumed:
                records()
            write_json(run_dir / "summary.json", summary)
        except OSError as exc:
            raise _unwritable(run_dir, exc) from None
    trainer.callbacks.append(Started(records))

    _, has_test = splits(datamodule)
    try:
        trainer.fit(model, datamodule=datamodule, ckpt_path=str(last) if last is not None else None)
        if trainer.interrupted:
            raise KeyboardInterrupt
        records()  # a resumed run that had nothing left to train
        fit_metrics = dict(trainer.callback_metrics.items())
        test_metrics: dict[str, Any] = {}
        if has_test and trainer.limit_test_batches != 0:
            best = checkpoint.best_model_path or None
            results = trainer.test(model, datamodule=datamodule, ckpt_path=best, verbose=False)
            test_metrics = results[0] if results else {}
        if rank_zero:
            _save_weights(model, checkpoint, run_dir)
    except BaseException as exc:
        stopped = isinstance(exc, (KeyboardInterrupt, SystemExit))  # Lightning turns Ctrl-C into sys.exit(1)
        attempt = {
            "status": "interrupted" if stopped else "failed",
            **({} if stopped else {"error": f"{type(exc).__name__}: {exc}"}),
            **wall_time(),
            "global_step": trainer.global_step,
            "epoch": trainer.current_epoch,
        }
        failed = {**previous, "last_attempt": attempt} if "previous" in summary else {**summary, **attempt}
        if rank_zero:
            try:
                failed.update(_finished(plan, run_dir, attempt["status"], failed, model, trainer))
            except Exception:
                pass
            try:
                write_json(run_dir / "summary.json", failed)
            except OSError:
                pass  # the disk that failed the run may refuse this too; the error below says why
        if isinstance(exc, OSError):
            raise _unwritable(run_dir, exc) from exc
        if stopped:
            with suppress(ValueError):  # Lightning ignores Ctrl-C from now on; a caller going on gets it back
                signal.signal(signal.SIGINT, signal.default_int_handler)
            raise RunInterrupted(run_dir, 143 if getattr(trainer, "received_sigterm", False) else 130) from exc
        raise
    final = {**fit_metrics, **test_metrics}
    best_metrics = {**checkpoint.best_metrics, **(test_metrics if checkpoint.best_model_path else {})}
    summary.pop("previous", None)
    summary.update(
        status="completed",
        metrics=final,
        best_metrics=best_metrics,
        best_step=checkpoint.best_step,
        primary_metric=primary_metric(model, final, best_metrics),
        weights=WEIGHTS_FILE,
        best_checkpoint=_relative(checkpoint.best_model_path, run_dir),
        best_score=checkpoint.best_model_score,
        monitor=checkpoint.monitor,
        last_checkpoint=_relative(checkpoint.last_model_path, run_dir),
        global_step=trainer.global_step,
        epochs=trainer.current_epoch,
        **wall_time(),
    )
    for callback in trainer.callbacks:
        if implements(callback, ReportsSummary):
            summary.update(callback.summary_info())
    if trainer.is_global_zero:
        summary.update(_finished(plan, run_dir, "completed", summary, model, trainer))
        write_json(run_dir / "summary.json", summary)
    return RunResult(run_dir, to_jsonable(summary))


def _unwritable(run_dir: Path, exc: OSError) -> EngineError:
    return EngineError(
        f"cannot write the run directory {run_dir}: {exc.strerror or exc} ({exc.filename or run_dir})",
        hint="free some space or choose a writable run.dir; the run's checkpoints so far are kept",
    )


def _save_weights(model: Any, checkpoint: Any, run_dir: Path) -> None:
    """The best checkpoint's weights (else the final ones) as ``model.safetensors``: plain tensors, for anyone."""
    from engine._run.checkpoints import load_checkpoint, save_weights

    best = Path(checkpoint.best_model_path) if checkpoint.best_model_path else None
    mapped = best is not None and best.is_file()  # mapped: the optimizer's state (Adam: 2x the weights) stays on disk
    state = load_checkpoint(best, mmap=True)["state_dict"] if mapped else model.state_dict()
    save_weights(state, run_dir / WEIGHTS_FILE)


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


def _finished(plan: Plan, run_dir: Path, status: str, summary: dict[str, Any], task: Any, trainer: Any) -> dict:
    """What the plugins' ``engine_run_finished`` add to the summary (each a mapping)."""
    event = RunFinished(run_dir, status, dict(summary), plan.config, task, trainer)
    added: dict[str, Any] = {}
    for info, extra in plan.registry.manager.call("engine_run_finished", run=event):
        if not isinstance(extra, dict):
            raise EngineError(
                f"plugin '{info.name}' returned {type(extra).__name__} from engine_run_finished, not a dict"
            )
        added.update(extra)
    return added


def _relative(path: str | None, root: Path) -> str | None:
    """``path`` relative to the run directory (Lightning's are absolute; a record never names a file outside it)."""
    return str(Path(path).resolve().relative_to(root.resolve())) if path else None
