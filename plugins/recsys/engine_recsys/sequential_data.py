"""Synthetic histories drawn item by item in time order (`recsys.synthetic` with ``genre_stickiness``
or ``release_spread``), and the per-user time-ordered sequences sequential models train on.

The behaviour drawn (each a documented tendency of real rating logs, none a rule for one model):

- **genre runs**: with probability ``stickiness`` a user's next item comes from the genre of the
  previous one (binge-watching a genre, browsing one category of the catalogue in a session);
- **releases**: items come out at times spread over ``release_spread`` of the calendar; an item is
  not chosen before its release while a released one is left, and an item just out gets a popularity
  bonus ``novelty`` that fades over 5 % of the calendar (new films are watched soon after release);
- **activity windows**: each user is active over 10 % of the calendar, starting at a random time;
- **drifting tastes**: the taste turns from ``u`` towards another direction ``z`` along the history,
  as in the staged generator (``drift``).
"""

from __future__ import annotations

import math

import torch

#: soft exclusion (log scale): an item of another genre, or not yet released, is chosen only when
#: nothing else is left
_PENALTY = 20.0
_GENRES = 18
_WINDOW = 0.1


def in_time_order(
    u: torch.Tensor,
    v: torch.Tensor,
    pop: torch.Tensor,
    n_u: torch.Tensor,
    strength: float,
    drift: float,
    stickiness: float,
    release_spread: float,
    novelty: float,
    g: torch.Generator,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """``(users, items, times)`` of every user's history, drawn one position at a time for all users
    still active (without replacement over a history)."""
    num_users, d = u.shape
    num_items = len(v)
    z = torch.randn(u.shape, generator=g)
    genre = (v @ torch.randn(d, _GENRES, generator=g) + 0.5 * torch.randn(num_items, _GENRES, generator=g)).argmax(1)
    release = release_spread * torch.rand(num_items, generator=g)
    start = (1.0 - _WINDOW) * torch.rand(num_users, generator=g)
    taken = torch.zeros(num_users, num_items, dtype=torch.bool)
    last = torch.full((num_users,), -1, dtype=torch.long)
    users_l, items_l, times_l = [], [], []
    for k in range(int(n_u.max())):
        who = torch.nonzero(n_u > k).flatten()
        frac = (k + 0.5) / n_u[who].double()
        now = start[who].double() + _WINDOW * frac
        angle = (math.pi / 2 * drift * frac).float()[:, None]
        taste = torch.cos(angle) * u[who] + torch.sin(angle) * z[who]
        logits = strength * (taste @ v.T) / math.sqrt(d) + pop
        age = now.float()[:, None] - release[None, :]
        logits = logits - _PENALTY * (age < 0) + novelty * torch.exp(-age.clamp_min(0) / 0.05) * (age >= 0)
        stick = (torch.rand(len(who), generator=g) < stickiness) & (last[who] >= 0)
        other = genre[None, :] != genre[last[who].clamp_min(0)][:, None]
        logits = logits - _PENALTY * (stick[:, None] & other)
        logits = logits.masked_fill(taken[who], float("-inf"))  # n_u <= items / 2: some are left
        gumbel = -torch.log(-torch.log(torch.rand(logits.shape, generator=g).clamp(1e-12, 1 - 1e-7)))
        pick = (logits + gumbel).argmax(1)
        taken[who, pick] = True
        last[who] = pick
        users_l.append(who)
        items_l.append(pick)
        times_l.append(now * 1e9)
    return torch.cat(users_l), torch.cat(items_l), torch.cat(times_l)
