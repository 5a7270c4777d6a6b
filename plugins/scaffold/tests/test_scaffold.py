"""The plugin author's first step: ``engine new plugin``, and the generated plugin passing its own tests."""

from __future__ import annotations

import ast
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from engine_scaffold.scaffold import scaffold

from engine import EngineError
from engine.testing import run_cli


def test_the_scaffold_plugin_conforms(engine_check: Any) -> None:
    engine_check("scaffold")


def test_plugin_names_are_validated(tmp_path: Path) -> None:
    for bad in ("9lives", "has.dot", "Upper", "class", "-lead", "sp ace", ""):
        with pytest.raises(EngineError, match="not a valid plugin name"):
            scaffold(bad, tmp_path / (bad or "empty"))
    with pytest.raises(EngineError, match="already installed"):
        scaffold("core", tmp_path / "core")
    with pytest.raises(EngineError, match=r"'scaffold' is already installed \(engine-scaffold\)"):
        scaffold("scaffold", tmp_path / "scaffold")
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "x").write_text("")
    with pytest.raises(EngineError, match="not empty"):
        scaffold("fresh", tmp_path / "full")


def test_new_plugin_accepts_a_hyphenated_name(cli: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    out = cli("new", "plugin", "acme-widgets")
    assert out.returncode == 0, out.stderr
    root = tmp_path / "engine-acme-widgets"
    assert (root / "engine_acme_widgets").is_dir()
    assert "acme_widgets = " in (root / "pyproject.toml").read_text()
    assert f"engine plugins install -e {root.name}" in out.stdout and "engine run acme_widgets/demo" in out.stdout
    bad = cli("new", "plugin", "9-lives")
    assert bad.returncode == 2 and "acme-widgets: package engine_acme_widgets" in bad.stderr


def test_the_generated_plugin_uses_only_the_public_api(tmp_path: Path) -> None:
    files = scaffold("publicx", tmp_path / "p")
    public = {"engine", "engine.data", "engine.tasks", "engine.protocols", "engine.runs", "engine.console"}
    for path in (f for f in files if f.suffix == ".py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[0] == "engine":
                assert node.module in public or node.module.startswith("engine.testing"), f"{path}: {node.module}"
    test = (tmp_path / "p" / "tests" / "test_publicx.py").read_text()
    assert "def test_conformance(engine_check):" in test and 'engine_check("publicx")' in test
    assert 'ENGINE_API = ">=1,<2"' in (tmp_path / "p" / "engine_publicx" / "plugin.py").read_text()


def test_new_alone_prints_its_help(cli: Any) -> None:
    out = cli("new")
    assert out.returncode == 0 and "plugin" in out.stdout


@pytest.mark.slow
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
        # Its generated tests (the conformance kit, through the engine_check fixture) pass out of the box.
        tests = subprocess.run(
            [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(project)],
            capture_output=True,
            text=True,
            cwd=project,
            env={**os.environ, "ENGINE_HOME": str(tmp_path / "home")},
        )
        assert tests.returncode == 0, tests.stdout[-3000:]
        assert "2 passed" in tests.stdout
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
