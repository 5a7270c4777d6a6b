from __future__ import annotations

import pytest


@pytest.fixture(autouse=True, scope="session")
def _one_thread() -> None:
    """One intra-op thread: on a shared 2-core machine, oversubscribed threads slow tiny models down a lot."""
    import torch

    torch.set_num_threads(1)
