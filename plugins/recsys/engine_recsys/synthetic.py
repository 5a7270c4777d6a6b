"""A seeded synthetic source of implicit feedback (latent preferences, long-tailed popularity)."""

from __future__ import annotations

import math
from typing import Annotated, Literal

import torch
from annotated_types import Ge, Le, Lt

from engine import ConfigError
from engine_recsys.source import InteractionSource

# --------------------------------------------------------------------------- synthetic


class Synthetic(InteractionSource):
    """Seeded synthetic implicit feedback: low-rank user/item preferences, long-tailed popularity,
    uneven user activity and tastes that drift along each user's history.

    Each user draws a number of items (log-normal around ``interactions_per_user`` with spread
    ``activity_sigma``, at least 3) without replacement, with probability proportional to
    ``exp(preference_strength * <u, v_i> / sqrt(latent_dim) + popularity_i)``, where
    ``popularity_i = -popularity_exponent * log(rank_i)`` (Zipf-like). With ``drift > 0`` a
    user's history is drawn in ``stages`` consecutive parts, the taste turning from ``u`` towards
    another random direction ``z``: ``u(t) = cos(pi/2 drift t) u + sin(pi/2 drift t) z``, ``t``
    going from 0 to 1; the parts' timestamps follow each other, so the held-out (latest) items
    reflect the latest taste. With ``drift = 0`` timestamps are random (the order carries nothing).
    Items also get genre-like side features and users demographic-like ones, both noisy views of
    the (initial) latent factors (``side_features``).

    With ``genre_stickiness > 0`` or ``release_spread > 0`` histories are drawn item by item in time
    order instead (`engine_recsys.sequential_data`): users watch in genre runs (the next item is from
    the previous item's genre with probability ``genre_stickiness``), items are released over time
    (none is chosen before its release while a released one is left) and are popular for a while after
    (``novelty``), users are active over a window of the calendar, and tastes drift as above.

    The defaults (5,000 users, 2,000 items, ~151k interactions, density 1.5 %, the top 10 % of
    items taking 54 % of them, half the users with 16 training items or fewer) make popularity
    reach about 60 % of EASE, as on MovieLens. The data of earlier versions (static tastes,
    lighter tails, denser users): ``interactions_per_user=40 popularity_exponent=1
    activity_sigma=0.6 drift=0``.

    Args:
        num_users: number of users.
        num_items: number of items.
        interactions_per_user: average interactions per user (total ~ num_users times this).
        latent_dim: dimension of the hidden preference factors.
        preference_strength: how much personal taste (vs popularity) drives choices.
        popularity_exponent: Zipf exponent of item popularity (larger: more concentrated on the head).
        activity_sigma: spread (log-normal sigma) of the users' interaction counts (larger: more light users).
        drift: how far each user's taste turns over their history (0: static, 1: to an unrelated taste).
        stages: consecutive parts of each history drawn with the taste of their time (with drift > 0).
        genre_stickiness: probability that a user's next item shares the genre of the previous one.
        release_spread: fraction of the calendar over which items are released (0: all at the start).
        novelty: popularity bonus (log scale) of an item just released, fading over 5 % of the calendar.
        side_features: generate user/item side features (used by two-tower models).
        split: leave_last_out (each user's last item is test, the one before val) or temporal.
        val_fraction: temporal split only: fraction of the latest interactions before test used as val.
        test_fraction: temporal split only: fraction of the latest interactions used as test.
        num_negatives: negative items sampled per training interaction.
        negative_sampling: uniform, or popularity (proportional to count ** 0.75).
        seed: seed of the data, the split and the negatives.
        sequence_length: training rows are windows of this many time-ordered items per user (sequential
            models: recsys.sasrec fills it from its max_length); None: (user, item, negatives) rows.
    """

    def __init__(
        self,
        num_users: int = 5000,
        num_items: int = 2000,
        interactions_per_user: float = 30.0,
        latent_dim: Annotated[int, Ge(1)] = 16,
        preference_strength: float = 3.0,
        popularity_exponent: float = 1.4,
        activity_sigma: Annotated[float, Ge(0)] = 1.0,
        drift: Annotated[float, Ge(0), Le(1)] = 0.5,
        stages: Annotated[int, Ge(1)] = 4,
        genre_stickiness: Annotated[float, Ge(0), Lt(1)] = 0.0,
        release_spread: Annotated[float, Ge(0), Le(1)] = 0.0,
        novelty: Annotated[float, Ge(0)] = 0.0,
        side_features: bool = True,
        split: Literal["leave_last_out", "temporal"] = "leave_last_out",
        val_fraction: Annotated[float, Ge(0), Lt(1)] = 0.1,
        test_fraction: Annotated[float, Ge(0), Lt(1)] = 0.1,
        num_negatives: Annotated[int, Ge(0)] = 1,
        negative_sampling: Literal["uniform", "popularity"] = "uniform",
        seed: Annotated[int, Ge(0), Le(4294967295)] = 0,
        sequence_length: Annotated[int, Ge(2)] | None = None,
    ) -> None:
        if num_users < 2 or num_items < 10 or interactions_per_user < 3:
            raise ConfigError("synthetic data needs num_users >= 2, num_items >= 10, interactions_per_user >= 3")
        g = torch.Generator().manual_seed(seed)
        d = latent_dim
        u = torch.randn(num_users, d, generator=g)
        v = torch.randn(num_items, d, generator=g)
        rank = torch.randperm(num_items, generator=g).float() + 1
        pop = -popularity_exponent * torch.log(rank)
        sigma = activity_sigma
        mu = math.log(interactions_per_user) - sigma**2 / 2
        n_u = torch.exp(mu + sigma * torch.randn(num_users, generator=g)).round().long()
        n_u = n_u.clamp(3, max(3, num_items // 2))
        if genre_stickiness > 0 or release_spread > 0:
            from engine_recsys.sequential_data import in_time_order

            users, items, times = in_time_order(
                u, v, pop, n_u, preference_strength, drift, genre_stickiness, release_spread, novelty, g
            )
        elif drift > 0:
            users, items, times = _drifting(u, v, pop, n_u, preference_strength, drift, stages, g)
        else:
            users, items = _static(u, v, pop, n_u, preference_strength, g)
            times = torch.randint(0, 1_000_000_000, (len(users),), generator=g).double()
        self.user_ids = [str(i) for i in range(num_users)]
        self.item_ids = [str(i) for i in range(num_items)]
        #: every generated interaction before the split: (user, item, time) index tensors, e.g. to write them
        #: out in a file format (``plugins/recsys/bench/movielens_files.py`` writes MovieLens ``u.data``)
        self.events = (users, items, times)
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
            sequence_length=sequence_length,
        )


def _gumbel(logits: torch.Tensor, g: torch.Generator) -> torch.Tensor:
    return logits - torch.log(-torch.log(torch.rand(logits.shape, generator=g).clamp(1e-12, 1 - 1e-7)))


def _static(
    u: torch.Tensor, v: torch.Tensor, pop: torch.Tensor, n_u: torch.Tensor, strength: float, g: torch.Generator
) -> tuple[torch.Tensor, torch.Tensor]:
    """Each user's items at once (Gumbel top-k: sampling without replacement), chunked over users."""
    users_l, items_l = [], []
    chunk = max(1, 2_000_000 // len(v))
    for s in range(0, len(u), chunk):
        logits = strength * (u[s : s + chunk] @ v.T) / math.sqrt(u.shape[1]) + pop
        n = n_u[s : s + chunk]
        order = torch.topk(_gumbel(logits, g), int(n.max()), dim=1).indices
        take = torch.arange(order.shape[1])[None, :] < n[:, None]
        rows = torch.arange(s, s + len(order))[:, None].expand_as(order)
        users_l.append(rows[take])
        items_l.append(order[take])
    return torch.cat(users_l), torch.cat(items_l)


def _drifting(
    u: torch.Tensor,
    v: torch.Tensor,
    pop: torch.Tensor,
    n_u: torch.Tensor,
    strength: float,
    drift: float,
    stages: int,
    g: torch.Generator,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Histories in ``stages`` consecutive parts, each drawn (without replacement over the whole
    history) with the taste of its time; timestamps ordered by part, random within one."""
    z = torch.randn(u.shape, generator=g)
    users_l, items_l, times_l = [], [], []
    chunk = max(1, 2_000_000 // len(v))
    for s in range(0, len(u), chunk):
        uc, zc, n = u[s : s + chunk], z[s : s + chunk], n_u[s : s + chunk]
        rows = torch.arange(s, s + len(uc))
        taken = torch.zeros(len(uc), len(v), dtype=torch.bool)
        # part p holds the items from n * p / stages to n * (p + 1) / stages
        bounds = [torch.div(n * p, stages, rounding_mode="floor") for p in range(stages + 1)]
        for p in range(stages):
            t = (p + 0.5) / stages if stages > 1 else 1.0
            angle = math.pi / 2 * drift * t
            taste = math.cos(angle) * uc + math.sin(angle) * zc
            logits = (strength * (taste @ v.T) / math.sqrt(u.shape[1]) + pop).masked_fill(taken, float("-inf"))
            size = bounds[p + 1] - bounds[p]
            if int(size.max()) == 0:
                continue
            order = torch.topk(_gumbel(logits, g), int(size.max()), dim=1).indices
            take = torch.arange(order.shape[1])[None, :] < size[:, None]
            who = rows[:, None].expand_as(order)[take]
            what = order[take]
            taken[who - s, what] = True
            users_l.append(who)
            items_l.append(what)
            times_l.append((p + torch.rand(len(who), generator=g, dtype=torch.float64)) / stages * 1e9)
    return torch.cat(users_l), torch.cat(items_l), torch.cat(times_l)
