"""Run directories (public): open a finished run (`open_run`), read and write its records, name runs in configs.

A run directory is data someone may have sent you: records are read as JSON and YAML, weights as
tensors only, a path leading out of the directory (recorded, or a link) is refused (`inside`: use it for
every file a plugin reads or writes in a run directory); files are written atomically.
"""

from pathlib import Path
from typing import Any

from engine._plugins.files import process_alive, write_json_atomic, write_text_atomic
from engine._run.runner import RunResult
from engine._run.runs import (
    WEIGHTS_FILE,
    Run,
    check_run_dir,
    checkpoint_path,
    find_run,
    inside,
    is_planned,
    open_run,
    planned_runs,
    read_config,
    read_json,
    runs_root,
    status,
    to_jsonable,
    write_json,
)

__all__ = [
    "WEIGHTS_FILE",
    "Run",
    "RunResult",
    "check_run_dir",
    "checkpoint_path",
    "find_run",
    "inside",
    "is_planned",
    "load_checkpoint",
    "load_weights_file",
    "open_run",
    "planned_runs",
    "process_alive",
    "read_config",
    "read_json",
    "runs_root",
    "save_weights",
    "status",
    "to_jsonable",
    "write_json",
    "write_json_atomic",
    "write_text_atomic",
]


def load_checkpoint(path: str | Path) -> dict[str, Any]:
    """A checkpoint as plain data (``torch.load(weights_only=True)``): one clear error for a file holding code."""
    from engine._run.checkpoints import load_checkpoint

    return load_checkpoint(path)


def load_weights_file(path: str | Path) -> dict[str, Any]:
    """The tensors of a ``.safetensors`` file; one clear error naming the file when it is not one."""
    from engine._run.checkpoints import load_weights_file

    return load_weights_file(Path(path))


def save_weights(state_dict: dict[str, Any], path: str | Path) -> Path:
    """Write ``state_dict``'s tensors as safetensors, atomically; a tensor tied under several names is stored once."""
    from engine._run.checkpoints import save_weights

    return save_weights(state_dict, Path(path))
