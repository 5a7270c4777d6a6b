"""Shared pieces of the experiments plugin's tests: isolation, one torch thread, tiny runs.

``cli``, ``train``, ``engine_isolated``, ``one_thread`` and ``plugin_site`` come from `engine.testing`.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

#: The core's MLP on 300 seeded synthetic samples, one epoch: a run of a second or two.
TINY = ["model=mlp", "model.hidden=[16]", "data=synthetic", "data.num_samples=300", "trainer.max_epochs=1"]


@pytest.fixture(autouse=True, scope="session")
def _threads(one_thread: None) -> None:
    """Tiny models on a shared machine run several times faster on one thread."""


@pytest.fixture(autouse=True)
def _isolated(engine_isolated: Path) -> Path:
    """Fresh registries, cache and settings for every test."""
    return engine_isolated


@pytest.fixture(scope="session")
def tiny() -> list[str]:
    """The overrides of a tiny run (`TINY`)."""
    return list(TINY)


@pytest.fixture(scope="session")
def tiny_run() -> Callable[..., Any]:
    """``tiny_run(root, name, *overrides) -> RunResult``: a quiet tiny run into ``root/name``."""
    from engine.testing import train_run

    def run(root: Path, name: str, *overrides: str) -> Any:
        return train_run(*TINY, "trainer.log_every_n_steps=1", *overrides, root=root, name=name)

    return run
