"""Full-ranking metrics: Recall@K, NDCG@K, HitRate@K, computed for whole batches of users at once.

Definitions (per user with at least one held-out item, then averaged over users):

- ``Recall@K = |top-K ∩ held-out| / |held-out|``
- ``NDCG@K = DCG@K / IDCG@K`` with ``DCG@K = sum over hits at rank r (1-based) of 1 / log2(r + 1)``
  and ``IDCG@K`` the DCG of a perfect list (``min(K, |held-out|)`` hits first)
- ``HitRate@K = 1`` if any held-out item is in the top K, else 0

Items the user has already seen are excluded from the ranking (their scores set to -inf).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import torch
import torchmetrics


def top_k_hits(scores: torch.Tensor, seen: torch.Tensor | None, target: torch.Tensor, k: int) -> torch.Tensor:
    """``[batch, k]`` booleans: is the item at each rank of the top-k (seen items excluded) held out?"""
    if seen is not None:
        scores = scores.masked_fill(seen, float("-inf"))
    k = min(k, scores.shape[1])
    idx = torch.topk(scores, k, dim=1).indices
    return target.gather(1, idx)


def metrics_at_k(hits: torch.Tensor, num_relevant: torch.Tensor, k: int) -> dict[str, torch.Tensor]:
    """Per-user ``recall``, ``ndcg`` and ``hit`` at ``k`` from ranked hits ``[batch, >=k]``."""
    h = hits[:, :k].float()
    ranks = torch.arange(h.shape[1], device=h.device, dtype=torch.float32)
    discounts = 1.0 / torch.log2(ranks + 2.0)
    dcg = (h * discounts).sum(1)
    ideal = torch.cumsum(discounts, 0)
    n = num_relevant.clamp(1, h.shape[1]).long()
    idcg = ideal[n - 1]
    found = h.sum(1)
    return {
        "recall": found / num_relevant.clamp_min(1).float(),
        "ndcg": dcg / idcg,
        "hit": (found > 0).float(),
    }


class RankingMetrics(torchmetrics.Metric):
    """Recall/NDCG/HitRate at each K, summed over users and averaged at ``compute()``.

    ``update(scores, seen, target)`` takes a batch of users' scores over all items and boolean
    ``seen``/``target`` rows; ``compute()`` returns ``{"recall@10": ..., "ndcg@10": ..., "hit@10": ...}``.
    """

    full_state_update = False
    higher_is_better = True

    def __init__(self, ks: Sequence[int] = (10, 20)) -> None:
        super().__init__()
        self.ks = sorted({int(k) for k in ks})
        if not self.ks or self.ks[0] < 1:
            raise ValueError(f"K values must be positive integers, got {list(ks)}")
        self.names = [f"{m}@{k}" for k in self.ks for m in ("recall", "ndcg", "hit")]
        self.add_state("sums", default=torch.zeros(len(self.names), dtype=torch.float64), dist_reduce_fx="sum")
        self.add_state("users", default=torch.zeros((), dtype=torch.float64), dist_reduce_fx="sum")

    def update(self, scores: torch.Tensor, seen: torch.Tensor | None, target: torch.Tensor) -> None:
        num_relevant = target.sum(1)
        keep = num_relevant > 0
        if not keep.any():
            return
        scores, target, num_relevant = scores[keep], target[keep], num_relevant[keep]
        seen = seen[keep] if seen is not None else None
        hits = top_k_hits(scores, seen, target, self.ks[-1])
        values = []
        for k in self.ks:
            m = metrics_at_k(hits, num_relevant, k)
            values += [m["recall"].sum(), m["ndcg"].sum(), m["hit"].sum()]
        self.sums += torch.stack(values).to(self.sums)
        self.users += keep.sum()

    def compute(self) -> dict[str, torch.Tensor]:
        avg = (self.sums / self.users.clamp_min(1)).float()
        return {name: avg[i] for i, name in enumerate(self.names)}


@torch.no_grad()
def user_ndcg(
    users: Any, scores: Callable[[torch.Tensor], torch.Tensor], k: int, device: torch.device | str = "cpu"
) -> torch.Tensor:
    """NDCG@k of each user of an evaluation dataset (``EvalUsers``: val or test users, their seen items
    excluded) under ``scores(users) -> [len(users), num_items]``, in batches of 1,024 users."""
    values = []
    for start in range(0, len(users), 1024):
        who, (seen, target) = users.__getitems__(range(start, min(start + 1024, len(users))))
        seen, target = seen.to(device), target.to(device)
        hits = top_k_hits(scores(who.to(device)), seen, target, k)
        values.append(metrics_at_k(hits, target.sum(1), k)["ndcg"].cpu())
    return torch.cat(values) if values else torch.zeros(0)
