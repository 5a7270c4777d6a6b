"""Shared pieces of the sweep tests: a tiny base run (the core's MLP on 300 synthetic samples).

``cli`` (the engine command in-process) and ``one_thread`` come from `engine.testing`.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

#: Every trial of these tests: the core's MLP on 300 synthetic samples, a few epochs of a few batches.
BASE = [
    "core/mlp-synthetic",
    "data.num_samples=300",
    "data.num_features=8",
    "model.hidden=[16]",
    "trainer.max_epochs=2",
    "scheduler=null",
]


@pytest.fixture(autouse=True, scope="session")
def _threads(one_thread: None) -> Iterator[None]:
    """Tiny models: one torch thread is several times faster on a shared machine (``--jobs`` sets its own)."""
    yield


@pytest.fixture
def base() -> list[str]:
    return list(BASE)
