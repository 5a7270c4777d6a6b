"""The embedded backend: an Optuna study in ``DIR/study.db`` (SQLite), asked and told by the sweep's process.

The sweep's process is the only one that asks for trials (``study.ask``) and tells their
outcome (``study.tell``); trials run in it (``--jobs 1``) or in ``--jobs N`` worker processes
(spawned, each with its share of the CPU threads), which report intermediate values to the
same SQLite study for the pruner. Trial ``k`` of the sweep is trial ``k`` of the study.

Resume: a trial the killed sweep left running continues its run directory from its last
checkpoint (or is read, when it had finished) with the same parameters, as the same study trial;
then new trials are asked until the sweep has exactly N. A trial asked but never recorded (a
kill between the two) is recovered the same way; one recorded but never told is told.
"""

from __future__ import annotations

import multiprocessing
import os
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from typing import Any

from engine import EngineError, did_you_mean
from engine_sweep.context import Sweep
from engine_sweep.records import FINISHED
from engine_sweep.trial import init_worker, run_trial, threads_per_job


def sampler(settings: dict[str, Any], dims: dict[str, Any], done: int = 0) -> Any:
    """The search algorithm: TPE (default), random, or a grid (``grid_points`` values per float range).

    ``done``: trials the study holds already (a resume): the seed moves on, so that the resumed
    sampler does not draw the killed one's first points again.
    """
    import optuna

    seed = settings.get("sampler_seed", 0) + done
    if settings["sampler"] == "random":
        return optuna.samplers.RandomSampler(seed=seed)
    if settings["sampler"] == "grid":
        grid = {k: d.grid(settings["grid_points"]) for k, d in dims.items()}
        return optuna.samplers.GridSampler(grid, seed=seed)
    # Optuna's 10 random start-up trials would be a whole small sweep: a third of it, 3 to 10 trials.
    startup = min(10, max(3, int(settings.get("trials") or 20) // 3))
    return optuna.samplers.TPESampler(
        seed=seed, n_startup_trials=startup, constant_liar=(settings.get("jobs") or 1) > 1
    )


def open_study(sweep: Sweep) -> Any:
    """The sweep's study (created on the first call, loaded on a resume)."""
    import optuna

    from engine_sweep.study import make_pruner, rdb_storage

    s = sweep.settings
    storage = rdb_storage(sweep.storage_url)
    done = len(storage.get_all_trials(storage.get_study_id_from_name("sweep"))) if sweep.records else 0
    return optuna.create_study(
        storage=storage,
        study_name="sweep",
        sampler=sampler(s, sweep.dims, done),
        pruner=make_pruner(s["pruner"], s["prune_startup"], s["prune_warmup"]),
        direction="maximize" if s["direction"] == "max" else "minimize",
        load_if_exists=True,
    )


class Inline:
    """``--jobs 1``: each trial runs in the sweep's own process, when submitted (no start-up per trial)."""

    def submit(self, fn: Any, spec: dict[str, Any]) -> Future:
        future: Future = Future()
        future.set_result(fn(spec))
        return future

    def shutdown(self, kill: bool = False) -> None:
        pass


class Pool:
    """``--jobs N``: N spawned worker processes, each with its share of the CPU threads, reused across trials."""

    def __init__(self, jobs: int) -> None:
        self.jobs = jobs
        self.executor = self._new()

    def _new(self) -> ProcessPoolExecutor:
        return ProcessPoolExecutor(
            max_workers=self.jobs,
            mp_context=multiprocessing.get_context("spawn"),
            initializer=init_worker,
            initargs=(threads_per_job(self.jobs), os.getpid()),
        )

    def submit(self, fn: Any, spec: dict[str, Any]) -> Future:
        try:
            return self.executor.submit(fn, spec)
        except BrokenProcessPool:
            self.executor = self._new()  # a worker died (killed, out of memory): start afresh
            return self.executor.submit(fn, spec)

    def shutdown(self, kill: bool = False) -> None:
        if kill:
            terminate = getattr(self.executor, "terminate_workers", None)  # Python >= 3.14
            if terminate is not None:
                terminate()
            else:
                for process in list(getattr(self.executor, "_processes", {}).values()):
                    process.terminate()
        self.executor.shutdown(wait=not kill, cancel_futures=True)


def _recover(sweep: Sweep, study: Any) -> list[dict[str, Any]]:
    """Trials to run again on a resume, in order: left running by the killed sweep, or asked unrecorded.

    A trial the study still has running but whose outcome is recorded (the kill came between the
    record and the tell) is told now: the sampler learns it, and it is not run again.
    """
    import optuna

    running = optuna.trial.TrialState.RUNNING
    for trial in study.get_trials(deepcopy=False, states=(running,)):
        record = sweep.records.get(trial.number)
        if record is None:
            sweep.new_record(trial.number, dict(trial.params), trial_id(sweep, trial.number))
        elif record["status"] in FINISHED:
            _tell(study, record)
    return [r for _, r in sorted(sweep.records.items()) if r["status"] == "running"]


def trial_id(sweep: Sweep, number: int) -> int:
    """The storage's id of the study's trial ``number``: what a worker process opens it by to report."""
    from engine_sweep.study import rdb_storage

    storage = rdb_storage(sweep.storage_url)
    return storage.get_trial_id_from_study_id_trial_number(storage.get_study_id_from_name("sweep"), number)


def _ask(sweep: Sweep, study: Any, distributions: dict[str, Any]) -> dict[str, Any]:
    trial = study.ask(fixed_distributions=distributions)
    # Trial k of the sweep is trial k of its study. Its storage id: the Trial's own (no look-up), else looked up.
    ident = getattr(trial, "_trial_id", None)
    if not isinstance(ident, int):
        ident = trial_id(sweep, trial.number)
    return sweep.new_record(trial.number, dict(trial.params), ident)


def _tell(study: Any, record: dict[str, Any]) -> None:
    import optuna

    state = optuna.trial.TrialState
    try:
        if record["status"] == "completed":
            study.tell(record["number"], record["value"], skip_if_finished=True)
        elif record["status"] == "pruned":
            study.tell(record["number"], state=state.PRUNED, skip_if_finished=True)
        else:
            study.tell(record["number"], state=state.FAIL, skip_if_finished=True)
    except RuntimeError as exc:  # the grid sampler stops "the optimize loop" when its grid is done: we have none
        if "Study.stop" not in str(exc):
            raise


def _pruned_value(study: Any, record: dict[str, Any], direction: str) -> float | None:
    """A pruned trial without a final figure: its best intermediate value."""
    trial = study.get_trials(deepcopy=False)[record["number"]]
    values = list(trial.intermediate_values.values())
    if not values:
        return None
    return max(values) if direction == "max" else min(values)


def run_optuna(sweep: Sweep, resume: bool = False) -> None:
    """Run the sweep to exactly its N trials (finished: completed, pruned or failed)."""
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = open_study(sweep)
    s = sweep.settings
    queue = _recover(sweep, study) if resume else []
    jobs = max(1, int(s.get("jobs") or 1))
    executor: Inline | Pool = Inline() if jobs == 1 else Pool(jobs)
    pending: dict[Future, dict[str, Any]] = {}
    distributions = {k: d.distribution() for k, d in sweep.dims.items()}
    stop: EngineError | None = None
    stopping = False
    try:
        while True:
            while len(pending) < jobs and not stopping:
                if queue:
                    record, again = queue.pop(0), True
                elif len(sweep.records) < s["trials"]:
                    record, again = _ask(sweep, study, distributions), False
                else:
                    break
                pending[executor.submit(run_trial, sweep.spec(record, resume=again))] = record
            if not pending:
                break
            done, _ = wait(pending, return_when=FIRST_COMPLETED)
            for future in done:
                record = pending.pop(future)
                outcome = _outcome(future, record)
                if outcome["status"] == "pruned" and outcome.get("value") is None:
                    outcome["value"] = _pruned_value(study, record, s["direction"])
                sweep.finish(record, outcome)
                _tell(study, record)
                if "missing_metric" in outcome and stop is None:
                    stop = _missing(s["metric"], record["number"], outcome["missing_metric"])
                    stopping = True
                elif outcome["status"] == "failed" and s.get("fail_fast"):
                    stopping = True
                    stop = EngineError(
                        f"--fail-fast: trial {record['number']:03d} failed: {outcome['error']}",
                        hint=f"its run directory: {sweep.root / record['run']}",
                    )
                    stop.exit_code = 1
            if stopping and pending:
                break
    finally:
        executor.shutdown(kill=True)  # every result is in (or the sweep stops): idle workers need no goodbye
    if stop is not None:
        for record in pending.values():  # stopped by --fail-fast or a missing metric: what was still running
            sweep.finish(record, {"status": "failed", "error": "stopped: " + stop.message.split(":")[0]})
            _tell(study, record)
        raise stop


def _outcome(future: Future, record: dict[str, Any]) -> dict[str, Any]:
    try:
        return future.result()
    except BrokenProcessPool:
        return {"status": "failed", "error": "its worker process died (killed, or out of memory)"}
    except Exception as exc:  # an error that escaped the trial (it could not be sent back …)
        return {"status": "failed", "error": f"{type(exc).__name__}: {exc}"[:500]}


def _missing(metric: str, number: int, available: list[str]) -> EngineError:
    return EngineError(
        f"--metric {metric}: trial {number:03d} never logged it{did_you_mean(metric, available)}",
        hint="it logged: " + (", ".join(available) if available else "nothing") + "; the sweep stopped",
    )
