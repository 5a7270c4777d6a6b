"""Knowledge distillation: a student learns from a teacher run and the labels."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import torch

import engine
from engine import ConfigError
from engine.runs import load_checkpoint


def test_the_distillation_term() -> None:
    """Zero when the student's outputs equal the teacher's, positive otherwise (no training: fast)."""
    from engine_techniques.distill import DistillTask

    model = engine.create("model", "mlp", in_features=6, out_features=3, hidden=[8])
    task = DistillTask(model, None, engine.create("optimizer", "adamw"), teacher="unused", num_classes=3)
    logits = torch.randn(5, 3)
    assert task.distillation_loss(logits, logits).abs() < 1e-6
    assert task.distillation_loss(logits, logits.flip(0)) > 0
    with pytest.raises(ConfigError, match=r"task\.temperature must be > 0"):
        DistillTask(model, None, engine.create("optimizer", "adamw"), teacher="unused", temperature=0)


def test_distill_trains_student_from_teacher(tmp_path: Path, teacher: Path, tiny_train: Any) -> None:
    result = tiny_train(tmp_path, "student", "task=distill", f"task.teacher={teacher}", "model.hidden=[8]")
    assert result.summary["status"] == "completed"
    metrics = result.summary["metrics"]
    assert metrics["train/kd_loss"] > 0 and 0 <= metrics["test/accuracy"] <= 1
    state = load_checkpoint(result.run_dir / "checkpoints" / "best.ckpt")["state_dict"]
    assert all(k.startswith(("model.", "val_metrics", "test_metrics", "loss")) for k in state)  # no teacher inside
    run = engine.open_run(result.run_dir)
    assert run.config["task"]["name"] == "techniques.distill"
    student = run.task()
    teacher_params = sum(p.numel() for p in engine.open_run(teacher).model().parameters())
    assert sum(p.numel() for p in student.model.parameters()) < teacher_params
    # A run directory written when the task was the core's still opens (the old name is an alias).
    config = result.run_dir / "config.yaml"
    config.write_text(config.read_text().replace("name: techniques.distill", "name: core.distill"))
    engine.get_registry(fresh=True)
    old = engine.open_run(result.run_dir).task()
    assert type(old).__name__ == "DistillTask" and torch.equal(old.model.net[1].weight, student.model.net[1].weight)


def test_distill_refuses_a_teacher_of_other_classes(tmp_path: Path, teacher: Path, tiny_train: Any) -> None:
    with pytest.raises(ConfigError, match="trained on other data: its num_classes is 3"):
        tiny_train(tmp_path, "bad", "task=distill", f"task.teacher={teacher}", "data.num_classes=4")
