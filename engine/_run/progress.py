"""Lightning's progress bar as the engine shows it (epochs counted from 1, as in the epoch lines; no ``v_num``),
and the logging interval fitted to the epoch (train loss and learning rate sampled within short epochs too)."""

from __future__ import annotations

import importlib.util
from typing import Any

import lightning as L
from lightning.pytorch.callbacks import RichProgressBar, TQDMProgressBar


def epoch_label(trainer: L.Trainer) -> str:
    """``3/10``: the running epoch counted from 1, of ``max_epochs`` when there is one."""
    total = f"/{trainer.max_epochs}" if trainer.max_epochs and trainer.max_epochs > 0 else ""
    return f"{trainer.current_epoch + 1}{total}"


class _NoVersion:
    def get_metrics(self, trainer: L.Trainer, pl_module: L.LightningModule) -> dict[str, Any]:
        items = super().get_metrics(trainer, pl_module)  # type: ignore[misc]
        items.pop("v_num", None)  # the logger's version ("0_"): nothing about the run
        return items


class TQDMBar(_NoVersion, TQDMProgressBar):
    def on_train_epoch_start(self, trainer: L.Trainer, *args: Any) -> None:
        super().on_train_epoch_start(trainer, *args)
        self.train_progress_bar.set_description(f"Epoch {epoch_label(trainer)}")


class RichBar(_NoVersion, RichProgressBar):
    def _get_train_description(self, current_epoch: int) -> str:
        return f"Epoch {epoch_label(self.trainer)}"


def progress_bar() -> L.Callback:
    """The bar Lightning would pick (rich when installed, else tqdm), showing epochs 1-based without ``v_num``."""
    return RichBar() if importlib.util.find_spec("rich") else TQDMBar()


class LogInterval(L.Callback):
    """``log_every_n_steps`` (unset: Lightning's 50) lowered to a tenth of an epoch, so short epochs log within."""

    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        batches = trainer.num_training_batches
        if isinstance(batches, int) and batches > 0:
            trainer.log_every_n_steps = max(1, min(trainer.log_every_n_steps, batches // 10))
