"""The common base of the interaction sources (files, synthetic) and its train/val/test split.

Both sources turn ``(user, item, weight, timestamp)`` interactions into

- a **training** dataset of ``(x, y)`` where ``x = [user, positive item, negative items...]``
  (``LongTensor`` of length ``2 + num_negatives``, negatives sampled per batch) and ``y``
  the interaction's weight;
  With ``sequence_length`` set (sequential models, `engine_recsys.sasrec`), training rows are
  instead each user's time-ordered training items in windows (`SequenceWindows`): every item after
  a user's first is the target of one position;
- **val/test** datasets of users, each yielding ``(user, (seen, target))``: boolean rows over
  all items of what the user saw before (excluded from ranking) and what the user will
  interact with (the held-out items).

Batches are built whole (``__getitems__``, vectorised), not sample by sample.
"""

from __future__ import annotations

from typing import Any, Literal

import torch
from torch.utils.data import Dataset

from engine import ConfigError
from engine.data import DataSource
from engine_recsys.closed_form import interaction_matrix
from engine_recsys.datasets import CSR, EvalUsers, SequenceWindows, TrainPairs, collate, merge_csr

Split = Literal["leave_last_out", "temporal"]


# --------------------------------------------------------------------------- the common source


class InteractionSource(DataSource):
    """Users, items and interactions, split and ready for ranking (the base of both sources)."""

    collate_fn = staticmethod(collate)

    user_ids: list[str]
    item_ids: list[str]
    user_features: torch.Tensor | None = None
    item_features: torch.Tensor | None = None

    def _setup(
        self,
        users: torch.Tensor,
        items: torch.Tensor,
        weights: torch.Tensor,
        times: torch.Tensor,
        split: Split,
        val_fraction: float,
        test_fraction: float,
        num_negatives: int,
        negative_sampling: Literal["uniform", "popularity"],
        seed: int,
        extra_facts: dict[str, Any] | None = None,
        sequence_length: int | None = None,
    ) -> None:
        if num_negatives < 1:
            raise ConfigError(f"num_negatives must be >= 1, got {num_negatives}")
        nu, ni = len(self.user_ids), len(self.item_ids)
        self.num_users, self.num_items = nu, ni
        part = _split(users, times, nu, split, val_fraction, test_fraction)
        tr, va, te = part == 0, part == 1, part == 2
        if not tr.any():
            raise ConfigError(
                "no training interactions left after the split", hint="use more data or smaller fractions"
            )
        self.train = CSR(users[tr], items[tr], nu)
        val = CSR(users[va], items[va], nu)
        test = CSR(users[te], items[te], nu)
        self.train_val = merge_csr(self.train, val)
        self.all = merge_csr(self.train_val, test)
        has_train = self.train.counts() > 0
        # Users never seen in training cannot be ranked for: leave them out of evaluation.
        dropped = int(((val.counts() + test.counts() > 0) & ~has_train).sum())
        val = CSR(users[va & has_train[users]], items[va & has_train[users]], nu)
        test = CSR(users[te & has_train[users]], items[te & has_train[users]], nu)
        self.item_popularity = torch.bincount(items[tr], minlength=ni).float()
        self._train = self._pairs = TrainPairs(
            users[tr], items[tr], weights[tr].float(), ni, num_negatives, seed, negative_sampling, self.item_popularity
        )
        # each user's interactions in time order (ties: file order), as the split ordered them
        order = torch.argsort(times, stable=True)
        order = order[torch.argsort(users[order], stable=True)]
        self._seq_items, self._seq_part = items[order], part[order]
        self._seq_starts = torch.cumsum(torch.bincount(users, minlength=nu), 0) - torch.bincount(users, minlength=nu)
        self._seq_counts = torch.bincount(users, minlength=nu)
        self.sequence_length = sequence_length
        if sequence_length is not None:
            if sequence_length < 2:
                raise ConfigError(f"data.sequence_length must be at least 2, got {sequence_length}")
            self._train = SequenceWindows([self._sequence(u, 0) for u in range(nu)], sequence_length)
        self._val = EvalUsers(self.train, val, ni)
        self._test = EvalUsers(self.train_val, test, ni)
        self._facts: dict[str, Any] = {
            "num_users": nu,
            "num_items": ni,
            "num_interactions": len(users),
            "num_train": int(tr.sum()),
            "num_val_users": len(self._val),
            "num_test_users": len(self._test),
            "split": split,
            "density": round(len(users) / max(nu * ni, 1), 6),
            "user_feature_dim": 0 if self.user_features is None else int(self.user_features.shape[1]),
            "item_feature_dim": 0 if self.item_features is None else int(self.item_features.shape[1]),
            "cold_users_dropped_from_eval": dropped,
            **(extra_facts or {}),
        }

    @property
    def facts(self) -> dict[str, Any]:
        return dict(self._facts)

    def datasets(self) -> dict[str, Dataset]:
        out: dict[str, Dataset] = {"train": self._train}
        if len(self._val):
            out["val"] = self._val
        if len(self._test):
            out["test"] = self._test
        return out

    def _sequence(self, user: int, upto: int) -> torch.Tensor:
        """The user's items in time order, of parts 0 (train) to ``upto`` (1: val, 2: test)."""
        a = int(self._seq_starts[user])
        b = a + int(self._seq_counts[user])
        return self._seq_items[a:b][self._seq_part[a:b] <= upto]

    def history(self, users: torch.Tensor, split: str = "all", length: int | None = None) -> torch.Tensor:
        """``[len(users), length]`` time-ordered histories (item + 1, left-padded with 0) of what each user
        interacted with before ``split``'s held-out item: ``val`` (training items), ``test`` (training and
        validation items) or ``all`` (every item, for recommending)."""
        upto = {"val": 0, "test": 1, "all": 2}[split]
        length = length or self.sequence_length or 50
        out = torch.zeros(len(users), length, dtype=torch.long)
        for row, u in enumerate(users.tolist()):
            seq = self._sequence(u, upto)[-length:]
            if len(seq):
                out[row, length - len(seq) :] = seq + 1
        return out

    def seen_matrix(self, split: str) -> torch.Tensor:
        """Sparse CSR ``[users, items]`` of what users saw before ``split``'s held-out item (val: training,
        test: training and validation items), weights 1."""
        seen = (self._val if split == "val" else self._test).seen
        users = torch.repeat_interleave(torch.arange(self.num_users), seen.counts())
        return interaction_matrix(users, seen.indices, None, self.num_users, self.num_items)

    def interaction_matrix(self) -> torch.Tensor:
        """The training interactions: sparse CSR ``[num_users, num_items]`` float32, values their weights."""
        if getattr(self, "_matrix", None) is None:
            t = self._pairs
            self._matrix = interaction_matrix(t.users, t.items, t.weights, self.num_users, self.num_items)
        return self._matrix

    # lookups used by `engine recommend`
    def user_index(self, user_id: str) -> int:
        if not hasattr(self, "_user_lookup"):
            self._user_lookup = {u: i for i, u in enumerate(self.user_ids)}
        return self._user_lookup[str(user_id)]

    def item_index(self, item_id: str) -> int:
        if not hasattr(self, "_item_lookup"):
            self._item_lookup = {v: i for i, v in enumerate(self.item_ids)}
        return self._item_lookup[str(item_id)]


def _split(
    users: torch.Tensor, times: torch.Tensor, num_users: int, split: Split, val_fraction: float, test_fraction: float
) -> torch.Tensor:
    """0 train, 1 val, 2 test per interaction."""
    n = len(users)
    part = torch.zeros(n, dtype=torch.long)
    if split == "leave_last_out":
        # Each user's last interaction (by time, then file order) is test, the one before val;
        # users with fewer than 3 (2) interactions give nothing to val (test).
        order = torch.argsort(times, stable=True)
        order = order[torch.argsort(users[order], stable=True)]
        counts = torch.bincount(users, minlength=num_users)
        starts = torch.cumsum(counts, 0) - counts
        rank = torch.arange(n) - starts[users[order]]
        c = counts[users[order]]
        part[order[(rank == c - 1) & (c >= 2)]] = 2
        part[order[(rank == c - 2) & (c >= 3)]] = 1
        return part
    if split == "temporal":
        if not (0 <= val_fraction < 1 and 0 <= test_fraction < 1 and val_fraction + test_fraction < 1):
            raise ConfigError(
                f"val_fraction ({val_fraction}) and test_fraction ({test_fraction}) must be in [0, 1) and sum below 1"
            )
        order = torch.argsort(times, stable=True)
        n_test, n_val = round(n * test_fraction), round(n * val_fraction)
        part[order[n - n_test :]] = 2
        part[order[n - n_test - n_val : n - n_test]] = 1
        return part
    raise ConfigError(f"unknown split '{split}'", hint="choose leave_last_out or temporal")
