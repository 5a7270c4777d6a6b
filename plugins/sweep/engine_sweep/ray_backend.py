"""``--backend ray``: the same sweep on Ray Tune, on this machine or a cluster.

Ray Tune's ``OptunaSearch`` samples the same space (its study in the same ``DIR/study.db``), its
ASHA scheduler (``--pruner halving``, the default here; ``median``: the median stopping rule)
stops poor trials from the metric each trial reports after every validation, and every trial is
the same `engine_sweep.trial.run_trial` writing ``DIR/trials/NNN/``. The sweep's process
(the Ray driver) alone writes the records, ``results.csv`` and ``sweep.json``. On a cluster the
sweep directory must be on a file system every node mounts at the same path; ``--storage`` is
where Ray keeps its own experiment state (default ``DIR/ray``).

A trial ASHA stops is recorded ``pruned`` with its best reported value; its run directory is left
as Ray stopped it (``interrupted``; ``engine run --resume`` would continue it).
"""

from __future__ import annotations

import json
import logging
import math
import os
import time
from datetime import datetime
from pathlib import Path
from typing import Any

from ray import tune
from ray.tune.search import Searcher

from engine import EngineError
from engine_sweep.context import Sweep, make_spec

NUMBER = "engine_number"
STATUS = "engine_status"


def trainable(config: dict[str, Any], template: dict[str, Any]) -> None:
    """One Ray Tune trial: the engine run of trial ``config[NUMBER]``, then its outcome as the last result."""
    from engine_sweep.trial import run_trial

    if os.path.isdir(template["cwd"]):
        os.chdir(template["cwd"])  # Ray starts trials in its own directory; paths in configs are the user's
    import torch

    torch.set_num_threads(max(1, int(template["cpus_per_trial"])))
    number = int(config[NUMBER])
    sampled = {k: v for k, v in config.items() if k != NUMBER}
    spec = make_spec(template, number, sampled, None, number in template["resume"])
    outcome = run_trial(spec)
    value = outcome.get("value")
    final = {
        template["metric"]: value if isinstance(value, float) else math.nan,
        STATUS: outcome["status"],
        "engine_wall_time_s": outcome.get("wall_time_s"),
        "engine_error": outcome.get("error") or "",
        "engine_missing": ",".join(outcome.get("missing_metric") or []) if "missing_metric" in outcome else "-",
    }
    tune.report(final)


class Numbered(Searcher):
    """Optuna's suggestions numbered as the sweep's trials (resumed ones keep theirs); outcomes as Optuna states.

    A trial that completed tells its value; one that failed FAIL; one the scheduler stopped (or
    the pruner, between folds) PRUNED, so the study's history is what the optuna backend would hold.
    """

    def __init__(self, inner: Any, metric: str, mode: str, first: int, reuse: list[int]) -> None:
        super().__init__(metric=metric, mode=mode)
        self.inner, self.next, self.reuse = inner, first, list(reuse)

    def set_search_properties(self, metric: Any, mode: Any, config: Any, **spec: Any) -> bool:
        return self.inner.set_search_properties(metric, mode, config, **spec)

    def suggest(self, trial_id: str) -> Any:
        config = self.inner.suggest(trial_id)
        if config is None or config == Searcher.FINISHED:
            return config
        if self.reuse:
            number = self.reuse.pop(0)
        else:
            number, self.next = self.next, self.next + 1
        return {**config, NUMBER: number}

    def on_trial_result(self, trial_id: str, result: dict[str, Any]) -> None:
        if STATUS not in result:
            self.inner.on_trial_result(trial_id, result)

    def save(self, checkpoint_path: str) -> None:
        """Ray's experiment checkpoint: the numbering (Optuna's history is in the sweep's study.db)."""
        Path(checkpoint_path).write_text(json.dumps({"next": self.next, "reuse": self.reuse}))

    def restore(self, checkpoint_path: str) -> None:
        state = json.loads(Path(checkpoint_path).read_text())
        self.next, self.reuse = state["next"], state["reuse"]

    def on_trial_complete(self, trial_id: str, result: Any = None, error: bool = False) -> None:
        status = (result or {}).get(STATUS)
        if status == "completed" and not error:
            self.inner.on_trial_complete(trial_id, result, False)
        else:
            self.inner.on_trial_complete(trial_id, None, error or status == "failed")


def _searcher(sweep: Sweep, first: int, again: list[dict[str, Any]]) -> Numbered:
    from ray.tune.search.optuna import OptunaSearch

    from engine_sweep.optuna_backend import sampler
    from engine_sweep.study import rdb_storage

    s = sweep.settings
    inner = OptunaSearch(
        space={k: d.distribution() for k, d in sweep.dims.items()},
        metric=s["metric"],
        mode=s["direction"],
        sampler=sampler(s, sweep.dims, len(sweep.records)),
        storage=rdb_storage(sweep.storage_url),
        study_name="sweep",
        points_to_evaluate=[dict(r["sampled"]) for r in again] or None,
    )
    return Numbered(inner, s["metric"], s["direction"], first, [r["number"] for r in again])


class Stop(tune.Stopper):
    """Ends the whole experiment once the ledger has an error for the user (missing metric, --fail-fast)."""

    def __init__(self) -> None:
        self.error: EngineError | None = None

    def __call__(self, trial_id: str, result: dict[str, Any]) -> bool:
        return False

    def stop_all(self) -> bool:
        return self.error is not None


class Ledger(tune.Callback):
    """The driver's record of every trial as Ray runs it: records, results.csv, sweep.json, one line each."""

    def __init__(self, sweep: Sweep, stopper: Stop) -> None:
        self.sweep, self.stopper = sweep, stopper
        self.started: dict[str, float] = {}
        self.best: dict[str, float] = {}

    def on_trial_start(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        number = int(trial.config[NUMBER])
        self.started[trial.trial_id] = time.time()
        record = self.sweep.records.get(number)
        if record is None or record["status"] != "running":
            self.sweep.new_record(number, {k: v for k, v in trial.config.items() if k != NUMBER})

    def on_trial_result(self, iteration: int, trials: list, trial: Any, result: dict[str, Any], **info: Any) -> None:
        value = result.get(self.sweep.settings["metric"])
        if STATUS not in result and isinstance(value, (int, float)) and not math.isnan(value):
            old = self.best.get(trial.trial_id)
            maximise = self.sweep.settings["direction"] == "max"
            self.best[trial.trial_id] = value if old is None or (value > old if maximise else value < old) else old

    def on_trial_complete(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        self._finish(trial, None)

    def on_trial_error(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        error = trial.get_error()
        self._finish(trial, str(error).strip().splitlines()[-1][:500] if error else "the Ray trial failed")

    def _finish(self, trial: Any, error: str | None) -> None:
        from engine_sweep.optuna_backend import _missing

        s, stopper = self.sweep.settings, self.stopper
        number = int(trial.config[NUMBER])
        last = trial.last_result or {}
        wall = round(time.time() - self.started.get(trial.trial_id, time.time()), 3)
        if error is not None:
            outcome: dict[str, Any] = {"status": "failed", "error": error, "wall_time_s": wall}
        elif STATUS in last:
            value = last.get(s["metric"])
            outcome = {
                "status": last[STATUS],
                "value": None if value is None or math.isnan(value) else float(value),
                "wall_time_s": last.get("engine_wall_time_s") or wall,
                "error": last.get("engine_error") or None,
            }
            if last[STATUS] == "pruned" and outcome["value"] is None:
                outcome["value"] = self.best.get(trial.trial_id)
            if last.get("engine_missing", "-") != "-" and stopper.error is None:
                stopper.error = _missing(s["metric"], number, [m for m in last["engine_missing"].split(",") if m])
        elif stopper.error is not None:
            outcome = {"status": "failed", "error": "stopped: " + stopper.error.message.split(":")[0]}
        else:  # stopped by the scheduler
            outcome = {"status": "pruned", "value": self.best.get(trial.trial_id), "wall_time_s": wall}
        self.sweep.finish(self.sweep.records[number], outcome)
        if outcome["status"] == "failed" and s.get("fail_fast") and stopper.error is None:
            stopper.error = EngineError(f"--fail-fast: trial {number:03d} failed: {outcome['error']}")
            stopper.error.exit_code = 1


def _scheduler(sweep: Sweep) -> Any:
    from ray.tune.schedulers import ASHAScheduler, FIFOScheduler, MedianStoppingRule

    s = sweep.settings
    common = {"time_attr": "training_iteration", "metric": s["metric"], "mode": s["direction"]}
    grace = max(1, s["prune_warmup"])
    if s["pruner"] == "halving":
        # The last result (the trial's outcome) comes one iteration after its last validation.
        top = max(2, int(sweep.meta.get("steps_per_fold", 100)) * (s.get("folds") or 1) + 1)
        return ASHAScheduler(max_t=top, grace_period=grace, reduction_factor=3, **common)
    if s["pruner"] == "median":
        return MedianStoppingRule(grace_period=grace, min_samples_required=max(1, s["prune_startup"]), **common)
    return FIFOScheduler()


def _init_ray(address: str | None) -> bool:
    """Connect to ``address`` (or start Ray on this machine) unless the caller has; whether we did."""
    import ray

    if ray.is_initialized():
        return False
    os.environ.setdefault("RAY_CHDIR_TO_TRIAL_DIR", "0")
    kwargs: dict[str, Any] = {"include_dashboard": False, "log_to_driver": False, "configure_logging": False}
    try:
        ray.init(address=address, **kwargs)
    except ConnectionError as exc:
        raise EngineError(
            f"cannot reach the Ray cluster at {address}: {exc}", hint="start it: `ray start --head`"
        ) from None
    return True


def run_ray(sweep: Sweep, resume: bool = False) -> None:
    """Run the sweep on Ray Tune until it has exactly N finished trials."""
    import optuna
    import ray

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    os.environ.setdefault("RAY_AIR_NEW_OUTPUT", "0")  # with verbose=0: no progress tables
    logging.getLogger("ray.tune").setLevel(logging.WARNING)
    s = sweep.settings
    again = [r for _, r in sorted(sweep.records.items()) if r["status"] == "running"] if resume else []
    if resume:
        from engine_sweep.study import rdb_storage

        study = optuna.load_study(study_name="sweep", storage=rdb_storage(sweep.storage_url))
        for t in study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.RUNNING,)):
            study.tell(t.number, state=optuna.trial.TrialState.FAIL, skip_if_finished=True)  # runs again below
    todo = len(again) + s["trials"] - len(sweep.records)
    if todo <= 0:
        return
    first = max(sweep.records, default=-1) + 1
    started = _init_ray(s.get("address"))
    try:
        template = {
            **sweep.template(),
            "cwd": os.getcwd(),
            "cpus_per_trial": s["cpus_per_trial"],
            "resume": [r["number"] for r in again],
        }
        stopper = Stop()
        ledger = Ledger(sweep, stopper)
        storage = str(s.get("storage") or sweep.root / "ray")
        if "://" not in storage:  # a path (shared by every node), else a URI Ray understands (s3://…)
            storage = str(Path(storage).expanduser().resolve())
        tuner = tune.Tuner(
            tune.with_resources(tune.with_parameters(trainable, template=template), {"cpu": s["cpus_per_trial"]}),
            tune_config=tune.TuneConfig(
                search_alg=_searcher(sweep, first, again),
                scheduler=_scheduler(sweep),
                num_samples=todo,
                max_concurrent_trials=s.get("jobs"),  # default: as many as the CPUs fit
                reuse_actors=True,
            ),
            run_config=tune.RunConfig(
                name=datetime.now().strftime("attempt-%Y%m%d-%H%M%S"),  # each start or resume: its own
                storage_path=storage,
                stop=stopper,
                callbacks=[ledger],
                verbose=0,
                failure_config=tune.FailureConfig(max_failures=0),
            ),
        )
        tuner.fit()
    finally:
        if started:
            ray.shutdown()
    if stopper.error is not None:
        raise stopper.error
