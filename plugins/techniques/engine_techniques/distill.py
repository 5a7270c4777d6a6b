"""Knowledge distillation (Hinton et al. 2015): a student model learns from a trained teacher run.

::

    engine run task=distill task.teacher=runs/big-cnn model=vision.cnn model.width=8 data=vision.digits

The student is the ``model`` slot (any registered model); the teacher is the trained model of
another run, loaded with `engine.open_run` (best checkpoint), frozen and in eval mode.
The loss is ``alpha * T^2 * KL(softmax(teacher / T) || softmax(student / T)) + (1 - alpha) * CE``
where CE is the task's loss on the labels (the ``loss`` slot; cross-entropy by default).
Validation, test and prediction are the student's alone, so a distilled run is deployed,
evaluated and ensembled like any supervised run.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any

import torch
import torch.nn.functional as F
from annotated_types import Ge, Gt, Le
from torch import nn

from engine import ConfigError, open_run
from engine.data import sample_batch
from engine.tasks import SupervisedTask, eval_mode


class DistillTask(SupervisedTask):
    """Supervised learning of a student model from labels and a teacher run's softened outputs.

    Logs ``train/loss`` (the total), ``train/kd_loss`` and ``train/ce_loss``, and the supervised
    task's validation and test metrics for the student.

    Args:
        teacher: run directory of the trained teacher (its best checkpoint); it must predict the same
            classes on the same data.
        temperature: softening temperature T of both distributions (higher: more of the teacher's dark knowledge).
        alpha: weight of the distillation term; 1 - alpha weights the loss on the labels.
        num_classes: number of classes (from the data).
        metrics: metrics to compute (accuracy, f1, top5).
    """

    def __init__(
        self,
        model: nn.Module,
        loss: nn.Module | None,
        optimizer: Callable[..., torch.optim.Optimizer],
        teacher: str,
        scheduler: Callable[..., Any] | None = None,
        temperature: Annotated[float, Gt(0)] = 4.0,
        alpha: Annotated[float, Ge(0), Le(1)] = 0.7,
        num_classes: int | None = None,
        metrics: list[str] | None = None,
    ) -> None:
        if temperature <= 0:
            raise ConfigError(f"task.temperature must be > 0, got {temperature}")
        if not 0.0 <= alpha <= 1.0:
            raise ConfigError(f"task.alpha must be between 0 and 1, got {alpha}")
        super().__init__(model, loss, optimizer, scheduler, "classification", num_classes, metrics)
        self.teacher_path = teacher
        self.temperature = temperature
        self.alpha = alpha
        self._teacher: list[nn.Module] = []  # kept out of the module tree: not trained, not in checkpoints

    @property
    def teacher(self) -> nn.Module:
        """The teacher run's trained model (loaded on first use), frozen, eval mode, on this task's device."""
        if not self._teacher:
            self._teacher.append(load_teacher(self.teacher_path))
        teacher = self._teacher[0]
        param = next(teacher.parameters(), None)
        if param is not None and param.device != self.device:
            teacher.to(self.device)
        return teacher

    def check_data(self, datamodule: Any) -> None:
        """The student fits the data (supervised check); the teacher's outputs match the student's."""
        facts = dict(datamodule.facts)
        if facts.get("problem", "classification") != "classification":
            raise ConfigError(
                f"task distill needs classification data, this data's problem is {facts['problem']}",
                hint="distillation matches the teacher's class probabilities",
            )
        super().check_data(datamodule)
        run = open_run(self.teacher_path)
        for fact in ("num_classes", "input_shape", "class_names"):
            ours, theirs = facts.get(fact), run.facts.get(fact)
            if ours is not None and theirs is not None and list(_seq(ours)) != list(_seq(theirs)):
                raise ConfigError(
                    f"task.teacher {run.path} was trained on other data: its {fact} is {theirs}, this run's is {ours}",
                    hint="distill from a teacher trained on the same data (same classes and input shape)",
                )
        x, _ = sample_batch(datamodule)
        teacher = self.teacher  # loaded here: a checkpoint it refuses is its own error, not one about inputs
        try:
            with eval_mode(self.model):
                theirs = teacher(x)
                ours = self.model(x)
        except Exception as exc:
            raise ConfigError(
                f"task.teacher {run.path} cannot read this run's inputs: {type(exc).__name__}: {exc}",
                hint="distill from a teacher trained on the same data",
            ) from None
        if tuple(theirs.shape) != tuple(ours.shape):
            raise ConfigError(
                f"task.teacher {run.path} outputs shape {list(theirs.shape[1:])} but the student outputs "
                f"{list(ours.shape[1:])}",
                hint="teacher and student must predict the same classes",
            )

    def distillation_loss(self, student: torch.Tensor, teacher: torch.Tensor) -> torch.Tensor:
        """``T^2 * KL(softmax(teacher / T) || softmax(student / T))``, averaged over the batch."""
        t = self.temperature
        return F.kl_div(
            F.log_softmax(student / t, dim=-1),
            F.log_softmax(teacher / t, dim=-1),
            reduction="batchmean",
            log_target=True,
        ) * (t * t)

    def training_step(self, batch: Any, batch_idx: int) -> torch.Tensor:
        x, y = batch
        out = self.model(x)
        with torch.no_grad():
            teacher = self.teacher(x)
        kd = self.distillation_loss(out.float(), teacher.float())
        ce = self.loss(out, y)
        loss = self.alpha * kd + (1 - self.alpha) * ce
        self.log("train/loss", loss, prog_bar=True)
        self.log("train/kd_loss", kd)
        self.log("train/ce_loss", ce)
        return loss


def _seq(value: Any) -> Any:
    return value if isinstance(value, (list, tuple)) else [value]


def load_teacher(path: str) -> nn.Module:
    """The trained model of run ``path``: frozen, eval mode."""
    teacher = open_run(path).model()  # the teacher task's primary slot, trained
    teacher.eval()
    for p in teacher.parameters():
        p.requires_grad_(False)
    return teacher
