from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def shapes_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small folder of generated coloured-shape PNGs: 3 classes x 24 images of 16x16."""
    from engine_vision.shapes import write_shapes

    return write_shapes(tmp_path_factory.mktemp("shapes"), per_class=24, size=16, classes=3, seed=0)


@pytest.fixture(autouse=True, scope="session")
def _one_thread() -> None:
    """One intra-op thread: on a shared 2-core machine, oversubscribed threads slow tiny models down 5x."""
    import torch

    torch.set_num_threads(1)
