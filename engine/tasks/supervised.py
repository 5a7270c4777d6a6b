"""The built-in supervised task: model + loss + optimizer (+ scheduler), torchmetrics metrics."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Literal

import lightning as L
import torch
import torchmetrics
from torch import nn

from engine.data import sample_batch
from engine.tasks import configure_optimizers, eval_mode

_CLASSIFICATION = ("accuracy", "f1")
_REGRESSION = ("mae", "mse")


class SupervisedTask(L.LightningModule):
    """Supervised learning on ``(input, target)`` batches.

    Logs ``train/loss`` every step, and ``val/loss``, ``test/loss`` plus the
    metrics for each evaluated split (``val/accuracy``, ``test/accuracy`` …).

    Args:
        problem: classification (integer targets, logits out) or regression (from the data).
        num_classes: number of classes for classification metrics (from the data).
        metrics: metrics to compute (accuracy, f1, top5 for classification; mae, mse, r2 for regression).
    """

    def __init__(
        self,
        model: nn.Module,
        loss: nn.Module | None,
        optimizer: Callable[..., torch.optim.Optimizer],
        scheduler: Callable[..., Any] | None = None,
        problem: Literal["classification", "regression"] = "classification",
        num_classes: int | None = None,
        metrics: list[str] | None = None,
    ) -> None:
        super().__init__()
        self.model = model
        if loss is None:
            from engine.builtins.losses import cross_entropy, mse

            loss = cross_entropy() if problem == "classification" else mse()
        self.loss = loss
        self.optimizer_factory = optimizer
        self.scheduler_factory = scheduler
        self.problem = problem
        names = metrics if metrics is not None else (_CLASSIFICATION if problem == "classification" else _REGRESSION)
        self.metric_names = list(names)
        # One collection per evaluated split, so val and test states never mix.
        self.val_metrics = self._metrics(names, num_classes, "val/")
        self.test_metrics = self._metrics(names, num_classes, "test/")

    def _metrics(self, names: Any, num_classes: int | None, prefix: str) -> torchmetrics.MetricCollection:
        from engine.errors import ConfigError

        def make(name: str) -> torchmetrics.Metric:
            if self.problem == "classification":
                if num_classes is None:
                    raise ConfigError("classification metrics need num_classes (set task.num_classes)")
                if name == "accuracy":
                    return torchmetrics.Accuracy(task="multiclass", num_classes=num_classes)
                if name == "f1":
                    return torchmetrics.F1Score(task="multiclass", num_classes=num_classes, average="macro")
                if name == "top5":
                    return torchmetrics.Accuracy(task="multiclass", num_classes=num_classes, top_k=min(5, num_classes))
            else:
                if name == "mae":
                    return torchmetrics.MeanAbsoluteError()
                if name == "mse":
                    return torchmetrics.MeanSquaredError()
                if name == "r2":
                    return torchmetrics.R2Score()
            known = (*_CLASSIFICATION, "top5") if self.problem == "classification" else (*_REGRESSION, "r2")
            raise ConfigError(f"unknown {self.problem} metric '{name}'; choose from {', '.join(known)}")

        return torchmetrics.MetricCollection({n: make(n) for n in names}, prefix=prefix)

    @property
    def primary_metric(self) -> tuple[str, str]:
        """Classification runs are judged by accuracy, regression runs by mean absolute error."""
        return ("accuracy", "max") if self.problem == "classification" else ("mae", "min")

    def check_data(self, datamodule: Any) -> None:
        """Run the model on two training samples; a mismatch becomes one clear error before training."""
        from engine.errors import ConfigError

        x, y = sample_batch(datamodule)
        try:
            with eval_mode(self.model):
                self.loss(self.model(x), y)
        except Exception as exc:
            shape = tuple(x.shape[1:]) if isinstance(x, torch.Tensor) else type(x).__name__
            targets = tuple(y.shape[1:]) if isinstance(y, torch.Tensor) else ()
            raise ConfigError(
                f"the model does not fit the data: input of shape {shape} and targets of shape "
                f"{targets or 'scalar'}: {type(exc).__name__}: {exc}",
                hint="check model parameters you set that the data also provides (see facts with --dry-run)",
            ) from exc

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x)

    def training_step(self, batch: Any, batch_idx: int) -> torch.Tensor:
        x, y = batch
        loss = self.loss(self.model(x), y)
        self.log("train/loss", loss, prog_bar=True)
        return loss

    def _evaluate(self, batch: Any, split: str, metrics: torchmetrics.MetricCollection) -> None:
        x, y = batch
        out = self.model(x)
        self.log(f"{split}/loss", self.loss(out, y), prog_bar=True, sync_dist=True)
        if self.problem == "regression" and out.shape != y.shape and out.numel() == y.numel():
            out = out.view_as(y)
        metrics.update(out, y)
        self.log_dict(metrics, prog_bar=True)

    def validation_step(self, batch: Any, batch_idx: int) -> None:
        self._evaluate(batch, "val", self.val_metrics)

    def test_step(self, batch: Any, batch_idx: int) -> None:
        self._evaluate(batch, "test", self.test_metrics)

    def predict_step(self, batch: Any, batch_idx: int) -> torch.Tensor:
        x = batch[0] if isinstance(batch, (list, tuple)) else batch
        out = self.model(x)
        return out.softmax(-1) if self.problem == "classification" else out

    def configure_optimizers(self) -> Any:
        return configure_optimizers(self, self.optimizer_factory, self.scheduler_factory)
