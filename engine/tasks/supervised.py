"""The built-in supervised task: model + loss + optimizer (+ scheduler), torchmetrics metrics."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Literal

import lightning as L
import torch
import torchmetrics
from torch import nn

from engine.builtins.losses import match_target
from engine.data import sample_batch
from engine.tasks import configure_optimizers, eval_mode

# Per problem: default metrics, every metric it knows, primary metric, default loss.
_METRICS: dict[str, tuple[str, ...]] = {
    "classification": ("accuracy", "f1", "top5"),
    "multilabel": ("accuracy", "f1"),
    "regression": ("mae", "mse", "r2"),
}
_DEFAULT_METRICS = {
    "classification": ("accuracy", "f1"),
    "multilabel": ("accuracy", "f1"),
    "regression": ("mae", "mse"),
}
_PRIMARY = {"classification": ("accuracy", "max"), "multilabel": ("f1", "max"), "regression": ("mae", "min")}


class SupervisedTask(L.LightningModule):
    """Supervised learning on ``(input, target)`` batches.

    Logs ``train/loss`` every step, and ``val/loss``, ``test/loss`` plus the
    metrics for each evaluated split (``val/accuracy``, ``test/accuracy`` …).
    What each problem expects of the model and the targets is in the core
    components reference (``docs/core-components.md``).

    Args:
        problem: classification (class-index targets, logits out), multilabel (0/1 targets [B, C],
            logits out) or regression (targets of the output's shape) (from the data).
        num_classes: classes (or labels, for multilabel) for the metrics (from the data).
        metrics: metrics to compute (accuracy, f1, top5 for classification; accuracy, f1 for
            multilabel; mae, mse, r2 for regression).
    """

    def __init__(
        self,
        model: nn.Module,
        loss: nn.Module | None,
        optimizer: Callable[..., torch.optim.Optimizer],
        scheduler: Callable[..., Any] | None = None,
        problem: Literal["classification", "multilabel", "regression"] = "classification",
        num_classes: int | None = None,
        metrics: list[str] | None = None,
    ) -> None:
        super().__init__()
        self.model = model
        if loss is None:
            from engine.builtins.losses import bce_with_logits, cross_entropy, mse

            loss = {"classification": cross_entropy, "multilabel": bce_with_logits, "regression": mse}[problem]()
        self.loss = loss
        self.optimizer_factory = optimizer
        self.scheduler_factory = scheduler
        self.problem = problem
        names = metrics if metrics is not None else _DEFAULT_METRICS[problem]
        self.metric_names = list(names)
        # One collection per evaluated split, so val and test states never mix.
        self.val_metrics = self._metrics(names, num_classes, "val/")
        self.test_metrics = self._metrics(names, num_classes, "test/")

    def _metrics(self, names: Any, num_classes: int | None, prefix: str) -> torchmetrics.MetricCollection:
        from engine.errors import ConfigError

        def make(name: str) -> torchmetrics.Metric:
            if name not in _METRICS[self.problem]:
                known = ", ".join(_METRICS[self.problem])
                raise ConfigError(f"unknown {self.problem} metric '{name}'; choose from {known}")
            if name == "mae":
                return torchmetrics.MeanAbsoluteError()
            if name == "mse":
                return torchmetrics.MeanSquaredError()
            if name == "r2":
                return torchmetrics.R2Score()
            if num_classes is None:
                raise ConfigError(f"{self.problem} metrics need num_classes (set task.num_classes)")
            if self.problem == "multilabel":
                kind = {"num_labels": num_classes, "task": "multilabel"}
            else:
                kind = {"num_classes": num_classes, "task": "multiclass"}
            if name == "accuracy":
                return torchmetrics.Accuracy(**kind)
            if name == "f1":
                return torchmetrics.F1Score(**kind, average="macro")
            return torchmetrics.Accuracy(**kind, top_k=min(5, num_classes))

        return torchmetrics.MetricCollection({n: make(n) for n in names}, prefix=prefix)

    @property
    def primary_metric(self) -> tuple[str, str]:
        """Classification runs are judged by accuracy, multi-label runs by macro F1, regression runs by MAE."""
        return _PRIMARY[self.problem]

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
                hint=f"the data's facts are {_scalars(getattr(datamodule, 'facts', {}))}: check model parameters "
                "you set that the data also provides (--dry-run lists which parameters the facts fill)",
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
        if self.problem == "regression":
            y = match_target(out, y)
        elif self.problem == "multilabel":
            out, y = out.sigmoid(), match_target(out, y).long()
        metrics.update(out, y)
        self.log_dict(metrics, prog_bar=True)

    def validation_step(self, batch: Any, batch_idx: int) -> None:
        self._evaluate(batch, "val", self.val_metrics)

    def test_step(self, batch: Any, batch_idx: int) -> None:
        self._evaluate(batch, "test", self.test_metrics)

    def predict_step(self, batch: Any, batch_idx: int) -> torch.Tensor:
        x = batch[0] if isinstance(batch, (list, tuple)) else batch
        out = self.model(x)
        if self.problem == "classification":
            return out.softmax(-1)
        return out.sigmoid() if self.problem == "multilabel" else out

    def configure_optimizers(self) -> Any:
        return configure_optimizers(self, self.optimizer_factory, self.scheduler_factory)


def _scalars(facts: dict[str, Any]) -> str:
    """The facts a model parameter can take (numbers, strings, short lists), as ``key=value`` pairs."""
    shown = [
        f"{k}={v}"
        for k, v in facts.items()
        if isinstance(v, (int, float, str)) or (isinstance(v, list) and len(v) <= 4)
    ]
    return ", ".join(shown) or "none"
