"""Quality targets a recipe declares (``Recipe(targets=...)``), checked against a run's metrics (no torch here).

A target is one line, ``METRIC OP BOUND``: the bound is a number, another metric of the same run, or a
number times one (``test/recall@10 >= 0.9 * test/ease_recall@10``).
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from engine._contract.errors import ConfigError

_OPS = {">=": float.__ge__, "<=": float.__le__, ">": float.__gt__, "<": float.__lt__}
_TARGET = re.compile(r"^\s*(\S+)\s*(>=|<=|>|<)\s*(.+?)\s*$")
_NUMBER = r"[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?"
_BOUND = re.compile(rf"^(?:(?P<number>{_NUMBER})|(?:(?P<factor>{_NUMBER})\s*\*\s*)?(?P<metric>[A-Za-z_][^\s*]*))$")


@dataclass(frozen=True)
class Target:
    """``metric op factor * reference`` (``reference`` None: the bound is ``factor`` itself)."""

    metric: str
    op: str
    factor: float
    reference: str | None = None

    def bound(self, metrics: Mapping[str, Any]) -> float | None:
        if self.reference is None:
            return self.factor
        value = _number(metrics.get(self.reference))
        return None if value is None else self.factor * value

    def check(self, metrics: Mapping[str, Any]) -> tuple[bool, float | None, float | None]:
        """(met, the run's value, the bound); a metric the run does not have is not met."""
        value, bound = _number(metrics.get(self.metric)), self.bound(metrics)
        met = value is not None and bound is not None and _OPS[self.op](value, bound)
        return met, value, bound

    @property
    def higher_is_better(self) -> bool:
        return self.op.startswith(">")

    def __str__(self) -> str:
        if self.reference is None:
            return f"{self.metric} {self.op} {self.factor:g}"
        factor = "" if self.factor == 1.0 else f"{self.factor:g} * "
        return f"{self.metric} {self.op} {factor}{self.reference}"


def parse_target(text: str) -> Target:
    """``"test/accuracy >= 0.97"`` -> a `Target`; a ConfigError naming the line otherwise."""
    match = _TARGET.match(text) if isinstance(text, str) else None
    bound = _BOUND.match(match.group(3)) if match else None
    if match is None or bound is None:
        raise ConfigError(
            f"cannot read target {text!r}: expected 'METRIC OP BOUND'",
            hint="e.g. 'test/accuracy >= 0.97', 'test/wer <= 0.05', 'test/recall@10 >= 0.9 * test/ease_recall@10'",
        )
    metric, op = match.group(1), match.group(2)
    if bound.group("number") is not None:
        return Target(metric, op, float(bound.group("number")))
    return Target(metric, op, float(bound.group("factor") or 1.0), bound.group("metric"))


def parse_targets(texts: Any, where: str) -> list[Target]:
    """Every target of a recipe (``where`` names it in an error)."""
    if isinstance(texts, str) or not isinstance(texts, (list, tuple)):
        raise ConfigError(f"{where}: targets must be a list of strings, got {type(texts).__name__}")
    try:
        return [parse_target(t) for t in texts]
    except ConfigError as exc:
        raise ConfigError(f"{where}: {exc.message}", hint=exc.hint) from None


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or math.isnan(value):
        return None
    return float(value)
