"""A linear learning-rate decay over the run (the usual PPO / DQN annealing)."""

from __future__ import annotations

from typing import Any

from torch.optim import Optimizer
from torch.optim.lr_scheduler import LambdaLR


def linear(optimizer: Optimizer, total_steps: int, end_factor: float = 0.0) -> dict[str, Any]:
    """Decay the learning rate linearly from its initial value to ``end_factor`` times it over the run.

    Args:
        end_factor: fraction of the initial learning rate reached at the last step.
    """
    steps = max(1, int(total_steps))

    def factor(step: int) -> float:
        return 1.0 - (1.0 - end_factor) * min(1.0, step / steps)

    return {"scheduler": LambdaLR(optimizer, factor), "interval": "step"}
