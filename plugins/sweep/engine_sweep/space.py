"""The search space: ``KEY=EXPR`` strings parsed into dimensions Optuna and Ray Tune both sample.

Expressions (the same in ``--space`` and in a sweep YAML's ``space:`` mapping)::

    optimizer.lr=loguniform(1e-4,1e-1)      a float, uniform in log space (low > 0)
    model.dropout=uniform(0,0.5)            a float, uniform
    trainer.max_epochs=int(2,8)             an integer in [low, high]; int(2,8,2) steps by 2
    model.hidden=choice([32],[64,64])       one of the values, each written as in an override
    optimizer=choice(adamw,sgd)             components too

Each choice option is parsed with the engine's override grammar (``[64,64]`` is a list, ``3e-4``
a float, ``null`` None) and passed to the trial as the text it was written with, so a trial's
override is exactly what a user would type. Nothing here imports torch, Optuna or Ray at import
time: parsing and validation run before any trial, in milliseconds.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from engine import ConfigError, did_you_mean

KINDS = ("uniform", "loguniform", "int", "choice")
SYNTAX = "uniform(a,b), loguniform(a,b), int(a,b[,step]) or choice(v1,v2,…)"
_CALL = re.compile(r"^\s*([A-Za-z_][A-Za-z_0-9]*)\s*\((.*)\)\s*$", re.S)
_KEY = re.compile(r"^[A-Za-z_][A-Za-z_0-9-]*(\[-?\d+\])?(\.[A-Za-z_][A-Za-z_0-9-]*(\[-?\d+\])?)*$")
_PLAIN = re.compile(r"^[A-Za-z0-9_.\-/:]+$")


@dataclass(frozen=True)
class Dimension:
    """One searched key: its kind and bounds, or its options (the text written and the value it means)."""

    key: str
    expr: str
    kind: str
    low: float = 0.0
    high: float = 0.0
    step: int = 1
    options: tuple[tuple[str, Any], ...] = ()

    # ------------------------------------------------------------------ values for the samplers

    @property
    def native_labels(self) -> bool:
        """A choice whose options are all scalars is sampled as the values themselves, else as their text."""
        return all(v is None or isinstance(v, (bool, int, float, str)) for _, v in self.options)

    def labels(self) -> list[Any]:
        """The categories Optuna samples for a choice."""
        return [v if self.native_labels else text for text, v in self.options]

    def distribution(self) -> Any:
        """This dimension as an ``optuna.distributions`` object (imports Optuna)."""
        from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution

        if self.kind == "uniform":
            return FloatDistribution(self.low, self.high)
        if self.kind == "loguniform":
            return FloatDistribution(self.low, self.high, log=True)
        if self.kind == "int":
            return IntDistribution(int(self.low), int(self.high), step=self.step)
        return CategoricalDistribution(self.labels())

    def grid(self, points: int) -> list[Any]:
        """Values for a grid search: every option or integer, else ``points`` evenly spaced (log-spaced) floats."""
        if self.kind == "choice":
            return self.labels()
        if self.kind == "int":
            values = list(range(int(self.low), int(self.high) + 1, self.step))
            if len(values) <= points:
                return values
            picks = [values[round(i * (len(values) - 1) / (points - 1))] for i in range(points)] if points > 1 else []
            return sorted(set(picks)) or [values[0]]
        if points == 1:
            return [math.sqrt(self.low * self.high) if self.kind == "loguniform" else (self.low + self.high) / 2]
        if self.kind == "loguniform":
            a, b = math.log(self.low), math.log(self.high)
            inner = [math.exp(a + i * (b - a) / (points - 1)) for i in range(1, points - 1)]
        else:
            inner = [self.low + i * (self.high - self.low) / (points - 1) for i in range(1, points - 1)]
        return [float(self.low), *inner, float(self.high)]  # the bounds exactly: a sampler checks them

    # ------------------------------------------------------------------ values for the trials

    def value(self, sampled: Any) -> Any:
        """What the sampler chose, as the config value the trial gets."""
        if self.kind == "choice":
            for text, v in self.options:
                if sampled == (v if self.native_labels else text) and type(sampled) is type(
                    v if self.native_labels else text
                ):
                    return v
            raise ConfigError(f"--space '{self.key}': {sampled!r} is not one of {self.expr}")
        if self.kind == "int":
            return int(sampled)
        return float(sampled)

    def override(self, sampled: Any) -> str:
        """The ``key=value`` override of a sampled value (a choice keeps the text it was written with)."""
        if self.kind == "choice":
            value = self.value(sampled)
            text = next(t for t, v in self.options if v == value and type(v) is type(value))
            return f"{self.key}={text}"
        return f"{self.key}={format_value(self.value(sampled))}"

    def samples(self) -> list[Any]:
        """Sampler values that reach every corner worth checking before any trial: bounds, every option."""
        if self.kind == "choice":
            return self.labels()
        if self.kind == "int":
            return [int(self.low), int(self.high)]
        return [self.low, self.high]


def format_value(value: Any) -> str:
    """A config value as override text the engine reads back to the same value."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return repr(value)
    if isinstance(value, str):
        return value if _PLAIN.match(value) and _reads_back(value) else json.dumps(value)
    return json.dumps(value)


def _reads_back(text: str) -> bool:
    from engine import parse_override

    try:
        return parse_override(f"value={text}")[1] == text
    except ConfigError:
        return False


def cell(value: Any) -> str:
    """A parameter value for ``results.csv`` and tables."""
    if isinstance(value, float):
        return f"{value:.6g}"
    if isinstance(value, (list, dict, tuple)):
        return json.dumps(value, separators=(",", ":"))
    return format_value(value)


# --------------------------------------------------------------------------- parsing


def split_args(text: str) -> list[str]:
    """``a, [1,2], "x,y"`` -> ``['a', '[1,2]', '"x,y"']``: commas inside brackets or quotes stay."""
    out, depth, quote, start = [], 0, "", 0
    for i, ch in enumerate(text):
        if quote:
            quote = "" if ch == quote and text[i - 1] != "\\" else quote
        elif ch in "'\"":
            quote = ch
        elif ch in "([{":
            depth += 1
        elif ch in ")]}":
            depth -= 1
        elif ch == "," and depth == 0:
            out.append(text[start:i].strip())
            start = i + 1
    out.append(text[start:].strip())
    return out


def _literal(item: str, text: str) -> Any:
    from engine import parse_override

    try:
        return parse_override(f"value={text}")[1]
    except ConfigError:
        raise ConfigError(f"--space '{item}': cannot read the value '{text}'", hint=f"expected {SYNTAX}") from None


def _number(item: str, kind: str, text: str, integer: bool = False) -> float:
    value = _literal(item, text)
    ok = isinstance(value, int) if integer else isinstance(value, (int, float))
    if isinstance(value, bool) or not ok:
        what = "an integer" if integer else "a number"
        raise ConfigError(f"--space '{item}': {kind}() takes {what}, got '{text}'", hint=f"expected {SYNTAX}")
    if not math.isfinite(value):
        raise ConfigError(f"--space '{item}': {kind}() needs finite bounds, got '{text}'")
    return value


def parse_dimension(key: str, expr: Any) -> Dimension:
    """One ``key`` and its expression as a `Dimension`; a one-line ConfigError naming it otherwise."""
    item = f"{key}={expr}"
    if not isinstance(key, str) or not _KEY.match(key):
        raise ConfigError(f"--space '{item}': '{key}' is not a config key", hint="e.g. optimizer.lr or model.hidden")
    if not isinstance(expr, str) or not expr.strip():
        raise ConfigError(f"--space '{item}': empty expression", hint=f"expected {SYNTAX}")
    m = _CALL.match(expr)
    if m is None:
        raise ConfigError(f"--space '{item}': cannot read '{expr}'", hint=f"expected {SYNTAX}")
    kind, inner = m.group(1), m.group(2)
    if kind not in KINDS:
        raise ConfigError(f"--space '{item}': unknown function '{kind}'{did_you_mean(kind, KINDS)}", hint=SYNTAX)
    args = split_args(inner) if inner.strip() else []
    if any(not a for a in args):
        raise ConfigError(f"--space '{item}': an empty argument in '{expr}'", hint=f"expected {SYNTAX}")
    if kind == "choice":
        if not args:
            raise ConfigError(f"--space '{item}': choice() needs at least one value", hint="e.g. choice(32,64)")
        options = tuple((a, _literal(item, a)) for a in args)
        seen: list[Any] = []
        for text, value in options:
            if any(value == s and type(value) is type(s) for s in seen):
                raise ConfigError(f"--space '{item}': choice() lists {text} twice")
            seen.append(value)
        return Dimension(key, expr, kind, options=options)
    wanted = (2, 3) if kind == "int" else (2,)
    if len(args) not in wanted:
        takes = "2 or 3 integers (low, high[, step])" if kind == "int" else "2 numbers (low, high)"
        raise ConfigError(f"--space '{item}': {kind}() takes {takes}, got {len(args)}", hint=f"expected {SYNTAX}")
    low, high = (_number(item, kind, a, integer=kind == "int") for a in args[:2])
    step = int(_number(item, kind, args[2], integer=True)) if len(args) == 3 else 1
    if not low < high:
        raise ConfigError(f"--space '{item}': {kind}() needs low < high, got {args[0]} and {args[1]}")
    if kind == "loguniform" and low <= 0:
        raise ConfigError(f"--space '{item}': loguniform() needs low > 0, got {args[0]}", hint="e.g. 1e-5")
    if step < 1 or (kind == "int" and (high - low) % step):
        raise ConfigError(f"--space '{item}': int() needs a step >= 1 that divides high - low, got {step}")
    return Dimension(key, expr, kind, low=low, high=high, step=step)


def parse_item(item: str) -> tuple[str, str]:
    """``"optimizer.lr=loguniform(1e-4,1e-1)"`` -> ``("optimizer.lr", "loguniform(1e-4,1e-1)")``."""
    key, sep, expr = item.partition("=")
    if not sep or not key.strip():
        raise ConfigError(
            f"--space '{item}': expected KEY=EXPR", hint=f"e.g. --space 'optimizer.lr=loguniform(1e-4,1e-1)'; {SYNTAX}"
        )
    return key.strip(), expr.strip()


def parse_space(space: Mapping[str, Any]) -> dict[str, Dimension]:
    """Every ``key: expression`` of a space, parsed (in the order given)."""
    if not space:
        raise ConfigError("the search space is empty", hint="add --space 'KEY=EXPR' (or a space: mapping with -c)")
    return {key: parse_dimension(key, expr) for key, expr in space.items()}


def ordered(keys: Iterable[str]) -> list[str]:
    """Keys in the order their overrides apply: ``optimizer`` (choosing a component) before ``optimizer.lr``."""
    return sorted(keys, key=lambda k: k.count("."))


def grid_size(dims: Iterable[Dimension], points: int) -> int:
    """Points in the grid over ``dims``."""
    return math.prod(len(d.grid(points)) for d in dims)


def validate_keys(dims: Mapping[str, Dimension], check: Any) -> None:
    """Call ``check(overrides)`` (compose + plan a trial) with every bound and option of every dimension.

    The first sample of every dimension together, then each other sample of one dimension at a
    time: an unknown key (with the engine's did-you-mean), a value of the wrong type or an unknown
    component in a choice is found before any trial starts, named by its ``--space`` item.
    """
    firsts = {key: d.samples()[0] for key, d in dims.items()}
    for key, d in dims.items():
        for sample in d.samples():
            overrides = [dims[k].override(sample if k == key else firsts[k]) for k in ordered(dims)]
            try:
                check(overrides)
            except ConfigError as exc:
                raise ConfigError(f"--space '{key}={d.expr}': {exc.message}", hint=exc.hint) from None
