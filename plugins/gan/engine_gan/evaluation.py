"""Data statistics and sample evaluation of the adversarial task.

The data's value range (from ``task.data_range`` or its ``preprocessing`` fact),
the classifier of ``task.classifier_run`` (its inputs remapped to its own
normalisation), and the metrics and ``score`` of a batch of generated samples.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import torch
from torch import nn

from engine import ConfigError
from engine_gan.metrics import ClassifierScore, ModeCoverage, classifier_probs, rbf_mmd


def _stats(pre: dict[str, Any] | None, shape: list[int] | None) -> tuple[torch.Tensor, torch.Tensor] | None:
    """``(mean, std)`` of a ``preprocessing`` fact, shaped to broadcast over one sample of ``shape``."""
    if not isinstance(pre, dict) or "mean" not in pre or "std" not in pre:
        return None
    mean = torch.as_tensor(pre["mean"], dtype=torch.float32).flatten()
    std = torch.as_tensor(pre["std"], dtype=torch.float32).flatten()
    if len(mean) != len(std):
        return None
    if len(mean) == 1:
        return mean.view(()), std.view(())
    if shape is not None and len(shape) == 3 and len(mean) == shape[0]:
        return mean.view(-1, 1, 1), std.view(-1, 1, 1)
    if shape is not None and math.prod(shape) == len(mean):
        return mean.view(*shape), std.view(*shape)
    return None


def data_bounds(
    data_range: list[float] | None, pre: dict[str, Any] | None, shape: list[int] | None
) -> tuple[torch.Tensor, torch.Tensor] | None:
    """``(low, high)`` of the data's values (per channel when normalised per channel), or None when unknown."""
    if data_range is not None:
        if len(data_range) != 2 or not data_range[0] < data_range[1]:
            raise ConfigError(f"task.data_range must be [low, high] with low < high, got {data_range}")
        return torch.tensor(float(data_range[0])), torch.tensor(float(data_range[1]))
    if not isinstance(pre, dict) or "value_range" not in pre:
        return None
    stats = _stats(pre, shape)
    if stats is None:
        return None
    mean, std = stats
    scale = float(pre.get("scale", 1.0))
    lo, hi = (float(v) * scale for v in pre["value_range"])
    return (lo - mean) / std, (hi - mean) / std


def load_classifier(
    classifier_run: str, preprocessing: dict[str, Any] | None, shape: list[int] | None
) -> tuple[nn.Module, int, Callable[..., Any]]:
    """``(module, num_classes, remap)`` of the classifier run; ``remap`` takes samples of ``shape`` in the
    normalisation ``preprocessing`` to the classifier's inputs."""
    from engine.runs import open_run

    run = open_run(classifier_run)
    num_classes = run.facts.get("num_classes")
    their_shape = run.facts.get("input_shape")
    if not isinstance(num_classes, int):
        raise ConfigError(f"task.classifier_run {run.path} is not a classification run (no num_classes fact)")
    if shape is not None and their_shape is not None and math.prod(their_shape) != math.prod(shape):
        raise ConfigError(
            f"task.classifier_run {run.path} classifies inputs of shape {their_shape}, the GAN makes {shape}",
            hint="train the classifier on the same data source",
        )
    module = run.task().requires_grad_(False).eval()
    ours, theirs = _stats(preprocessing, shape), _stats(run.facts.get("preprocessing"), their_shape)

    def remap(x: torch.Tensor) -> torch.Tensor:
        if their_shape is not None:
            x = x.reshape(len(x), *their_shape)
        if ours is None or theirs is None:
            return x
        raw = x * ours[1].to(x) + ours[0].to(x)  # the same images in the classifier's normalisation
        return (raw - theirs[0].to(x)) / theirs[1].to(x)

    return module, num_classes, remap


def measure_samples(
    samples: torch.Tensor,
    reals: torch.Tensor | None = None,
    *,
    modes: list[list[float]] | None = None,
    mode_std: float | None = None,
    min_mode_samples: int = 20,
    classifier: Callable[[], tuple[nn.Module, int, Callable[..., Any]]] | None = None,
) -> dict[str, float]:
    """The metrics of ``samples`` (data space): mixture modes/hq, classifier score, MMD to ``reals``.

    ``classifier`` returns ``(module, num_classes, remap)`` as `load_classifier` does.
    """
    out: dict[str, float] = {}
    score: float | None = None
    if modes is not None and mode_std is not None:
        min_samples = max(1, round(min_mode_samples * len(samples) / 2500))
        metric = ModeCoverage(modes, mode_std, min_samples=min_samples).to(samples.device)
        metric.update(samples)
        m = {k: float(v) for k, v in metric.compute().items()}
        out.update(modes=m["modes"], hq=m["hq"])
        score = m["hq"] * m["modes"] / m["num_modes"]
    if classifier is not None:
        module, num_classes, remap = classifier()
        module.to(samples.device)
        metric = ClassifierScore(num_classes).to(samples.device)
        metric.update(classifier_probs(module, remap(samples)))
        c = {k: float(v) for k, v in metric.compute().items()}
        out.update(c)
        class_score = c["confidence"] * c["class_coverage"] / num_classes
        score = class_score if score is None else score * class_score
    if reals is not None and len(reals):
        k = min(len(reals), len(samples), 2500)
        out["mmd"] = float(rbf_mmd(samples[:k], reals[:k]))
        # MMD orders runs without a quality metric, and breaks ties (say 0 modes everywhere) of those with one.
        score = (score or 0.0) - (1.0 if score is None else 1e-3) * out["mmd"]
    out["score"] = score if score is not None else 0.0
    return out
