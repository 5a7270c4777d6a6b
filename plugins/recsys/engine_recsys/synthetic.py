"""A seeded synthetic source of implicit feedback (latent preferences, long-tailed popularity)."""

from __future__ import annotations

import math
from typing import Literal

import torch

from engine.errors import ConfigError
from engine_recsys.source import InteractionSource

# --------------------------------------------------------------------------- synthetic


class Synthetic(InteractionSource):
    """Seeded synthetic implicit feedback: low-rank user/item preferences and long-tailed popularity.

    Each user draws a number of items (log-normal around ``interactions_per_user``) without
    replacement, with probability proportional to
    ``exp(preference_strength * <u, v> / sqrt(latent_dim) + popularity_i)``, where
    ``popularity_i = -popularity_exponent * log(rank_i)`` (Zipf-like). Items also get
    genre-like side features and users demographic-like ones, both noisy views of the latent
    factors (``side_features``).

    Args:
        num_users: number of users.
        num_items: number of items.
        interactions_per_user: average interactions per user (total ~ num_users times this).
        latent_dim: dimension of the hidden preference factors.
        preference_strength: how much personal taste (vs popularity) drives choices.
        popularity_exponent: Zipf exponent of item popularity (larger: longer tail).
        side_features: generate user/item side features (used by two-tower models).
        split: leave_last_out (each user's last item is test, the one before val) or temporal.
        val_fraction: temporal split only: fraction of the latest interactions before test used as val.
        test_fraction: temporal split only: fraction of the latest interactions used as test.
        num_negatives: negative items sampled per training interaction.
        negative_sampling: uniform, or popularity (proportional to count ** 0.75).
        seed: seed of the data, the split and the negatives.
    """

    def __init__(
        self,
        num_users: int = 5000,
        num_items: int = 2000,
        interactions_per_user: float = 40.0,
        latent_dim: int = 16,
        preference_strength: float = 3.0,
        popularity_exponent: float = 1.0,
        side_features: bool = True,
        split: Literal["leave_last_out", "temporal"] = "leave_last_out",
        val_fraction: float = 0.1,
        test_fraction: float = 0.1,
        num_negatives: int = 1,
        negative_sampling: Literal["uniform", "popularity"] = "uniform",
        seed: int = 0,
    ) -> None:
        if num_users < 2 or num_items < 10 or interactions_per_user < 3:
            raise ConfigError("synthetic data needs num_users >= 2, num_items >= 10, interactions_per_user >= 3")
        g = torch.Generator().manual_seed(seed)
        d = latent_dim
        u = torch.randn(num_users, d, generator=g)
        v = torch.randn(num_items, d, generator=g)
        rank = torch.randperm(num_items, generator=g).float() + 1
        pop = -popularity_exponent * torch.log(rank)
        sigma = 0.6
        mu = math.log(interactions_per_user) - sigma**2 / 2
        n_u = torch.exp(mu + sigma * torch.randn(num_users, generator=g)).round().long()
        n_u = n_u.clamp(3, max(3, num_items // 2))
        users_l, items_l = [], []
        chunk = max(1, 2_000_000 // num_items)
        for s in range(0, num_users, chunk):  # Gumbel top-k: sampling without replacement, chunked over users
            logits = preference_strength * (u[s : s + chunk] @ v.T) / math.sqrt(d) + pop
            gumbel = -torch.log(-torch.log(torch.rand(logits.shape, generator=g).clamp(1e-12, 1 - 1e-7)))
            n = n_u[s : s + chunk]
            order = torch.topk(logits + gumbel, int(n.max()), dim=1).indices
            take = torch.arange(order.shape[1])[None, :] < n[:, None]
            rows = torch.arange(s, s + len(order))[:, None].expand_as(order)
            users_l.append(rows[take])
            items_l.append(order[take])
        users, items = torch.cat(users_l), torch.cat(items_l)
        times = torch.randint(0, 1_000_000_000, (len(users),), generator=g).double()
        self.user_ids = [str(i) for i in range(num_users)]
        self.item_ids = [str(i) for i in range(num_items)]
        if side_features:
            genres = v @ torch.randn(d, 18, generator=g) + 0.5 * torch.randn(num_items, 18, generator=g)
            top2 = genres.topk(2, dim=1).indices
            self.item_features = torch.zeros(num_items, 18).scatter_(1, top2, 1.0)
            demo = u @ torch.randn(d, 8, generator=g) / math.sqrt(d) + 0.5 * torch.randn(num_users, 8, generator=g)
            self.user_features = demo
        self._setup(
            users,
            items,
            torch.ones(len(users)),
            times,
            split,
            val_fraction,
            test_fraction,
            num_negatives,
            negative_sampling,
            seed,
        )
