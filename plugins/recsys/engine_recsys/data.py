"""Interaction data: files (CSV, MovieLens, Parquet) and a seeded synthetic generator.

Both sources turn ``(user, item, weight, timestamp)`` interactions into

- a **training** dataset of ``(x, y)`` where ``x = [user, positive item, negative items...]``
  (``LongTensor`` of length ``2 + num_negatives``, negatives sampled per batch) and ``y``
  the interaction's weight;
- **val/test** datasets of users, each yielding ``(user, (seen, target))``: boolean rows over
  all items of what the user saw before (excluded from ranking) and what the user will
  interact with (the held-out items).

Batches are built whole (``__getitems__``, vectorised), not sample by sample.
"""

from __future__ import annotations

import csv
import logging
import math
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path
from typing import Any, Literal

import torch
from torch.utils.data import Dataset, default_collate

from engine.data import DataSource
from engine.errors import ConfigError

#: Notes about the data (duplicates removed ...): one line on stderr, no traceback.
log = logging.getLogger("engine.recsys")

Split = Literal["leave_last_out", "temporal"]


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
    """A batch built whole by a dataset's ``__getitems__``; :func:`collate` passes it through."""


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
    negative that the user interacted with in training is redrawn (twice at most).
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
        for _ in range(2):  # redraw negatives the user has seen
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
        self._train = TrainPairs(
            users[tr], items[tr], weights[tr].float(), ni, num_negatives, seed, negative_sampling, self.item_popularity
        )
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


# --------------------------------------------------------------------------- files

_ALIASES = {
    "user": ("user", "user_id", "userid", "uid", "customer", "customer_id", "visitor_id", "visitorid"),
    "item": ("item", "item_id", "itemid", "iid", "movie", "movie_id", "movieid", "product", "product_id", "track_id"),
    "rating": ("rating", "weight", "score", "value", "count", "plays", "ratings"),
    "timestamp": ("timestamp", "time", "ts", "date", "datetime", "event_time", "created_at"),
}
_POSITIONAL = ("user", "item", "rating", "timestamp")


def _read_table(file: Path, sep: str | None) -> tuple[list[str], list[list[str]], bool]:
    """Columns, rows (as text) and whether the file had a header."""
    if file.suffix.lower() in (".parquet", ".pq"):
        try:
            import pyarrow.parquet as pq
        except ImportError:
            raise ConfigError(
                f"{file}: reading Parquet needs pyarrow", hint="pip install 'engine-recsys[parquet]'"
            ) from None
        table = pq.read_table(file).to_pydict()
        columns = list(table)
        rows = [[("" if v is None else str(v)) for v in row] for row in zip(*table.values(), strict=True)]
        return columns, rows, True
    with file.open(newline="", encoding="utf-8-sig") as fh:
        text = fh.read()
    lines = [ln for ln in text.splitlines() if ln.strip()]
    if not lines:
        raise ConfigError(f"{file}: the file is empty", hint="point data.path at a file of interactions")
    if sep is None:
        first = lines[0]
        sep = next((s for s in ("::", "\t", ",", ";", "|") if s in first), ",")
    if len(sep) > 1:  # MovieLens 1M "::": csv wants one character
        lines = [ln.replace(sep, "\x1f") for ln in lines]
        sep = "\x1f"
    rows = [[c.strip() for c in r] for r in csv.reader(lines, delimiter=sep)]
    header = rows[0]
    if all(_is_number(c) for c in header):  # MovieLens u.data / ratings.dat: no header
        columns = list(_POSITIONAL[: len(header)]) + [f"col{i}" for i in range(len(_POSITIONAL), len(header))]
        return columns, rows, False
    return header, rows[1:], True


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def _pick(columns: list[str], role: str, chosen: str | None, file: Path, required: bool) -> int | None:
    if chosen is not None:
        if chosen not in columns:
            raise ConfigError(
                f"{file}: no column '{chosen}' ({role}); columns are {', '.join(columns)}",
                hint=f"set data.{role}_col to one of them",
            )
        return columns.index(chosen)
    lowered = [c.lower().replace(" ", "_") for c in columns]
    for alias in _ALIASES[role]:
        if alias in lowered:
            return lowered.index(alias)
    if required:
        raise ConfigError(
            f"{file}: no {role} column found among {', '.join(columns)}",
            hint=f"name it with data.{role}_col=COLUMN (recognised: {', '.join(_ALIASES[role][:5])}, ...)",
        )
    return None


def _natural_ids(values: list[str]) -> tuple[list[str], dict[str, int]]:
    unique = set(values)
    try:
        ordered = sorted(unique, key=lambda s: (float(s), s))
    except ValueError:
        ordered = sorted(unique)
    return ordered, {v: i for i, v in enumerate(ordered)}


def _parse_time(text: str, file: Path, line: int) -> float:
    try:
        return float(text)
    except ValueError:
        pass
    try:
        return datetime.fromisoformat(text).timestamp()
    except ValueError:
        raise ConfigError(
            f"{file}, row {line}: timestamp {text!r} is neither a number nor an ISO date",
            hint="fix the value, or name another column with data.timestamp_col",
        ) from None


class Interactions(InteractionSource):
    """Interactions from a file: CSV/TSV (header or not), MovieLens u.data / ratings.dat / ratings.csv, Parquet.

    Columns are found by name (user/userId/user_id..., item/movieId/item_id..., rating/weight...,
    timestamp/time...) or set explicitly; a file without a header (MovieLens ``u.data``:
    tab-separated user, item, rating, timestamp) is read positionally. Only user and item are
    required; without timestamps, file order counts as time.

    Args:
        path: the interactions file (.csv, .tsv, .data, .dat, .parquet).
        user_col: name of the user column (default: recognised by name).
        item_col: name of the item column (default: recognised by name).
        rating_col: name of the rating/weight column (default: recognised by name; optional).
        timestamp_col: name of the timestamp column (default: recognised by name; optional).
        sep: field separator (default: sniffed from the first line: tab, comma, ::, ; or |).
        min_rating: keep only interactions rated at least this (e.g. 4 for MovieLens); None keeps all.
        weighted: use the rating as the training weight of each interaction (default: all 1).
        duplicates: repeated (user, item) pairs: keep the last (by time) with a note, or error.
        split: leave_last_out (each user's last item is test, the one before val) or temporal.
        val_fraction: temporal split only: fraction of the latest interactions before test used as val.
        test_fraction: temporal split only: fraction of the latest interactions used as test.
        num_negatives: negative items sampled per training interaction.
        negative_sampling: uniform, or popularity (proportional to count ** 0.75).
        seed: seed of the negatives.
    """

    def __init__(
        self,
        path: str,
        user_col: str | None = None,
        item_col: str | None = None,
        rating_col: str | None = None,
        timestamp_col: str | None = None,
        sep: str | None = None,
        min_rating: float | None = None,
        weighted: bool = False,
        duplicates: Literal["keep_last", "error"] = "keep_last",
        split: Literal["leave_last_out", "temporal"] = "leave_last_out",
        val_fraction: float = 0.1,
        test_fraction: float = 0.1,
        num_negatives: int = 1,
        negative_sampling: Literal["uniform", "popularity"] = "uniform",
        seed: int = 0,
    ) -> None:
        file = Path(path).expanduser()
        if not file.is_file():
            raise ConfigError(f"interactions file not found: {file}", hint="check data.path")
        if file.stat().st_size == 0:
            raise ConfigError(f"{file}: the file is empty", hint="point data.path at a file of interactions")
        columns, rows, _ = _read_table(file, sep)
        ui = _pick(columns, "user", user_col, file, required=True)
        ii = _pick(columns, "item", item_col, file, required=True)
        ri = _pick(columns, "rating", rating_col, file, required=min_rating is not None or weighted)
        ti = _pick(columns, "timestamp", timestamp_col, file, required=split == "temporal")
        if not rows:
            raise ConfigError(f"{file}: no interactions (only a header)", hint="point data.path at a file with data")
        width = len(columns)
        ratings: list[float] = []
        times: list[float] = []
        for n, row in enumerate(rows):
            if len(row) < width:
                raise ConfigError(f"{file}, row {n + 1}: {len(row)} fields, expected {width} ({', '.join(columns)})")
            if ri is not None:
                try:
                    ratings.append(float(row[ri]))
                except ValueError:
                    raise ConfigError(
                        f"{file}, row {n + 1}: rating {row[ri]!r} is not a number",
                        hint="fix the value, or name another column with data.rating_col",
                    ) from None
            times.append(_parse_time(row[ti], file, n + 1) if ti is not None else float(n))
        keep = list(range(len(rows)))
        if min_rating is not None:
            keep = [n for n in keep if ratings[n] >= min_rating]
            if not keep:
                raise ConfigError(f"{file}: no interaction has a rating >= {min_rating}", hint="lower data.min_rating")
        user_raw = [rows[n][ui] for n in keep]
        item_raw = [rows[n][ii] for n in keep]
        if any(not s for s in user_raw) or any(not s for s in item_raw):
            raise ConfigError(f"{file}: some rows have an empty user or item id")
        self.user_ids, umap = _natural_ids(user_raw)
        self.item_ids, imap = _natural_ids(item_raw)
        users = torch.tensor([umap[s] for s in user_raw], dtype=torch.long)
        items = torch.tensor([imap[s] for s in item_raw], dtype=torch.long)
        t = torch.tensor([times[n] for n in keep], dtype=torch.float64)
        w = torch.tensor([ratings[n] for n in keep]) if (weighted and ri is not None) else torch.ones(len(keep))
        users, items, w, t, removed = _deduplicate(
            users, items, w, t, len(self.item_ids), duplicates, file, (self.user_ids, self.item_ids)
        )
        self._setup(
            users,
            items,
            w,
            t,
            split,
            val_fraction,
            test_fraction,
            num_negatives,
            negative_sampling,
            seed,
            extra_facts={"duplicates_removed": removed, "file_rows": len(rows)},
        )


def _deduplicate(
    users: torch.Tensor,
    items: torch.Tensor,
    weights: torch.Tensor,
    times: torch.Tensor,
    num_items: int,
    mode: str,
    file: Path,
    ids: tuple[list[str], list[str]],
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor, int]:
    keys = users * num_items + items
    order = torch.argsort(times, stable=True)
    order = order[torch.argsort(keys[order], stable=True)]
    k = keys[order]
    last = torch.ones(len(k), dtype=torch.bool)
    last[:-1] = k[1:] != k[:-1]
    removed = int((~last).sum())
    if removed == 0:
        return users, items, weights, times, 0
    if mode == "error":
        dup = int(order[~last][0])
        raise ConfigError(
            f"{file}: {removed} duplicate (user, item) interaction(s), e.g. user {ids[0][int(users[dup])]!r}, "
            f"item {ids[1][int(items[dup])]!r}",
            hint="remove them, or set data.duplicates=keep_last to keep each pair's latest interaction",
        )
    note = f"{file.name}: {removed} duplicate (user, item) interaction(s) removed, keeping each pair's latest"
    log.warning(note)
    keep = torch.sort(order[last]).values  # back to file order
    return users[keep], items[keep], weights[keep], times[keep], removed
