"""``vision.vit`` with ``model.gradient_checkpointing=true``: blocks recomputed in the backward pass, same gradients."""

from __future__ import annotations

import engine_vision.models
import torch

import engine


def _grads(checkpointing: bool, x: torch.Tensor) -> dict[str, torch.Tensor]:
    torch.manual_seed(0)
    model = engine.create(
        "model",
        "vision.vit",
        input_shape=[1, 8, 8],
        num_classes=3,
        depth=2,
        width=16,
        heads=2,
        dropout=0.1,
        gradient_checkpointing=checkpointing,
    ).train()
    model(x).pow(2).mean().backward()
    return {n: p.grad for n, p in model.named_parameters() if p.grad is not None}


def test_vit_gradient_checkpointing_gives_the_same_gradients(monkeypatch) -> None:
    calls = []
    real = engine_vision.models.checkpoint
    monkeypatch.setattr(engine_vision.models, "checkpoint", lambda *a, **k: calls.append(1) or real(*a, **k))
    x = torch.randn(4, 1, 8, 8)
    plain, checkpointed = _grads(False, x), _grads(True, x)
    assert len(calls) == 2 and plain.keys() == checkpointed.keys()
    for key in plain:
        torch.testing.assert_close(checkpointed[key], plain[key], rtol=1e-5, atol=1e-6, msg=key)
