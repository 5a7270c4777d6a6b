"""A tiny private run shared by the session (``cli``, ``train`` and ``one_thread`` come from `engine.testing`)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

#: A small feature-vector task the core's mlp learns in a few epochs (LayerNorm: fine for DP-SGD).
TINY = ["model=mlp", "model.hidden=[32]", "data=synthetic", "data.num_samples=400", "data.num_features=8"]


@pytest.fixture(autouse=True, scope="session")
def _threads(one_thread: None) -> Iterator[None]:
    """Tiny models: one torch thread is several times faster on a shared machine."""
    yield


@pytest.fixture(scope="session")
def dp_run(train: Any, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Three epochs of DP-SGD at a target epsilon of 4, with a scheduler (it steps the private optimizer)."""
    root = tmp_path_factory.mktemp("runs")
    overrides = [*TINY, "privacy.target_epsilon=4", "scheduler=cosine", "trainer.max_epochs=3", "optimizer.lr=0.01"]
    return Path(train(*overrides, root=root, name="dp").run_dir)
