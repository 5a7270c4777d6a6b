"""What ``engine deploy`` may call on a deployment target beyond the core's :class:`~engine.protocols.DeployTarget`.

The core's protocol hands a target the model only (``export(model, example_inputs, out_dir)``). A
target that packages more of the run (the ``container`` target copies its records and checkpoint
into a build context and pins the libraries it was trained with) says so with :class:`UsesRun`:
``engine deploy`` then calls ``use_run(run)`` once, after building the target and before
``export``. Other callers (the conformance kit, a plugin exporting a bare model) do not, so
``export`` must still work without it.

Checked with :func:`engine.protocols.implements` like the core's protocols (no ``getattr`` by name)::

    from engine_deploy.protocols import UsesRun

    class MyTarget:
        tolerance = 1e-5

        def use_run(self, run):  # an engine.runs.Run: run.path, run.config, run.facts, run.summary
            self.run = run
"""

from __future__ import annotations

from typing import Any, Protocol, runtime_checkable


@runtime_checkable
class UsesRun(Protocol):
    """A deployment target that needs the run being deployed, not only its model."""

    def use_run(self, run: Any) -> None:
        """Receive the :class:`engine.runs.Run` (called by ``engine deploy`` before ``export``)."""
        ...
