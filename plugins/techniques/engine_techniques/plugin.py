"""The techniques plugin: transfer learning, knowledge distillation and pruning, through the public hooks.

Declarations only: nothing here imports torch (targets are named lazily), so listing, ``--help``
and ``--dry-run`` stay fast.

- Every model slot accepts ``init_from``, ``weights``, ``init_skip``, ``init_strict``,
  ``init_mismatch``, ``freeze`` and ``unfreeze_at_epoch`` (the ``transfer`` slot keys); they are
  applied when the model is built (`engine_model_built`) and reported in ``summary.json``
  under ``transfer`` (`engine_run_finished`).
- ``peft:`` adds LoRA adapters (Hugging Face ``peft``) to a model slot when it is built; only they train,
  checkpoints hold them alone, ``merged()`` gives the model to deploy (`engine_techniques.lora`).
- ``prune:`` prunes weights during training (a Lightning callback reporting ``pruning``).
- ``task=distill task.teacher=RUN`` distils a trained run into the model (``techniques.distill``,
  formerly ``core.distill``).
"""

from __future__ import annotations

from typing import Any

from engine import Component, ModelBuilt, RunFinished, Section, hookimpl

ENGINE_API = ">=1,<2"

_SUPERVISED_SLOTS = {"model": "model", "loss": "loss", "optimizer": "optimizer", "scheduler": "scheduler"}
_SPEC = "engine_techniques.spec"


@hookimpl
def engine_tasks() -> list[Component]:
    return [
        Component(
            "distill",
            "engine_techniques.distill:DistillTask",
            "Knowledge distillation: the model (student) learns from a trained run (teacher) and the labels",
            slots=_SUPERVISED_SLOTS,
            defaults={"optimizer": "adamw", "loss": None, "scheduler": None},
            required_slots=("model",),
            check=f"{_SPEC}:check_distill",
            aliases=("core.distill",),
        )
    ]


@hookimpl
def engine_config_sections() -> list[Section]:
    return [
        Section(
            "prune",
            f"{_SPEC}:Prune",
            "Prune weights during training with a sparsity schedule (off unless a key is set)",
            optional=True,
            check=f"{_SPEC}:check_prune",
        ),
        Section(
            "peft",
            f"{_SPEC}:Peft",
            "Parameter-efficient fine-tuning with peft: LoRA adapters on a model slot (off unless a key is set)",
            optional=True,
            check=f"{_SPEC}:check_peft",
        ),
        Section(
            "transfer",
            f"{_SPEC}:ModelKeys",
            "Keys of every model slot: init_from, weights, init_skip, …, freeze, unfreeze_at_epoch",
            slot_kind="model",
            check=f"{_SPEC}:check_model_keys",
        ),
    ]


@hookimpl
def engine_adjust_config(config: dict[str, Any]) -> None:
    """``model.weights=NAME``: the parameters those weights were trained with fill the model's (torch-free)."""
    from engine_techniques.spec import fill_shipped_params

    fill_shipped_params(config)


@hookimpl
def engine_model_built(built: ModelBuilt) -> None:
    """Load ``init_from`` / ``weights`` (unless the run's own checkpoint will), freeze, note ``unfreeze_at_epoch``;
    then the ``peft`` section's adapters on its slot (the base is loaded even when reopening a run: its
    checkpoints hold the adapters only)."""
    from engine_techniques.spec import MODEL_KEYS

    peft = built.config.get("peft")
    adapted = isinstance(peft, dict) and peft.get("slot", "model") == built.slot
    keys = {k: v for k, v in built.keys.items() if k in MODEL_KEYS and v not in (None, [], False)}
    if keys:  # torch-side code imported only when there is something to do
        from engine_techniques.transfer import apply_model_keys

        load = not built.restoring or (adapted and peft.get("save_base") is not True)
        apply_model_keys(built.model, keys, built.slot, load=load, component=built.component)
    if adapted:
        from engine_techniques.lora import adapt_model

        built.model = adapt_model(built.model, peft, built.slot, keys)


@hookimpl
def engine_callbacks(config: dict[str, Any]) -> list[Any]:
    """Pruning (the ``prune`` section) and unfreezing (``unfreeze_at_epoch`` of any model slot)."""
    out: list[Any] = []
    if config.get("prune"):
        from engine_techniques.prune import Prune

        out.append(Prune(**config["prune"]))
    if any(isinstance(v, dict) and v.get("unfreeze_at_epoch") is not None for v in config.values()):
        from engine_techniques.transfer import UnfreezeAtEpoch

        out.append(UnfreezeAtEpoch())
    return out


@hookimpl
def engine_run_finished(run: RunFinished) -> dict[str, Any] | None:
    """``transfer`` in summary.json: what ``init_from`` loaded and how many tensors ``freeze`` froze."""
    if run.status != "completed" or run.task is None:
        return None
    from engine_techniques.transfer import init_reports

    out: dict[str, Any] = {}
    reports = init_reports(run.task)
    if reports:
        out["transfer"] = reports
    if run.config.get("peft"):
        from engine_techniques.lora import peft_reports

        out["peft"] = peft_reports(run.task)
    return out or None
