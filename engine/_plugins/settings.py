"""User settings in ``$ENGINE_HOME/settings.json`` (``~/.config/engine``): the plugins disabled, and found broken."""

from __future__ import annotations

import contextlib
import json
import os
from pathlib import Path
from typing import Any

from engine._contract.errors import EngineError
from engine._plugins.files import write_json_atomic


def home() -> Path:
    return Path(os.environ.get("ENGINE_HOME") or Path.home() / ".config" / "engine")


def cache_dir() -> Path:
    """Where the engine and its plugins cache what they can recompute (``$ENGINE_CACHE_DIR``, ``~/.cache/engine``)."""
    return Path(os.environ.get("ENGINE_CACHE_DIR") or Path.home() / ".cache" / "engine")


def runs_root() -> Path:
    """The directory of run directories when ``run.dir`` is not set: ``$ENGINE_RUNS_DIR``, else ``runs``."""
    return Path(os.environ.get("ENGINE_RUNS_DIR") or "runs").expanduser()


def load() -> dict[str, Any]:
    file = home() / "settings.json"
    try:
        data = json.loads(file.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {}
    except (OSError, ValueError) as exc:
        raise EngineError(f"cannot read {file}: {exc}", hint="fix or delete the file") from None
    return data if isinstance(data, dict) else {}


def save(data: dict[str, Any]) -> None:
    write_json_atomic(home() / "settings.json", data, indent=2)


def disabled_plugins() -> set[str]:
    return set(load().get("disabled_plugins", []))


def set_disabled(name: str, disabled: bool) -> bool:
    """Persist ``name`` (``NAME@DISTRIBUTION``: one distribution's) as disabled, or enabled (a bare ``NAME``: all of
    its distributions); returns whether anything changed."""
    data = load()
    names = set(data.get("disabled_plugins", []))
    every = {n for n in names if n == name or ("@" not in name and n.startswith(name + "@"))}
    kept = names | {name} if disabled else names - every
    if kept == names:
        return False
    data["disabled_plugins"] = sorted(kept)
    save(data)
    return True


def broken_plugins(data: dict[str, Any] | None = None) -> dict[str, dict[str, Any]]:
    """Plugins recorded broken by an earlier command (a lifecycle hook that raised), by name."""
    recorded = (load() if data is None else data).get("broken_plugins")
    return recorded if isinstance(recorded, dict) else {}


def record_broken(name: str, distribution: str | None, version: str | None, error: str) -> None:
    """Remember that plugin ``name`` (this distribution and version) is broken, and why."""
    data = load()
    data["broken_plugins"] = broken_plugins(data)
    data["broken_plugins"][name] = {"distribution": distribution, "version": version, "error": error}
    with contextlib.suppress(OSError):  # a read-only home: the failure is still reported for this command
        save(data)


def clear_broken(name: str) -> bool:
    """Forget a recorded failure of plugin ``name``; returns whether there was one."""
    data = load()
    if name not in broken_plugins(data):
        return False
    del data["broken_plugins"][name]
    save(data)
    return True
