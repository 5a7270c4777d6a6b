"""Mistakes found without torch: a missing data path or run directory is reported before torch is imported."""

from __future__ import annotations

import subprocess
import sys

import pytest

from engine._config.types import describe

# The command in a fresh interpreter; what it printed, then whether torch was imported by the time it returned.
PROBE = """
import sys
from engine._cli.main import main
code = main(sys.argv[1:])
print("exit", code, "torch imported" if "torch" in sys.modules or "lightning" in sys.modules else "no torch")
"""


def _probe(*args: str, cwd) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", PROBE, *args], capture_output=True, text=True, cwd=cwd, timeout=300)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("run", "model=mlp", "data=csv", "data.path=missing.csv"), "error: data.path: no such file or directory"),
        (("run", "model=mlp", "data=csv", "data.path=missing.csv", "--dry-run"), "data.path: no such file"),
        (("run", "--resume", "runs/missing"), "error: run directory not found: runs/missing"),
    ],
)
def test_a_missing_path_is_reported_before_torch_is_imported(tmp_path, args, message) -> None:
    out = _probe(*args, cwd=tmp_path)
    assert message in out.stderr, out.stderr
    assert out.stdout.strip().endswith("exit 2 no torch"), out.stdout + out.stderr


def test_existing_path_is_a_declaration_components_show() -> None:
    assert describe('Annotated[str, "existing_path"] | None') == "str (an existing path) | None"
