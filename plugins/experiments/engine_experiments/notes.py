"""Small pieces of output several commands share (torch-free)."""

from __future__ import annotations

from typing import Any

from engine.console import format_metric


def shown_metric(summary: dict[str, Any]) -> str:
    """``NAME=VALUE`` of a run's primary metric (``-`` without one), for one row of a table."""
    primary = summary.get("primary_metric")
    if isinstance(primary, dict) and isinstance(primary.get("value"), (int, float)):
        return f"{primary['name']}={primary['value']:.4f}"
    metrics = summary.get("metrics") or {}  # runs from before tasks named their primary metric
    key = next((k for k in sorted(metrics) if k.startswith("test/") and k != "test/loss"), None)
    key = key or next((k for k in sorted(metrics) if k.startswith("val/")), None)
    return f"{key}={metrics[key]:.4f}" if key and isinstance(metrics[key], (int, float)) else "-"


def metric_cell(primary: Any) -> str:
    """``NAME=VALUE`` of a primary metric record (``{"name", "value"}``), ``-`` without a value."""
    if isinstance(primary, dict) and isinstance(primary.get("value"), (int, float)):
        return f"{primary['name']}={format_metric(float(primary['value']))}"
    return "-"


def wall(seconds: Any) -> str:
    return f"{seconds:.1f}s" if isinstance(seconds, (int, float)) else "-"


def label(member: str) -> str:
    """How a collection's member is shown after the collection's name: the last part of its name
    (a sweep's ``trials/007``: ``sweep/007``)."""
    return member.rstrip("/").rsplit("/", 1)[-1]
