"""The built-in supervised task: model + loss + optimizer (+ scheduler), torchmetrics metrics."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Literal

import lightning as L
import torch
from torch import nn

from engine._builtins import problems
from engine._contract.errors import ConfigError
from engine._run.data import sample_batch
from engine._run.tasks import configure_optimizers, eval_mode


class SupervisedTask(L.LightningModule):
    """Supervised learning on ``(input, target)`` batches (what each problem expects: docs/core-components.md).

    Logs ``train/loss`` every step, and ``val/loss``, ``test/loss`` plus the metrics of each evaluated split.

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
            from engine._builtins.losses import bce_with_logits, cross_entropy, mse

            loss = {"classification": cross_entropy, "multilabel": bce_with_logits, "regression": mse}[problem]()
        self.loss = loss
        self.optimizer_factory = optimizer
        self.scheduler_factory = scheduler
        self.problem = problem
        self.metric_names = list(metrics if metrics is not None else problems.DEFAULT_METRICS[problem])
        # One collection per evaluated split, so val and test states never mix.
        self.val_metrics = problems.metrics(problem, self.metric_names, num_classes, "val/")
        self.test_metrics = problems.metrics(problem, self.metric_names, num_classes, "test/")

    @property
    def primary_metric(self) -> tuple[str, str]:
        """Classification runs are judged by accuracy, multi-label runs by macro F1, regression runs by MAE."""
        return problems.PRIMARY[self.problem]

    def check_data(self, datamodule: Any) -> None:
        """Run the model on two training samples; a mismatch becomes one clear error before training."""
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

    def _evaluate(self, batch: Any, split: str, metrics: Any) -> None:
        x, y = batch
        out = self.model(x)
        self.log(f"{split}/loss", self.loss(out, y), prog_bar=True, sync_dist=True)
        metrics.update(*problems.prepare(out, y, self.problem))
        self.log_dict(metrics, prog_bar=True)

    def validation_step(self, batch: Any, batch_idx: int) -> None:
        self._evaluate(batch, "val", self.val_metrics)

    def test_step(self, batch: Any, batch_idx: int) -> None:
        self._evaluate(batch, "test", self.test_metrics)

    def predict_step(self, batch: Any, batch_idx: int) -> torch.Tensor:
        x = batch[0] if isinstance(batch, (list, tuple)) else batch
        return problems.to_probabilities(self.model(x), self.problem)

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
