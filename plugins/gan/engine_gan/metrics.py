"""Sample-quality metrics (torchmetrics): mixture modes and high-quality samples, classifier score, MMD."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
import torchmetrics


class ModeCoverage(torchmetrics.Metric):
    """Modes covered and fraction of high-quality samples for a mixture of Gaussians.

    A sample is *high quality* when it lies within ``sigmas`` standard deviations
    of its nearest mode; a mode is *covered* when at least ``min_samples``
    high-quality samples fall on it (VEEGAN / PacGAN protocol: 3 std, 20 of 2500).
    """

    full_state_update = False

    def __init__(self, modes: Any, std: float, sigmas: float = 3.0, min_samples: int = 20) -> None:
        super().__init__()
        self.register_buffer("modes", torch.as_tensor(modes, dtype=torch.float32))
        self.radius, self.min_samples = sigmas * std, min_samples
        self.add_state("counts", torch.zeros(len(self.modes), dtype=torch.long), dist_reduce_fx="sum")
        self.add_state("total", torch.tensor(0), dist_reduce_fx="sum")

    def update(self, samples: torch.Tensor) -> None:
        x = samples.flatten(1).float()
        dist = torch.cdist(x, self.modes.to(x))
        nearest, which = dist.min(1)
        good = nearest <= self.radius
        self.counts += torch.bincount(which[good], minlength=len(self.modes))
        self.total += len(x)

    def compute(self) -> dict[str, torch.Tensor]:
        covered = (self.counts >= self.min_samples).sum()
        hq = self.counts.sum().float() / self.total.clamp_min(1)
        return {"modes": covered.float(), "hq": hq, "num_modes": torch.tensor(float(len(self.modes)))}


class ClassifierScore(torchmetrics.Metric):
    """Class coverage and mean confidence of a trained classifier on generated samples.

    ``coverage`` counts the classes that are the classifier's top prediction for at least
    ``min_fraction`` of the samples (a tenth of a uniform share by default);
    ``confidence`` is the mean top-class probability.
    """

    full_state_update = False

    def __init__(self, num_classes: int, min_fraction: float = 0.1) -> None:
        super().__init__()
        self.num_classes, self.min_fraction = num_classes, min_fraction
        self.add_state("counts", torch.zeros(num_classes, dtype=torch.long), dist_reduce_fx="sum")
        self.add_state("confidence_sum", torch.tensor(0.0), dist_reduce_fx="sum")
        self.add_state("total", torch.tensor(0), dist_reduce_fx="sum")

    def update(self, probs: torch.Tensor) -> None:
        conf, pred = probs.max(1)
        self.counts += torch.bincount(pred, minlength=self.num_classes)
        self.confidence_sum += conf.sum()
        self.total += len(probs)

    def compute(self) -> dict[str, torch.Tensor]:
        total = self.total.clamp_min(1)
        share = self.counts.float() / total
        covered = (share >= self.min_fraction / self.num_classes).sum().float()
        return {
            "class_coverage": covered,
            "confidence": self.confidence_sum / total,
            "class_entropy": -(share.clamp_min(1e-12).log() * share).sum(),
        }


def rbf_mmd(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Squared maximum mean discrepancy with a Gaussian kernel (median-distance bandwidth); 0 for equal laws."""
    x, y = x.flatten(1).float(), y.flatten(1).float()
    xy = torch.cat([x, y])
    d2 = torch.cdist(xy, xy).pow(2)
    bandwidth = d2[d2 > 0].median().clamp_min(1e-6) if (d2 > 0).any() else torch.tensor(1.0)
    k = torch.exp(-d2 / bandwidth)
    n = len(x)
    kxx, kyy, kxy = k[:n, :n], k[n:, n:], k[:n, n:]
    return kxx.mean() + kyy.mean() - 2 * kxy.mean()


def classifier_probs(classifier: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor) -> torch.Tensor:
    """Softmax probabilities of ``classifier`` on ``x`` in chunks (no gradients)."""
    out = []
    with torch.no_grad():
        for chunk in x.split(512):
            out.append(classifier(chunk).float().softmax(-1))
    return torch.cat(out)
