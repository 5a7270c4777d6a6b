"""The ``cv`` config section: which fold of a cross-validation a run is (torch-free, read statically)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any

from annotated_types import Ge

from engine import ConfigError


@dataclass
class CrossValidation:
    """Which fold of a K-fold cross-validation this run is (``engine run --folds K`` sets it).

    Args:
        folds: number of folds the training and validation samples are dealt into.
        fold: the fold held out for validation (0 … folds-1); the others train.
        group_by: a column the data source groups samples by: no group in two folds (default: stratified by class).
    """

    folds: Annotated[int, Ge(2)] = 5
    fold: Annotated[int, Ge(0)] = 0
    group_by: str | None = None


def check_cv(values: dict[str, Any], where: str, config: dict[str, Any]) -> None:
    """The held-out fold is one of the folds."""
    if values["fold"] >= values["folds"]:
        raise ConfigError(f"{where}.fold must be below {where}.folds ({values['folds']}), got {values['fold']}")
