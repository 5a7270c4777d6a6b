"""A pipeline directory's records (torch-free): ``pipeline.json``, who is working in it, stages moved aside.

::

    pipelines/ft/
      pipeline.json                       every stage: kind, status, config hash, run dir, metrics, wall time
      stages/pre/                         an ordinary run directory
      stages/pre.old-20261201-120000/     the run a changed stage had before: kept, never deleted
      stages/export/                      a step's directory (what its plugin wrote: an artifact, a manifest)
"""

from __future__ import annotations

import os
import socket
from collections.abc import Mapping
from datetime import datetime
from pathlib import Path
from typing import Any

from engine import EngineError
from engine.runs import process_alive, read_json, status, write_json

PIPELINE_FILE = "pipeline.json"
STAGES = "stages"
FORMAT = 1
#: The ``kind`` a run stage has in ``pipeline.json`` (a step's is its kind's name: ``deploy`` …).
TRAIN = "train"


def now() -> str:
    return datetime.now().isoformat(timespec="seconds")


def read_state(pipeline_dir: Path) -> dict[str, Any]:
    """``pipeline.json`` (``{}`` when there is none yet)."""
    state = read_json(pipeline_dir, PIPELINE_FILE)
    if state and not isinstance(state.get("stages"), dict):
        raise EngineError(f"{pipeline_dir / PIPELINE_FILE} holds no stages", hint="it is written by `engine pipeline`")
    return state


def write_state(pipeline_dir: Path, state: dict[str, Any]) -> None:
    state["updated"] = now()
    write_json(pipeline_dir / PIPELINE_FILE, state)


def is_pipeline(path: Path) -> bool:
    """Whether ``path`` is a pipeline directory (it holds ``pipeline.json``)."""
    return (path / PIPELINE_FILE).is_file()


def running_elsewhere(state: Mapping[str, Any]) -> bool:
    """Whether another live process on this host is running the pipeline ``state`` describes."""
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
    if running_elsewhere(state):
        raise EngineError(
            f"pipeline {pipeline_dir} is running in process {state.get('pid')}",
            hint="wait for it to end (or stop it), then run the pipeline again: it continues where it stopped",
        )


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
            summary = read_json(pipeline_dir / STAGES / name, "summary.json") if record.get("kind") == TRAIN else {}
        except EngineError:
            summary = {}
        shown = str(record.get("status", "pending"))
        if summary and shown not in ("stale", "pending"):
            shown = status(summary)
        elif shown == "running" and not running_elsewhere(state):
            shown = "interrupted"  # a step (or a run before its first summary) whose process died
        rows.append((name, shown, summary or record))
    return rows
