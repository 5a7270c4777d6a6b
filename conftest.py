"""Every test of the repository, whichever plugin it belongs to, keeps out of the user's settings and caches.

``engine plugins disable`` and a plugin recorded broken persist in ``$ENGINE_HOME``; a test must never
leave them behind for the person running the suite, even from session-scoped fixtures, which run
before any per-test isolation.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest


@pytest.fixture(autouse=True, scope="session")
def _engine_home(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    root = tmp_path_factory.mktemp("engine-session")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("ENGINE_HOME", str(root / "home"))
        patch.setenv("ENGINE_CACHE_DIR", str(root / "cache"))
        yield
