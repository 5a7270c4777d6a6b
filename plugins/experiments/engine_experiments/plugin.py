"""The ``experiments`` plugin's declarations and hooks (torch-free: every target is named lazily).

What it adds, all through public hooks:

- the ``cv`` config section (which fold a run is) and the fold dealing (``engine_datasets_built``);
- ``--folds`` / ``--group-by`` on ``engine run`` (``engine_run_main`` takes the run over);
- the commands ``runs list``, ``runs compare``, ``evaluate``, ``report`` and ``pipeline``;
- ``engine_run_collection`` for cross-validation parents (``folds.json``) and pipeline directories
  (``pipeline.json``).
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from engine import CommandSink, DatasetsBuilt, RunCollection, Section, hookimpl

ENGINE_API = ">=1,<2"


@hookimpl
def engine_config_sections() -> list[Section]:
    return [
        Section(
            "cv",
            "engine_experiments.sections:CrossValidation",
            "Which fold of a K-fold cross-validation a run is (set by `engine run --folds K`)",
            optional=True,
            bookkeeping=True,
            check="engine_experiments.sections:check_cv",
        )
    ]


@hookimpl
def engine_add_commands(subparsers: CommandSink) -> None:
    from engine_experiments.parsers import add_commands

    add_commands(subparsers)


@hookimpl
def engine_run_main(args: argparse.Namespace, config: dict[str, Any]) -> int | None:
    """``engine run … --folds K``: the K fold runs (``--group-by`` alone is a mistake said here)."""
    if getattr(args, "folds", None) is None and not getattr(args, "group_by", None):
        return None
    from engine_experiments.crossval import run_main

    return run_main(args, config)


@hookimpl
def engine_datasets_built(built: DatasetsBuilt) -> None:
    """A fold run (``config["cv"]`` set): the training and validation samples re-dealt into its fold."""
    if not built.config.get("cv"):
        return
    from engine_experiments.folds import deal

    built.splits = deal(built.splits, built.source, built.config["cv"], built.seed)


@hookimpl
def engine_callbacks(config: dict[str, Any]) -> list[Any]:
    """A fold run: refuse data that builds its own datamodule (its splits cannot be re-dealt)."""
    if not config.get("cv"):
        return []
    from engine_experiments.callbacks import FoldsNeedSamples

    return [FoldsNeedSamples(str((config.get("data") or {}).get("name")))]


@hookimpl
def engine_run_collection(path: Path) -> RunCollection | None:
    from engine_experiments.collection import describe

    return describe(path)
