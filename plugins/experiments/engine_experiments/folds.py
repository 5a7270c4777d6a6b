"""Cross-validation folds: dealing a data source's samples into K folds (see `engine_experiments.crossval`).

``engine run … --folds K`` trains K fold runs of one config in a parent directory.

The training and validation splits of the data source are pooled and dealt into K folds: by
class when the data has classes (stratified), by group when ``--group-by COLUMN`` names a
column the source can group its samples by (no group on both sides), at random otherwise —
seeded by the run's seed, so every fold run of one cross-validation sees the same folds. Fold ``k`` validates on
fold ``k`` and trains on the others; the test split is the source's own, untouched. Each fold
is an ordinary run directory (``PARENT/fold-k/``, its config holding ``cv.fold``), so it can
be evaluated, resumed and compared like any run; ``PARENT/folds.json`` holds every metric's
mean, standard deviation (sample, ddof=1) and per-fold values::

    runs/mlp-synthetic-20261201-120000/
      fold-0/ … fold-4/     run directories
      folds.json            {"folds": 5, "metrics": {"test/accuracy": {"mean": …, "std": …, "values": […]}}, …}

A rerun with the same ``run.name`` skips the folds that completed and resumes the others.
The splits are re-dealt in the ``engine_datasets_built`` hook (`deal`), for every run whose
config holds the ``cv`` section: training, and reopening a fold run to evaluate or deploy it.
"""

from __future__ import annotations

import random
import statistics
from collections.abc import Mapping, Sequence
from typing import Any

from engine import ConfigError
from engine.protocols import GroupsSamples, implements

FOLDS_FILE = "folds.json"


# --------------------------------------------------------------------------- dealing samples into folds


def fold_of_each(
    n: int, folds: int, seed: int, targets: Sequence[Any] | None = None, groups: Sequence[Any] | None = None
) -> list[int]:
    """The fold (0 … folds-1) of each of ``n`` pooled samples: grouped, else stratified, else shuffled."""
    rng = random.Random(seed)
    out = [0] * n
    if groups is not None:
        members: dict[Any, list[int]] = {}
        for i, g in enumerate(groups):
            members.setdefault(g, []).append(i)
        if len(members) < folds:
            raise ConfigError(f"--group-by: {len(members)} groups cannot fill {folds} folds", hint="use fewer folds")
        order = sorted(members, key=lambda g: (-len(members[g]), str(g)))
        sizes = [0] * folds
        for g in order:  # largest groups first, each to the smallest fold so far
            k = min(range(folds), key=lambda f: (sizes[f], f))
            for i in members[g]:
                out[i] = k
            sizes[k] += len(members[g])
        return out
    if targets is not None:
        by_class: dict[Any, list[int]] = {}
        for i, t in enumerate(targets):
            by_class.setdefault(t, []).append(i)
        start = 0
        for c in sorted(by_class, key=str):
            idx = by_class[c]
            rng.shuffle(idx)
            for j, i in enumerate(idx):
                out[i] = (start + j) % folds
            start += len(idx)  # the next class continues the deal where this one stopped
        return out
    idx = list(range(n))
    rng.shuffle(idx)
    for j, i in enumerate(idx):
        out[i] = j % folds
    return out


def fold_splits(
    splits: Mapping[str, Any],
    folds: int,
    fold: int,
    seed: int,
    stratify: bool,
    groups: Mapping[str, Sequence[Any]] | None = None,
) -> dict[str, Any]:
    """``{"train", "val", "test"}`` datasets of fold ``fold``: train and val pooled and re-dealt, test kept."""
    from torch.utils.data import ConcatDataset, Subset

    parts = [s for s in ("train", "val") if s in splits and len(splits[s]) > 0]
    pool = ConcatDataset([splits[s] for s in parts])
    n = len(pool)
    if n < folds:
        raise ConfigError(f"{n} training samples cannot make {folds} folds", hint="use fewer folds")
    pooled_groups = None
    if groups is not None:
        pooled_groups = [g for s in parts for g in groups[s]]
        if len(pooled_groups) != n:
            raise ConfigError("the data source's groups do not match its samples")
    targets = [_label(pool[i]) for i in range(n)] if stratify and pooled_groups is None else None
    assigned = fold_of_each(n, folds, seed, targets, pooled_groups)
    out: dict[str, Any] = {
        "train": Subset(pool, [i for i in range(n) if assigned[i] != fold]),
        "val": Subset(pool, [i for i in range(n) if assigned[i] == fold]),
    }
    if "test" in splits:
        out["test"] = splits["test"]
    return out


def deal(splits: Mapping[str, Any], source: Any, cv: Mapping[str, Any], seed: int) -> dict[str, Any]:
    """The splits of the fold ``cv`` names (``{"folds", "fold", "group_by"}``), from the source's own."""
    column = cv.get("group_by")
    groups = None
    if column is not None:
        if not implements(source, GroupsSamples):
            raise ConfigError(
                f"--group-by {column}: the data source {type(source).__name__} cannot group its samples",
                hint="a source groups samples through a groups(column) method (core.csv does)",
            )
        groups = source.groups(column)
    stratify = dict(source.facts).get("problem") == "classification"
    return fold_splits(splits, int(cv["folds"]), int(cv["fold"]), seed, stratify, groups)


def _label(sample: Any) -> Any:
    import torch

    target = sample[1] if isinstance(sample, (list, tuple)) and len(sample) > 1 else None
    if not isinstance(target, torch.Tensor) or target.numel() != 1:
        raise ConfigError(
            "stratified folds need one class label per sample",
            hint="this data yields other targets: run without classes (task.problem=regression) or use --group-by",
        )
    return int(target.item())


# --------------------------------------------------------------------------- figures of the folds


def aggregate(summaries: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Mean, standard deviation (ddof=1) and values of every test metric (and the best checkpoint's val metrics)."""
    keys: set[str] = set()
    for s in summaries:
        keys |= {k for k in {**s.get("metrics", {}), **s.get("best_metrics", {})} if k.startswith(("test/", "val/"))}
    out: dict[str, dict[str, Any]] = {}
    for key in sorted(keys):
        values = [_value(s, key) for s in summaries]
        numbers = [v for v in values if isinstance(v, (int, float))]
        if len(numbers) == len(values):
            std = statistics.stdev(numbers) if len(numbers) > 1 else 0.0
            out[key] = {"mean": statistics.fmean(numbers), "std": std, "values": numbers}
    return out


def _value(summary: dict[str, Any], key: str) -> Any:
    """A test metric (measured on the best checkpoint), else the best checkpoint's val figure, else the final one."""
    best = summary.get("best_metrics", {})
    return best.get(key, summary.get("metrics", {}).get(key))
