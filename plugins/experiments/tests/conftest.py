"""Shared pieces of the experiments plugin's tests: isolation, one torch thread, tiny runs, fake plugins.

``cli``, ``train``, ``engine_isolated`` and ``one_thread`` come from :mod:`engine.testing`.
``ENGINE_DISABLE_PLUGINS``, when the environment sets it, is kept (the isolation drops it otherwise).
"""

from __future__ import annotations

import importlib
import os
import sys
import textwrap
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

#: The core's MLP on 300 seeded synthetic samples, one epoch: a run of a second or two.
TINY = ["model=mlp", "model.hidden=[16]", "data=synthetic", "data.num_samples=300", "trainer.max_epochs=1"]
DISABLED = os.environ.get("ENGINE_DISABLE_PLUGINS")


@pytest.fixture(autouse=True, scope="session")
def _threads(one_thread: None) -> None:
    """Tiny models on a shared machine run several times faster on one thread."""


@pytest.fixture(autouse=True)
def _isolated(engine_isolated: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Fresh registries, cache and settings for every test."""
    if DISABLED:
        monkeypatch.setenv("ENGINE_DISABLE_PLUGINS", DISABLED)
    return engine_isolated


@pytest.fixture
def plugin_site(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[..., Path]]:
    """Install fake plugin distributions: ``plugin_site(plugin, code, version="1.0", extra={module: code})``.

    Each is a module and a ``.dist-info`` with its entry point, in a directory put on ``sys.path``
    (and ``PYTHONPATH``, for subprocesses); ``extra`` modules (a plugin's targets) go beside it.
    Returns the directory.
    """
    site = tmp_path / "site"
    site.mkdir()
    monkeypatch.syspath_prepend(str(site))
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(site), os.environ.get("PYTHONPATH", "")]))
    modules: list[str] = []

    def make(plugin: str, code: str, version: str = "1.0", extra: dict[str, str] | None = None) -> Path:
        dist = f"engine-{plugin}"
        module = f"engine_{plugin}_plugin"
        (site / f"{module}.py").write_text(textwrap.dedent(code))
        for name, text in (extra or {}).items():
            (site / f"{name}.py").write_text(textwrap.dedent(text))
            modules.append(name)
        info = site / f"engine_{plugin}-{version}.dist-info"
        info.mkdir()
        (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: {version}\n")
        (info / "entry_points.txt").write_text(f"[engine.plugins]\n{plugin} = {module}\n")
        modules.append(module)
        importlib.invalidate_caches()
        return site

    yield make
    for m in modules:
        sys.modules.pop(m, None)


@pytest.fixture(scope="session")
def tiny() -> list[str]:
    """The overrides of a tiny run (:data:`TINY`)."""
    return list(TINY)


@pytest.fixture(scope="session")
def tiny_run() -> Callable[..., Any]:
    """``tiny_run(root, name, *overrides) -> RunResult``: a quiet tiny run into ``root/name``."""
    from engine.testing import train_run

    def run(root: Path, name: str, *overrides: str) -> Any:
        return train_run(*TINY, "trainer.log_every_n_steps=1", *overrides, root=root, name=name)

    return run
