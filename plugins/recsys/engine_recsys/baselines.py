"""The baselines every ranking evaluation reports beside the model: popularity and EASE.

- **popularity** (``pop_*``): items ranked by their training interaction count.
- **EASE** (``ease_*``, Steck 2019): the closed-form item-item model fitted on the training
  interactions, its L2 weight chosen on the validation users (NDCG at the smallest K) from a
  grid (``task.ease_l2``); the users' training items are its input, as for the models, which are
  trained on the training split only. Skipped, with a one-line note, above ``task.ease_max_items``
  items (fitting takes ``items^3`` time and ``items^2`` memory).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from typing import Any

import torch

from engine_recsys.closed_form import csr_parts, ease_weights, gram, select_rows, sparse_rows_times
from engine_recsys.metrics import user_ndcg

log = logging.getLogger("engine.recsys")


class EaseBaseline:
    """EASE on a data source's training interactions: ``scores(users)`` once `fit` succeeded."""

    def __init__(self, l2: Sequence[float], max_items: int) -> None:
        self.grid, self.max_items = [float(v) for v in l2], max_items
        self.weight: torch.Tensor | None = None
        self.l2: float | None = None
        self.tried = False

    def fit(self, source: Any, k: int, device: torch.device | str = "cpu") -> bool:
        """Fit once (later calls return at once); False when skipped or the data has no interactions."""
        if self.tried:
            return self.weight is not None
        self.tried = True
        matrix = getattr(source, "interaction_matrix", None)
        if matrix is None:
            return False
        num_items = int(source.num_items)
        if num_items > self.max_items:
            log.warning(
                f"EASE baseline skipped: {num_items} items > task.ease_max_items={self.max_items} "
                "(fitting needs items^2 memory and items^3 time)"
            )
            return False
        started = time.perf_counter()
        x = matrix().to(device)
        self._parts = csr_parts(x)
        self._num_items = num_items
        g = gram(x.cpu())
        val = source.datasets().get("val")
        if len(self.grid) == 1 or val is None or len(val) == 0:
            self.l2 = self.grid[len(self.grid) // 2]
            self.weight = ease_weights(g, self.l2).to(device)
            how = "no validation users to choose by" if len(self.grid) > 1 else "given"
        else:
            best = -1.0
            for l2 in self.grid:
                weight = ease_weights(g, l2).to(device)
                value = float(user_ndcg(val, lambda users, w=weight: self._scores(users, w), k, device).mean())
                if value > best:
                    best, self.l2, self.weight = value, l2, weight
            how = f"chosen on {len(val)} validation users from {self.grid}"
        log.info(f"EASE baseline: l2={self.l2:g} ({how}), fitted in {time.perf_counter() - started:.1f} s")
        return True

    def _scores(self, users: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
        rows = select_rows(*self._parts, users.long(), self._num_items)
        return sparse_rows_times(rows, weight)

    def scores(self, users: torch.Tensor, history: torch.Tensor | None = None) -> torch.Tensor:
        """``[len(users), num_items]`` EASE scores (after a successful `fit`): from the users' training
        items, or from ``history`` (boolean ``[len(users), num_items]`` rows) when given."""
        assert self.weight is not None, "fit() first"
        if history is not None:
            return history.to(self.weight).float() @ self.weight
        return self._scores(users, self.weight)
