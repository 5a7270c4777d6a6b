"""``model.gradient_checkpointing=true`` on Hugging Face models: transformers' own, the same gradients."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

import engine


@pytest.mark.parametrize("family", ["gpt2", "llama"])
def test_hf_gradient_checkpointing_gives_the_same_gradients(models: dict[str, Path], family: str) -> None:
    x = torch.randint(0, 320, (2, 16))
    grads = []
    for on in (False, True):
        model = engine.create("model", "hf.causal_lm", path=str(models[family]), gradient_checkpointing=on).train()
        hf = model.hf
        assert (
            hf.is_activation_checkpointing
            if hasattr(hf, "is_activation_checkpointing")
            else hf.is_gradient_checkpointing
        ) == on
        model(x).pow(2).mean().backward()
        grads.append({n: p.grad for n, p in model.named_parameters() if p.grad is not None})
    assert grads[0].keys() == grads[1].keys() and grads[0]
    for key in grads[0]:
        torch.testing.assert_close(grads[1][key], grads[0][key], rtol=1e-5, atol=1e-6, msg=key)
