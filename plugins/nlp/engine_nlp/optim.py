"""AdamW for transformers: weight decay on matrices only, the fused CPU/GPU kernel (torch imported when built)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Annotated, Any

from annotated_types import Ge

from engine import ConfigError

if TYPE_CHECKING:
    from torch.optim import Optimizer

#: Lightning's mixed-precision plugin refuses to clip the gradients of an optimizer that unscales them itself
#: (``_step_supports_amp_scaling``: the fused AdamW does); 32-true and bf16-true clip any optimizer.
_MIXED = ("16-mixed", "bf16-mixed", "16", "bf16", 16)


def gpt_adamw(
    params: Iterable[Any],
    lr: Annotated[float, Ge(0)] = 1e-3,
    betas: tuple[float, float] = (0.9, 0.95),
    eps: Annotated[float, Ge(0)] = 1e-8,
    weight_decay: Annotated[float, Ge(0)] = 0.1,
    fused: bool | None = None,
) -> Optimizer:
    """AdamW with GPT-style parameter groups: matrices (dim >= 2) decay, biases and norms do not.

    Args:
        lr: learning rate.
        betas: coefficients of the running averages of the gradient and its square.
        eps: term added to the denominator for numerical stability.
        weight_decay: decoupled weight decay of the matrices (embeddings included).
        fused: use PyTorch's fused AdamW kernel (one kernel for every parameter; faster on CPU too). Default
            (null): fused, except when the run clips gradients (``trainer.gradient_clip_val``) under mixed
            precision (``trainer.precision=16-mixed``/``bf16-mixed``), which Lightning refuses for a fused
            optimizer; ``--dry-run`` shows the choice. ``true`` with that combination is refused.
    """
    import torch

    params = [p for p in params if p.requires_grad]
    groups = [
        {"params": [p for p in params if p.dim() >= 2], "weight_decay": weight_decay},
        {"params": [p for p in params if p.dim() < 2], "weight_decay": 0.0},
    ]
    groups = [g for g in groups if g["params"]]
    return torch.optim.AdamW(groups, lr=lr, betas=tuple(betas), eps=eps, fused=True if fused is None else fused)


def check_adamw(values: dict[str, Any], where: str, config: dict[str, Any]) -> dict[str, Any]:
    """Plan time (torch-free): decide ``fused`` so that fit can clip the gradients the trainer section clips."""
    trainer = config.get("trainer") or {}
    clips = bool(trainer.get("gradient_clip_val"))
    mixed = trainer.get("precision") in _MIXED
    if values.get("fused") and clips and mixed:
        raise ConfigError(
            f"{where}.fused=true cannot be combined with trainer.gradient_clip_val under "
            f"trainer.precision={trainer['precision']}: Lightning does not clip the gradients of a fused optimizer "
            "in mixed precision",
            hint=f"leave {where}.fused unset (chosen for you), or set trainer.gradient_clip_val=null",
        )
    if values.get("fused") is None:
        values = {**values, "fused": not (clips and mixed)}
    return values
