"""Shared fixtures: the kernel alone (installed plugins switched off), fake plugin distributions on sys.path.

The kernel's tests use the core's own components only: every installed plugin is disabled for them
(``ENGINE_DISABLE_PLUGINS``), so they pass, and mean the same, with or without any plugin installed.
Plugins are tested in ``plugins/*/tests``.
"""

from __future__ import annotations

import os
import sys
import textwrap
from collections.abc import Callable, Iterator
from importlib.metadata import entry_points
from pathlib import Path

import pytest

from engine._plugins.registry import clear_registries


#: Every plugin installed in this environment (the kernel's tests switch them off).
INSTALLED = sorted({ep.name for ep in entry_points(group="engine.plugins")})


@pytest.fixture(autouse=True, scope="module")
def _kernel_alone() -> Iterator[None]:
    """No installed plugin for a whole module (its module-scoped fixtures, which run first, included)."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("ENGINE_DISABLE_PLUGINS", ",".join(INSTALLED))
        yield


@pytest.fixture(autouse=True)
def _isolated(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[None]:
    """Every test gets fresh registries, its own cache dir, no inherited run directory, no installed plugin."""
    clear_registries()
    monkeypatch.setenv("ENGINE_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("ENGINE_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("ENGINE_RUN_DIR", raising=False)
    monkeypatch.setenv("ENGINE_DISABLE_PLUGINS", ",".join(INSTALLED))
    yield
    clear_registries()


@pytest.fixture
def plugin_site(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Callable[..., Path]:
    """Install fake plugin distributions: a module plus a ``.dist-info`` with an entry point.

    ``plugin_site(plugin="demo", code=..., dist="engine-demo", version="1.0")``
    returns the site directory (already on ``sys.path`` and ``PYTHONPATH``).
    """
    site = tmp_path / "site"
    site.mkdir()
    monkeypatch.syspath_prepend(str(site))
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(site), os.environ.get("PYTHONPATH", "")]))
    modules: list[str] = []

    def make(plugin: str, code: str, dist: str | None = None, version: str = "1.0", module: str | None = None) -> Path:
        dist = dist or f"engine-{plugin}"
        module = module or f"{dist.replace('-', '_')}_plugin"
        (site / f"{module}.py").write_text(textwrap.dedent(code))
        info = site / f"{dist.replace('-', '_')}-{version}.dist-info"
        info.mkdir()
        (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: {version}\n")
        (info / "entry_points.txt").write_text(f"[engine.plugins]\n{plugin} = {module}\n")
        modules.append(module)
        import importlib

        importlib.invalidate_caches()
        return site

    yield make  # type: ignore[misc]
    for m in modules:
        sys.modules.pop(m, None)
