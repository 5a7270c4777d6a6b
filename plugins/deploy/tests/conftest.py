"""A tiny trained core MLP run, shared by every test of the session (a few seconds to train).

``cli``, ``train`` and ``one_thread`` come from `engine.testing`.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest


@pytest.fixture(autouse=True, scope="session")
def _threads(one_thread: None) -> Iterator[None]:
    """Tiny models: one torch thread is several times faster on a shared machine."""
    yield


@pytest.fixture(scope="session")
def mlp_run(train: Any, tmp_path_factory: pytest.TempPathFactory) -> Path:
    overrides = ["data.num_samples=600", "data.num_features=12", "model.hidden=[32]", "trainer.max_epochs=3"]
    root = tmp_path_factory.mktemp("runs")
    return Path(train(*overrides, root=root, recipe="core/mlp-synthetic", name="mlp").run_dir)


@pytest.fixture(scope="session")
def onnx_dir(mlp_run: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    from engine_deploy.deploy import deploy

    out = tmp_path_factory.mktemp("onnx")
    deploy(mlp_run, "onnx", out=out, timing=False)
    return out
