"""Open a finished (or interrupted) run directory: config, facts, checkpoints, the trained task.

Every command that takes a run (``deploy``, ``predict``, ``evaluate``, a plugin's
``generate`` or ``recommend``) starts here::

    from engine.runs import open_run

    run = open_run("runs/mlp-synthetic-20261124-121334")
    task = run.task()            # the LightningModule, best weights loaded, eval mode
    dm = run.datamodule()        # the run's data, rebuilt from its config
    run.config["model"]["name"], run.facts["class_names"], run.summary["metrics"]

Opening reads only JSON and YAML (no torch); :meth:`Run.task` and
:meth:`Run.datamodule` import what the run needs.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from engine._contract.errors import EngineError
from engine._run.rundir import checkpoint_path, read_config, read_json, run_root


@dataclass
class Run:
    """A run directory, read."""

    path: Path
    config: dict[str, Any]
    facts: dict[str, Any]
    summary: dict[str, Any]
    registry: Any = field(repr=False, default=None)
    _plan: Any = field(repr=False, default=None, init=False)

    def _registry(self) -> Any:
        if self.registry is None:
            from engine._plugins.registry import get_registry

            self.registry = get_registry()  # with the plugins the running command disabled
        return self.registry

    def plan(self) -> Any:
        """The run's :class:`~engine._config.plan.Plan`, from its resolved config (made once).

        The sections' checks of the world at training time (``model.init_from`` exists …) are
        not repeated: the run's weights replace what they loaded.
        """
        if self._plan is None:
            from engine._config.plan import make_plan
            from engine._contract.errors import ConfigError

            try:
                self._plan = make_plan(self.config, self._registry(), checks=False)
            except ConfigError as exc:
                hint = self._missing_plugin() or exc.hint
                raise ConfigError(f"{self.path / 'config.yaml'}: {exc.message}", hint=hint) from None
        return self._plan

    def _missing_plugin(self) -> str | None:
        """Which plugin the run was trained with and this environment lacks (from ``environment.json``)."""
        from engine._run.rundir import read_json

        manager = self._registry().manager
        names = {
            v["name"].split(".", 1)[0]
            for v in self.config.values()
            if isinstance(v, dict) and "." in str(v.get("name"))
        }
        recorded = {p.get("plugin"): p for p in read_json(self.path, "environment.json").get("plugins", [])}
        for name in sorted(names):
            if not manager.is_ok(name) and name in recorded:
                dist, version = recorded[name].get("distribution"), recorded[name].get("version")
                state = manager.plugins[name].status if name in manager.plugins else "not installed"
                return f"the run was trained with plugin '{name}' ({dist} {version}), which is {state} here: " + (
                    f"`engine plugins install {dist}=={version}`"
                    if state == "not installed"
                    else f"`engine plugins enable {name}`"
                )
        return None

    def checkpoint(self, which: str = "best") -> Path:
        """Path of the ``best`` (falls back to ``last``) or ``last`` checkpoint."""
        return checkpoint_path(self.path, self.summary, which)

    def datamodule(self) -> Any:
        """The run's ``LightningDataModule``, rebuilt from its config (same seed, same splits).

        A data source with ``load_artifacts(run_dir)`` reads back what it saved in the run
        (e.g. the run's own tokenizer) instead of rebuilding it.
        """
        from engine._run.build import build_data

        return build_data(self.plan(), artifacts=self.path)

    def task(self, which: str = "best", facts: dict[str, Any] | None = None) -> Any:
        """The run's ``LightningModule`` with the checkpoint's weights, in eval mode, on the CPU.

        ``facts`` overrides the recorded ``facts.json`` (pass the datamodule's facts
        when a fact does not survive JSON).
        """
        return self._build(which, facts)[0]

    def model(self, which: str = "best", facts: dict[str, Any] | None = None) -> Any:
        """The trained model of the task's primary slot (``model``, a GAN's ``generator`` …), eval mode.

        What ``task.teacher`` distils from and ``engine deploy`` exports: the object built for that
        slot, holding the checkpoint's weights.
        """
        _, slots = self._build(which, facts)
        slot = self.plan().task.main_slot
        if slot is None or slots.get(slot) is None:
            raise EngineError(f"run {self.path}: its task '{self.plan().task.qualified_name}' has no model slot")
        return slots[slot].eval()

    def _build(self, which: str, facts: dict[str, Any] | None) -> tuple[Any, dict[str, Any]]:
        from engine._run.build import build_slots, build_task
        from engine._run.checkpoints import load_checkpoint

        path = self.checkpoint(which)
        plan = self.plan()
        facts = dict(facts if facts is not None else self.facts)
        # restoring: the checkpoint replaces any weights loaded from elsewhere (whose source may be gone).
        slots = build_slots(plan, facts, restoring=True)
        module = build_task(plan, facts, slots)
        state = load_checkpoint(path).get("state_dict")
        if not isinstance(state, dict):
            raise EngineError(f"checkpoint {path} holds no model weights (no state_dict)")
        missing, unexpected = module.load_state_dict(state, strict=False)
        if missing or unexpected:
            raise EngineError(
                f"checkpoint {path} does not fit the run's model: "
                f"missing {sorted(missing)[:5]}, unexpected {sorted(unexpected)[:5]}",
                hint="was the plugin providing the model changed since the run? reinstall the version in "
                f"{self.path / 'environment.json'}",
            )
        return module.eval(), slots


def open_run(path: str | Path, registry: Any = None) -> Run:
    """Read run directory ``path``; a clear :class:`EngineError` when it is not one.

    ``registry`` defaults to the running command's (its ``--disable`` set included).
    """
    root = run_root(path)
    return Run(root, read_config(root), read_json(root, "facts.json"), read_json(root, "summary.json"), registry)
