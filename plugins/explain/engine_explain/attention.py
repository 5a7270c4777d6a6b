"""Attention weights of a transformer, captured during one forward pass: ``[batch, heads, queries, keys]`` per layer.

Two ways in, so that every transformer in the first-party plugins is covered without changing it:

- ``torch.nn.functional.scaled_dot_product_attention`` (``nlp.gpt``, ``nlp.transformer_classifier``):
  a ``TorchFunctionMode`` sees each call and recomputes ``softmax(q kᵀ · scale + mask)`` from its
  arguments (the fused kernel never materialises the weights); the output is left untouched;
- ``nn.MultiheadAttention`` (``vision.vit`` through ``nn.TransformerEncoderLayer``): a forward pre-hook
  asks for the per-head weights (``need_weights=True, average_attn_weights=False``) and a forward hook
  keeps them. The pass runs with gradients enabled, which keeps PyTorch off the fused encoder fast path
  (it would skip the attention module).

Layers are numbered in the order they run.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn
from torch.overrides import TorchFunctionMode


def sdpa_weights(
    query: torch.Tensor,
    key: torch.Tensor,
    value: torch.Tensor | None = None,
    attn_mask: torch.Tensor | None = None,
    dropout_p: float = 0.0,
    is_causal: bool = False,
    scale: float | None = None,
    enable_gqa: bool = False,
) -> torch.Tensor:
    """The attention weights ``scaled_dot_product_attention`` applies (PyTorch's reference formula, no dropout)."""
    q, k = query.detach().float(), key.detach().float()
    if k.shape[-3] != q.shape[-3] and q.dim() >= 3:  # grouped-query attention: key heads shared
        k = k.repeat_interleave(q.shape[-3] // k.shape[-3], dim=-3)
    factor = scale if scale is not None else 1.0 / math.sqrt(q.shape[-1])
    scores = q @ k.transpose(-2, -1) * factor
    length, source = scores.shape[-2], scores.shape[-1]
    if is_causal:
        keep = torch.ones(length, source, dtype=torch.bool, device=scores.device).tril()
        scores = scores.masked_fill(~keep, float("-inf"))
    if attn_mask is not None:
        mask = attn_mask.detach()
        scores = scores.masked_fill(~mask, float("-inf")) if mask.dtype == torch.bool else scores + mask.float()
    weights = scores.softmax(-1).nan_to_num(0.0)  # a fully masked row: zeros, not NaN
    while weights.dim() < 4:
        weights = weights.unsqueeze(0)
    return weights


class _SDPA(TorchFunctionMode):
    def __init__(self, maps: list[torch.Tensor]) -> None:
        super().__init__()
        self.maps = maps

    def __torch_function__(self, func: Any, types: Any, args: Any = (), kwargs: Any = None) -> Any:
        kwargs = kwargs or {}
        if func is F.scaled_dot_product_attention:
            self.maps.append(sdpa_weights(*args, **kwargs))
        return func(*args, **kwargs)


def _ask_weights(module: nn.Module, args: tuple[Any, ...], kwargs: dict[str, Any]) -> tuple[Any, Any]:
    args = tuple(args)
    if len(args) > 4:  # need_weights given by position
        args = (*args[:4], True, *args[5:])
    else:
        kwargs = {**kwargs, "need_weights": True}
    if len(args) > 6:
        args = (*args[:6], False, *args[7:])
    else:
        kwargs = {**kwargs, "average_attn_weights": False}
    return args, kwargs


@contextmanager
def capture(model: nn.Module) -> Iterator[list[torch.Tensor]]:
    """Within the block, every attention layer the model runs appends its weights to the yielded list."""
    maps: list[torch.Tensor] = []
    handles = []
    for module in model.modules():
        if isinstance(module, nn.MultiheadAttention):
            handles.append(module.register_forward_pre_hook(_ask_weights, with_kwargs=True))

            def keep(mod: nn.Module, args: Any, output: Any) -> None:
                if isinstance(output, tuple) and len(output) > 1 and isinstance(output[1], torch.Tensor):
                    weights = output[1].detach().float()
                    maps.append(weights if weights.dim() == 4 else weights.unsqueeze(1))

            handles.append(module.register_forward_hook(keep))
    try:
        with _SDPA(maps):
            yield maps
    finally:
        for handle in handles:
            handle.remove()


def attention_maps(model: nn.Module, x: torch.Tensor) -> list[torch.Tensor]:
    """Per layer, the weights ``[batch, heads, queries, keys]`` of one forward pass on ``x`` (empty: no attention)."""
    with capture(model) as maps, torch.enable_grad():
        model(x)
    return [m.cpu() for m in maps]
