"""Reading a run directory's records: config, facts, summary, checkpoint paths (no torch, no building).

The lowest layer for everything that takes a run (``evaluate``, ``deploy``, ``model.init_from``,
``task.teacher``): :mod:`engine.runs` builds the trained task on top of it.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from engine.errors import EngineError

CHECKPOINTS = ("best", "last")


def run_root(path: str | Path) -> Path:
    """``path`` as a run directory; a clear :class:`EngineError` when it is not one."""
    root = Path(path).expanduser()
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
        config = yaml.safe_load(file.read_text(encoding="utf-8")) or {}
    except (OSError, yaml.YAMLError) as exc:
        raise EngineError(f"cannot read {file}: {exc}") from None
    if not isinstance(config, dict):
        raise EngineError(f"{file} does not hold a mapping of config sections")
    return config


def read_json(root: Path, name: str) -> dict[str, Any]:
    """``root/name`` as a JSON object (``{}`` when the file is missing)."""
    file = root / name
    if not file.is_file():
        return {}
    try:
        data = json.loads(file.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise EngineError(f"cannot read {file}: {exc}") from None
    return data if isinstance(data, dict) else {}


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
    from engine.settings import write_json_atomic

    write_json_atomic(path, to_jsonable(data), indent=2)


def checkpoint_path(root: Path, summary: dict[str, Any], which: str = "best") -> Path:
    """Path of the ``best`` (falling back to ``last``) or ``last`` checkpoint of run ``root``."""
    if which not in CHECKPOINTS:
        raise EngineError(f"unknown checkpoint '{which}'", hint="choose best or last")
    names = ["best.ckpt", "last.ckpt"] if which == "best" else ["last.ckpt"]
    recorded = summary.get(f"{which}_checkpoint")
    candidates = ([root / recorded] if isinstance(recorded, str) and recorded else []) + [
        root / "checkpoints" / n for n in names
    ]
    for path in candidates:
        if path.is_file():
            return path
    raise EngineError(
        f"run {root} has no checkpoint (status: {summary.get('status', 'unknown')})",
        hint=f"train it first, or continue it with `engine run --resume {root}`",
    )
