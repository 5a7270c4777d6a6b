"""Reading a run directory's records: config, facts, summary, checkpoint paths (no torch, no building).

The lowest layer for everything that takes a run (``evaluate``, ``deploy``, ``model.init_from``,
``task.teacher``): :mod:`engine.runs` builds the trained task on top of it.

A run directory is data someone may have sent you: every path it records is relative to it, and
one that is absolute or leads out of it is refused (:func:`inside`). A moved or copied run reads
its own files.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from pathlib import Path
from typing import Any

from engine._contract.errors import ConfigError, EngineError

CHECKPOINTS = ("best", "last")
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


#: Run directories that will exist by the time they are used (see :func:`planned_runs`).
_PLANNED: ContextVar[tuple[Path, ...]] = ContextVar("engine_planned_runs", default=())


@contextmanager
def planned_runs(paths: Iterable[str | Path]) -> Iterator[None]:
    """Within the block, ``paths`` are run directories that will exist when the run being checked starts.

    ``engine pipeline`` validates every stage before the first trains: a later stage's
    ``model.init_from`` or ``task.teacher`` names the directory an earlier stage will write. A check
    of a path that must be a finished run asks :func:`is_planned` first and accepts such a path (or a
    file inside one, ``${stages.pre}/checkpoints/best.ckpt``) instead of failing on its absence.
    """
    token = _PLANNED.set((*_PLANNED.get(), *(Path(p).expanduser().resolve() for p in paths)))
    try:
        yield
    finally:
        _PLANNED.reset(token)


def is_planned(path: str | Path) -> bool:
    """Whether ``path`` is (inside) a run directory of :func:`planned_runs`: it does not exist yet, by design."""
    planned = _PLANNED.get()
    if not planned:
        return False
    resolved = Path(path).expanduser().resolve()
    return any(resolved == p or resolved.is_relative_to(p) for p in planned)


def check_run_dir(path: str, where: str, checkpoint_ok: bool = False) -> Path:
    """``path`` is a run directory (or, with ``checkpoint_ok``, a checkpoint file); a ConfigError otherwise.

    A path :func:`planned_runs` announces (an earlier pipeline stage's run) is accepted.
    """
    run = expand(path, where)
    if is_planned(run):  # a pipeline's earlier stage writes it before this run starts
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


def inside(root: Path, recorded: str, what: str) -> Path:
    """``root / recorded``, refusing an absolute path or one that leads out of ``root``."""
    candidate = Path(recorded)
    resolved = (root / candidate).resolve()
    if candidate.is_absolute() or not resolved.is_relative_to(root.resolve()):
        raise EngineError(
            f"{what} names '{recorded}', outside the run directory {root}",
            hint="a run directory's records name its own files only (relative paths); this one was altered",
        )
    return root / candidate


def run_root(path: str | Path) -> Path:
    """``path`` as a run directory; a clear :class:`EngineError` when it is not one."""
    root = expand(path, "run directory")
    if not root.is_dir():
        raise EngineError(f"run directory not found: {root}", hint="see `engine runs list`")
    if not (root / "config.yaml").is_file():
        raise EngineError(f"{root} is not a run directory (no config.yaml)", hint="see `engine runs list`")
    return root


def read_config(root: Path) -> dict[str, Any]:
    """The run's resolved ``config.yaml`` (safe YAML: plain data only)."""
    import yaml

    file = root / "config.yaml"
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
    file = root / name
    if not file.is_file():
        return {}
    try:
        data = json.loads(file.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:  # UnicodeDecodeError is a ValueError
        raise EngineError(f"cannot read {file}: {exc}") from None
    if not isinstance(data, dict):
        raise EngineError(f"{file} does not hold a JSON object")
    return data


def to_jsonable(value: Any) -> Any:
    """Metrics and summaries as JSON data: one-element tensors (and numpy scalars) as numbers."""
    if hasattr(value, "item") and getattr(value, "numel", lambda: 1)() == 1:
        return value.item()
    if isinstance(value, dict):
        return {str(k): to_jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [to_jsonable(v) for v in value]
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    return repr(value)


def write_json(path: Path, data: Any) -> None:
    """Write ``data`` (made JSON-able) so that a reader sees the old file or the new one, never half."""
    from engine._plugins.files import write_json_atomic

    write_json_atomic(path, to_jsonable(data), indent=2)


def checkpoint_path(root: Path, summary: dict[str, Any], which: str = "best") -> Path:
    """Path of the ``best`` (falling back to ``last``) or ``last`` checkpoint of run ``root``."""
    if which not in CHECKPOINTS:
        raise EngineError(f"unknown checkpoint '{which}'", hint="choose best or last")
    names = ["best.ckpt", "last.ckpt"] if which == "best" else ["last.ckpt"]
    recorded = summary.get(f"{which}_checkpoint")
    own = [inside(root, recorded, f"{root / 'summary.json'}")] if isinstance(recorded, str) and recorded else []
    candidates = own + [root / "checkpoints" / n for n in names]
    for path in candidates:
        if path.is_file():
            return path
    raise EngineError(
        f"run {root} has no checkpoint (status: {summary.get('status', 'unknown')})",
        hint=f"train it first, or continue it with `engine run --resume {root}`",
    )


def status(summary: dict[str, Any]) -> str:
    """The run's status, ``interrupted`` for a ``running`` one whose process (on this host) is gone."""
    import socket

    from engine._plugins.files import process_alive

    state = str(summary.get("status", "unknown"))
    pid, host = summary.get("pid"), summary.get("host")
    if state == "running" and isinstance(pid, int) and host == socket.gethostname() and not process_alive(pid):
        return "interrupted"
    return state
