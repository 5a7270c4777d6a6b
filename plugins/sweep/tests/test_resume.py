"""A sweep killed with SIGKILL mid-trial resumes to exactly its N trials, continuing the killed trial's run."""

from __future__ import annotations

import csv
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest


def _wait_for(path: Path, proc: subprocess.Popen, timeout: float = 300) -> None:
    deadline = time.time() + timeout
    while not path.exists():
        if proc.poll() is not None:
            raise AssertionError(f"the sweep ended (exit {proc.returncode}) before {path} appeared")
        if time.time() > deadline:
            proc.kill()
            raise AssertionError(f"{path} did not appear within {timeout} s")
        time.sleep(0.02)


@pytest.mark.slow
def test_resume_after_sigkill_completes_exactly_n_trials(cli: Any, base: list[str], tmp_path: Path) -> None:
    import optuna

    root = tmp_path / "killed"
    args = [*base, "data.num_samples=400", "trainer.max_epochs=6", "--space", "optimizer.lr=loguniform(1e-3,1e-1)"]
    engine = Path(sys.executable).with_name("engine")
    cmd = [str(engine), "sweep", *args, "--trials", "3", "--metric", "val/accuracy", "--dir", str(root)]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        _wait_for(root / "records" / "000.json", proc)
        r = cli("sweep", "--resume", str(root))
        assert r.returncode == 2 and "is still running" in r.stderr  # the live sweep is not resumed behind its back
        _wait_for(root / "trials" / "001" / "checkpoints" / "last.ckpt", proc)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    killed = json.loads((root / "records" / "001.json").read_text())
    assert killed["status"] == "running"  # the kill caught trial 001 training
    assert not (root / "records" / "002.json").exists()

    r = cli("sweep", "--resume", str(root))
    assert r.returncode == 0, r.stderr
    assert "resuming" in r.stdout and "(1/3 finished)" in r.stdout
    assert "continuing" in r.stderr and "trials/001" in r.stderr  # trial 001 went on from its last checkpoint
    with (root / "results.csv").open() as fh:
        rows = list(csv.DictReader(fh))
    assert sorted(int(r["number"]) for r in rows) == [0, 1, 2]
    assert all(r["status"] == "completed" for r in rows)
    assert sorted(p.name for p in (root / "trials").iterdir()) == ["000", "001", "002"]
    assert sorted(p.name for p in (root / "trials" / "001" / "csv").iterdir()) == ["0", "1"]  # two attempts
    summary = json.loads((root / "trials" / "001" / "summary.json").read_text())
    assert summary["status"] == "completed" and summary["epochs"] == 6
    assert json.loads((root / "records" / "001.json").read_text())["params"] == killed["params"]
    study = optuna.load_study(study_name="sweep", storage=f"sqlite:///{root / 'study.db'}")
    assert [t.state.name for t in study.get_trials(deepcopy=False)] == ["COMPLETE"] * 3
    meta = json.loads((root / "sweep.json").read_text())
    assert meta["status"] == "completed" and meta["finished"] == 3

    # A finished sweep resumes to nothing; --trials raises its target.
    r = cli("sweep", "--resume", str(root))
    assert r.returncode == 0 and len(list((root / "records").iterdir())) == 3
    r = cli("sweep", "--resume", str(root), "--trials", "4")
    assert r.returncode == 0, r.stderr
    assert json.loads((root / "sweep.json").read_text())["finished"] == 4
    r = cli("sweep", "--resume", str(root), "--metric", "val/loss")
    assert r.returncode == 2 and "--resume takes the sweep's settings" in r.stderr


def test_resume_tells_the_study_a_trial_recorded_but_never_told(cli: Any, base: list[str], tmp_path: Path) -> None:
    """A kill between recording a trial's outcome and telling the study left it RUNNING in study.db forever."""
    import sqlite3

    import optuna

    root = tmp_path / "untold"
    space = ["--space", "optimizer.lr=loguniform(1e-3,1e-1)"]
    r = cli("sweep", *base, *space, "--trials", "2", "--metric", "val/accuracy", "--dir", str(root))
    assert r.returncode == 0, r.stderr
    with sqlite3.connect(root / "study.db") as db:  # trial 1 as the kill left it: recorded, not told
        (trial_id,) = db.execute("SELECT trial_id FROM trials WHERE number = 1").fetchone()
        db.execute("UPDATE trials SET state = 'RUNNING', datetime_complete = NULL WHERE trial_id = ?", (trial_id,))
        db.execute("DELETE FROM trial_values WHERE trial_id = ?", (trial_id,))
    record = json.loads((root / "records" / "001.json").read_text())
    assert record["status"] == "completed"

    r = cli("sweep", "--resume", str(root))
    assert r.returncode == 0, r.stderr
    study = optuna.load_study(study_name="sweep", storage=f"sqlite:///{root / 'study.db'}")
    trials = study.get_trials(deepcopy=False)
    assert [t.state.name for t in trials] == ["COMPLETE", "COMPLETE"]
    assert trials[1].value == record["value"]  # the sampler learns it
    assert len(list((root / "records").iterdir())) == 2  # and nothing ran again
