"""Multi-stage runs: a pipeline file's stages trained (and deployed) in order, into one directory.

::

    from engine.pipeline import run_pipeline

    results = run_pipeline("ft.yaml", "pipelines/ft")   # or a mapping {"stages": {...}}
    results["fine"].status, results["fine"].run_dir, results["fine"].metrics["test/accuracy"]
    run_pipeline("ft.yaml", "pipelines/ft", dry_run=True)  # check every stage, train nothing

    pipelines/ft/
      pipeline.json                       every stage: status, config hash, run dir, metrics, wall time
      stages/pre/                         an ordinary run directory (evaluate, deploy, resume it as any run)
      stages/pre.old-20261201-120000/     the run a changed stage had before: kept, never deleted
      stages/export/                      a deploy step's artifact and manifest.json

Every stage is planned before the first one trains (:mod:`engine.pipeline_spec`). Then each stage,
in order, is skipped (completed, same resolved config), resumed (interrupted or failed), or trained;
a stage whose config changed, and every stage after one that did any work, is trained again, its old
directory kept as ``NAME.old-<time>``. Whether a run stage is done is read from its own run
directory (``config.yaml``, ``summary.json``), so a pipeline killed at any moment, or whose
``pipeline.json`` was lost, reruns correctly. ``engine runs list`` reads ``pipeline.json`` (torch-free).
"""

from __future__ import annotations

import os
import socket
import sys
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from engine.errors import ConfigError, EngineError
from engine.files import process_alive
from engine.pipeline_spec import StagePlan, fingerprint, in_stage, load_source, parse, plan_stage, plan_stages
from engine.rundir import read_config, read_json, status, write_json

PIPELINE_FILE = "pipeline.json"
STAGES = "stages"
MANIFEST = "manifest.json"  # what a finished deploy step leaves (engine-deploy's manifest)
FORMAT = 1


class StageFailed(EngineError):
    """A stage's training (or deployment) raised: the pipeline stops there (exit code 1)."""

    exit_code = 1


@dataclass
class StageResult:
    """What one stage did (``status``: completed, skipped) or, in a dry run, would do (``planned``)."""

    name: str
    kind: str  # train | deploy
    action: str  # train, resume, rerun, skip
    reason: str
    status: str
    run_dir: Path
    config_hash: str
    description: str
    metrics: dict[str, Any] = field(default_factory=dict)
    primary_metric: dict[str, Any] | None = None
    wall_time_s: float | None = None
    #: The run's summary.json (a run stage) or the deploy manifest (a deploy step); {} in a dry run.
    summary: dict[str, Any] = field(default_factory=dict)
    #: What planning could not check, or had to do (a stage's plan notes).
    notes: tuple[str, ...] = ()
    #: A run stage's :class:`engine.plan.Plan` (what ``--dry-run`` shows the facts of); None for a deploy step.
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
        Each stage's :class:`StageResult`, in order.

    Raises:
        EngineError: a mistake in a stage (``stage 'NAME': …``, exit code 2), found before anything
            trains, or :class:`StageFailed` when a stage's training or deployment fails (exit code 1).
    """
    if registry is None:
        from engine.registry import get_registry

        registry = get_registry()
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
        "started": state.get("started") or _now(),
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
                summary = _finished(stage)
                if stage.kind == "train":  # the run directory is the truth (pipeline.json may be older or lost)
                    record.update(_run_figures(summary), kind="train", status="completed")
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
    record.update(run_dir=f"{STAGES}/{stage.name}", started=_now())
    previous = state["stages"][stage.name].get("previous")
    if action == "rerun":
        kept = move_aside(stage.run_dir)
        previous = str(kept.relative_to(pipeline_dir)) if kept else previous
        say(f"rerun: {stage.name} ({reason}" + (f"; its previous run is kept at {kept})" if kept else ")"))
    elif action == "resume":
        say(f"resuming: {stage.name} ({reason}) in {stage.run_dir}")
    else:
        say(f"{'training' if stage.kind == 'train' else 'deploying'}: {stage.name} -> {stage.run_dir}")
    if previous:
        record["previous"] = previous
    state["stages"][stage.name] = record
    write_state(pipeline_dir, state)
    started = time.time()
    try:
        if stage.kind == "train":
            from engine.runner import run

            plan = plan_stage(stage.spec, dirs, registry).plan  # again, now the earlier stages are on disk
            summary = run(plan, resume=stage.run_dir if action == "resume" else None).summary
            record.update(_run_figures(summary))
        else:
            summary = _deploy(stage)
            record.update(_deploy_figures(summary), wall_time_s=round(time.time() - started, 3))
    except BaseException as exc:
        interrupted = isinstance(exc, (KeyboardInterrupt, SystemExit))
        record.update(status="interrupted" if interrupted else "failed", error=f"{type(exc).__name__}: {exc}")
        record.update(wall_time_s=round(time.time() - started, 3), finished=_now())
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
    record.update(status="completed", finished=_now())
    return _result(stage, action, reason, "completed", summary, record)


def _deploy(stage: StagePlan) -> dict[str, Any]:
    from engine_deploy.deploy import deploy  # the plugin was checked to be there when the stage was planned

    step = stage.deploy or {}
    return deploy(
        step["run"],
        step["target"],
        out=stage.run_dir,
        options=dict(step["options"]),
        samples=step["samples"],
        timing=step["timing"],
        threads=step["threads"],
    )


def _finished(stage: StagePlan) -> dict[str, Any]:
    """A skipped stage's summary.json (a run) or manifest.json (a deploy step)."""
    try:
        return read_json(stage.run_dir, "summary.json" if stage.kind == "train" else MANIFEST)
    except EngineError:
        return {}


def _run_figures(summary: Mapping[str, Any]) -> dict[str, Any]:
    """A run stage's figures for pipeline.json, from its summary.json."""
    return {"metrics": summary.get("metrics") or {}, **{k: summary.get(k) for k in ("primary_metric", "wall_time_s")}}


def _deploy_figures(manifest: Mapping[str, Any]) -> dict[str, Any]:
    """A deploy step's figures for pipeline.json: the verification, the metric on the artifact."""
    v = manifest.get("verification") or {}
    metrics = {k: v[k] for k in ("max_abs_diff", "passed", "top1_agreement") if k in v}
    metric, primary = v.get("metric") or {}, None
    if "artifact" in metric:
        metrics[metric["name"]] = metric["artifact"]
        primary = {"name": metric["name"], "value": metric["artifact"], "eager": metric.get("eager")}
    return {"metrics": metrics, "primary_metric": primary, "artifact": manifest.get("artifact")}


# --------------------------------------------------------------------------- the pipeline directory


def _now() -> str:
    return datetime.now().isoformat(timespec="seconds")


def read_state(pipeline_dir: Path) -> dict[str, Any]:
    """``pipeline.json`` (``{}`` when there is none yet)."""
    state = read_json(pipeline_dir, PIPELINE_FILE)
    if state and not isinstance(state.get("stages"), dict):
        raise EngineError(f"{pipeline_dir / PIPELINE_FILE} holds no stages", hint="it is written by `engine pipeline`")
    return state


def write_state(pipeline_dir: Path, state: dict[str, Any]) -> None:
    state["updated"] = _now()
    write_json(pipeline_dir / PIPELINE_FILE, state)


def is_pipeline(path: Path) -> bool:
    """Whether ``path`` is a pipeline directory (it holds ``pipeline.json``)."""
    return (path / PIPELINE_FILE).is_file()


def _running_elsewhere(state: Mapping[str, Any]) -> bool:
    pid = state.get("pid")
    return (
        state.get("status") == "running"
        and isinstance(pid, int)
        and pid != os.getpid()
        and state.get("host") == socket.gethostname()
        and process_alive(pid)
    )


def check_not_running(pipeline_dir: Path, state: Mapping[str, Any]) -> None:
    """Refuse a pipeline directory another live ``engine pipeline`` process is working in."""
    if _running_elsewhere(state):
        raise EngineError(
            f"pipeline {pipeline_dir} is running in process {state.get('pid')}",
            hint="wait for it to end (or stop it), then run the pipeline again: it continues where it stopped",
        )


def decide(
    stage: StagePlan, record: Mapping[str, Any], dirs: Mapping[str, Path], earlier_changed: bool
) -> tuple[str, str]:
    """What to do with a stage: ``train`` (nothing there yet), ``skip``, ``resume`` or ``rerun``; and why.

    ``rerun`` moves the stage's directory aside first (:func:`move_aside`); ``resume`` continues the
    run in place (from its newest checkpoint, or from the start when it has none; a deploy step
    deploys again).
    """
    run_dir = stage.run_dir
    if not run_dir.exists() or (run_dir.is_dir() and not any(run_dir.iterdir())):
        return "train", "not run yet"
    if earlier_changed or record.get("status") == "stale":
        return "rerun", "an earlier stage changed"
    if stage.kind == "train":
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
        if state == "completed" and not (run_dir / MANIFEST).is_file():
            state = "incomplete"
    if existing != stage.config_hash:
        return "rerun", "config changed"
    if state == "completed":
        return "skip", "completed, same config"
    if state == "running":
        raise EngineError(f"{run_dir} is being trained by another process", hint="wait for it to end, then rerun")
    return "resume", state


def move_aside(run_dir: Path) -> Path | None:
    """Rename a stage's old directory to ``NAME.old-<time>`` beside it (None: there was nothing to keep)."""
    if not run_dir.exists():
        return None
    if run_dir.is_dir() and not any(run_dir.iterdir()):
        run_dir.rmdir()
        return None
    stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
    target, i = run_dir.with_name(f"{run_dir.name}.old-{stamp}"), 1
    while target.exists():
        target, i = run_dir.with_name(f"{run_dir.name}.old-{stamp}-{i}"), i + 1
    run_dir.rename(target)
    return target


def stage_rows(pipeline_dir: Path) -> list[tuple[str, str, dict[str, Any]]]:
    """For ``engine runs list``: each stage in order, its status, and its summary (or pipeline.json record).

    A run stage shows its own ``summary.json`` and live status (``interrupted`` when its process
    died); a stage not reached yet shows ``pending``, one a changed earlier stage made out of date ``stale``.
    """
    try:
        state = read_state(pipeline_dir)
    except EngineError:
        return []
    rows = []
    for name, record in state.get("stages", {}).items():
        if not isinstance(record, dict):
            continue
        try:
            summary = read_json(pipeline_dir / STAGES / name, "summary.json") if record.get("kind") == "train" else {}
        except EngineError:
            summary = {}
        shown = str(record.get("status", "pending"))
        if summary and shown not in ("stale", "pending"):
            shown = status(summary)
        elif shown == "running" and not _running_elsewhere(state):
            shown = "interrupted"  # a deploy step (or a run before its first summary) whose process died
        rows.append((name, shown, summary or record))
    return rows
