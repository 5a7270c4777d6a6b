"""Every test gets fresh registries, and a cache and settings of its own."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture(autouse=True)
def _isolated(engine_isolated: Path) -> None:
    """Fresh registries, and a cache and settings of each test's own."""
