"""Runs you can kill: SIGKILL at any moment loses at most one interval, and resuming ends where an
uninterrupted run would; a full disk or an unwritable directory is one clear line, nothing truncated."""

from __future__ import annotations

import json
import os
import resource
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

import engine
from engine._cli.main import main
from engine.runs import read_json, status
from engine.testing import run_cli

ENGINE = str(Path(sys.executable).with_name("engine"))
QUIET = ["trainer.enable_progress_bar=false", "trainer.enable_model_summary=false"]
RUN = ["model=mlp", "model.hidden=[32]", "data=synthetic", "data.num_samples=640", "trainer.max_epochs=6", *QUIET]
# A plugin that slows training down (so the test can kill it mid-epoch), reports progress, and makes
# checkpoints big (so a kill can land while one is being written). It changes nothing in training.
SLOW = """
import os, time
from engine import hookimpl

@hookimpl
def engine_callbacks(config):
    progress = os.environ.get("CRASH_PROGRESS")
    if not progress:
        return []
    import lightning as L
    import torch

    class Slow(L.Callback):
        def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
            with open(progress, "a") as fh:
                fh.write(f"{trainer.current_epoch} {trainer.global_step}\\n")
            time.sleep(0.05)

        def on_save_checkpoint(self, trainer, pl_module, checkpoint):
            checkpoint["blob"] = torch.zeros(int(os.environ.get("CRASH_BLOB", "6000000")))

    return [Slow()]
"""


def _epoch_now(progress: Path) -> int:
    lines = progress.read_text().split() if progress.exists() else []
    return int(lines[-2]) if len(lines) >= 2 else -1


def _start(run_dir: Path, progress: Path, *extra: str) -> subprocess.Popen:
    env = {**os.environ, "CRASH_PROGRESS": str(progress)}
    return subprocess.Popen(
        [ENGINE, "run", *extra], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True
    )


def _kill_when(proc: subprocess.Popen, ready, timeout: float = 120) -> None:
    deadline = time.time() + timeout
    while not ready():
        assert proc.poll() is None, f"the run ended before the kill moment: {proc.stderr.read()[-2000:]}"
        assert time.time() < deadline, "the kill moment never came"
        time.sleep(0.002)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=30)


def _resume(run_dir: Path, progress: Path) -> tuple[int, str]:
    """Resume ``run_dir`` to the end; the epoch it started from and what it said."""
    out = subprocess.run(
        [ENGINE, "run", "--resume", str(run_dir)],
        env={**os.environ, "CRASH_PROGRESS": str(progress)},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert out.returncode == 0, out.stderr[-3000:]
    said = next(line for line in out.stderr.splitlines() if line.startswith("resume:"))
    return out.returncode, said


def test_sigkill_at_any_moment_loses_at_most_an_epoch_and_resumes_bit_identically(plugin_site, tmp_path) -> None:
    plugin_site("slow", SLOW)
    root = tmp_path / "runs"
    reference = run_cli("run", *RUN, f"run.dir={root}", "run.name=whole", env={"CRASH_PROGRESS": str(tmp_path / "p0")})
    assert reference.returncode == 0, reference.stderr
    whole = json.loads((root / "whole" / "summary.json").read_text())

    run_dir, progress = root / "killed", tmp_path / "progress"
    checkpoints = run_dir / "checkpoints"
    moments = [
        ("mid-epoch 1", lambda pid: _epoch_now(progress) >= 1 and (checkpoints / "last.ckpt").is_file()),
        ("mid-epoch 3", lambda pid: _epoch_now(progress) >= 3),
        ("during a checkpoint write", lambda pid: any(checkpoints.glob(f".*.ckpt.{pid}.tmp"))),
    ]
    proc = _start(run_dir, progress, *RUN, f"run.dir={root}", "run.name=killed")
    table = []
    for i, (moment, ready) in enumerate(moments):
        _kill_when(proc, lambda ready=ready, pid=proc.pid: ready(pid))
        killed_in = _epoch_now(progress)
        recorded = read_json(run_dir, "summary.json")
        assert status(recorded) == "interrupted", recorded  # its process is gone: what `runs list` shows
        last = torch.load(checkpoints / "last.ckpt", map_location="cpu", weights_only=True)  # whole, loads
        resumes_at = int(last["epoch"]) + 1
        assert killed_in - resumes_at <= 1, (moment, killed_in, resumes_at)  # at most one epoch redone
        table.append((moment, killed_in, resumes_at))
        if i + 1 < len(moments):
            proc = _start(run_dir, progress, "--resume", str(run_dir))
    _, said = _resume(run_dir, progress)
    assert "continuing" in said and "checkpoints/" in said
    resumed = json.loads((run_dir / "summary.json").read_text())
    assert resumed["status"] == "completed" and resumed["global_step"] == whole["global_step"]
    test_metrics = {k: v for k, v in resumed["metrics"].items() if k.startswith("test/")}
    assert test_metrics and test_metrics == {k: whole["metrics"][k] for k in test_metrics}  # bit-identical
    assert not list(run_dir.rglob("*.tmp")), "a killed writer's temp file was left behind"
    print("\nkill moment -> epoch killed in, epoch resumed at:", table)


FAILS = """
import os
from engine import hookimpl

@hookimpl
def engine_callbacks(config):
    import lightning as L

    class Fail(L.Callback):
        def on_train_epoch_start(self, trainer, pl_module):
            if os.environ.get("FAIL_NOW"):
                raise RuntimeError("the resumed attempt broke")

    return [Fail()]
"""


def test_resume_skips_a_truncated_checkpoint_and_never_loses_a_completed_summary(
    plugin_site, tmp_path, capsys, monkeypatch
) -> None:
    plugin_site("fails", FAILS)
    assert main(["run", *RUN[:4], "trainer.max_epochs=2", *QUIET, f"run.dir={tmp_path}", "run.name=r"]) == 0
    run_dir = tmp_path / "r"
    (run_dir / "checkpoints" / "last.ckpt").write_bytes(b"")  # what a kill mid-write used to leave
    capsys.readouterr()
    assert main(["run", "--resume", str(run_dir), "trainer.max_epochs=3"]) == 0
    said = capsys.readouterr().err
    assert "passing over checkpoints/last.ckpt" in said and "from checkpoints/best.ckpt" in said
    # a resume of the completed run that fails keeps the run's figures
    before = json.loads((run_dir / "summary.json").read_text())
    assert before["status"] == "completed"
    monkeypatch.setenv("FAIL_NOW", "1")
    assert main(["run", "--resume", str(run_dir), "trainer.max_epochs=5"]) == 1
    assert "the resumed attempt broke" in capsys.readouterr().err
    kept = json.loads((run_dir / "summary.json").read_text())
    assert kept["status"] == "completed" and kept["metrics"] == before["metrics"]
    assert kept["last_attempt"]["status"] == "failed" and "broke" in kept["last_attempt"]["error"]


def test_moved_and_copied_runs_use_their_own_files(tmp_path) -> None:
    assert main(["run", *RUN[:4], "trainer.max_epochs=2", *QUIET, f"run.dir={tmp_path}", "run.name=a"]) == 0
    shutil.move(str(tmp_path / "a"), str(tmp_path / "b"))  # moved
    assert engine.open_run(tmp_path / "b").task().training is False  # its own best checkpoint
    assert main(["run", "--resume", str(tmp_path / "b"), "trainer.max_epochs=3"]) == 0
    shutil.copytree(tmp_path / "b", tmp_path / "c")  # copied, then the original removed
    shutil.rmtree(tmp_path / "b")
    assert main(["run", "--resume", str(tmp_path / "c"), "trainer.max_epochs=4"]) == 0  # c's own best checkpoint
    assert engine.open_run(tmp_path / "c").task().training is False
    summary = json.loads((tmp_path / "c" / "summary.json").read_text())
    assert summary["epochs"] == 4 and (tmp_path / "c" / summary["best_checkpoint"]).is_file()


def _limited(limit: int):
    def apply() -> None:
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))  # writes beyond this fail with EFBIG

    return apply


@pytest.mark.slow
def test_a_full_disk_is_one_line_and_truncates_nothing(plugin_site, tmp_path) -> None:
    plugin_site("slow", SLOW)
    env = {**os.environ, "CRASH_PROGRESS": str(tmp_path / "p"), "CRASH_BLOB": "2000000", "COLUMNS": "200"}
    out = subprocess.run(
        [ENGINE, "run", *RUN, f"run.dir={tmp_path}", "run.name=full"],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        preexec_fn=_limited(4_000_000),  # room for the records, not for an 8 MB checkpoint
    )
    assert out.returncode == 2, out.stderr[-2000:]
    lines = [line for line in out.stderr.splitlines() if line.startswith("error:")]
    assert len(lines) == 1 and "cannot write the run directory" in lines[0], out.stderr[-2000:]
    run_dir = tmp_path / "full"
    assert not list(run_dir.rglob("*.tmp"))
    for ckpt in run_dir.glob("checkpoints/*.ckpt"):
        torch.load(ckpt, map_location="cpu", weights_only=True)  # whatever is there is whole
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["status"] == "failed" and "File too large" in summary["error"]


@pytest.mark.parametrize("where", ["/proc/engine-runs", "{tmp}/a-file/runs"])
@pytest.mark.slow
def test_an_unwritable_run_dir_is_one_line(tmp_path, where: str) -> None:
    (tmp_path / "a-file").write_text("not a directory")
    out = run_cli("run", *RUN[:4], "trainer.max_epochs=1", *QUIET, f"run.dir={where.format(tmp=tmp_path)}")
    assert out.returncode == 2 and "Traceback" not in out.stderr, out.stderr[-2000:]
    errors = [line for line in out.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and errors[0].startswith("error: cannot write the run directory"), out.stderr[-2000:]
