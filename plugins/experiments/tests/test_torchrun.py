"""A run started by torchrun (two processes, DDP on CPU) writes one run directory.

The kernel's behaviour (``engine run`` agrees on one directory across ranks), kept here with the other
tests that came out of the old ``tests/test_experiments.py``.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest


@pytest.mark.slow
def test_torchrun_writes_one_run_directory(tiny: list[str], tmp_path: Path) -> None:
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node=2", "--standalone", "-m", "engine"]
    cmd += ["run", *tiny, "trainer.strategy=ddp", "trainer.accelerator=cpu", "trainer.devices=2"]
    cmd += ["trainer.enable_progress_bar=false", "trainer.enable_model_summary=false"]
    out = subprocess.run([*cmd, f"run.dir={tmp_path}"], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    (run,) = [p for p in tmp_path.iterdir() if (p / "config.yaml").is_file()]  # both ranks: one directory
    assert json.loads((run / "summary.json").read_text())["status"] == "completed"
    assert not (run / ".lock").exists() and not list(tmp_path.glob(f"{run.name}-*"))  # rank 0 claimed it, let it go
