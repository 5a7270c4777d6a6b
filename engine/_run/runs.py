"""A run directory, read: its records (config, facts, summary, checkpoint paths) and `Run`; its lock.

Opening reads only JSON and YAML (no torch). A run directory is data someone may have sent you:
every path it records is relative to it, and one that is absolute or leads out of it (a link) is refused.
"""

from __future__ import annotations

import json
import os
import socket
from collections.abc import Iterable, Iterator
from contextlib import contextmanager, suppress
from contextvars import ContextVar
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from engine._config.plan import Plan, make_plan
from engine._contract.errors import ConfigError, EngineError, did_you_mean
from engine._plugins.files import process_alive, write_json_atomic
from engine._plugins.registry import get_registry
from engine._plugins.settings import runs_root as runs_root

#: The best weights of a run as plain tensors (safetensors), beside its checkpoints.
WEIGHTS_FILE = "model.safetensors"


def expand(path: str | Path, where: str = "path") -> Path:
    """``path`` with ``~`` expanded; a clear error for an unknown user or a name the system cannot take."""
    try:
        out = Path(path).expanduser()
        out.exists()  # a name too long for the file system fails here, not later
    except RuntimeError:
        raise ConfigError(f"{where}: cannot expand '{path}' (no such user)") from None
    except OSError as exc:
        raise ConfigError(f"{where}: '{str(path)[:80]}…' is not a usable path: {exc.strerror}") from None
    return out


_PLANNED: ContextVar[tuple[Path, ...]] = ContextVar("engine_planned_runs", default=())


@contextmanager
def planned_runs(paths: Iterable[str | Path]) -> Iterator[None]:
    """Within the block, ``paths`` are run directories that will exist when the run being checked starts.

    ``engine pipeline`` checks every stage before the first trains: a later stage's ``model.init_from``
    may name the directory an earlier stage will write (or a file inside it), which is then accepted.
    """
    token = _PLANNED.set((*_PLANNED.get(), *(Path(p).expanduser().resolve() for p in paths)))
    try:
        yield
    finally:
        _PLANNED.reset(token)


def is_planned(path: str | Path) -> bool:
    """Whether ``path`` is (inside) a run directory of `planned_runs`: it does not exist yet, by design."""
    planned = _PLANNED.get()
    return bool(planned) and any(Path(path).expanduser().resolve().is_relative_to(p) for p in planned)


def check_run_dir(path: str, where: str, checkpoint_ok: bool = False) -> Path:
    """``path`` is a run directory (or, with ``checkpoint_ok``, a checkpoint file); a ConfigError otherwise.

    A path `planned_runs` announces (an earlier pipeline stage's run) is accepted.
    """
    run = expand(path, where)
    if is_planned(run):
        return run
    what = "a run directory (see `engine runs list`)" + (
        " or a weights file (.ckpt, .safetensors, .pth, .bin)" if checkpoint_ok else ""
    )
    if not run.exists():
        raise ConfigError(f"{where}: {run} does not exist", hint=f"give {what}")
    if run.is_file() and checkpoint_ok:
        return run
    if not run.is_dir() or not (run / "config.yaml").is_file():
        raise ConfigError(f"{where}: {run} is not a run directory (no config.yaml)", hint=f"give {what}")
    return run


def inside(run_dir: str | Path, *parts: str | Path, what: str | None = None) -> Path:
    """``run_dir / parts``, refused (EngineError) when its real path (links followed) is outside ``run_dir``.

    A directory is checked whole: no link in it may lead out either. ``what`` names the record a path came
    from (``summary.json``). A link to a file of the same run directory is fine.
    """
    root = Path(run_dir)
    path, top = root.joinpath(*parts), root.resolve()
    if not path.resolve().is_relative_to(top):
        link = next((p for p in (path, *path.parents) if p != root and p.is_relative_to(root) and p.is_symlink()), None)
        said = f"{what} names '{Path(*parts)}'," if what else f"{link or path} is"
        said += f" a link to {link.resolve()}," if link is not None else ""
        raise EngineError(
            f"{said} outside the run directory {root}"[:300],
            hint="a run directory's records and files stay inside it; this one was altered (replace the link)",
        )
    if path.is_dir():
        for folder, dirs, files in os.walk(path):
            for name in dirs + files:
                if os.path.islink(os.path.join(folder, name)):
                    inside(root, Path(folder, name).relative_to(root))
    return path


#: The lock a process training a run directory holds: ``{"pid", "host"}``, created exclusively, removed at its end.
LOCK_FILE = ".lock"


def lock_run(run_dir: Path) -> Path:
    """Take ``run_dir``'s lock; an EngineError naming the holder while a live process (or another host) has it."""
    file = run_dir / LOCK_FILE
    for _ in range(5):
        try:
            fd = os.open(file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        except FileExistsError:
            seen, (pid, host) = _holder(file)
            if host != socket.gethostname() or not isinstance(pid, int) or (pid != os.getpid() and process_alive(pid)):
                raise EngineError(
                    f"run {run_dir} is being trained by "
                    + (f"pid {pid} on {host}" if pid else f"another process ({file})")
                    + "; wait or stop it",
                    hint=f"if no process trains it any more (its machine went down), remove {file}",
                ) from None
            aside = file.with_name(f"{LOCK_FILE}.{os.getpid()}.stale")  # break it: rename, then check what moved
            with suppress(FileNotFoundError):
                os.rename(file, aside)
                if _holder(aside)[0] != seen:  # a live lock taken meanwhile: put it back
                    with suppress(FileExistsError):
                        os.link(aside, file)
                aside.unlink()
            continue
        try:
            with os.fdopen(fd, "w") as fh:
                json.dump({"pid": os.getpid(), "host": socket.gethostname()}, fh)
        except OSError:  # a full disk: no empty lock left behind to block the run
            file.unlink(missing_ok=True)
            raise
        return file
    raise EngineError(f"cannot take the lock {file}: other processes keep taking it")


def unlock_run(run_dir: Path) -> None:
    """Remove ``run_dir``'s lock if this process holds it."""
    if _holder(run_dir / LOCK_FILE)[1] == (os.getpid(), socket.gethostname()):
        (run_dir / LOCK_FILE).unlink(missing_ok=True)


def _holder(file: Path) -> tuple[str, tuple[Any, Any]]:
    """A lock file's text and holder ``(pid, host)``; ``(None, None)`` when unreadable (being written)."""
    try:
        text = file.read_text(encoding="utf-8")
        held = json.loads(text)
        return text, (held.get("pid"), held.get("host"))
    except (OSError, ValueError, AttributeError):
        return "", (None, None)


def read_config(root: Path) -> dict[str, Any]:
    """The run's resolved ``config.yaml`` (safe YAML: plain data only)."""
    import yaml

    file = inside(root, "config.yaml")
    try:
        config = yaml.safe_load(file.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
        raise EngineError(f"cannot read {file}: {exc}") from None
    if not isinstance(config, dict) or not config:
        raise EngineError(
            f"{file} does not hold a run's config (a mapping of sections), but {type(config).__name__} {config!r:.60}",
            hint="it is written by `engine run`; restore it from the run's origin",
        )
    return config


def read_json(root: Path, name: str) -> dict[str, Any]:
    """``root/name`` as a JSON object (``{}`` when the file is missing)."""
    file = inside(root, name)
    if not file.is_file():
        return {}
    try:
        data = json.loads(file.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:  # UnicodeDecodeError is a ValueError
        raise EngineError(f"cannot read {file}: {exc}") from None
    if not isinstance(data, dict):
        raise EngineError(f"{file} does not hold a JSON object")
    return data


NARROW_FLOATS = ("float32", "float16", "bfloat16")


def metric_number(value: Any) -> Any:
    """A one-element tensor as a number; float32 and narrower kept to the 7 digits they hold: a macro F1 of ten
    classes at 1.0 is their mean with weights float32(0.1) > 0.1, so 1.0000001, above the metric's range."""
    number = value.item()
    if isinstance(number, float) and str(getattr(value, "dtype", "")).removeprefix("torch.") in NARROW_FLOATS:
        return float(f"{number:.7g}")
    return number


def to_jsonable(value: Any) -> Any:
    """Metrics and summaries as JSON data: one-element tensors (and numpy scalars) as numbers."""
    if hasattr(value, "item") and getattr(value, "numel", lambda: 1)() == 1:
        return metric_number(value)
    if isinstance(value, dict):
        return {str(k): to_jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [to_jsonable(v) for v in value]
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    return repr(value)


def write_json(path: Path, data: Any) -> None:
    """Write ``data`` (made JSON-able) so that a reader sees the old file or the new one, never half."""
    write_json_atomic(path, to_jsonable(data), indent=2)


def checkpoint_path(root: Path, summary: dict[str, Any], which: str = "best") -> Path:
    """Path of the ``best`` (falling back to ``last``) or ``last`` checkpoint of run ``root``."""
    if which not in ("best", "last"):
        raise EngineError(f"unknown checkpoint '{which}'", hint="choose best or last")
    recorded = summary.get(f"{which}_checkpoint")
    own = [inside(root, recorded, what=f"{root / 'summary.json'}")] if isinstance(recorded, str) and recorded else []
    names = ["best.ckpt", "last.ckpt"] if which == "best" else ["last.ckpt"]
    for path in own + [inside(root, "checkpoints", n) for n in names]:
        if path.is_file():
            return path
    raise EngineError(
        f"run {root} has no checkpoint (status: {summary.get('status', 'unknown')})",
        hint=f"train it first, or continue it with `engine run --resume {root}`",
    )


def status(summary: dict[str, Any]) -> str:
    """The run's status, ``interrupted`` for a ``running`` one whose process (on this host) is gone."""
    state = str(summary.get("status", "unknown"))
    pid, host = summary.get("pid"), summary.get("host")
    if state == "running" and isinstance(pid, int) and host == socket.gethostname() and not process_alive(pid):
        return "interrupted"
    return state


@dataclass
class Run:
    """A run directory, read (`open_run`): its config, facts and summary; its task and data rebuilt."""

    path: Path
    config: dict[str, Any]
    facts: dict[str, Any]
    summary: dict[str, Any]
    registry: Any = field(repr=False, default=None)
    _plan: Any = field(repr=False, default=None, init=False)

    def _registry(self) -> Any:
        if self.registry is None:
            self.registry = get_registry()  # with the plugins the running command disabled
        return self.registry

    def plan(self) -> Plan:
        """The run's `Plan`, from its resolved config (made once).

        The sections' checks of the world at training time (``model.init_from`` exists …) are not
        repeated: the run's weights replace what they loaded.
        """
        if self._plan is None:
            try:
                self._plan = make_plan(self.config, self._registry(), checks=False)
            except ConfigError as exc:
                hint = self._missing_plugin() or exc.hint
                raise ConfigError(f"{self.path / 'config.yaml'}: {exc.message}", hint=hint) from None
        return self._plan

    def _missing_plugin(self) -> str | None:
        """Which plugin the run was trained with and this environment lacks (from ``environment.json``)."""
        manager = self._registry().manager
        names = {
            v["name"].split(".", 1)[0]
            for v in self.config.values()
            if isinstance(v, dict) and "." in str(v.get("name"))
        }
        recorded = {p.get("plugin"): p for p in read_json(self.path, "environment.json").get("plugins", [])}
        for name in sorted(names):
            if not manager.is_ok(name) and name in recorded:
                dist, version = recorded[name].get("distribution"), recorded[name].get("version")
                state = manager.plugins[name].status if name in manager.plugins else "not installed"
                return f"the run was trained with plugin '{name}' ({dist} {version}), which is {state} here: " + (
                    f"`engine plugins install {dist}=={version}`"
                    if state == "not installed"
                    else f"`engine plugins enable {name}`"
                )
        return None

    def checkpoint(self, which: str = "best") -> Path:
        """Path of the ``best`` (falls back to ``last``) or ``last`` checkpoint."""
        return checkpoint_path(self.path, self.summary, which)

    def datamodule(self) -> Any:
        """The run's ``LightningDataModule``, rebuilt from its config (same seed, same splits).

        A data source with ``load_artifacts(run_dir)`` reads back what it saved in the run (its tokenizer …).
        """
        from engine._run.build import build_data

        return build_data(self.plan(), artifacts=self.path)

    def task(self, which: str = "best", facts: dict[str, Any] | None = None) -> Any:
        """The run's ``LightningModule`` with the checkpoint's weights, in eval mode, on the CPU.

        ``facts`` overrides the recorded ``facts.json`` (pass the datamodule's when a fact does not survive JSON).
        """
        return self._build(which, facts)[0]

    def model(self, which: str = "best", facts: dict[str, Any] | None = None) -> Any:
        """The trained model of the task's primary slot (``model``, a GAN's ``generator`` …), eval mode.

        What ``task.teacher`` distils from and ``engine deploy`` exports.
        """
        _, slots = self._build(which, facts)
        slot = self.plan().task.main_slot
        if slot is None or slots.get(slot) is None:
            raise EngineError(f"run {self.path}: its task '{self.plan().task.qualified_name}' has no model slot")
        return slots[slot].eval()

    def _build(self, which: str, facts: dict[str, Any] | None) -> tuple[Any, dict[str, Any]]:
        from engine._run.build import build_slots, build_task
        from engine._run.checkpoints import load_checkpoint

        path = self.checkpoint(which)
        plan = self.plan()
        facts = dict(facts if facts is not None else self.facts)
        # restoring: the checkpoint replaces any weights loaded from elsewhere (whose source may be gone).
        slots = build_slots(plan, facts, restoring=True)
        module = build_task(plan, facts, slots)
        state = load_checkpoint(path).get("state_dict")
        if not isinstance(state, dict):
            raise EngineError(f"checkpoint {path} holds no model weights (no state_dict)")
        missing, unexpected = module.load_state_dict(state, strict=False)
        if missing or unexpected:
            raise EngineError(
                f"checkpoint {path} does not fit the run's model: "
                f"missing {sorted(missing)[:5]}, unexpected {sorted(unexpected)[:5]}",
                hint="was the plugin providing the model changed since the run? reinstall the version in "
                f"{self.path / 'environment.json'}",
            )
        return module.eval(), slots


def find_run(path: str | Path, where: str = "run directory") -> Path:
    """``path``, else a name as `engine runs list` prints it: relative to the runs directory (``runs/``,
    ``$ENGINE_RUNS_DIR``), or a member of a collection in it (``SWEEP/007``). An EngineError otherwise,
    naming the run a checkpoint file belongs to, or the nearest names in the runs directory."""
    given, root = expand(path, where), runs_root()
    if given.is_file():
        owner = next((p for p in given.parents if (p / "config.yaml").is_file()), None)
        what = "a checkpoint" if given.suffix in (".ckpt", ".safetensors", ".pt", ".pth", ".bin") else "a file"
        raise EngineError(
            f"{given} is {what}" + (f" of the run {owner}" if owner else "") + ", not a run directory",
            hint=f"give the run directory: {owner}" if owner else "see `engine runs list`",
        )
    if given.exists():
        return given
    if not given.is_absolute() and (root / given).is_dir():
        return root / given
    head, _, rest = str(path).rstrip("/").rpartition("/")
    for base in (root / head, Path(head)) if head else ():  # a collection's member: `runs list` names it so
        collection = get_registry().manager.first("engine_run_collection", path=base) if base.is_dir() else None
        for name, member in collection.members if collection else ():
            if rest in (name, name.rsplit("/", 1)[-1]):
                return Path(member)
    names = [f"{root}/{p.name}" for p in root.iterdir() if p.is_dir()] if root.is_dir() else []
    guess = did_you_mean(f"{root}/{given.name}", names)
    raise EngineError(f"{where} not found: {given}{guess}", hint="see `engine runs list`")


def open_run(path: str | Path, registry: Any = None) -> Run:
    """Read run directory ``path``; a clear `EngineError` when it is not one.

    ``registry`` defaults to the running command's (its ``--disable`` set included).
    """
    root = find_run(path)
    if not (root / "config.yaml").is_file():
        raise EngineError(f"{root} is not a run directory (no config.yaml)", hint="see `engine runs list`")
    inside(root)  # no link in it leads out: what a command reads through the run stays in it
    return Run(root, read_config(root), read_json(root, "facts.json"), read_json(root, "summary.json"), registry)
