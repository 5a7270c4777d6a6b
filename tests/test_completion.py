"""Shell completion: `engine completion SHELL` prints the script; the shell's questions get names (argcomplete)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from engine.testing import run_cli

ENGINE = str(Path(sys.executable).with_name("engine"))


def _complete(line: str, tmp_path: Path, **env: str) -> list[str]:
    out = tmp_path / "completions.txt"
    environ = os.environ | env | {"COMP_LINE": line, "COMP_POINT": str(len(line)), "_ARGCOMPLETE": "1"}
    environ["_ARGCOMPLETE_STDOUT_FILENAME"] = str(out)
    subprocess.run([ENGINE], env=environ, cwd=tmp_path, timeout=120, check=False, capture_output=True)
    return sorted(w.strip() for w in out.read_text().split("\013") if w.strip())


@pytest.mark.parametrize("shell", ["bash", "zsh", "fish"])
def test_completion_prints_the_script(shell: str) -> None:
    out = run_cli("completion", shell)
    assert out.returncode == 0 and "engine" in out.stdout and "_ARGCOMPLETE" in out.stdout


def test_commands_names_and_runs_complete(tmp_path: Path) -> None:
    assert _complete("engine comp", tmp_path) == ["completion", "components"]
    assert "model=mlp" in _complete("engine run model=ml", tmp_path)
    assert "core/mlp-synthetic" in _complete("engine run core/", tmp_path)
    assert "core.mlp" in _complete("engine components show core.ml", tmp_path)
    (tmp_path / "mine" / "mlp-synthetic-1").mkdir(parents=True)
    assert "mlp-synthetic-1" in _complete("engine run --resume ml", tmp_path, ENGINE_RUNS_DIR=str(tmp_path / "mine"))
    assert "--dry-run" in _complete("engine run --d", tmp_path)
