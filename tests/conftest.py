"""The kernel alone: installed plugins switched off, fresh registries, a cache and settings of each test's own.

The kernel's tests use the core's own components only: every installed plugin is disabled for them
(``ENGINE_DISABLE_PLUGINS``), so they pass, and mean the same, with or without any plugin installed.
Plugins are tested in ``plugins/*/tests``.
"""

from __future__ import annotations

from collections.abc import Iterator
from importlib.metadata import entry_points
from pathlib import Path

import pytest

from engine._plugins.registry import clear_registries

#: Every plugin installed in this environment (the kernel's tests switch them off).
INSTALLED = sorted({ep.name for ep in entry_points(group="engine.plugins")})


@pytest.fixture(autouse=True, scope="module")
def _kernel_alone() -> Iterator[None]:
    """No installed plugin for a whole module (its module-scoped fixtures, which run first, included).

    The registries are cleared too: one cached by a plugin's tests run before in the same process (a parallel run's
    worker takes files in any order) would build the module's fixtures with every plugin on."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("ENGINE_DISABLE_PLUGINS", ",".join(INSTALLED))
        clear_registries()
        yield
    clear_registries()


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
