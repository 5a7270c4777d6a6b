"""In CI, a skip for a package that could not be imported fails, unless the test is marked optional (conftest.py)."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

TESTS = """
import pytest

def test_needs_a_missing_package():
    pytest.importorskip("no_such_package_for_engine")

@pytest.mark.optional_dependency(reason="a backend few users have")
def test_may_lack_it():
    pytest.importorskip("no_such_package_for_engine")

def test_skips_for_another_reason():
    pytest.skip("not on this platform")
"""

MODULE = """
import pytest

pytestmark = pytest.mark.optional_dependency(reason="an optional backend")
pytest.importorskip("no_such_package_for_engine")

def test_never_runs():
    pass
"""


def _pytest(tmp_path: Path, ci: bool, **files: str) -> str:
    shutil.copy(Path(__file__).parents[1] / "conftest.py", tmp_path / "conftest.py")
    for old in tmp_path.glob("test_*.py"):
        old.unlink()
    for name, text in files.items():
        (tmp_path / f"test_{name}.py").write_text(text)
    env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path)} | ({"CI": "true"} if ci else {})
    args = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-m", "not slow", str(tmp_path)]
    out = subprocess.run(args, capture_output=True, text=True, cwd=tmp_path, env=env, timeout=120)
    return out.stdout


def test_a_missing_package_fails_in_ci_unless_marked_optional(tmp_path: Path) -> None:
    out = _pytest(tmp_path, True, deps=TESTS, optional_module=MODULE)
    assert out.strip().splitlines()[-1].startswith("1 failed, 3 skipped"), out
    assert "no_such_package_for_engine" in out and "install it in `make setup`" in out
    assert _pytest(tmp_path, False, deps=TESTS, optional_module=MODULE).strip().splitlines()[-1].startswith("4 skipped")
    unmarked = MODULE.replace('pytestmark = pytest.mark.optional_dependency(reason="an optional backend")', "")
    out = _pytest(tmp_path, True, missing_module=unmarked)
    assert "1 error" in out.strip().splitlines()[-1] and "install it in `make setup`" in out, out
