"""Shared fixtures: fake plugin distributions on sys.path, quiet tiny runs."""

from __future__ import annotations

import os
import sys
import textwrap
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from engine.registry import clear_registries


@pytest.fixture(autouse=True)
def _isolated(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[None]:
    """Every test gets fresh registries, its own cache dir and no inherited run directory."""
    clear_registries()
    monkeypatch.setenv("ENGINE_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("ENGINE_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("ENGINE_RUN_DIR", raising=False)
    monkeypatch.delenv("ENGINE_DISABLE_PLUGINS", raising=False)
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
