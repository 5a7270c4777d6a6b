"""Built-in data sources: seeded synthetic data and local CSV tables."""

from __future__ import annotations

import csv
import math
from pathlib import Path
from typing import Annotated, Any, Literal

import torch
from annotated_types import Ge, Le, Lt

from engine._contract.errors import ConfigError, did_you_mean
from engine._run.data import ArrayDataset, DataSource, split_indices

Fraction = Annotated[float, Ge(0), Lt(1)]  # of the samples, held out
Seed = Annotated[int, Ge(0), Le(4294967295)]  # what numpy and Lightning accept


class _Table(DataSource):
    """Feature vectors with targets, split and standardised on the training part."""

    x: torch.Tensor
    y: torch.Tensor
    class_names: list[str] | None
    feature_names: list[str]
    label_names: list[str] | None = None  # the label columns of a multi-label table

    def _prepare(self, val_fraction: float, test_fraction: float, seed: int, standardize: bool) -> None:
        stratify = self.y if self.class_names is not None else None
        self._idx = split_indices(len(self.x), val_fraction, test_fraction, seed, stratify)
        train, n = self.x[self._idx["train"]], self.x.shape[1]
        self.mean = train.mean(0) if standardize else torch.zeros(n)
        self.std = train.std(0).clamp_min(1e-6) if standardize else torch.ones(n)
        self.x = (self.x - self.mean) / self.std

    @property
    def facts(self) -> dict[str, Any]:
        n = self.x.shape[1]
        facts: dict[str, Any] = {"in_features": n, "input_shape": [n], "feature_names": self.feature_names}
        names = self.label_names if self.label_names is not None else self.class_names
        if names is not None:
            problem = "multilabel" if self.label_names is not None else "classification"
            facts.update(problem=problem, num_classes=len(names), out_features=len(names), class_names=list(names))
        else:
            facts.update(problem="regression", out_features=1 if self.y.dim() == 1 else math.prod(self.y.shape[1:]))
        facts["preprocessing"] = {"mean": self.mean.tolist(), "std": self.std.tolist()}
        return facts

    def datasets(self) -> dict[str, ArrayDataset]:
        return {k: ArrayDataset(self.x[i], self.y[i]) for k, i in self._idx.items()}


class Synthetic(_Table):
    """Seeded synthetic classification: each class a mixture of Gaussian clusters in a random subspace.

    Args:
        num_samples: total number of samples (all splits).
        num_features: dimension of each sample.
        num_classes: number of classes.
        clusters_per_class: Gaussian clusters making up each class.
        class_sep: distance scale between cluster centres; smaller is harder.
        informative: dimensions carrying signal (the rest is noise).
        seed: seed of the data and of the split.
        val_fraction: fraction held out for validation.
        test_fraction: fraction held out for the final test.
    """

    def __init__(
        self,
        num_samples: Annotated[int, Ge(4)] = 2000,
        num_features: Annotated[int, Ge(1)] = 16,
        num_classes: Annotated[int, Ge(2)] = 4,
        clusters_per_class: Annotated[int, Ge(1)] = 2,
        class_sep: Annotated[float, Ge(0)] = 1.5,
        informative: Annotated[int, Ge(1)] = 8,
        seed: Seed = 0,
        val_fraction: Fraction = 0.1,
        test_fraction: Fraction = 0.2,
    ) -> None:
        if num_classes < 2 or num_samples < 2 * num_classes or num_features < 1:
            raise ConfigError("synthetic data needs num_classes >= 2, num_features >= 1, num_samples >= 2*num_classes")
        g = torch.Generator().manual_seed(seed)
        k = min(informative, num_features)
        centres = torch.randn(num_classes, clusters_per_class, k, generator=g) * class_sep
        y = torch.arange(num_samples) % num_classes
        which = torch.randint(clusters_per_class, (num_samples,), generator=g)
        signal = centres[y, which] + torch.randn(num_samples, k, generator=g)
        noise = torch.randn(num_samples, num_features - k, generator=g)
        rotation, _ = torch.linalg.qr(torch.randn(num_features, num_features, generator=g))
        self.x = torch.cat([signal, noise], 1) @ rotation
        self.y = y
        self.class_names = [f"class_{i}" for i in range(num_classes)]
        self.feature_names = [f"x{i}" for i in range(num_features)]
        self._prepare(val_fraction, test_fraction, seed, standardize=True)


class CSVTable(_Table):
    """A local CSV file: one row per sample, numeric feature columns and a label column.

    Args:
        path: the CSV file (with a header row).
        label: the target column, or a list of them (0/1 columns: multilabel; numbers: several regression targets).
        features: feature columns (default: every column that is not a label).
        problem: classification, multilabel, regression, or auto (one column of text or few distinct
            integers: classification; several 0/1 columns: multilabel).
        val_fraction: fraction held out for validation.
        test_fraction: fraction held out for the final test.
        seed: seed of the split.
        standardize: scale features to zero mean, unit variance (statistics of the training split).
    """

    def __init__(
        self,
        path: Annotated[str, "existing_path"],
        label: str | list[str] = "label",
        features: list[str] | None = None,
        problem: Literal["auto", "classification", "multilabel", "regression"] = "auto",
        val_fraction: Fraction = 0.1,
        test_fraction: Fraction = 0.2,
        seed: Seed = 0,
        standardize: bool = True,
    ) -> None:
        file = Path(path).expanduser()
        if not file.is_file():
            raise ConfigError(f"CSV file not found: {file}", hint="check data.path")
        with file.open(newline="", encoding="utf-8-sig") as fh:
            reader = csv.DictReader(fh)
            columns = reader.fieldnames or []
            rows = list(reader)
        labels = [label] if isinstance(label, str) else list(label)
        absent = [c for c in labels if c not in columns]
        if absent:
            raise ConfigError(
                f"{file}: no label column {', '.join(repr(c) for c in absent)}; "
                f"columns are {', '.join(columns) or '(none)'}",
                hint="set data.label to the target column (or a list of them)",
            )
        features = features or [c for c in columns if c not in labels]
        missing = [c for c in features if c not in columns]
        if missing:
            raise ConfigError(f"{file}: no column(s) {', '.join(missing)}; columns are {', '.join(columns)}")
        if not rows:
            raise ConfigError(f"{file}: no data rows")
        x = _numbers(file, rows, features, "leave the column out with data.features")
        for r, row in enumerate(rows):
            if any(row[c] is None or row[c] == "" for c in labels):
                raise ConfigError(f"{file}, line {r + 2}: empty label")
        self.class_names = None
        if len(labels) > 1:
            if problem == "classification":
                raise ConfigError(
                    f"{file}: classification takes one label column, not {len(labels)}",
                    hint="use problem=multilabel for 0/1 columns, or problem=regression",
                )
            self.y = _numbers(file, rows, labels, "a multi-label or multi-target table has numeric labels")
            binary = bool(((self.y == 0) | (self.y == 1)).all())
            if problem == "multilabel" and not binary:
                raise ConfigError(f"{file}: multilabel columns {', '.join(labels)} must hold only 0 and 1")
            if problem == "multilabel" or (problem == "auto" and binary):
                self.label_names = labels
        else:
            values = [row[labels[0]] for row in rows]
            if problem == "multilabel":
                raise ConfigError(f"{file}: multilabel needs several 0/1 label columns (data.label=[a,b,...])")
            if problem == "auto":
                problem = "classification" if _looks_categorical(values) else "regression"
            if problem == "classification":
                self.class_names = sorted(set(values), key=_natural)
                index = {c: i for i, c in enumerate(self.class_names)}
                self.y = torch.tensor([index[v] for v in values])
            else:
                self.y = _numbers(file, rows, labels, "use problem=classification for text labels")[:, 0]
        self.x, self.feature_names = x, list(features)
        self._rows, self._file = rows, file
        self._prepare(val_fraction, test_fraction, seed, standardize)

    def groups(self, column: str) -> dict[str, list[str]]:
        """Each split's samples' values of ``column`` (cross-validation ``--group-by``)."""
        if column not in self._rows[0]:
            raise ConfigError(
                f"--group-by {column}: {self._file} has no such column{did_you_mean(column, self._rows[0])}",
                hint=f"columns: {', '.join(self._rows[0])}",
            )
        return {split: [self._rows[int(i)][column] for i in idx] for split, idx in self._idx.items()}


def _numbers(file: Path, rows: list[dict[str, str]], columns: list[str], hint: str) -> torch.Tensor:
    """The ``columns`` of ``rows`` as a float tensor ``[rows, columns]``; the first cell that is no number is named."""
    out = torch.empty(len(rows), len(columns))
    for r, row in enumerate(rows):
        for c, name in enumerate(columns):
            try:
                out[r, c] = float(row[name])
            except (TypeError, ValueError):
                raise ConfigError(
                    f"{file}, line {r + 2}: column '{name}' is not a number: {row[name][:60]!r}",
                    hint=f"fix the value, or {hint}",
                ) from None
    return out


def _natural(v: str) -> tuple[int, float | str]:
    try:
        return (0, float(v))
    except ValueError:
        return (1, v)


def _looks_categorical(labels: list[str]) -> bool:
    values = set(labels)
    try:
        numbers = [float(v) for v in values]
    except ValueError:
        return True
    return all(math.isfinite(n) and n == int(n) for n in numbers) and len(values) <= 50
