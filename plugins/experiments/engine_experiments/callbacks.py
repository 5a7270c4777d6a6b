"""The check a fold run makes before its directory exists (a ``ChecksRun`` callback; imports Lightning)."""

from __future__ import annotations

from typing import Any

import lightning as L

from engine import EngineError
from engine.data import SourceDataModule


class FoldsNeedSamples(L.Callback):
    """Refuses a fold run whose data source builds its own ``LightningDataModule``: its splits are its own
    business, so they cannot be re-dealt into folds (the ``engine_datasets_built`` hook never sees them)."""

    def __init__(self, data: str) -> None:
        self.data = data

    def check_run(self, trainer: Any, task: Any, datamodule: Any) -> None:
        if not isinstance(datamodule, SourceDataModule):
            raise EngineError(
                f"cross-validation needs a data source of labelled samples; '{self.data}' builds its own datamodule",
                hint="drop --folds for this data",
            )
