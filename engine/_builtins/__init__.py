"""The core's own plugin (``core``), loaded by name like any plugin and called first; nothing here imports torch."""

from __future__ import annotations

from typing import Any

from engine._contract.declarations import Component, Recipe, Section
from engine._contract.hookspecs import hookimpl


@hookimpl
def engine_tasks() -> list[Component]:
    return [
        Component(
            "supervised",
            "engine._builtins.supervised:SupervisedTask",
            "Supervised learning: model + loss + optimizer (+ scheduler), torchmetrics metrics",
            slots={slot: slot for slot in ("model", "loss", "optimizer", "scheduler")},
            defaults={"optimizer": "adamw", "loss": None, "scheduler": None},
            required_slots=("model",),
            check="engine._builtins.sections:check_supervised",
        ),
    ]


@hookimpl
def engine_models() -> list[Component]:
    return [Component("mlp", "engine._builtins.models:MLP", "Multi-layer perceptron for feature vectors")]


@hookimpl
def engine_losses() -> list[Component]:
    m = "engine._builtins.losses"
    return [
        Component("cross_entropy", f"{m}:cross_entropy", "Cross-entropy on logits (classification)"),
        Component("mse", f"{m}:mse", "Mean squared error (regression)"),
        Component("l1", f"{m}:l1", "Mean absolute error (regression)"),
        Component("huber", f"{m}:huber", "Huber / smooth-L1 loss (robust regression)"),
        Component("bce_with_logits", f"{m}:bce_with_logits", "Binary cross-entropy on logits (binary, multi-label)"),
    ]


@hookimpl
def engine_optimizers() -> list[Component]:
    m = "engine._builtins.optim"
    return [
        Component("sgd", f"{m}:sgd", "Stochastic gradient descent with momentum / Nesterov"),
        Component("adam", f"{m}:adam", "Adam"),
        Component("adamw", f"{m}:adamw", "AdamW (decoupled weight decay)"),
        Component("rmsprop", f"{m}:rmsprop", "RMSprop"),
    ]


@hookimpl
def engine_schedulers() -> list[Component]:
    m = "engine._builtins.optim"
    return [
        Component("cosine", f"{m}:cosine", "Cosine decay over the run, optional linear warm-up (per step)"),
        Component("step", f"{m}:step", "Multiply the LR by gamma every step_size epochs"),
        Component("onecycle", f"{m}:onecycle", "One-cycle policy (per step)"),
        Component("reduce_on_plateau", f"{m}:reduce_on_plateau", "Reduce the LR when a metric stops improving"),
    ]


@hookimpl
def engine_data_sources() -> list[Component]:
    m = "engine._builtins.data"
    facts = ("problem", "num_classes", "out_features", "in_features", "input_shape", "class_names")
    return [
        Component("synthetic", f"{m}:Synthetic", "Seeded synthetic classification (Gaussian clusters)", facts=facts),
        Component(
            "csv",
            f"{m}:CSVTable",
            "A local CSV file with label column(s) (classification, multi-label or regression)",
            facts=facts,
        ),
    ]


@hookimpl
def engine_recipes() -> list[Recipe]:
    return [
        Recipe(
            "mlp-synthetic",
            {
                "model": {"name": "mlp", "hidden": [128, 128]},
                "data": {"name": "synthetic", "num_samples": 6000, "num_features": 32, "num_classes": 6},
                "optimizer": {"name": "adamw", "lr": 3e-3},
                "scheduler": {"name": "cosine"},
                "trainer": {"max_epochs": 8},
            },
            "MLP on seeded synthetic data: a quick end-to-end run",
        )
    ]


@hookimpl
def engine_config_sections() -> list[Section]:
    m = "engine._builtins.sections"
    return [
        Section("checkpoint", f"{m}:Checkpoint", "Which checkpoints a run keeps (best by a metric, last)"),
        Section(
            "early_stopping",
            f"{m}:EarlyStopping",
            "Stop when a metric stops improving (off unless a key is set)",
            optional=True,
        ),
        Section("run", f"{m}:Run", "Where the run directory goes", check=f"{m}:check_run"),
        Section(
            "param_groups",
            f"{m}:OptimizerKeys",
            "Key of every optimizer slot: param_groups (per-group settings by parameter name)",
            slot_kind="optimizer",
            check=f"{m}:check_param_groups",
        ),
    ]


@hookimpl
def engine_add_commands(subparsers: Any) -> None:
    """The core's commands: run, plugins, components."""
    from engine._builtins.commands import add_commands

    add_commands(subparsers)
