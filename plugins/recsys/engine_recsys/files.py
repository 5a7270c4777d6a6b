"""Interactions read from files: CSV/TSV (header or not), MovieLens layouts, Parquet."""

from __future__ import annotations

import csv
import logging
from datetime import datetime
from pathlib import Path
from typing import Annotated, Literal

import torch
from annotated_types import Ge, Le, Lt

from engine import ConfigError
from engine_recsys.source import InteractionSource

#: Notes about the data (duplicates removed ...): one line on stderr, no traceback.
log = logging.getLogger("engine.recsys")


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
        sequence_length: training rows are windows of this many time-ordered items per user (sequential
            models: recsys.sasrec fills it from its max_length); None: (user, item, negatives) rows.
    """

    def __init__(
        self,
        path: Annotated[str, "existing_path"],
        user_col: str | None = None,
        item_col: str | None = None,
        rating_col: str | None = None,
        timestamp_col: str | None = None,
        sep: str | None = None,
        min_rating: float | None = None,
        weighted: bool = False,
        duplicates: Literal["keep_last", "error"] = "keep_last",
        split: Literal["leave_last_out", "temporal"] = "leave_last_out",
        val_fraction: Annotated[float, Ge(0), Lt(1)] = 0.1,
        test_fraction: Annotated[float, Ge(0), Lt(1)] = 0.1,
        num_negatives: Annotated[int, Ge(0)] = 1,
        negative_sampling: Literal["uniform", "popularity"] = "uniform",
        seed: Annotated[int, Ge(0), Le(4294967295)] = 0,
        sequence_length: Annotated[int, Ge(2)] | None = None,
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
            sequence_length=sequence_length,
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
