"""Mistakes explain can see without torch are reported before torch is imported (seconds, not a minute)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path


def imports_before_error(*args: str) -> tuple[int, str, bool]:
    """Run ``engine ARGS`` with ``-X importtime``: exit code, the error line, whether torch was imported."""
    r = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "engine", *args], capture_output=True, text=True, timeout=120
    )
    timings = [line for line in r.stderr.splitlines() if line.startswith("import time:")]
    said = [line for line in r.stderr.splitlines() if not line.startswith("import time:")]
    torch = any(line.rsplit("|", 1)[-1].strip() == "torch" for line in timings)
    return r.returncode, "\n".join(said), torch


def test_a_missing_input_file_is_refused_before_torch(table_run: Path, tmp_path: Path) -> None:
    code, said, torch = imports_before_error("explain", str(table_run), str(tmp_path / "nope.npy"))
    assert code == 2 and "input file not found" in said and "nope.npy" in said, said
    assert not torch, "torch was imported before the error"


def test_an_unknown_method_is_refused_before_torch(tmp_path: Path) -> None:
    (tmp_path / "x.npy").write_bytes(b"")
    code, said, torch = imports_before_error("explain", str(tmp_path), str(tmp_path / "x.npy"), "--method", "shap")
    assert code == 2 and "unknown attribution method 'shap'" in said and "gradient_shap" in said, said
    assert not torch, "torch was imported before the error"
