"""Every test of the repository, whichever plugin it belongs to, keeps out of the user's settings and caches.

``engine plugins disable`` and a plugin recorded broken persist in ``$ENGINE_HOME``; a test must never
leave them behind for the person running the suite, even from session-scoped fixtures, which run
before any per-test isolation.

In CI (``CI`` set), a test skipped because a package could not be imported (``pytest.importorskip``)
fails instead: `make setup` installs every test dependency, so such a skip hides a missing install step.
A test that may lack its package on purpose says so: ``@pytest.mark.optional_dependency(reason="...")``
(a module: ``pytestmark = pytest.mark.optional_dependency(reason="...")`` before its importorskip).

A shell starts a background job (``make test &``, ``nohup``) with SIGINT ignored, and every child inherits that:
the tests that press Ctrl-C on an ``engine`` command would see it ignored. The suite restores Python's handler,
so its children start with SIGINT at its default, as they do from a terminal.

Run on several cores (``pytest -n N``, as ``make test`` does), each worker, and each command it starts, uses one
torch thread unless told otherwise: N workers with a thread per core each would crawl. A worker starts with
``COLUMNS=80 LINES=24`` in its environment, which one process does not have: the commands the tests run in-process
would wrap their tables at 80 columns (long tmp paths), so a worker drops them and sees the width one process sees.
"""

from __future__ import annotations

import os
import signal
from collections.abc import Iterator
from typing import Any

import pytest

if signal.getsignal(signal.SIGINT) == signal.SIG_IGN:
    signal.signal(signal.SIGINT, signal.default_int_handler)
if os.environ.get("PYTEST_XDIST_WORKER"):  # before torch is imported: read when it loads, inherited by children
    for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ.setdefault(var, "1")
    for var in ("COLUMNS", "LINES"):
        os.environ.pop(var, None)

MISSING = "could not import"
WHY = "a missing test dependency fails CI: install it in `make setup`, or mark the test optional_dependency(reason=)"


def _missing_dependency(report: Any, optional: bool) -> None:
    """Turn a skip for a package that could not be imported into a failure, in CI, unless marked optional."""
    if os.environ.get("CI") and report.skipped and MISSING in str(report.longrepr) and not optional:
        report.outcome, report.longrepr = "failed", f"{report.longrepr}\n{WHY}"


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    outcome = yield
    _missing_dependency(outcome.get_result(), item.get_closest_marker("optional_dependency") is not None)


@pytest.hookimpl(hookwrapper=True)
def pytest_make_collect_report(collector: pytest.Collector) -> Iterator[None]:
    outcome = yield  # a module-level importorskip: the module's marker is read from its source
    path = getattr(collector, "path", None)
    source = path.read_text(encoding="utf-8") if path is not None and path.suffix == ".py" else ""
    _missing_dependency(outcome.get_result(), "pytest.mark.optional_dependency" in source)


@pytest.fixture(autouse=True, scope="session")
def _engine_home(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    root = tmp_path_factory.mktemp("engine-session")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("ENGINE_HOME", str(root / "home"))
        patch.setenv("ENGINE_CACHE_DIR", str(root / "cache"))
        yield
