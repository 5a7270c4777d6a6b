"""What the lifecycle hooks receive: one object each, handed to every implementation in call order (torch-free).

An implementation may change it; a later plugin sees what an earlier one did (a model wrapped for LoRA, then frozen).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from engine._contract.declarations import Component


@dataclass
class ModelBuilt:
    """A model slot's object, just built (``engine_model_built``).

    Args:
        slot: the config key of the slot (``model``, ``generator``, ``policy`` …).
        model: the built object (an ``nn.Module``); replace it to wrap the model (LoRA, quantisation).
        component: the model's declaration (its ``adapters`` and shipped ``weights`` among others).
        config: the resolved config (read it, do not change it).
        keys: the slot-key sections' keys set in the slot (``init_from``, ``freeze`` …), apart from the
            model's own parameters of the same name.
        restoring: True when the run's own checkpoint will replace the weights (a finished run reopened):
            skip loading weights from elsewhere then.
    """

    slot: str
    model: Any
    component: Component
    config: Mapping[str, Any]
    keys: Mapping[str, Any] = field(default_factory=dict)
    restoring: bool = False


@dataclass
class DatasetsBuilt:
    """A data source's splits, just built (``engine_datasets_built``); replace ``splits`` to re-deal them.

    Args:
        splits: ``{"train": Dataset, "val": Dataset, "test": Dataset}`` (``val``/``test`` optional).
        source: the data source object (its ``facts``, and optional methods such as ``groups(column)``).
        config: the resolved config (read it, do not change it).
        seed: the run's seed.
    """

    splits: dict[str, Any]
    source: Any
    config: Mapping[str, Any]
    seed: int = 0


@dataclass
class RunFinished:
    """A run that has ended (``engine_run_finished``), on rank zero, before ``summary.json`` is written.

    Args:
        run_dir: the run directory.
        status: ``completed``, ``failed`` or ``interrupted``.
        summary: what ``summary.json`` will hold (read it; return additions from the hook).
        config: the resolved config.
        task: the trained ``LightningModule``.
        trainer: the ``lightning.Trainer``.
    """

    run_dir: Path
    status: str
    summary: Mapping[str, Any]
    config: Mapping[str, Any]
    task: Any = None
    trainer: Any = None


@dataclass
class RunCollection:
    """Several runs a plugin wrote in one directory (a sweep, a cross-validation), from ``engine_run_collection``.

    Commands reading runs (``engine runs list``, ``runs compare``, ``report``) expand or summarise it.

    Args:
        kind: what it is (``sweep``, ``cross-validation``, ``pipeline``).
        path: the directory.
        members: ``(name, run directory)`` of each run in it, in order.
        figures: the collection as one row: ``status``, ``metrics``, ``primary_metric`` (``{"name", "mode",
            "value"}``), ``wall_time_s``, ``started``; any may be missing.
        config: the config the members share (for comparisons), if the collection has one.
        expand: list the members one by one (a sweep's trials) rather than as one row of figures (a
            cross-validation's fold means).
        best: the name of the best member, when the collection chose one.
    """

    kind: str
    path: Path
    members: list[tuple[str, Path]] = field(default_factory=list)
    figures: dict[str, Any] = field(default_factory=dict)
    config: dict[str, Any] = field(default_factory=dict)
    expand: bool = True
    best: str | None = None
