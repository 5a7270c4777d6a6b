"""``model.gradient_checkpointing=true``: each block recomputed in the backward pass, the same gradients."""

from __future__ import annotations

from typing import Any

import engine_nlp.models
import pytest
import torch

import engine


def _grads(name: str, checkpointing: bool, x: torch.Tensor, **params: Any) -> dict[str, torch.Tensor]:
    torch.manual_seed(0)
    model = engine.create("model", name, gradient_checkpointing=checkpointing, **params).train()
    model(x).float().pow(2).mean().backward()
    return {n: p.grad for n, p in model.named_parameters() if p.grad is not None}


@pytest.mark.parametrize(
    ("name", "params"),
    [
        ("nlp.gpt", {"vocab_size": 50, "context_length": 16, "n_layer": 2, "d_model": 32, "dropout": 0.1}),
        (
            "nlp.transformer_classifier",
            {"vocab_size": 50, "num_classes": 3, "context_length": 16, "pad_id": 0, "d_model": 32, "dropout": 0.1},
        ),
    ],
)
def test_gradient_checkpointing_gives_the_same_gradients(name: str, params: dict, monkeypatch) -> None:
    x = torch.randint(1, 50, (4, 16))
    x[0, 10:] = 0  # padding, for the classifier's mask
    calls = []
    real = engine_nlp.models.checkpoint
    monkeypatch.setattr(engine_nlp.models, "checkpoint", lambda *a, **k: calls.append(1) or real(*a, **k))
    plain, checkpointed = _grads(name, False, x, **params), _grads(name, True, x, **params)
    assert len(calls) == 2  # one per block: the activations were recomputed, not kept
    assert plain.keys() == checkpointed.keys()
    for key in plain:  # dropout included: checkpointing replays the random state
        torch.testing.assert_close(checkpointed[key], plain[key], rtol=1e-5, atol=1e-6, msg=key)
