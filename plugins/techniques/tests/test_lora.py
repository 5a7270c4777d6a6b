"""LoRA with peft (the ``peft`` section): only adapters train, checkpoints hold them, merged() equals the model."""

from __future__ import annotations

import copy
from typing import Any

import pytest
import torch
from engine_techniques.lora import AdaptedModel, adapt_model, count_parameters
from torch import nn

import engine
from engine import ConfigError
from engine.protocols import MergesAdapters, implements

LORA = {"r": 4, "alpha": 8.0, "dropout": 0.0}


def _gpt() -> nn.Module:
    torch.manual_seed(0)
    return engine.create("model", "nlp.gpt", vocab_size=40, context_length=16, n_layer=2, n_head=2, d_model=16)


def _perturb(model: AdaptedModel) -> None:
    """Adapters start as a no-op (B = 0): give them values, as training would."""
    with torch.no_grad():
        for name, param in model.named_parameters():
            if "lora_" in name:
                param.normal_(0, 0.3)


def _check_adapted(model: AdaptedModel, inputs: torch.Tensor, base_out: torch.Tensor) -> None:
    trainable = [n for n, p in model.named_parameters() if p.requires_grad]
    assert trainable and all("lora_" in n for n in trainable), trainable
    model.eval()
    assert torch.allclose(model(inputs), base_out, atol=1e-6)  # untrained adapters change nothing
    _perturb(model)
    adapted = model(inputs)
    assert (adapted - base_out).abs().max() > 1e-3
    merged = model.merged()
    assert not isinstance(merged, AdaptedModel) and not any("lora_" in n for n, _ in merged.named_parameters())
    assert (merged(inputs) - adapted).abs().max() <= 1e-4
    assert torch.equal(model(inputs), adapted)  # merging worked on a copy


def test_lora_on_the_engines_gpt_trains_adapters_only_and_merges() -> None:
    model = _gpt()
    ids = torch.randint(0, 40, (2, 16))
    base_out = model.eval()(ids)
    adapted = adapt_model(model, {**LORA, "target_modules": ["qkv", "proj"]}, "model", {"init_from": "x"})
    assert implements(adapted, MergesAdapters)
    assert adapted.peft_info["adapted_layers"] == 4 and adapted.context_length == 16  # attributes forwarded
    _check_adapted(adapted, ids, base_out)
    trainable, total = count_parameters(adapted)
    assert adapted.peft_info["trainable_params"] == trainable < total // 10
    # the state dict (checkpoints, model.safetensors) holds the adapters only; loading it keeps the base
    state = adapted.state_dict()
    assert state and all("lora_" in k for k in state)
    fresh = adapt_model(copy.deepcopy(_gpt()), {**LORA, "target_modules": ["qkv", "proj"]}, "model", {"init_from": "x"})
    assert fresh.load_state_dict(state, strict=True)
    assert torch.equal(fresh.eval()(ids), adapted(ids))
    missing = fresh.load_state_dict({k: v for k, v in state.items() if "lora_A" in k}, strict=False).missing_keys
    assert missing and all("lora_B" in k for k in missing)  # adapters absent from a checkpoint are reported


def test_globs_all_linear_and_a_target_matching_nothing() -> None:
    adapted = adapt_model(_gpt(), {**LORA, "target_modules": ["blocks.0.*"]}, "model")
    assert adapted.peft_info["adapted_layers"] == 4  # qkv, proj, fc, out of the first block
    assert adapted.peft_info["base_saved"]  # no init_from: nothing else could rebuild the base
    assert any(k.endswith("tok_emb.weight") for k in adapted.state_dict())
    everything = adapt_model(_gpt(), {**LORA, "target_modules": "all-linear"}, "model")
    assert everything.peft_info["adapted_layers"] == 8  # every linear layer of the blocks, not the output head
    with pytest.raises(ConfigError, match=r"peft.target_modules: 'qvk' matches no layer of the model.*'qkv'"):
        adapt_model(_gpt(), {**LORA, "target_modules": ["qvk"]}, "model")


def test_lora_on_a_vit() -> None:
    torch.manual_seed(0)
    vit = engine.create("model", "vision.vit", input_shape=[1, 8, 8], num_classes=3, depth=2, width=16, heads=2)
    images = torch.randn(3, 1, 8, 8)
    base_out = vit.eval()(images)
    adapted = adapt_model(vit, {**LORA, "target_modules": ["linear1", "linear2"]}, "model", {"init_from": "x"})
    _check_adapted(adapted, images, base_out)


class _HFWrapper(nn.Module):
    """A Hugging Face model held the way an engine component holds one: ``forward(ids) -> logits``."""

    def __init__(self, hf: nn.Module) -> None:
        super().__init__()
        self.hf = hf

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        return self.hf(input_ids=ids).logits


def test_lora_on_a_tiny_transformers_llama() -> None:
    transformers = pytest.importorskip("transformers")
    torch.manual_seed(0)
    config = transformers.LlamaConfig(
        vocab_size=50,
        hidden_size=16,
        intermediate_size=32,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=32,
    )
    model = _HFWrapper(transformers.LlamaForCausalLM(config))
    ids = torch.randint(0, 50, (2, 10))
    base_out = model.eval()(ids)
    adapted = adapt_model(model, {**LORA, "target_modules": ["q_proj", "v_proj"]}, "model", {"init_from": "x"})
    assert adapted.peft_info["adapted_layers"] == 4
    _check_adapted(adapted, ids, base_out)


def test_plan_time_checks(cli: Any) -> None:
    result = cli("run", "model=mlp", "data=synthetic", "peft.slot=modl", "--dry-run")
    assert result.returncode == 2 and "peft.slot=modl: the task has no model slot 'modl'" in result.stderr
    assert "did you mean 'model'" in result.stderr
    result = cli("run", "model=mlp", "data=synthetic", "peft.r=0", "--dry-run")
    assert result.returncode == 2 and "peft.r" in result.stderr
