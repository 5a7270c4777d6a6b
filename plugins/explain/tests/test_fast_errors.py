"""Mistakes explain can see without torch are reported before torch is imported (seconds, not a minute)."""

from __future__ import annotations

from pathlib import Path

from engine.testing import run_cli_imports


def test_a_missing_input_file_is_refused_before_torch(table_run: Path, tmp_path: Path) -> None:
    r, torch = run_cli_imports("explain", str(table_run), str(tmp_path / "nope.npy"))
    code, said = r.returncode, r.stderr
    assert code == 2 and "input file not found" in said and "nope.npy" in said, said
    assert not torch, "torch was imported before the error"


def test_an_unknown_method_is_refused_before_torch(tmp_path: Path) -> None:
    (tmp_path / "x.npy").write_bytes(b"")
    r, torch = run_cli_imports("explain", str(tmp_path), str(tmp_path / "x.npy"), "--method", "shap")
    code, said = r.returncode, r.stderr
    assert code == 2 and "unknown attribution method 'shap'" in said and "gradient_shap" in said, said
    assert not torch, "torch was imported before the error"
