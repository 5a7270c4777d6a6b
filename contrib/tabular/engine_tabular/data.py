"""Tables with numeric and categorical columns.

Both sources end in `Table`: numeric columns are standardised with the
training split's statistics (missing values become the training mean), and each
categorical column is indexed by the categories seen in training, code 0 meaning
missing or unseen. One sample is a float vector: the numeric columns, then the
category codes; ``embedding_mlp`` splits it again using the ``num_numeric`` and
``cardinalities`` facts.
"""

from __future__ import annotations

import csv
import math
from pathlib import Path
from typing import Annotated, Any, Literal

import torch
from annotated_types import Ge, Le, Lt

from engine import ConfigError
from engine.data import ArrayDataset, DataSource, split_indices


def _is_number(value: str) -> bool:
    try:
        return math.isfinite(float(value))
    except ValueError:
        return False


class Table(DataSource):
    """Preprocess raw string columns into tensors (see the module docstring)."""

    def __init__(
        self,
        columns: dict[str, list[str]],
        label: str,
        categorical: list[str] | None,
        numeric: list[str] | None,
        problem: str,
        val_fraction: float,
        test_fraction: float,
        seed: int,
        where: str,
    ) -> None:
        names = list(columns)
        if label not in columns:
            raise ConfigError(
                f"{where}: no label column '{label}'; columns are {', '.join(names) or '(none)'}",
                hint="set data.label to the target column",
            )
        rows = len(columns[label])
        if rows == 0:
            raise ConfigError(f"{where}: no data rows")
        for group in (categorical, numeric):
            missing = [c for c in group or [] if c not in columns or c == label]
            if missing:
                raise ConfigError(
                    f"{where}: no feature column(s) {', '.join(missing)}; columns are {', '.join(names)}",
                    hint="check data.categorical and data.numeric",
                )
        features = [c for c in names if c != label]
        if categorical is None:
            given = set(numeric or [])
            categorical = [
                c for c in features if c not in given and not all(v == "" or _is_number(v) for v in columns[c])
            ]
        if numeric is None:
            numeric = [c for c in features if c not in categorical]
        self.numeric, self.categorical, self.label = list(numeric), list(categorical), label
        if not self.numeric and not self.categorical:
            raise ConfigError(f"{where}: no feature columns besides the label '{label}'")

        labels = columns[label]
        empty = next((i for i, v in enumerate(labels) if v == ""), None)
        if empty is not None:
            raise ConfigError(f"{where}: row {empty + 1} has an empty label")
        if problem == "auto":
            integers = all(_is_number(v) and float(v) == int(float(v)) for v in set(labels))
            problem = "classification" if not all(_is_number(v) for v in labels) or integers else "regression"
        self.problem = problem
        if problem == "classification":
            self.class_names: list[str] | None = sorted(set(labels), key=lambda v: (not _is_number(v), v))
            index = {c: i for i, c in enumerate(self.class_names)}
            self.y = torch.tensor([index[v] for v in labels])
            stratify = self.y if min(torch.bincount(self.y).tolist()) >= 2 else None
        else:
            bad = next((i for i, v in enumerate(labels) if not _is_number(v)), None)
            if bad is not None:
                raise ConfigError(
                    f"{where}: row {bad + 1}: label {labels[bad]!r} is not a number",
                    hint="use data.problem=classification for text labels",
                )
            self.class_names = None
            self.y = torch.tensor([float(v) for v in labels])
            stratify = None
        self.split = split_indices(rows, val_fraction, test_fraction, seed, stratify)
        train = self.split["train"].tolist()

        numbers = torch.empty(rows, len(self.numeric))
        for j, name in enumerate(self.numeric):
            for i, value in enumerate(columns[name]):
                if value == "":
                    numbers[i, j] = math.nan
                elif _is_number(value):
                    numbers[i, j] = float(value)
                else:
                    raise ConfigError(
                        f"{where}: row {i + 1}: numeric column '{name}' holds {value!r}",
                        hint="list it in data.categorical, or fix the value",
                    )
        seen = numbers[train]
        self.mean = torch.nan_to_num(seen.nanmean(0))
        centred = torch.where(seen.isnan(), 0.0, seen - self.mean)
        count = (~seen.isnan()).sum(0).clamp_min(2)
        self.std = ((centred**2).sum(0) / (count - 1)).sqrt().clamp_min(1e-6)
        self.vocab = {name: sorted({columns[name][i] for i in train} - {""}) for name in self.categorical}
        self.x = self.encode({name: columns[name] for name in self.numeric + self.categorical}, where)

    def encode(self, columns: dict[str, list[str]], where: str) -> torch.Tensor:
        """Raw string columns (the feature columns, any order) -> model inputs, shape [rows, in_features]."""
        missing = [c for c in self.numeric + self.categorical if c not in columns]
        if missing:
            raise ConfigError(f"{where}: missing column(s) {', '.join(missing)}")
        rows = len(columns[(self.numeric + self.categorical)[0]])
        numbers = torch.tensor(
            [[float(v) if v != "" else math.nan for v in columns[name]] for name in self.numeric]
        ).reshape(len(self.numeric), rows)
        numbers = (numbers.T - self.mean) / self.std
        numbers = torch.nan_to_num(numbers, nan=0.0)  # missing: the training mean
        codes = torch.empty(rows, len(self.categorical))
        for j, name in enumerate(self.categorical):
            index = {c: k + 1 for k, c in enumerate(self.vocab[name])}  # 0: missing or unseen
            codes[:, j] = torch.tensor([float(index.get(v, 0)) for v in columns[name]])
        return torch.cat([numbers, codes], 1)

    @property
    def facts(self) -> dict[str, Any]:
        width = len(self.numeric) + len(self.categorical)
        facts: dict[str, Any] = {
            "problem": self.problem,
            "in_features": width,
            "input_shape": [width],
            "num_numeric": len(self.numeric),
            "cardinalities": [len(self.vocab[c]) + 1 for c in self.categorical],
            "feature_names": self.numeric + self.categorical,
            "preprocessing": {
                "layout": "numeric columns standardised, then category codes (0 = missing or unseen)",
                "numeric": {c: [float(m), float(s)] for c, m, s in zip(self.numeric, self.mean, self.std, strict=True)},
                "categorical": self.vocab,
            },
        }
        if self.class_names is not None:
            facts.update(num_classes=len(self.class_names), out_features=len(self.class_names))
            facts["class_names"] = list(self.class_names)
        else:
            facts.update(num_classes=None, out_features=1, class_names=None)
        return facts

    def datasets(self) -> dict[str, ArrayDataset]:
        return {name: ArrayDataset(self.x[idx], self.y[idx]) for name, idx in self.split.items()}

    def load_input(self, path: str | Path) -> torch.Tensor:
        """The first row of a CSV file with the feature columns (the label may be absent), preprocessed."""
        columns = _read_csv(Path(path))
        return self.encode(columns, str(path))[0]


def _read_csv(file: Path) -> dict[str, list[str]]:
    if not file.is_file():
        raise ConfigError(f"CSV file not found: {file}", hint="check data.path")
    try:
        with file.open(newline="", encoding="utf-8-sig") as fh:
            reader = csv.reader(fh)
            header = next(reader, None)
            body = list(reader)
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise ConfigError(f"cannot read {file}: {exc}") from None
    if not header:
        raise ConfigError(f"{file} is empty: expected a header row")
    for line, row in enumerate(body, start=2):
        if len(row) != len(header):
            raise ConfigError(f"{file}, line {line}: {len(row)} fields, the header has {len(header)}")
    return {name.strip(): [row[j].strip() for row in body] for j, name in enumerate(header)}


class TabularCSV(Table):
    """A CSV file with a header: numeric and categorical feature columns and a label column.

    Columns holding anything but numbers (or blanks) are categorical unless listed
    in ``numeric``; blanks are missing values.

    Args:
        path: the CSV file.
        label: name of the target column.
        categorical: categorical columns (default: every non-numeric column).
        numeric: numeric columns (default: every other feature column).
        problem: classification, regression, or auto (text or integer labels: classification).
        val_fraction: fraction held out for validation.
        test_fraction: fraction held out for the final test.
        seed: seed of the split.
    """

    def __init__(
        self,
        path: Annotated[str, "existing_path"],
        label: str = "label",
        categorical: list[str] | None = None,
        numeric: list[str] | None = None,
        problem: Literal["auto", "classification", "regression"] = "auto",
        val_fraction: Annotated[float, Ge(0), Lt(1)] = 0.1,
        test_fraction: Annotated[float, Ge(0), Lt(1)] = 0.2,
        seed: Annotated[int, Ge(0), Le(4294967295)] = 0,
    ) -> None:
        file = Path(path).expanduser()
        super().__init__(
            _read_csv(file), label, categorical, numeric, problem, val_fraction, test_fraction, seed, str(file)
        )


class Churn(Table):
    """A seeded customer-churn table: does a customer leave?

    Eight columns (age, tenure_months, monthly_charges, support_calls; plan, region,
    channel, payment) with some values missing. Churn depends on interactions
    (short tenure on the basic plan, support calls by channel, region effects), drawn
    through a logistic link, so even the true model errs: ``bayes_accuracy`` in
    the facts is the accuracy of the true probabilities on the test split.

    Args:
        num_rows: customers in all splits.
        seed: seed of the table and of the split.
        val_fraction: fraction held out for validation.
        test_fraction: fraction held out for the final test.
    """

    def __init__(
        self, num_rows: int = 20000, seed: int = 0, val_fraction: float = 0.1, test_fraction: float = 0.2
    ) -> None:
        if num_rows < 50:
            raise ConfigError(f"data.num_rows must be at least 50, got {num_rows}")
        g = torch.Generator().manual_seed(seed)
        n = num_rows

        def pick(options: list[str], weights: list[float]) -> torch.Tensor:
            return torch.multinomial(torch.tensor(weights), n, replacement=True, generator=g)

        plans, regions = ["basic", "standard", "premium", "family"], [f"region_{i}" for i in range(8)]
        channels, payments = ["web", "store", "phone", "partner"], ["card", "bank", "invoice", "voucher"]
        plan, region = pick(plans, [0.4, 0.3, 0.2, 0.1]), pick(regions, [1.0] * 8)
        channel, payment = pick(channels, [0.4, 0.3, 0.2, 0.1]), pick(payments, [0.4, 0.3, 0.2, 0.1])
        age = 18 + (torch.rand(n, generator=g) * 62).floor()
        tenure = (-24 * torch.rand(n, generator=g).log()).clamp(max=120).floor()
        charges = 20 + 25 * plan + 30 * torch.rand(n, generator=g)
        calls = torch.poisson(torch.full((n,), 1.5), generator=g)
        region_effect = torch.randn(8, generator=g) * 1.6
        channel_calls = torch.tensor([0.4, 1.0, 1.8, 0.8])
        logit = (
            4.0 * ((plan == 0) & (tenure < 12)).float()
            - 0.1 * tenure
            + channel_calls[channel] * calls
            + region_effect[region]
            + 0.06 * (charges - 70)
            - 2.4 * ((payment == 1) & (age > 50)).float()
        )
        p = torch.sigmoid(logit)
        churn = torch.rand(n, generator=g) < p
        self._p = p

        def text(values: torch.Tensor, names: list[str], missing: float = 0.0) -> list[str]:
            out = [names[int(v)] for v in values]
            if missing:
                for i in torch.nonzero(torch.rand(n, generator=g) < missing).flatten().tolist():
                    out[i] = ""
            return out

        def num(values: torch.Tensor, missing: float = 0.0) -> list[str]:
            out = [f"{float(v):g}" for v in values]
            if missing:
                for i in torch.nonzero(torch.rand(n, generator=g) < missing).flatten().tolist():
                    out[i] = ""
            return out

        columns = {
            "age": num(age, 0.02),
            "tenure_months": num(tenure),
            "monthly_charges": num(charges, 0.01),
            "support_calls": num(calls),
            "plan": text(plan, plans),
            "region": text(region, regions, 0.02),
            "channel": text(channel, channels),
            "payment": text(payment, payments),
            "churn": ["yes" if c else "no" for c in churn.tolist()],
        }
        super().__init__(columns, "churn", None, None, "classification", val_fraction, test_fraction, seed, "churn")

    @property
    def facts(self) -> dict[str, Any]:
        facts = super().facts
        test = self.split.get("test")
        if test is not None:
            # class 1 is "yes" (labels sort as no < yes): predict churn when p > 0.5
            best = ((self._p[test] > 0.5).long() == self.y[test]).float().mean()
            facts["bayes_accuracy"] = round(float(best), 4)
        return facts
