"""The plugin author's experience: scaffold, install, conformance, compatibility, enable/disable."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from engine.errors import EngineError
from engine.plugins import PluginManager
from engine.scaffold import scaffold
from engine.testing import run_cli


def test_scaffolded_plugin_installs_passes_its_tests_and_runs(tmp_path: Path) -> None:
    project = tmp_path / "engine-scaffoldx"
    out = run_cli("new", "plugin", "scaffoldx", "--dir", str(project))
    assert out.returncode == 0, out.stderr
    assert (project / "engine_scaffoldx" / "plugin.py").is_file()
    try:
        # Install into the test environment through the engine's own wrapper around pip.
        out = run_cli("plugins", "install", "--quiet", "--no-deps", "--no-build-isolation", "-e", str(project))
        assert out.returncode == 0, out.stdout + out.stderr
        assert "scaffoldx.tiny_net" in out.stdout and "scaffoldx/demo" in out.stdout
        assert "scaffoldx" in run_cli("plugins", "list").stdout
        # Its generated tests (the conformance kit) pass out of the box.
        tests = subprocess.run(
            [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(project)],
            capture_output=True,
            text=True,
            cwd=project,
            env={**os.environ, "ENGINE_HOME": str(tmp_path / "home")},
        )
        assert tests.returncode == 0, tests.stdout[-3000:]
        # Its components compose with the core's.
        run = run_cli(
            "run",
            "model=scaffoldx.tiny_net",
            "data=scaffoldx.blobs",
            "optimizer=sgd",
            "scheduler=cosine",
            "trainer.max_epochs=2",
            "trainer.enable_progress_bar=false",
            f"run.dir={tmp_path / 'runs'}",
        )
        assert run.returncode == 0, run.stderr[-3000:]
        assert "run directory:" in run.stdout
    finally:
        out = run_cli("plugins", "uninstall", "scaffoldx")
        assert out.returncode == 0, out.stderr
    assert "scaffoldx" not in run_cli("plugins", "list").stdout


def test_plugin_names_are_validated(tmp_path: Path) -> None:
    for bad in ("9lives", "has.dot", "Upper", "class", "-lead"):
        with pytest.raises(EngineError, match="not a valid plugin name"):
            scaffold(bad, tmp_path / bad)
    with pytest.raises(EngineError, match="already installed"):
        scaffold("core", tmp_path / "core")
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "x").write_text("")
    with pytest.raises(EngineError, match="not empty"):
        scaffold("fresh", tmp_path / "full")


