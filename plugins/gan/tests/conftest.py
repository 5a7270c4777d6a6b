from __future__ import annotations

import pytest


@pytest.fixture(autouse=True, scope="session")
def _threads(one_thread: None) -> None:
    """One intra-op thread (engine.testing's ``one_thread``): tiny models on a shared machine run faster."""
