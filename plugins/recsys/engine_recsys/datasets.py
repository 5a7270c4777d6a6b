"""Interaction containers and datasets: per-user item lists (CSR), training pairs, evaluation users.

Batches are built whole (``__getitems__``, vectorised), not sample by sample; `collate`
passes them through.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal

import torch
from torch.utils.data import Dataset, default_collate

# --------------------------------------------------------------------------- sparse helpers


class CSR:
    """Per-user item lists (compressed sparse rows): ``indices[indptr[u]:indptr[u + 1]]``."""

    def __init__(self, users: torch.Tensor, items: torch.Tensor, num_users: int) -> None:
        order = torch.argsort(users * (int(items.max()) + 1 if len(items) else 1) + items)
        self.indices = items[order].contiguous()
        counts = torch.bincount(users, minlength=num_users)
        self.indptr = torch.zeros(num_users + 1, dtype=torch.long)
        self.indptr[1:] = torch.cumsum(counts, 0)
        self.num_users = num_users

    def counts(self) -> torch.Tensor:
        return self.indptr[1:] - self.indptr[:-1]

    def row(self, user: int) -> torch.Tensor:
        return self.indices[self.indptr[user] : self.indptr[user + 1]]

    def dense(self, users: torch.Tensor, num_items: int) -> torch.Tensor:
        """Boolean ``[len(users), num_items]`` rows, built without a Python loop."""
        starts, ends = self.indptr[users], self.indptr[users + 1]
        lengths = ends - starts
        out = torch.zeros(len(users), num_items, dtype=torch.bool)
        total = int(lengths.sum())
        if total == 0:
            return out
        rows = torch.repeat_interleave(torch.arange(len(users)), lengths)
        first = torch.cumsum(lengths, 0) - lengths
        pos = torch.arange(total) - torch.repeat_interleave(first, lengths) + torch.repeat_interleave(starts, lengths)
        out[rows, self.indices[pos]] = True
        return out


def merge_csr(a: CSR, b: CSR) -> CSR:
    """Union of two CSRs over the same users (their item lists are disjoint)."""
    users = torch.cat([torch.repeat_interleave(torch.arange(a.num_users), a.counts()), _users_of(b)])
    return CSR(users, torch.cat([a.indices, b.indices]), a.num_users)


def _users_of(c: CSR) -> torch.Tensor:
    return torch.repeat_interleave(torch.arange(c.num_users), c.counts())


class Batch(tuple):
    """A batch built whole by a dataset's ``__getitems__``; `collate` passes it through."""


def collate(samples: Any) -> Any:
    """Collate function of recsys sources: pre-built batches as they are, anything else by default."""
    if isinstance(samples, Batch):
        return tuple(samples)
    return default_collate(samples)


# --------------------------------------------------------------------------- datasets


class TrainPairs(Dataset):
    """Training interactions with sampled negatives: ``x = [user, item, neg_1..neg_n]``, ``y = weight``.

    Negatives are drawn per batch (uniformly, or by popularity ** ``alpha``) from a generator
    seeded by the batch's indices, so a batch is the same whenever it is drawn again; a
    negative that the user interacted with in training is redrawn (up to 20 times: heavy users
    have seen up to half the items).
    """

    def __init__(
        self,
        users: torch.Tensor,
        items: torch.Tensor,
        weights: torch.Tensor,
        num_items: int,
        num_negatives: int,
        seed: int,
        sampling: Literal["uniform", "popularity"] = "uniform",
        popularity: torch.Tensor | None = None,
        alpha: float = 0.75,
    ) -> None:
        self.users, self.items, self.weights = users, items, weights
        self.num_items, self.num_negatives, self.seed = num_items, num_negatives, seed
        self.keys = torch.sort(users * num_items + items).values
        self.probs = None
        if sampling == "popularity" and popularity is not None:
            p = (popularity.double() + 1.0) ** alpha
            self.probs = (p / p.sum()).float()

    def __len__(self) -> int:
        return len(self.users)

    def _sample(self, n: int, g: torch.Generator) -> torch.Tensor:
        shape = (n, self.num_negatives)
        if self.probs is None:
            return torch.randint(self.num_items, shape, generator=g)
        return torch.multinomial(self.probs, n * self.num_negatives, replacement=True, generator=g).view(shape)

    def __getitems__(self, indices: Sequence[int]) -> Batch:
        idx = torch.as_tensor(list(indices), dtype=torch.long)
        users, items = self.users[idx], self.items[idx]
        g = torch.Generator().manual_seed(hash((self.seed, len(idx), int(idx[0]), int(idx[-1]), int(idx.sum()))))
        neg = self._sample(len(idx), g)
        for _ in range(20):  # redraw negatives the user has seen
            keys = users[:, None] * self.num_items + neg
            pos = torch.searchsorted(self.keys, keys).clamp_max(len(self.keys) - 1)
            hit = self.keys[pos] == keys
            if not hit.any():
                break
            neg = torch.where(hit, self._sample(len(idx), g), neg)
        x = torch.cat([users[:, None], items[:, None], neg], 1)
        return Batch((x, self.weights[idx]))

    def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor]:
        x, y = self.__getitems__([i])
        return x[0], y[0]


class EvalUsers(Dataset):
    """Users to evaluate: ``(user, (seen, target))`` with boolean rows over all items."""

    def __init__(self, seen: CSR, target: CSR, num_items: int) -> None:
        self.seen, self.target, self.num_items = seen, target, num_items
        self.users = torch.nonzero(target.counts() > 0).flatten()

    def __len__(self) -> int:
        return len(self.users)

    def __getitems__(self, indices: Sequence[int]) -> Batch:
        users = self.users[torch.as_tensor(list(indices), dtype=torch.long)]
        return Batch((users, (self.seen.dense(users, self.num_items), self.target.dense(users, self.num_items))))

    def __getitem__(self, i: int) -> tuple[torch.Tensor, tuple[torch.Tensor, torch.Tensor]]:
        users, (seen, target) = self.__getitems__([i])
        return users[0], (seen[0], target[0])


class SequenceWindows(Dataset):
    """Training rows of sequential models: ``x`` the items of a window of a user's time-ordered training
    history, ``y`` the item after each (both item + 1, left-padded with 0 to ``length``).

    A history of ``n`` items gives windows ending at ``n``, ``n - length``, ``n - 2 length``, ...: every
    item after the first is the target of exactly one position (each prefix of the history is trained
    on once, its last ``length`` items as context at the window's end, fewer at its start). Users
    with fewer than 2 training items give no row.
    """

    def __init__(self, sequences: Sequence[torch.Tensor], length: int) -> None:
        xs, ys = [], []
        for seq in sequences:
            for end in range(len(seq), 1, -length):
                window = seq[max(0, end - length - 1) : end] + 1
                x, y = torch.zeros(length, dtype=torch.long), torch.zeros(length, dtype=torch.long)
                x[length - len(window) + 1 :] = window[:-1]
                y[length - len(window) + 1 :] = window[1:]
                xs.append(x)
                ys.append(y)
        self.x = torch.stack(xs) if xs else torch.zeros(0, length, dtype=torch.long)
        self.y = torch.stack(ys) if ys else torch.zeros(0, length, dtype=torch.long)

    def __len__(self) -> int:
        return len(self.x)

    def __getitems__(self, indices: Sequence[int]) -> Batch:
        idx = torch.as_tensor(list(indices), dtype=torch.long)
        return Batch((self.x[idx], self.y[idx]))

    def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor]:
        return self.x[i], self.y[i]
