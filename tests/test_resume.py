"""Stopping and continuing runs: Ctrl-C and SIGTERM leave a resumable run and say how to continue it."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from engine.testing import run_cli

ENGINE = str(Path(sys.executable).with_name("engine"))
QUIET = ["trainer.enable_progress_bar=false", "trainer.enable_model_summary=false"]
RUN = ["model=mlp", "model.hidden=[16]", "data=synthetic", "data.num_samples=256", "trainer.max_epochs=4", *QUIET]
# Slows training down while SLOW_RUN is set, so that a signal lands mid-training; changes nothing else.
SLOW = """
import os, time
from engine import hookimpl

@hookimpl
def engine_callbacks(config):
    if not os.environ.get("SLOW_RUN"):
        return []
    import lightning as L

    class Slow(L.Callback):
        def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
            time.sleep(0.1)

    return [Slow()]
"""


@pytest.mark.slow
@pytest.mark.parametrize(("signum", "code"), [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_a_signal_mid_training_exits_with_its_code_says_how_to_continue_and_resumes(
    plugin_site, tmp_path, signum, code
) -> None:
    plugin_site("slow", SLOW)
    run_dir = tmp_path / "r"
    proc = subprocess.Popen(
        [ENGINE, "run", *RUN, f"run.dir={tmp_path}", "run.name=r"],
        env={**os.environ, "SLOW_RUN": "1"},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.time() + 120
    while not (run_dir / "checkpoints" / "last.ckpt").is_file():  # mid-training: an epoch done, more to come
        assert proc.poll() is None, proc.stderr.read()[-2000:]
        assert time.time() < deadline, "no checkpoint in 120 s"
        time.sleep(0.05)
    proc.send_signal(signum)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == code, err[-2000:]
    assert f"interrupted; continue with `engine run --resume {run_dir}`" in err
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["status"] == "interrupted" and "error" not in summary, summary
    resumed = run_cli("run", "--resume", str(run_dir))
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    assert "resume: continuing" in resumed.stderr and "checkpoints/" in resumed.stderr
    done = json.loads((run_dir / "summary.json").read_text())
    assert done["status"] == "completed" and done["epochs"] == 4


def _fake_run(cli, run_dir: Path, *overrides: str) -> None:
    """A completed run's records (its resolved config from --dry-run), without training it."""
    out = cli("run", *RUN, *overrides, f"run.dir={run_dir.parent}", f"run.name={run_dir.name}", "--dry-run")
    assert out.returncode == 0, out.stderr
    run_dir.mkdir(parents=True)
    (run_dir / "config.yaml").write_text(out.stdout)
    (run_dir / "summary.json").write_text(json.dumps({"status": "completed", "epochs": 4}))


@pytest.mark.parametrize("scheduler", ["cosine", "onecycle"])
def test_extending_a_run_whose_scheduler_was_planned_for_its_length_is_refused_before_any_compute(
    cli, tmp_path, scheduler
) -> None:
    run_dir = tmp_path / "r"
    _fake_run(cli, run_dir, f"scheduler={scheduler}")
    before = (run_dir / "summary.json").read_bytes()
    for extra in ((), ("--dry-run",)):
        out = cli("run", "--resume", str(run_dir), "trainer.max_epochs=8", *extra)
        assert out.returncode == 2, out.stderr
        assert (
            f"trainer.max_epochs 4 -> 8: its scheduler core.{scheduler} was planned for the run's length" in out.stderr
        )
        assert f"model.init_from={run_dir} trainer.max_epochs=8" in out.stderr and "Traceback" not in out.stderr
    assert sorted(p.name for p in run_dir.iterdir()) == ["config.yaml", "summary.json"]  # nothing built or written
    assert (run_dir / "summary.json").read_bytes() == before


def test_extending_a_run_whose_scheduler_has_no_length_is_allowed(cli, tmp_path) -> None:
    run_dir = tmp_path / "r"
    _fake_run(cli, run_dir, "scheduler=step")
    out = cli("run", "--resume", str(run_dir), "trainer.max_epochs=8", "--dry-run")
    assert out.returncode == 0, out.stderr


def test_a_completed_run_is_left_alone_and_wall_time_sums_the_attempts(cli, train, tmp_path) -> None:
    first = train(*RUN[:4], "trainer.max_epochs=2", root=tmp_path, name="r")
    run_dir = first.run_dir
    files = {p: p.read_bytes() for p in run_dir.rglob("*") if p.is_file()}
    out = cli("run", "--resume", str(run_dir))  # nothing left to train
    assert out.returncode == 0, out.stderr
    assert f"resume: {run_dir} is complete (2 epochs" in out.stderr
    assert {p: p.read_bytes() for p in run_dir.rglob("*") if p.is_file()} == files  # byte for byte
    longer = train(*RUN[:4], "trainer.max_epochs=3", root=tmp_path, name="r", resume=run_dir).summary
    attempts = longer["attempts_wall_time_s"]
    assert len(attempts) == 2 and attempts[0] == first.summary["wall_time_s"]
    assert longer["wall_time_s"] == pytest.approx(sum(attempts), abs=1e-3) and longer["epochs"] == 3
