"""Lightning callbacks the engine adds to every run: random states, epoch lines, the run's checkpoints."""

from __future__ import annotations

import math
import random
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import lightning as L
import numpy as np
import torch
from lightning.pytorch.callbacks import Checkpoint

from engine._contract.errors import ConfigError
from engine._run.logs import format_metric
from engine._run.progress import epoch_label
from engine._run.runs import metric_number


class RNGState(L.Callback):
    """The global random states saved in checkpoints and restored on resume: a resumed run continues exactly."""

    def on_save_checkpoint(self, trainer: L.Trainer, pl_module: L.LightningModule, checkpoint: dict[str, Any]) -> None:
        # Plain tensors and numbers only, so checkpoints load with torch.load(weights_only=True).
        version, keys, gauss = random.getstate()
        name, np_keys, pos, has_gauss, cached = np.random.get_state()
        checkpoint["engine_rng_state"] = {
            "torch": torch.get_rng_state(),
            "python": [version, list(keys), gauss],
            "numpy": [name, torch.from_numpy(np_keys.astype("int64")), pos, has_gauss, cached],
        }

    def on_load_checkpoint(self, trainer: L.Trainer, pl_module: L.LightningModule, checkpoint: dict[str, Any]) -> None:
        state = checkpoint.get("engine_rng_state")
        if not state:
            return
        torch.set_rng_state(state["torch"])
        version, keys, gauss = state["python"]
        random.setstate((version, tuple(keys), gauss))
        if "numpy" in state:
            name, np_keys, pos, has_gauss, cached = state["numpy"]
            np.random.set_state((name, np_keys.numpy().astype(np.uint32), pos, has_gauss, cached))


class Started(L.Callback):
    """Calls ``then()`` when training starts (optimizers built, checkpoint restored): a resumed run's records."""

    def __init__(self, then: Callable[[], None]) -> None:
        self.then = then

    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self.then()


class EpochLines(L.Callback):
    """``epoch 3/10  step 198  train/loss 0.3123  val/loss 0.2977  1.2s`` on stderr, and one every ``every_s`` s."""

    def __init__(self, every_s: float = 30.0) -> None:
        self.every_s = every_s
        self._clock = time.perf_counter
        self._started = self._last = self._clock()

    def on_train_epoch_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._started = self._last = self._clock()

    def on_train_batch_end(self, trainer: L.Trainer, *args: Any) -> None:
        now = self._clock()
        if now - self._last >= self.every_s:
            self._last = now
            self._print(trainer, self._step(trainer), ("train/",))

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if not trainer.sanity_checking:
            self._print(trainer, self._step(trainer), ("train/", "val/"))

    @staticmethod
    def _step(trainer: L.Trainer) -> str:
        """``step 12/40``: of ``max_steps``, else of the steps ``max_epochs`` make (when known)."""
        total = trainer.max_steps if trainer.max_steps > 0 else trainer.estimated_stepping_batches
        return f"step {trainer.global_step}" + (f"/{int(total)}" if 0 < total < math.inf else "")  # -1, inf: unknown

    def _print(self, trainer: L.Trainer, where: str, prefixes: tuple[str, ...]) -> None:
        if not trainer.is_global_zero:
            return
        metrics = trainer.callback_metrics
        # Headline figures only: per-class breakdowns (val/ap/circle) stay in the metrics CSV.
        keys = sorted(k for k in metrics if k.startswith(prefixes) and k.count("/") == 1 and metrics[k].numel() == 1)
        shown = "".join(f"  {k} {format_metric(float(metrics[k]))}" for k in keys)
        took = self._clock() - self._started
        print(f"epoch {epoch_label(trainer)}  {where}{shown}  {took:.1f}s", file=sys.stderr, flush=True)


class RunCheckpoints(Checkpoint):
    """A run's checkpoints: ``best.ckpt`` (``best-2.ckpt`` … with ``save_top_k`` > 1) by ``monitor``, and ``last.ckpt``.

    A Lightning ``Checkpoint``, so Lightning calls it after every other callback. ``last.ckpt`` is written at
    every opportunity (every ``every_n_train_steps`` steps; else each epoch's end, or each validation when
    validation does not run at epoch ends) and at the end of training; the best is considered every
    ``every_n_epochs`` epochs.
    ``best_metrics`` (every metric when the best was saved) travels in the checkpoint. The state names
    files by their name only, so a moved or copied run resumes from *its* checkpoints.
    """

    def __init__(
        self,
        dirpath: str | Path,
        monitor: str,
        mode: str = "min",
        save_top_k: int = 1,
        save_last: bool = True,
        every_n_epochs: int = 1,
        every_n_train_steps: int | None = None,
    ) -> None:
        self.dirpath, self.monitor, self.mode = Path(dirpath), monitor, mode
        self.save_top_k, self.save_last = save_top_k, save_last
        self.every_n_epochs, self.every_n_train_steps = every_n_epochs, every_n_train_steps
        self.ranked: list[tuple[float, int]] = []  # (score, step) of the checkpoints kept, best first
        self.best_metrics: dict[str, float] = {}
        self.best_step: int | None = None
        self._saved_step: int | None = None  # global step of the last opportunity taken
        self._last_step: int | None = None  # global step of the last last.ckpt

    def file(self, rank: int = 1) -> Path:
        return self.dirpath / ("best.ckpt" if rank == 1 else f"best-{rank}.ckpt")

    @property
    def best_model_path(self) -> str:
        return str(self.file()) if self.ranked and self.file().is_file() else ""

    @property
    def best_model_score(self) -> float | None:
        return self.ranked[0][0] if self.ranked else None

    @property
    def last_model_path(self) -> str:
        last = self.dirpath / "last.ckpt"
        return str(last) if self.save_last and last.is_file() else ""

    def reset_best(self) -> None:
        """Forget the best checkpoints so far (pruning: they predate the final sparsity)."""
        self.ranked, self.best_metrics, self.best_step = [], {}, None

    def on_train_batch_end(self, trainer: L.Trainer, *args: Any) -> None:
        n = self.every_n_train_steps
        if n and trainer.global_step % n == 0 and not self._skip(trainer):
            self._take(trainer, consider_best=self.monitor in trainer.callback_metrics)

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if not self.every_n_train_steps and self._at_epoch_end(trainer) and not self._skip(trainer):
            self._take(trainer, consider_best=self._epoch_due(trainer))

    def on_validation_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if not self.every_n_train_steps and not self._at_epoch_end(trainer) and not self._skip(trainer):
            self._take(trainer, consider_best=self._epoch_due(trainer))

    @staticmethod
    def _at_epoch_end(trainer: L.Trainer) -> bool:
        """Whether the epoch's end is the opportunity: no validation, or one that runs at each epoch's end."""
        if sum(trainer.num_val_batches) == 0:
            return True
        return trainer.check_val_every_n_epoch == 1 and trainer.val_check_interval == 1.0

    def on_train_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if self.save_last and not trainer.fast_dev_run and self._last_step != trainer.global_step:
            trainer.save_checkpoint(self.dirpath / "last.ckpt", weights_only=False)
            self._last_step = trainer.global_step

    def _skip(self, trainer: L.Trainer) -> bool:
        taken = self._saved_step == trainer.global_step
        return bool(trainer.fast_dev_run) or trainer.sanity_checking or trainer.state.fn != "fit" or taken

    def _epoch_due(self, trainer: L.Trainer) -> bool:
        return self.every_n_epochs >= 1 and (trainer.current_epoch + 1) % self.every_n_epochs == 0

    def _take(self, trainer: L.Trainer, consider_best: bool) -> None:
        self._saved_step = step = trainer.global_step
        metrics = trainer.callback_metrics
        if consider_best and self.save_top_k != 0:
            if self.monitor not in metrics:
                logged = ", ".join(sorted(k for k in metrics if "/" in k)) or "nothing yet"
                raise ConfigError(
                    f"checkpoint.monitor={self.monitor} is not a metric this run logs (it logs: {logged})",
                    hint="set checkpoint.monitor to one of them",
                )
            self._consider(trainer, float(metrics[self.monitor]), step)
        if self.save_last:
            trainer.save_checkpoint(self.dirpath / "last.ckpt", weights_only=False)
            self._last_step = step

    def _consider(self, trainer: L.Trainer, score: float, step: int) -> None:
        better = (lambda a, b: a < b) if self.mode == "min" else (lambda a, b: a > b)
        rank = next((i for i, (s, _) in enumerate(self.ranked) if better(score, s)), len(self.ranked))
        keep = self.save_top_k if self.save_top_k > 0 else len(self.ranked) + 1
        if rank >= keep:
            return
        previous = self.best_metrics, self.best_step
        self.ranked.insert(rank, (score, step))
        dropped = self.ranked[keep:]
        del self.ranked[keep:]
        if rank == 0:  # set before saving: the checkpoint written now carries its own figures
            self.best_metrics = {
                k: float(metric_number(v)) for k, v in trainer.callback_metrics.items() if v.numel() == 1
            }
            self.best_step = step
        try:
            for r in range(len(self.ranked), rank + 1, -1):  # the ones below move down a rank
                if self.file(r - 1).is_file() and trainer.is_global_zero:
                    self.file(r - 1).replace(self.file(r))
            trainer.save_checkpoint(self.file(rank + 1), weights_only=False)
        except BaseException:
            self.ranked = sorted([*self.ranked, *dropped], key=lambda x: x[0], reverse=self.mode == "max")
            self.best_metrics, self.best_step = previous
            raise

    def state_dict(self) -> dict[str, Any]:
        return {
            "monitor": self.monitor,
            "ranked": [list(r) for r in self.ranked],
            "best_metrics": self.best_metrics,
            "best_step": self.best_step,
        }

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        if state_dict.get("monitor") == self.monitor:
            self.ranked = [(float(s), int(step)) for s, step in state_dict.get("ranked") or []]
            self.best_metrics = dict(state_dict.get("best_metrics") or {})
            self.best_step = state_dict.get("best_step")

    def on_load_checkpoint(self, trainer: L.Trainer, pl_module: L.LightningModule, checkpoint: dict[str, Any]) -> None:
        """A checkpoint written before this callback (Lightning's ModelCheckpoint state) still restores the best."""
        states = checkpoint.get("callbacks") or {}
        if any(str(k).startswith(type(self).__name__) for k in states):
            return  # load_state_dict gets our own state
        old = next((v for k, v in states.items() if str(k).startswith("ModelCheckpoint")), None)
        if isinstance(old, dict) and old.get("best_model_score") is not None and old.get("monitor") == self.monitor:
            step = old.get("engine_best_step")
            self.ranked = [(float(old["best_model_score"]), int(step) if step is not None else 0)]
            self.best_metrics = dict(old.get("engine_best_metrics") or {})
            self.best_step = step
