"""One trial: compose the run with the trial's overrides, train it (or its folds), judge it by the metric.

`run_trial` takes and returns plain data, so it runs the same in the sweep's own process
(``--jobs 1``), in a worker process (``--jobs N``) and in a Ray worker. A trial resumed after a
killed sweep continues its run directory from its last checkpoint (``engine run --resume``), or
just reads it when it had finished.
"""

from __future__ import annotations

import logging
import os
import sys
import threading
import time
import warnings
from pathlib import Path
from typing import Any

from engine import EngineError

_QUIET_LOGGERS = ("lightning.pytorch", "lightning.fabric", "lightning", "pytorch_lightning")


def quiet() -> None:
    """No Lightning banners or common warnings per trial: the sweep prints one line per trial."""
    import lightning.pytorch  # noqa: F401 - it sets its loggers' levels when imported: after that

    from engine.console import QUIET, set_verbosity

    set_verbosity(QUIET)  # the core's verbosity (engine run --quiet): no epoch lines either
    for name in _QUIET_LOGGERS:
        logging.getLogger(name).setLevel(logging.WARNING)
    for pattern in (".*does not have many workers.*", ".*LeafSpec.*", ".*smaller than the logging interval.*"):
        warnings.filterwarnings("ignore", message=pattern)
    warnings.filterwarnings("ignore", category=FutureWarning)


def one_line(exc: BaseException) -> str:
    """An error as one line: its type and first line (a trial's record, a CSV cell)."""
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0] if text else ''}"[:500]


def run_trial(spec: dict[str, Any]) -> dict[str, Any]:
    """Train trial ``spec["number"]``; its outcome: status, value, wall time, error (plain data).

    ``spec``: ``number``, ``recipe``, ``files``, ``overrides`` (the base run's, then the space's,
    then the sweep's own), ``run_dir``, ``metric``, ``folds``/``group_by``, ``resume``, ``disable``.
    A user's mistake inside the trial (an `EngineError`) is an outcome with ``user_error``
    set; anything else a failure with its error. KeyboardInterrupt passes through.
    """
    quiet()
    started = time.time()
    run_dir = Path(spec["run_dir"])
    outcome: dict[str, Any] = {"number": spec["number"], "status": "failed", "value": None, "error": None}
    try:
        pruned = _train(spec, run_dir)
    except EngineError as exc:
        outcome.update(error=exc.message, user_error=True, wall_time_s=round(time.time() - started, 3))
        if hasattr(exc, "available"):  # the sweep's metric is not logged (found at the first validation)
            outcome["missing_metric"] = list(exc.available)
        return outcome
    except Exception as exc:
        if type(exc).__name__ == "TrialPruned":  # a cross-validating trial stopped between folds
            outcome.update(status="pruned", error=None, pruned=True)
        else:
            outcome.update(error=one_line(exc))
            outcome["wall_time_s"] = round(time.time() - started, 3)
            return outcome
        pruned = True
    from engine_sweep.records import trial_value

    value, available = trial_value(run_dir, spec["metric"])
    measured = round(time.time() - started, 3)
    outcome.update(status="pruned" if pruned else "completed", value=value, wall_time_s=_wall(run_dir, measured))
    if "torch" in sys.modules:
        outcome["threads"] = sys.modules["torch"].get_num_threads()  # the share of the CPU this trial had
    if value is None and outcome["status"] == "completed":
        outcome.update(status="failed", error=f"the run did not log {spec['metric']}", missing_metric=available)
    return outcome


def _train(spec: dict[str, Any], run_dir: Path) -> bool:
    """Train (or resume, or just read) the trial's run; whether the pruner stopped it."""
    import engine
    from engine.runs import read_json

    registry = engine.get_registry(tuple(spec.get("disable") or ()))
    cfg = engine.compose(spec.get("recipe"), spec.get("files") or [], spec["overrides"], registry=registry)
    if spec.get("folds"):
        cross_validation()(cfg, registry, spec["folds"], spec.get("group_by"), progress=lambda line: None)
        return False
    summary = read_json(run_dir, "summary.json") if run_dir.is_dir() else {}
    if spec.get("resume") and summary.get("status") == "completed":
        return bool((summary.get("sweep") or {}).get("pruned"))  # it finished; the sweep died before recording it
    plan = engine.plan(cfg, registry=registry)
    resume = run_dir if spec.get("resume") and (run_dir / "config.yaml").is_file() else None
    if resume is None and run_dir.is_dir():
        _clear(run_dir)  # asked, but killed before its run directory held anything to continue
    result = engine.train(plan, resume=resume)
    return bool((result.summary.get("sweep") or {}).get("pruned"))


def cross_validation() -> Any:
    """The experiments plugin's ``run_folds(cfg, registry, folds, group_by, progress)`` (``engine run --folds K``)."""
    try:
        from engine_experiments.crossval import run_folds
    except ImportError:
        raise EngineError(
            "--folds needs the experiments plugin (cross-validation), which is not installed",
            hint="pip install engine-experiments",
        ) from None
    return run_folds


def _clear(run_dir: Path) -> None:
    import shutil

    if run_dir.name.isdigit() and run_dir.parent.name == "trials":
        shutil.rmtree(run_dir, ignore_errors=True)


def _wall(run_dir: Path, measured: float) -> float:
    """The run's own wall time (what the trial cost), else the time measured around it (folds)."""
    from engine.runs import read_json

    summary = read_json(run_dir, "summary.json") if (run_dir / "summary.json").is_file() else {}
    wall = summary.get("wall_time_s")
    return float(wall) if isinstance(wall, (int, float)) and summary.get("status") == "completed" else measured


# --------------------------------------------------------------------------- worker processes


def threads_per_job(jobs: int) -> int:
    """CPU threads for each of ``jobs`` trials running at once: the machine's cores divided between them."""
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        cores = os.cpu_count() or 1
    return max(1, cores // max(1, jobs))


def init_worker(threads: int, parent: int) -> None:
    """A worker process of ``--jobs N``: ``threads`` torch threads, and it ends when the sweep's process does.

    The thread count goes into the environment before torch is imported (OpenMP reads it once),
    and into torch itself. A watchdog thread ends the worker when its parent is gone (a SIGKILLed
    sweep must not leave trials training behind it; ``--resume`` continues them).
    """
    for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        os.environ[var] = str(threads)
    import torch

    torch.set_num_threads(threads)
    torch.set_num_interop_threads(max(1, min(threads, 2)))

    def watch() -> None:
        while True:
            if os.getppid() != parent:
                os._exit(3)
            time.sleep(0.5)

    threading.Thread(target=watch, daemon=True, name="engine-sweep-watchdog").start()
    sys.stdout = open(os.devnull, "w")  # a worker's own prints would interleave with the sweep's lines
