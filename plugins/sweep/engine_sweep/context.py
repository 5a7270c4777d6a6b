"""A sweep being run: its directory, settings, space and trial records, shared by both backends.

`start` checks a new sweep completely (the base run composes and plans; every key of the
space, at every bound and option, composes and plans too) before it creates the directory, so
a mistake leaves nothing behind; `reopen` loads one to resume.
"""

from __future__ import annotations

import json
import os
import socket
import sys
import time
from dataclasses import dataclass, field
from datetime import datetime
from functools import lru_cache
from pathlib import Path
from typing import Any

from engine import ConfigError, EngineError
from engine_sweep import records as rec
from engine_sweep.settings import DEFAULT_TRIALS, SEARCH_OPTIONS
from engine_sweep.space import Dimension, cell, grid_size, ordered, parse_space, validate_keys

QUIET = ["trainer.enable_progress_bar=false", "trainer.enable_model_summary=false"]


@dataclass
class Sweep:
    root: Path
    meta: dict[str, Any]
    settings: dict[str, Any]
    dims: dict[str, Dimension]
    records: dict[int, dict[str, Any]] = field(default_factory=dict)
    disable: tuple[str, ...] = ()
    started: float = field(default_factory=time.time)
    quiet: bool = False
    _template: dict[str, Any] | None = field(default=None, repr=False)

    # ------------------------------------------------------------------ trials

    @property
    def storage_url(self) -> str:
        return f"sqlite:///{(self.root / rec.STUDY_FILE).resolve()}"

    def template(self) -> dict[str, Any]:
        """What every trial's spec is made of, as plain data (a Ray worker makes its specs from it)."""
        s = self.settings
        section = {
            "backend": s["backend"],
            "metric": s["metric"],
            "pruner": s["pruner"],
            "prune_startup": s["prune_startup"],
            "prune_warmup": s["prune_warmup"],
            "steps_per_fold": self.meta.get("steps_per_fold", 1000),
        }
        if s["backend"] == "optuna":
            section.update(storage=self.storage_url, study="sweep")
        return {
            "root": str(self.root.resolve()),
            "space": {k: d.expr for k, d in self.dims.items()},
            "prefix": [*QUIET, *self.meta.get("monitor", []), *s["overrides"]],
            "section": section,
            "recipe": s["recipe"],
            "files": [str((self.root / f).resolve()) for f in self.meta["base"].get("files", [])],
            "metric": s["metric"],
            "folds": s.get("folds"),
            "group_by": s.get("group_by"),
            "disable": list(self.disable),
        }

    def spec(self, record: dict[str, Any], resume: bool = False) -> dict[str, Any]:
        """The plain-data spec `engine_sweep.trial.run_trial` runs (in any process)."""
        if self._template is None:  # the same for every trial of this process
            self._template = self.template()
        return make_spec(self._template, record["number"], record["sampled"], record.get("trial_id"), resume)

    def new_record(self, number: int, sampled: dict[str, Any], trial_id: int | None = None) -> dict[str, Any]:
        params = {k: self.dims[k].value(v) for k, v in sampled.items() if k in self.dims}
        record = {
            "number": number,
            "status": "running",
            "params": params,
            "sampled": sampled,
            "run": rec.trial_name(number),
            "value": None,
            "wall_time_s": None,
            "error": None,
            "started": time.time(),
        }
        if trial_id is not None:
            record["trial_id"] = trial_id
        rec.write_record(self.root, record)
        self.records[number] = record
        return record

    def finish(self, record: dict[str, Any], outcome: dict[str, Any]) -> None:
        """Record a trial's outcome, rewrite the results and print its line."""
        for key in ("status", "value", "wall_time_s", "error"):
            record[key] = outcome.get(key)
        if "threads" in outcome:
            record["threads"] = outcome["threads"]
        record["finished"] = time.time()
        rec.write_record(self.root, record)
        self.publish()
        self.line(record)

    def publish(self, status: str | None = None) -> None:
        if status is not None:
            self.meta["status"] = status
        walls = [r["wall_time_s"] for r in self.records.values() if isinstance(r.get("wall_time_s"), (int, float))]
        self.meta["wall_time_s"] = round(self.meta.get("wall_time_before_s", 0.0) + time.time() - self.started, 3)
        self.meta["trial_wall_time_s"] = round(sum(walls), 3)
        rec.publish(self.root, self.meta, self.records)

    def own(self) -> None:
        """Mark the sweep as run by this process (``--resume`` refuses while it lives)."""
        self.meta.update(status="running", pid=os.getpid(), host=socket.gethostname(), command=sys.argv[1:])
        self.root.mkdir(parents=True, exist_ok=True)
        rec.write_meta(self.root, self.meta)

    # ------------------------------------------------------------------ output

    def line(self, record: dict[str, Any]) -> None:
        if self.quiet:
            return
        done = sum(1 for r in self.records.values() if r.get("status") in rec.FINISHED)
        value = record.get("value")
        shown = f"{self.settings['metric']}={value:.4f}" if isinstance(value, float) else record.get("error") or "-"
        params = " ".join(f"{k}={cell(v)}" for k, v in record["params"].items())
        best = self.meta.get("best")
        mark = "  (best so far)" if best and best["number"] == record["number"] else ""
        wall = record.get("wall_time_s")
        took = f"{wall:.1f}s" if isinstance(wall, (int, float)) else "-"
        width = len(str(self.settings["trials"]))
        print(
            f"[{done:>{width}}/{self.settings['trials']}] trial {record['number']:03d} {record['status']:<9} "
            f"{shown}  {params}  {took}{mark}",
            flush=True,
        )


def make_spec(
    template: dict[str, Any], number: int, sampled: dict[str, Any], trial_id: int | None, resume: bool
) -> dict[str, Any]:
    """Trial ``number``'s spec: quiet output, the monitor, the base run's overrides, the space's, the sweep's."""
    dims = _space(tuple(template["space"].items()))
    section = {**template["section"], "number": number}
    if section["backend"] == "optuna":
        section["trial_id"] = trial_id
    trials = Path(template["root"]) / "trials"
    overrides = [  # the sweep's own keys as two mappings: composing parses each override (milliseconds each)
        *template["prefix"],
        *(dims[k].override(sampled[k]) for k in ordered(dims) if k in sampled),
        "run=" + json.dumps({"dir": str(trials), "name": f"{number:03d}"}),
        "sweep=" + json.dumps({k: v for k, v in section.items() if v is not None}),
    ]
    return {
        "number": number,
        "recipe": template["recipe"],
        "files": template["files"],
        "overrides": overrides,
        "run_dir": str(Path(template["root"]) / rec.trial_name(number)),
        "metric": template["metric"],
        "folds": template["folds"],
        "group_by": template["group_by"],
        "resume": resume,
        "disable": template["disable"],
    }


@lru_cache(maxsize=8)
def _space(items: tuple[tuple[str, str], ...]) -> dict[str, Dimension]:
    return parse_space(dict(items))


# --------------------------------------------------------------------------- a new sweep


def start(settings: dict[str, Any], run_parts: list[dict[str, Any]], dir_arg: str | None, disable: tuple) -> Sweep:
    """Check the sweep completely, then create its directory and ``sweep.json``."""
    import tempfile

    import yaml

    import engine

    if settings.get("folds"):
        from engine_sweep.trial import cross_validation

        cross_validation()  # the experiments plugin is there, before anything is checked or written
    registry = engine.get_registry(disable)
    dims = parse_space(settings["space"])
    recipe, overrides = settings["recipe"], settings["overrides"]
    with tempfile.TemporaryDirectory(prefix="engine-sweep-") as tmp:
        files = []
        for i, part in enumerate(run_parts):
            files.append(Path(tmp) / f"base-{i}.yaml")
            files[-1].write_text(yaml.safe_dump(part, sort_keys=False))
        base = engine.plan(engine.compose(recipe, files, [*QUIET, *overrides], registry=registry), registry=registry)
        monitor = _monitor(base.config, settings)
        root = _directory(dir_arg, base)
        probe = Sweep(root, {"base": {}, "monitor": monitor}, settings, dims).template()
        section = make_spec(probe, 0, {}, 0, False)["overrides"][len(probe["prefix"]) :]

        def check(space_overrides: list[str]) -> None:
            ovs = [*QUIET, *monitor, *overrides, *space_overrides, *section]
            cfg = engine.compose(recipe, files, ovs, registry=registry)
            if settings.get("folds"):
                cfg = {**cfg, "cv": {"folds": settings["folds"], "fold": 0, "group_by": settings.get("group_by")}}
            engine.plan(cfg, registry=registry)

        validate_keys(dims, check)
        if settings["sampler"] == "grid":
            size = grid_size(dims.values(), settings["grid_points"])
            settings["trials"] = settings.get("trials") or size
            if settings["trials"] > size:
                raise ConfigError(
                    f"--trials {settings['trials']}: the grid has {size} points",
                    hint="raise --grid-points (values per float range) or ask for fewer trials",
                )
        settings["trials"] = settings.get("trials") or DEFAULT_TRIALS
        root.mkdir(parents=True, exist_ok=True)
        names = []
        for i, file in enumerate(files):  # the run config of each -c file, kept: a resume needs it as it was
            names.append(f"config/base-{i}.yaml")
            (root / "config").mkdir(exist_ok=True)
            (root / names[-1]).write_text(file.read_text())
    epochs = base.config["trainer"].get("max_epochs")
    meta = {
        "metric": settings["metric"],
        "direction": settings["direction"],
        "space": {k: d.expr for k, d in dims.items()},
        "trials": settings["trials"],
        "backend": settings["backend"],
        "base": {"recipe": recipe, "overrides": list(overrides), "files": names},
        "best": None,
        "status": "running",
        "options": {k: settings.get(k) for k in _OPTIONS},
        "monitor": monitor,
        "steps_per_fold": epochs if isinstance(epochs, int) and epochs > 0 else 1000,
        "study": rec.STUDY_FILE,
        "created": datetime.now().isoformat(timespec="seconds"),
        "engine_sweep": _version(),
    }
    sweep = Sweep(root, meta, settings, dims, disable=disable)
    sweep.own()
    return sweep


_OPTIONS = tuple(k for k in SEARCH_OPTIONS if k != "backend")  # the backend is recorded on its own


def _monitor(config: dict[str, Any], settings: dict[str, Any]) -> list[str]:
    """Each trial's best checkpoint by the sweep's metric, unless the run chooses its own monitor."""
    metric = settings["metric"]
    if config["checkpoint"]["monitor"] is not None or not metric.startswith(("val/", "train/")):
        return []
    return [f"checkpoint.monitor={metric}", f"checkpoint.mode={settings['direction']}"]


def _directory(dir_arg: str | None, plan: Any) -> Path:
    if dir_arg:
        root = Path(dir_arg).expanduser()
    else:
        parts = [p.split(".")[-1] for p in (plan.primary.component.name if plan.primary else None, plan.data.name) if p]
        root = Path("sweeps") / "-".join([*parts, datetime.now().strftime("%Y%m%d-%H%M%S")])
    if (root / rec.SWEEP_FILE).is_file():
        raise EngineError(f"{root} already holds a sweep", hint=f"continue it with `engine sweep --resume {root}`")
    if root.is_dir() and any(root.iterdir()):
        raise EngineError(f"{root} exists and is not empty", hint="choose another --dir")
    return root


def _version() -> str | None:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("engine-sweep")
    except PackageNotFoundError:
        return None


# --------------------------------------------------------------------------- resuming


def reopen(root: Path, settings: dict[str, Any], meta: dict[str, Any], disable: tuple) -> Sweep:
    """The sweep in ``root`` to resume (refused while its own process still runs)."""
    from engine.runs import process_alive

    pid, host = meta.get("pid"), meta.get("host")
    if meta.get("status") == "running" and host == socket.gethostname() and isinstance(pid, int):
        if pid != os.getpid() and process_alive(pid):
            raise EngineError(f"the sweep in {root} is still running (pid {pid})", hint="wait for it, or stop it first")
    dims = parse_space(meta["space"])
    meta["trials"] = settings["trials"]
    meta["options"] = {**meta.get("options", {}), **{k: settings.get(k) for k in ("jobs", "fail_fast")}}
    meta["wall_time_before_s"] = meta.get("wall_time_s", 0.0)
    sweep = Sweep(root, meta, settings, dims, rec.read_records(root), disable)
    sweep.own()
    return sweep
