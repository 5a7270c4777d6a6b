"""The conformance kit on the plugin: its sections, and the distillation task trained one batch from a teacher."""

from __future__ import annotations

from pathlib import Path
from typing import Any


def test_techniques_conform(engine_check: Any, teacher: Path, tiny: tuple[str, ...]) -> None:
    passed = engine_check("techniques", task_overrides={"techniques.distill": [*tiny, f"task.teacher={teacher}"]})
    assert "task 'techniques.distill' completes fast_dev_run" in passed
