"""AdamW for transformers: weight decay on matrices only, the fused CPU/GPU kernel."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Annotated, Any

import torch
from annotated_types import Ge
from torch.optim import Optimizer


def gpt_adamw(
    params: Iterable[Any],
    lr: Annotated[float, Ge(0)] = 1e-3,
    betas: tuple[float, float] = (0.9, 0.95),
    eps: Annotated[float, Ge(0)] = 1e-8,
    weight_decay: Annotated[float, Ge(0)] = 0.1,
    fused: bool = True,
) -> Optimizer:
    """AdamW with GPT-style parameter groups: matrices (dim >= 2) decay, biases and norms do not.

    Args:
        lr: learning rate.
        betas: coefficients of the running averages of the gradient and its square.
        eps: term added to the denominator for numerical stability.
        weight_decay: decoupled weight decay of the matrices (embeddings included).
        fused: use PyTorch's fused AdamW kernel (one kernel for every parameter; faster on CPU too).
    """
    params = [p for p in params if p.requires_grad]
    groups = [
        {"params": [p for p in params if p.dim() >= 2], "weight_decay": weight_decay},
        {"params": [p for p in params if p.dim() < 2], "weight_decay": 0.0},
    ]
    groups = [g for g in groups if g["params"]]
    return torch.optim.AdamW(groups, lr=lr, betas=tuple(betas), eps=eps, fused=fused)
