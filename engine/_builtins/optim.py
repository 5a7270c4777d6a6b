"""Built-in optimizers and learning-rate schedulers (factories over torch.optim)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Annotated, Any, Literal

import torch
from annotated_types import Ge, Gt, Le, Lt
from torch.optim import Optimizer
from torch.optim.lr_scheduler import CosineAnnealingLR, LinearLR, OneCycleLR, ReduceLROnPlateau, SequentialLR, StepLR

Beta = Annotated[float, Ge(0), Lt(1)]  # what torch.optim accepts as a beta (a running average's coefficient)


def sgd(
    params: Iterable[Any],
    lr: Annotated[float, Ge(0)] = 0.1,
    momentum: Annotated[float, Ge(0)] = 0.9,
    weight_decay: Annotated[float, Ge(0)] = 0.0,
    nesterov: bool = False,
) -> Optimizer:
    """Stochastic gradient descent.

    Args:
        lr: learning rate.
        momentum: momentum factor.
        weight_decay: L2 penalty.
        nesterov: use Nesterov momentum.
    """
    return torch.optim.SGD(params, lr=lr, momentum=momentum, weight_decay=weight_decay, nesterov=nesterov)


def adam(
    params: Iterable[Any],
    lr: Annotated[float, Ge(0)] = 1e-3,
    betas: tuple[Beta, Beta] = (0.9, 0.999),
    eps: Annotated[float, Ge(0)] = 1e-8,
    weight_decay: Annotated[float, Ge(0)] = 0.0,
) -> Optimizer:
    """Adam.

    Args:
        lr: learning rate.
        betas: coefficients of the running averages of the gradient and its square.
        eps: term added to the denominator for numerical stability.
        weight_decay: L2 penalty (coupled; prefer adamw).
    """
    return torch.optim.Adam(params, lr=lr, betas=tuple(betas), eps=eps, weight_decay=weight_decay)


def adamw(
    params: Iterable[Any],
    lr: Annotated[float, Ge(0)] = 1e-3,
    betas: tuple[Beta, Beta] = (0.9, 0.999),
    eps: Annotated[float, Ge(0)] = 1e-8,
    weight_decay: Annotated[float, Ge(0)] = 0.01,
) -> Optimizer:
    """AdamW: Adam with decoupled weight decay.

    Args:
        lr: learning rate.
        betas: coefficients of the running averages of the gradient and its square.
        eps: term added to the denominator for numerical stability.
        weight_decay: decoupled weight decay.
    """
    return torch.optim.AdamW(params, lr=lr, betas=tuple(betas), eps=eps, weight_decay=weight_decay)


def rmsprop(
    params: Iterable[Any],
    lr: Annotated[float, Ge(0)] = 1e-3,
    alpha: Annotated[float, Ge(0), Le(1)] = 0.99,
    momentum: Annotated[float, Ge(0)] = 0.0,
    weight_decay: Annotated[float, Ge(0)] = 0.0,
) -> Optimizer:
    """RMSprop.

    Args:
        lr: learning rate.
        alpha: smoothing constant.
        momentum: momentum factor.
        weight_decay: L2 penalty.
    """
    return torch.optim.RMSprop(params, lr=lr, alpha=alpha, momentum=momentum, weight_decay=weight_decay)


def cosine(
    optimizer: Optimizer,
    total_steps: int,
    warmup_steps: Annotated[int, Ge(0)] = 0,
    min_lr: Annotated[float, Ge(0)] = 0.0,
) -> dict[str, Any]:
    """Cosine decay from the optimizer's LR to ``min_lr`` over the run, stepped every batch.

    Args:
        warmup_steps: steps of linear warm-up from 1% of the LR before the decay.
        min_lr: learning rate at the end of the run.
    """
    warmup_steps = min(warmup_steps, max(total_steps - 1, 0))
    scheduler: Any = CosineAnnealingLR(optimizer, T_max=max(total_steps - warmup_steps, 1), eta_min=min_lr)
    if warmup_steps > 0:
        warm = LinearLR(optimizer, start_factor=0.01, total_iters=warmup_steps)
        scheduler = SequentialLR(optimizer, [warm, scheduler], milestones=[warmup_steps])
    return {"scheduler": scheduler, "interval": "step"}


def step(
    optimizer: Optimizer, step_size: Annotated[int, Ge(1)] = 10, gamma: Annotated[float, Gt(0)] = 0.1
) -> dict[str, Any]:
    """Multiply the learning rate by ``gamma`` every ``step_size`` epochs.

    Args:
        step_size: epochs between decays.
        gamma: multiplicative factor.
    """
    return {"scheduler": StepLR(optimizer, step_size=step_size, gamma=gamma), "interval": "epoch"}


def onecycle(
    optimizer: Optimizer,
    total_steps: int,
    max_lr: Annotated[float, Gt(0)] | None = None,
    pct_start: Annotated[float, Ge(0), Le(1)] = 0.3,
) -> dict[str, Any]:
    """One-cycle learning-rate policy, stepped every batch.

    Args:
        max_lr: peak learning rate (default: the optimizer's LR).
        pct_start: fraction of the run spent increasing the LR.
    """
    peak = max_lr if max_lr is not None else [g["lr"] for g in optimizer.param_groups]
    scheduler = OneCycleLR(optimizer, max_lr=peak, total_steps=max(total_steps, 1), pct_start=pct_start)
    return {"scheduler": scheduler, "interval": "step"}


def reduce_on_plateau(
    optimizer: Optimizer,
    monitor: str = "val/loss",
    mode: Literal["min", "max"] = "min",
    factor: Annotated[float, Ge(0), Lt(1)] = 0.1,
    patience: Annotated[int, Ge(0)] = 3,
    min_lr: Annotated[float, Ge(0)] = 0.0,
) -> dict[str, Any]:
    """Reduce the learning rate when ``monitor`` stops improving (checked every epoch).

    Args:
        monitor: logged metric to watch.
        mode: ``min`` if lower is better, ``max`` otherwise.
        factor: multiplicative factor of the reduction.
        patience: epochs without improvement before reducing.
        min_lr: lower bound on the learning rate.
    """
    scheduler = ReduceLROnPlateau(optimizer, mode=mode, factor=factor, patience=patience, min_lr=min_lr)
    return {"scheduler": scheduler, "interval": "epoch", "monitor": monitor}
