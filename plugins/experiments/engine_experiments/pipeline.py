"""Multi-stage runs: a pipeline file's stages (runs, and steps plugins declare) in order, into one directory.

::

    from engine_experiments.pipeline import run_pipeline

    results = run_pipeline("ft.yaml", "pipelines/ft")   # or a mapping {"stages": {...}}
    results["fine"].status, results["fine"].run_dir, results["fine"].metrics["test/accuracy"]
    run_pipeline("ft.yaml", "pipelines/ft", dry_run=True)  # check every stage, train nothing

Every stage is planned before the first one trains (`.pipeline_spec`). Then each stage, in
order, is skipped (completed, same resolved config), resumed (interrupted or failed), or run; a
stage whose config changed, and every stage after one that did any work, runs again, its old
directory kept as ``NAME.old-<time>`` (`.pipeline_state`). Whether a run stage is done is
read from its own run directory (``config.yaml``, ``summary.json``), so a pipeline killed at any
moment, or whose ``pipeline.json`` was lost, reruns correctly; a step is done when ``pipeline.json``
records it completed with the same config hash and its directory is not empty.

A step is ``KIND: {keys}``, KIND a component of kind ``step`` some plugin declares
(``engine_pipeline_steps``; ``deploy`` comes with engine-deploy): its target is called as
``step(out=STAGE_DIR, **keys)`` and returns a dict, recorded in ``pipeline.json`` (its ``metrics``
and ``primary_metric`` shown like a run's).
"""

from __future__ import annotations

import os
import socket
import sys
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import engine
from engine import ConfigError, EngineError
from engine.runs import read_config, read_json, status, to_jsonable
from engine_experiments.pipeline_spec import (
    StagePlan,
    fingerprint,
    in_stage,
    load_source,
    parse,
    plan_stage,
    plan_stages,
)
from engine_experiments.pipeline_state import (
    FORMAT,
    STAGES,
    TRAIN,
    check_not_running,
    move_aside,
    now,
    read_state,
    write_state,
)


class StageFailed(EngineError):
    """A stage's training (or step) raised: the pipeline stops there (exit code 1)."""

    exit_code = 1


@dataclass
class StageResult:
    """What one stage did (``status``: completed, skipped) or, in a dry run, would do (``planned``)."""

    name: str
    kind: str  # train, or the step's kind (deploy …)
    action: str  # train, resume, rerun, skip
    reason: str
    status: str
    run_dir: Path
    config_hash: str
    description: str
    metrics: dict[str, Any] = field(default_factory=dict)
    primary_metric: dict[str, Any] | None = None
    wall_time_s: float | None = None
    #: The run's summary.json (a run stage) or what the step returned (a step); {} in a dry run.
    summary: dict[str, Any] = field(default_factory=dict)
    #: What planning could not check, or had to do (a stage's plan notes).
    notes: tuple[str, ...] = ()
    #: A run stage's engine Plan (what ``--dry-run`` shows the facts of); None for a step.
    plan: Any = None


def run_pipeline(
    source: str | Path | Mapping[str, Any],
    dir: str | Path | None = None,
    dry_run: bool = False,
    *,
    registry: Any = None,
    progress: Callable[[str], None] | None = None,
) -> dict[str, StageResult]:
    """Run (or, with ``dry_run``, check) the pipeline ``source``: a YAML file or the mapping it holds.

    Args:
        source: the pipeline file (``stages:`` …, see docs/pipelines.md) or its content as a mapping.
        dir: the pipeline directory (default ``pipelines/<file stem>``; required for a mapping).
        dry_run: compose and plan every stage and say what a run would do; build and write nothing.
        registry: the registry to compose with (default: every enabled plugin's).
        progress: called with each line of progress (default: printed on stderr).

    Returns:
        Each stage's `StageResult`, in order.

    Raises:
        EngineError: a mistake in a stage (``stage 'NAME': …``, exit code 2), found before anything
            trains, or `StageFailed` when a stage's training or step fails (exit code 1).
    """
    registry = registry if registry is not None else engine.get_registry()
    say = progress or (lambda line: print(line, file=sys.stderr, flush=True))
    data, file = load_source(source)
    stages = parse(data, registry, base=file.parent if file else None)
    if dir is None and file is None:
        raise ConfigError("a pipeline given as a mapping needs a directory", hint="run_pipeline(spec, 'pipelines/x')")
    pipeline_dir = Path(dir).expanduser() if dir is not None else Path("pipelines") / Path(str(file)).stem
    dirs = {s.name: pipeline_dir / STAGES / s.name for s in stages}
    plans = plan_stages(stages, dirs, registry)  # every mistake found before anything trains
    state = read_state(pipeline_dir)
    check_not_running(pipeline_dir, state)
    records: dict[str, Any] = state.get("stages", {})
    if dry_run:
        out, changed = {}, False
        for stage in plans:
            action, reason = decide(stage, records.get(stage.name) or {}, dirs, changed)
            changed = changed or action != "skip"
            out[stage.name] = _result(stage, action, reason, "planned", {}, {})
        return out

    state = {
        "format": FORMAT,
        "file": str(file) if file else None,
        "status": "running",
        "started": state.get("started") or now(),
        "pid": os.getpid(),
        "host": socket.gethostname(),
        "stages": {p.name: records.get(p.name) or {"kind": p.kind, "status": "pending"} for p in plans},
    }
    pipeline_dir.mkdir(parents=True, exist_ok=True)
    write_state(pipeline_dir, state)
    results: dict[str, StageResult] = {}
    changed = False
    try:
        for i, stage in enumerate(plans):
            record = state["stages"][stage.name]
            action, reason = decide(stage, record, dirs, changed)
            if action == "skip":
                say(f"skipped: {stage.name} ({reason})")
                summary = _finished(stage, record)
                if stage.kind == TRAIN:  # the run directory is the truth (pipeline.json may be older or lost)
                    record.update(_run_figures(summary), kind=TRAIN, status="completed")
                    record.update(config_hash=stage.config_hash, run_dir=f"{STAGES}/{stage.name}")
                results[stage.name] = _result(stage, action, reason, "skipped", summary, record)
                continue
            changed = True
            for later in plans[i + 1 :]:  # out of date from now on, even if this process is killed
                if state["stages"][later.name].get("status") != "pending":
                    state["stages"][later.name]["status"] = "stale"
            results[stage.name] = _execute(stage, action, reason, state, pipeline_dir, dirs, registry, say)
        state["status"] = "completed"
    except KeyboardInterrupt:
        state["status"] = "interrupted"
        raise
    except BaseException:
        state["status"] = "failed"
        raise
    finally:
        write_state(pipeline_dir, state)
    return results


def _result(
    stage: StagePlan, action: str, reason: str, status: str, summary: dict[str, Any], record: Mapping[str, Any]
) -> StageResult:
    figures = (dict(record.get("metrics") or {}), record.get("primary_metric"), record.get("wall_time_s"))
    head = (stage.name, stage.kind, action, reason, status, stage.run_dir, stage.config_hash, stage.description)
    return StageResult(*head, *figures, summary=summary, notes=stage.notes, plan=stage.plan)


def _execute(
    stage: StagePlan,
    action: str,
    reason: str,
    state: dict[str, Any],
    pipeline_dir: Path,
    dirs: Mapping[str, Path],
    registry: Any,
    say: Callable[[str], None],
) -> StageResult:
    record: dict[str, Any] = {"kind": stage.kind, "status": "running", "config_hash": stage.config_hash}
    if stage.step is not None:
        record["step"] = stage.step.qualified_name
    record.update(run_dir=f"{STAGES}/{stage.name}", started=now())
    previous = state["stages"][stage.name].get("previous")
    if action == "rerun":
        kept = move_aside(stage.run_dir)
        previous = str(kept.relative_to(pipeline_dir)) if kept else previous
        say(f"rerun: {stage.name} ({reason}" + (f"; its previous run is kept at {kept})" if kept else ")"))
    elif action == "resume":
        say(f"resuming: {stage.name} ({reason}) in {stage.run_dir}")
    else:
        say(f"{'training' if stage.kind == TRAIN else stage.kind + ' step'}: {stage.name} -> {stage.run_dir}")
    if previous:
        record["previous"] = previous
    state["stages"][stage.name] = record
    write_state(pipeline_dir, state)
    started = time.time()
    try:
        if stage.kind == TRAIN:
            plan = plan_stage(stage.spec, dirs, registry).plan  # again, now the earlier stages are on disk
            summary = engine.train(plan, resume=stage.run_dir if action == "resume" else None).summary
            record.update(_run_figures(summary))
        else:
            summary = _step(plan_stage(stage.spec, dirs, registry))  # checked again against the stages on disk
            rest = {k: v for k, v in summary.items() if k not in ("metrics", "primary_metric")}
            record.update(metrics=dict(summary.get("metrics") or {}), primary_metric=summary.get("primary_metric"))
            record.update(result=to_jsonable(rest), wall_time_s=round(time.time() - started, 3))
    except BaseException as exc:
        interrupted = isinstance(exc, (KeyboardInterrupt, SystemExit))
        record.update(status="interrupted" if interrupted else "failed", error=f"{type(exc).__name__}: {exc}")
        record.update(wall_time_s=round(time.time() - started, 3), finished=now())
        if interrupted:
            raise
        again = "then run the pipeline again: completed stages are skipped, this one resumes"
        where = f"its run directory: {stage.run_dir}; " if stage.run_dir.exists() else ""
        if isinstance(exc, EngineError):
            failed = in_stage(stage.name, exc)
            failed.hint = f"{exc.hint}; {again}" if exc.hint else f"{where}fix it, {again}"
            raise failed from exc
        message = f"stage '{stage.name}' failed: {type(exc).__name__}: {exc}"
        raise StageFailed(message, hint=f"{where}fix the cause, {again}") from exc
    record.update(status="completed", finished=now())
    return _result(stage, action, reason, "completed", summary, record)


def _step(stage: StagePlan) -> dict[str, Any]:
    """Call the step's target with ``out=`` its directory and its checked keys; what it returned."""
    stage.run_dir.mkdir(parents=True, exist_ok=True)
    returned = stage.step.load()(out=stage.run_dir, **(stage.values or {}))
    if returned is None:
        return {}
    if not isinstance(returned, Mapping):
        raise EngineError(
            f"step '{stage.step.qualified_name}' returned {type(returned).__name__}, not a mapping",
            hint=f"a step returns a dict of what the pipeline records; tell the plugin '{stage.step.plugin}'",
        )
    return dict(returned)


def _finished(stage: StagePlan, record: Mapping[str, Any]) -> dict[str, Any]:
    """A skipped stage's summary.json (a run) or what it returned, as recorded (a step)."""
    if stage.kind != TRAIN:
        figures = {k: record[k] for k in ("metrics", "primary_metric") if record.get(k) is not None}
        return {**dict(record.get("result") or {}), **figures}
    try:
        return read_json(stage.run_dir, "summary.json")
    except EngineError:
        return {}


def _run_figures(summary: Mapping[str, Any]) -> dict[str, Any]:
    """A run stage's figures for pipeline.json, from its summary.json."""
    return {"metrics": summary.get("metrics") or {}, **{k: summary.get(k) for k in ("primary_metric", "wall_time_s")}}


def decide(
    stage: StagePlan, record: Mapping[str, Any], dirs: Mapping[str, Path], earlier_changed: bool
) -> tuple[str, str]:
    """What to do with a stage: ``train`` (nothing there yet), ``skip``, ``resume`` or ``rerun``; and why.

    ``rerun`` moves the stage's directory aside first (`.pipeline_state.move_aside`); ``resume``
    continues the run in place (from its newest checkpoint, or from the start when it has none; a
    step runs again).
    """
    run_dir = stage.run_dir
    if not run_dir.exists() or (run_dir.is_dir() and not any(run_dir.iterdir())):
        return "train", "not run yet"
    if earlier_changed or record.get("status") == "stale":
        return "rerun", "an earlier stage changed"
    if stage.kind == TRAIN:
        try:
            config = read_config(run_dir)
            then = Path(str((config.get("run") or {}).get("dir") or run_dir.parent))  # where the pipeline was
            existing: Any = fingerprint(config, {n: then / n for n in dirs})
            state = status(read_json(run_dir, "summary.json"))  # "unknown" before its first summary
        except EngineError:
            return "rerun", "its directory holds no readable run"
    else:
        existing, state = record.get("config_hash"), str(record.get("status", "unknown"))
        if existing is None:
            return "rerun", "pipeline.json has no record of it"
        state = "interrupted" if state == "running" else state  # no pipeline process is alive (check_not_running)
    if existing != stage.config_hash:
        return "rerun", "config changed"
    if state == "completed":
        return "skip", "completed, same config"
    if state == "running":
        raise EngineError(f"{run_dir} is being trained by another process", hint="wait for it to end, then rerun")
    return "resume", state
