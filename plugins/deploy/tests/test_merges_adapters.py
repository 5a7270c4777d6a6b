"""A model trained through adapters (`engine.protocols.MergesAdapters`) is deployed, predicted and served merged."""

from __future__ import annotations

from typing import Any

import torch
from engine_deploy import common
from torch import nn


class _Adapted(nn.Module):
    """A stand-in for a LoRA-adapted model: ``merged()`` gives the plain network (what is exported)."""

    def __init__(self) -> None:
        super().__init__()
        self.net = nn.Linear(3, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)

    def merged(self) -> nn.Module:
        return nn.Sequential(self.net)


class _Run:
    facts: dict[str, Any] = {}

    def model(self, facts: Any = None) -> nn.Module:
        return _Adapted()


def test_the_eager_model_of_an_adapted_run_is_the_merged_network() -> None:
    model = common.eager_model(_Run())  # type: ignore[arg-type]
    assert isinstance(model, nn.Sequential) and not model.training
