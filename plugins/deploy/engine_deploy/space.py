"""Free space for a deployment: checked before anything is written, and a failed write cleaned up.

torch's stream writer (``torch.jit.save``, ``torch.export.save``) cannot report a full disk: its
destructor retries the write, throws again and the process aborts (SIGABRT, a C++ frame dump).
So ``engine deploy`` estimates what it will write from the model's size and refuses, before the
writer starts, a directory without that much free space; a write that fails anyway (an estimate
is an estimate) is one line naming the path, and what this deployment wrote is removed.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

from engine import EngineError

#: Beyond twice the weights: code, graphs, JSON, the manifest (an artifact is rarely more than the weights).
MARGIN = 16 * 2**20


def _mib(n: int) -> str:
    return f"{n / 2**20:.1f} MiB"


def needed(weights_bytes: int, run: Any = None) -> int:
    """Bytes to expect: twice the serialized weights and a margin, plus the run's files when they are copied."""
    total = 2 * weights_bytes + MARGIN
    if run is not None:  # a target packaging the run (the container's build context)
        total += sum(f.stat().st_size for f in run.path.iterdir() if f.is_file())
        total += run.checkpoint("best").stat().st_size
    return total


def check(out_dir: Path, need: int) -> None:
    """Refuse, before anything is written, an ``out_dir`` whose file system has less than ``need`` bytes free."""
    probe = Path(out_dir).absolute()
    while not probe.exists() and probe != probe.parent:
        probe = probe.parent
    try:
        free = shutil.disk_usage(probe).free
    except OSError:
        return  # nothing to measure with: the write itself will say
    if free < need:
        raise EngineError(
            f"not enough free space to deploy into {out_dir}: {_mib(free)} free, about {_mib(need)} needed "
            "(nothing was written; free some space or choose another --out)"
        )
    limit = _file_size_limit()
    if limit is not None and limit < need:  # a write beyond it fails like a full disk (EFBIG)
        raise EngineError(
            f"the file size limit of this process (ulimit -f: {_mib(limit)}) is below the about {_mib(need)} "
            f"deploying into {out_dir} needs (nothing was written; raise the limit)"
        )


def _file_size_limit() -> int | None:
    try:
        import resource
    except ImportError:  # not on this platform
        return None
    soft = resource.getrlimit(resource.RLIMIT_FSIZE)[0]
    return None if soft == resource.RLIM_INFINITY else int(soft)


def snapshot(out_dir: Path) -> dict[str, tuple[int, int, int]]:
    """What is in ``out_dir`` now (name -> inode, size, mtime), to tell what a deployment then wrote."""
    entries = {}
    for path in Path(out_dir).iterdir():
        st = path.lstat()
        entries[path.name] = (st.st_ino, st.st_size, st.st_mtime_ns)
    return entries


def is_write_failure(exc: BaseException) -> bool:
    """A file system refusing a write (disk full, quota, read-only …), as Python or torch's writer reports it."""
    if isinstance(exc, OSError):
        return True
    text = str(exc)
    return isinstance(exc, RuntimeError) and ("PytorchStreamWriter" in text or "write failed" in text)


def write_failed(out_dir: Path, before: dict[str, tuple[int, int, int]], exc: BaseException) -> EngineError:
    """Remove what was written into ``out_dir`` since ``before`` and say so in one line naming the path."""
    for path in Path(out_dir).iterdir():
        st = path.lstat()
        if before.get(path.name) == (st.st_ino, st.st_size, st.st_mtime_ns):
            continue  # there before, untouched
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path, ignore_errors=True)
        else:
            path.unlink(missing_ok=True)
    where = getattr(exc, "filename", None) or out_dir
    reason = getattr(exc, "strerror", None) or (str(exc).strip().splitlines() or [type(exc).__name__])[0][:160]
    return EngineError(
        f"cannot write the deployment into {out_dir}: {reason} ({where}); the files it wrote were removed "
        "(free some space or choose another --out)"
    )


def export_artifact(
    target: Any, component: Any, model: Any, example: Any, out_dir: Path, before: dict[str, tuple[int, int, int]]
) -> tuple[Path, float]:
    """``target.export`` into ``out_dir`` (as it was ``before``: `snapshot`): the artifact's path and the seconds it
    took; a full disk is one line naming what was written, an artifact the target did not write an error."""
    import time

    t0 = time.perf_counter()
    try:
        artifact = Path(target.export(model, example, out_dir))
    except Exception as exc:
        if not is_write_failure(exc):
            raise
        raise write_failed(out_dir, before, exc) from exc
    if not artifact.exists():
        raise EngineError(f"target '{component.qualified_name}' reported {artifact}, which it did not write")
    return artifact, time.perf_counter() - t0
