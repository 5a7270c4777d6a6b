"""Mistakes predict can see without torch are reported before torch is imported (seconds, not a minute)."""

from __future__ import annotations

from pathlib import Path

from engine.testing import run_cli_imports


def test_a_missing_input_file_is_refused_before_torch(mlp_run: Path, tmp_path: Path) -> None:
    r, torch = run_cli_imports("predict", str(mlp_run), str(tmp_path / "nope.npy"))
    code, said = r.returncode, r.stderr
    assert code == 2 and "input file not found" in said and "nope.npy" in said, said
    assert not torch, "torch was imported before the error"


def test_a_directory_that_is_no_run_is_refused_before_torch(tmp_path: Path) -> None:
    (tmp_path / "x.npy").write_bytes(b"")
    r, torch = run_cli_imports("predict", str(tmp_path), str(tmp_path / "x.npy"))
    code, said = r.returncode, r.stderr
    assert code == 2 and "is not a run directory" in said, said
    assert not torch, "torch was imported before the error"
