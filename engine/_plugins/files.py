"""Writing files through a temporary file and a rename (a crash never leaves half of one); live processes."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any


def fsync_replace(tmp: Path, target: Path) -> None:
    """Make the written ``tmp`` durable, rename it over ``target``, and make the rename durable."""
    with tmp.open("rb") as fh:
        os.fsync(fh.fileno())
    os.replace(tmp, target)
    try:
        fd = os.open(target.parent, os.O_RDONLY)
    except OSError:
        return  # a platform without directory file descriptors
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def temp_path(target: Path) -> Path:
    """The temporary file a write of ``target`` goes through (``.NAME.PID.tmp`` beside it)."""
    return target.with_name(f".{target.name}.{os.getpid()}.tmp")


def write_text_atomic(file: Path, text: str | bytes, durable: bool = True) -> None:
    """Write ``text`` (or bytes) to ``file`` through a temporary file (no half-written file, even on a kill).

    ``durable=False`` renames without the two fsyncs: still whole after a killed process, not
    guaranteed after a power cut (for files rewritten many times a second). An OSError names ``file``.
    """
    tmp = temp_path(file)
    try:
        file.parent.mkdir(parents=True, exist_ok=True)
        tmp.write_bytes(text if isinstance(text, bytes) else text.encode("utf-8"))
        (fsync_replace if durable else os.replace)(tmp, file)
    except OSError as exc:  # a full disk's write error names no file
        raise OSError(exc.errno, exc.strerror or str(exc), str(file)) from exc
    finally:
        tmp.unlink(missing_ok=True)


def write_json_atomic(file: Path, data: Any, indent: int | None = None, durable: bool = True) -> None:
    """Write JSON so that a concurrent reader (or a reader after a crash) sees the old file or the new one."""
    write_text_atomic(file, json.dumps(data, indent=indent) + "\n", durable)


def process_alive(pid: int) -> bool:
    """Whether process ``pid`` (of this host) still runs."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # it exists, owned by someone else
        return True
    return True


def remove_stale_temps(directory: Path) -> list[Path]:
    """Delete the temporary files killed writers left in ``directory`` (their process is gone)."""
    removed = []
    for tmp in directory.glob(".*.tmp") if directory.is_dir() else ():
        pid = tmp.name.rsplit(".", 2)[-2]
        if pid.isdigit() and int(pid) != os.getpid() and not process_alive(int(pid)):
            tmp.unlink(missing_ok=True)
            removed.append(tmp)
    return removed
