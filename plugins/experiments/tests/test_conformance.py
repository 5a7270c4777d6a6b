"""The conformance kit on this plugin: its declarations import and expose their parameters."""

from __future__ import annotations

from typing import Any


def test_conformance(engine_check: Any) -> None:
    passed = engine_check("experiments")
    assert "section 'cv' parameters" in passed
