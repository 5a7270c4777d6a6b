"""The supervised problem types: what each measures (torchmetrics), how it is judged, what its outputs mean.

One table for every place that scores a supervised model (public as `engine.tasks`). Multi-label metrics
are told whether outputs are ``logits``: the 0.5 threshold applies to probabilities.
"""

from __future__ import annotations

from typing import Any

import torch
import torchmetrics

from engine._contract.errors import ConfigError
from engine._run.runs import metric_number

#: Every metric each problem knows.
METRICS: dict[str, tuple[str, ...]] = {
    "classification": ("accuracy", "f1", "top5"),
    "multilabel": ("accuracy", "f1"),
    "regression": ("mae", "mse", "r2"),
}
#: The metrics a run computes unless told otherwise.
DEFAULT_METRICS: dict[str, tuple[str, ...]] = {
    "classification": ("accuracy", "f1"),
    "multilabel": ("accuracy", "f1"),
    "regression": ("mae", "mse"),
}
#: What a run of each problem is judged by: (metric, "max" | "min").
PRIMARY: dict[str, tuple[str, str]] = {
    "classification": ("accuracy", "max"),
    "multilabel": ("f1", "max"),
    "regression": ("mae", "min"),
}
_REGRESSION = {"mae": torchmetrics.MeanAbsoluteError, "mse": torchmetrics.MeanSquaredError, "r2": torchmetrics.R2Score}


def metric(name: str, problem: str, num_classes: int | None) -> torchmetrics.Metric:
    """The torchmetrics object for metric ``name`` of ``problem`` (``num_classes``: classes or labels)."""
    if name not in METRICS.get(problem, ()):
        raise ConfigError(f"unknown {problem} metric '{name}'; choose from {', '.join(METRICS.get(problem, ()))}")
    if name in _REGRESSION:
        return _REGRESSION[name]()
    if num_classes is None:
        raise ConfigError(f"{problem} metrics need num_classes (set task.num_classes)")
    if problem == "multilabel":
        kind: dict[str, Any] = {"num_labels": num_classes, "task": "multilabel"}
    else:
        kind = {"num_classes": num_classes, "task": "multiclass"}
    if name == "accuracy":
        return torchmetrics.Accuracy(**kind)
    if name == "f1":
        return torchmetrics.F1Score(**kind, average="macro")
    return torchmetrics.Accuracy(**kind, top_k=min(5, num_classes))


def metrics(problem: str, names: Any = None, num_classes: int | None = None, prefix: str = "") -> Any:
    """A ``MetricCollection`` of ``names`` (default: the problem's default metrics), keys prefixed."""
    names = DEFAULT_METRICS[problem] if names is None else names
    return torchmetrics.MetricCollection({n: metric(n, problem, num_classes) for n in names}, prefix=prefix)


def prepare(
    outputs: torch.Tensor, targets: torch.Tensor, problem: str, logits: bool = True
) -> tuple[torch.Tensor, torch.Tensor]:
    """Outputs and targets as the problem's metrics take them (targets shaped and typed like the outputs)."""
    if problem == "regression":
        return outputs, match_target(outputs, targets)
    if problem == "multilabel":
        return (outputs.sigmoid() if logits else outputs), match_target(outputs, targets).long()
    return outputs, targets


def score(
    outputs: torch.Tensor,
    targets: torch.Tensor,
    problem: str,
    num_classes: int | None = None,
    names: Any = None,
    logits: bool = True,
) -> dict[str, float]:
    """Metrics of ``outputs`` (logits, or probabilities with ``logits=False``; values) against ``targets``."""
    if problem in ("classification", "multilabel") and num_classes is None:
        num_classes = int(outputs.shape[-1])
    collection = metrics(problem, names, num_classes)
    collection.update(*prepare(outputs.float(), targets, problem, logits))
    return {k: float(metric_number(v)) for k, v in collection.compute().items()}  # 1.0, not 1.0000001


def to_probabilities(outputs: torch.Tensor, problem: str) -> torch.Tensor:
    """Class probabilities (softmax), label probabilities (sigmoid, multi-label), else the outputs."""
    if problem == "classification":
        return outputs.float().softmax(-1)
    return outputs.float().sigmoid() if problem == "multilabel" else outputs.float()


def match_target(output: Any, target: Any) -> Any:
    """``target`` cast to the output's dtype and, where they differ only by a trailing 1, its shape.

    Any other mismatch (a ``[B, H, C]`` target against a ``[B, H*C]`` output) raises ``ValueError``.
    """
    target = target.to(output.dtype)
    if target.shape == output.shape:
        return target
    if tuple(output.shape) == (*target.shape, 1) or tuple(target.shape) == (*output.shape, 1):
        return target.view_as(output)
    raise ValueError(
        f"the model's output has shape {list(output.shape)} and the target {list(target.shape)}: "
        "a regression or multi-label model must return its target's shape"
    )
