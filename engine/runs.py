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

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from engine.errors import EngineError


@dataclass
class Run:
    """A run directory, read."""

    path: Path
    config: dict[str, Any]
    facts: dict[str, Any]
    summary: dict[str, Any]
    registry: Any = field(repr=False, default=None)

    def _registry(self) -> Any:
        if self.registry is None:
            import engine

            self.registry = engine.get_registry()
        return self.registry

    def checkpoint(self, which: str = "best") -> Path:
        """Path of the ``best`` (falls back to ``last``) or ``last`` checkpoint."""
        if which not in ("best", "last"):
            raise EngineError(f"unknown checkpoint '{which}'", hint="choose best or last")
        names = ["best.ckpt", "last.ckpt"] if which == "best" else ["last.ckpt"]
        recorded = self.summary.get(f"{which}_checkpoint")
        candidates = ([self.path / recorded] if recorded else []) + [self.path / "checkpoints" / n for n in names]
        for path in candidates:
            if path.is_file():
                return path
        raise EngineError(
            f"run {self.path} has no checkpoint (status: {self.summary.get('status', 'unknown')})",
            hint=f"train it first, or continue it with `engine run --resume {self.path}`",
        )

    def datamodule(self) -> Any:
        """The run's ``LightningDataModule``, rebuilt from its config (same seed, same splits).

        A data source with ``load_artifacts(run_dir)`` reads back what it saved in the run
        (e.g. the run's own tokenizer) instead of rebuilding it.
        """
        from engine.build import build_data

        return build_data(self._registry(), self.config, artifacts=self.path)

    def task(self, which: str = "best", facts: dict[str, Any] | None = None) -> Any:
        """The run's ``LightningModule`` with the checkpoint's weights, in eval mode, on the CPU.

        ``facts`` overrides the recorded ``facts.json`` (pass the datamodule's facts
        when a fact does not survive JSON).
        """
        import torch

        from engine.build import build_task

        path = self.checkpoint(which)
        # init_weights=False: the checkpoint replaces any model.init_from weights (whose source may be gone).
        module = build_task(
            self._registry(), self.config, dict(facts if facts is not None else self.facts), init_weights=False
        )
        try:
            state = torch.load(path, map_location="cpu", weights_only=False)["state_dict"]
        except Exception as exc:
            raise EngineError(f"cannot read checkpoint {path}: {type(exc).__name__}: {exc}") from exc
        missing, unexpected = module.load_state_dict(state, strict=False)
        if missing or unexpected:
            raise EngineError(
                f"checkpoint {path} does not fit the run's model: "
                f"missing {sorted(missing)[:5]}, unexpected {sorted(unexpected)[:5]}",
                hint="was the plugin providing the model changed since the run? reinstall the version in "
                f"{self.path / 'environment.json'}",
            )
        return module.eval()


def open_run(path: str | Path, registry: Any = None) -> Run:
    """Read run directory ``path``; a clear :class:`EngineError` when it is not one."""
    root = Path(path).expanduser()
    if not root.is_dir():
        raise EngineError(f"run directory not found: {root}", hint="see `engine runs list`")
    config_file = root / "config.yaml"
    if not config_file.is_file():
        raise EngineError(f"{root} is not a run directory (no config.yaml)", hint="see `engine runs list`")
    import yaml

    try:
        config = yaml.safe_load(config_file.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as exc:
        raise EngineError(f"cannot read {config_file}: {exc}") from None

    def read_json(name: str) -> dict[str, Any]:
        file = root / name
        if not file.is_file():
            return {}
        try:
            return json.loads(file.read_text(encoding="utf-8"))
        except ValueError as exc:
            raise EngineError(f"cannot read {file}: {exc}") from None

    return Run(root, config, read_json("facts.json"), read_json("summary.json"), registry)
