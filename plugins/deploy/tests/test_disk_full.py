"""``engine deploy`` on a full disk: refused before the writer starts (torch's stream writer aborts the process
with SIGABRT when its disk fills), or, when a write fails anyway, one line naming the path, exit 2, and nothing
partial left; what was already in the directory stays."""

from __future__ import annotations

import errno
import shutil
from collections import namedtuple
from pathlib import Path
from typing import Any

import pytest

Usage = namedtuple("Usage", "total used free")


def _existing(out: Path) -> dict[str, bytes]:
    out.mkdir(parents=True)
    files = {"notes.txt": b"mine\n", "manifest.json": b'{"target": "deploy.torchscript"}\n', "model.pt": b"old"}
    for name, data in files.items():
        (out / name).write_bytes(data)
    return files


def test_too_little_free_space_is_refused_before_the_writer_starts(
    mlp_run: Path, tmp_path: Path, cli: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from engine_deploy import targets

    out = tmp_path / "deployed"
    before = _existing(out)

    def export(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("the writer started: on a really full disk torch aborts the process here")

    monkeypatch.setattr(targets.TorchScript, "export", export)
    monkeypatch.setattr(shutil, "disk_usage", lambda path: Usage(10**9, 10**9 - 4096, 4096))
    r = cli("deploy", str(mlp_run), "--target", "torchscript", "--out", str(out), "--no-timing")
    assert r.returncode == 2, r.stderr[-2000:]
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and str(out) in lines[0] and "free" in lines[0], r.stderr
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before  # nothing touched


@pytest.mark.parametrize(
    "failure",
    [
        OSError(errno.ENOSPC, "No space left on device"),
        RuntimeError("[enforce fail at inline_container.cc:664] . PytorchStreamWriter failed writing file data/0"),
    ],
)
def test_a_write_that_fails_is_one_line_and_leaves_nothing_partial(
    mlp_run: Path, tmp_path: Path, cli: Any, monkeypatch: pytest.MonkeyPatch, failure: Exception
) -> None:
    from engine_deploy import targets

    out = tmp_path / "deployed"
    _existing(out)

    def export(self: Any, model: Any, example: Any, out_dir: Path) -> Path:
        (Path(out_dir) / "model.pt").write_bytes(b"half of a mod")  # then the disk is full
        (Path(out_dir) / "extra").mkdir()
        if isinstance(failure, OSError):
            failure.filename = str(Path(out_dir) / "model.pt")
        raise failure

    monkeypatch.setattr(targets.TorchScript, "export", export)
    r = cli("deploy", str(mlp_run), "--target", "torchscript", "--out", str(out), "--no-timing")
    assert r.returncode == 2, r.stderr[-2000:]
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and str(out) in lines[0] and "Traceback" not in r.stderr, r.stderr
    assert sorted(p.name for p in out.iterdir()) == ["notes.txt"]  # the partial artifact is gone, the rest stays
    assert (out / "notes.txt").read_bytes() == b"mine\n"


@pytest.mark.slow
def test_a_real_writer_failure_is_prevented_not_an_abort(mlp_run: Path, tmp_path: Path) -> None:
    """With a file size limit (a write beyond it fails like a full disk) torch's writer aborts the process
    (SIGABRT); the check before writing refuses instead, exit 2."""
    import os
    import resource
    import signal
    import subprocess
    import sys

    def limited() -> None:
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # the write fails (EFBIG) instead of killing the process
        resource.setrlimit(resource.RLIMIT_FSIZE, (8192, 8192))

    out = tmp_path / "deployed"
    exe = Path(sys.executable).with_name("engine")
    r = subprocess.run(
        [str(exe), "deploy", str(mlp_run), "--target", "torchscript", "--out", str(out), "--no-timing"],
        capture_output=True,
        text=True,
        timeout=120,
        env=os.environ,
        preexec_fn=limited,
    )
    assert r.returncode == 2, (r.returncode, r.stderr[-2000:])  # -6 (SIGABRT) without the check
    assert "ulimit -f" in r.stderr and str(out) in r.stderr and "frame #" not in r.stderr, r.stderr[-2000:]
    assert not out.exists() or not any(out.iterdir())
