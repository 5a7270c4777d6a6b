"""The plugin's config keys and their ``--dry-run`` checks (torch-free: nothing heavy is imported here).

- `Prune`: the ``prune:`` section (off unless a key is set), checked by `check_prune`.
- `ModelKeys`: the keys every model slot accepts besides the model's own parameters
  (``model.init_from``, ``model.freeze`` …), checked by `check_model_keys`.
- `check_distill`: the distillation task's ``task.teacher`` names a run.
- `fill_shipped_params`: ``model.weights=NAME`` fills the model's parameters from the weights'
  declaration (``engine_adjust_config``: the composed config still says what the user set).

The dataclasses' fields are read from this source by the engine (types, defaults, ``Args:`` docs).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Annotated, Any, Literal

from annotated_types import Ge, Gt, Lt

import engine
from engine import ConfigError, did_you_mean


@dataclass
class Prune:
    """Prune weights during training with a sparsity schedule (see docs/plugins/techniques.md); off unless a key is set.

    Args:
        amount: final fraction of pruned weights (unstructured) or channels (structured), in (0, 1).
        method: l1_unstructured: smallest |w|; random_unstructured; ln_structured: whole output channels by L2 norm.
        scope: unstructured: rank weights across all layers (global) or per layer.
        start_epoch: first epoch that prunes, at its end (default: half of trainer.max_epochs).
        end_epoch: epoch reaching the final amount (default: three quarters of trainer.max_epochs); later ones
            fine-tune.
        schedule: how the sparsity grows from start to end epoch (cubic: fast first).
    """

    amount: float = 0.5
    method: Literal["l1_unstructured", "random_unstructured", "ln_structured"] = "l1_unstructured"
    scope: Literal["global", "layer"] = "global"
    start_epoch: int | None = None
    end_epoch: int | None = None
    schedule: Literal["cubic", "linear"] = "cubic"


@dataclass
class ModelKeys:
    """Keys every model slot accepts besides the model's own parameters (transfer learning).

    Args:
        init_from: run directory (its best checkpoint), or a weights file: .ckpt, .safetensors, or a state dict
            saved by torch (.pth, .pt, .bin; read as data, never unpickled), mapped by the model's adapters
            when it comes from another library (timm, Hugging Face).
        weights: weights the model's plugin ships, by name (`engine components show MODEL` lists them).
        init_skip: glob patterns of parameters not to load (kept freshly initialised), e.g. [head.*].
        init_strict: fail on missing or unexpected keys instead of reporting them.
        init_mismatch: parameters whose shape differs (a head for other classes): fail, or keep them freshly
            initialised.
        freeze: glob patterns of parameters to freeze, e.g. [features.*].
        unfreeze_at_epoch: unfreeze the frozen parameters when this epoch starts.
    """

    init_from: str | None = None
    weights: str | None = None
    init_skip: list[str] = field(default_factory=list)
    init_strict: bool = False
    init_mismatch: Literal["error", "reinit"] = "error"
    freeze: list[str] | str = field(default_factory=list)
    unfreeze_at_epoch: int | None = None


@dataclass
class Peft:
    """Parameter-efficient fine-tuning with Hugging Face ``peft`` (off unless a key is set; see
    docs/plugins/techniques.md): the model slot's weights are frozen and low-rank adapters train.

    Args:
        method: lora: low-rank adapters (W + alpha/r * B A) on the target layers.
        r: rank of the adapters.
        alpha: scale of the adapters' update (multiplied by alpha / r).
        dropout: dropout on the adapters' input while training.
        target_modules: layers to adapt: names (q_proj: every layer called so), glob patterns on the model's module
            names (blocks.*.attn.qkv; a prefix adapts every layer under it), or all-linear (every linear layer but
            the last, the output head).
        slot: the model slot to adapt.
        bias: train no biases (none), every bias (all), or those of the adapted layers (lora_only).
        modules_to_save: layers trained in full beside the adapters (e.g. a new classification head), names or globs.
        save_base: also save the frozen base weights in checkpoints; default (null): only when nothing else rebuilds
            the base (no init_from, weights, or pretrained Hugging Face directory).
    """

    method: Literal["lora"] = "lora"
    r: Annotated[int, Ge(1)] = 8
    alpha: Annotated[float, Gt(0)] = 16.0
    dropout: Annotated[float, Ge(0), Lt(1)] = 0.05
    target_modules: list[str] | str = "all-linear"
    slot: str = "model"
    bias: Literal["none", "all", "lora_only"] = "none"
    modules_to_save: list[str] = field(default_factory=list)
    save_base: bool | None = None


#: The keys of `ModelKeys`: what ``engine_model_built`` reads from a model slot.
MODEL_KEYS = ("init_from", "weights", "init_skip", "init_strict", "init_mismatch", "freeze", "unfreeze_at_epoch")


# --------------------------------------------------------------------------- checks


def check_prune(values: dict[str, Any], where: str, config: dict[str, Any]) -> None:
    """The prune section makes sense: amount in (0, 1), epochs in order, time left to fine-tune."""
    amount = values["amount"]
    if not 0.0 < amount < 1.0:
        raise ConfigError(
            f"{where}.amount must be between 0 and 1 (exclusive), got {amount}", hint=f"e.g. {where}.amount=0.5"
        )
    start, end = values["start_epoch"], values["end_epoch"]
    if start is not None and start < 0:
        raise ConfigError(f"{where}.start_epoch must be >= 0, got {start}")
    if start is not None and end is not None and end < start:
        raise ConfigError(f"{where}.end_epoch ({end}) comes before {where}.start_epoch ({start})")
    trainer = config.get("trainer") or {}
    epochs = trainer.get("max_epochs", 10)
    if isinstance(epochs, int) and epochs > 0 and "max_steps" not in trainer:
        last = max(start or 0, end if end is not None else 0)
        if last >= epochs - 1:
            raise ConfigError(
                f"{where}: the last pruning epoch ({last}) leaves no epoch of fine-tuning within "
                f"trainer.max_epochs={epochs}",
                hint="lower prune.end_epoch or raise trainer.max_epochs (the best checkpoint is chosen among "
                "epochs after the final prune)",
            )


def check_model_keys(values: dict[str, Any], where: str, config: dict[str, Any]) -> dict[str, Any]:
    """``init_*`` keys need ``init_from``, which must exist; ``unfreeze_at_epoch`` needs ``freeze``.

    Returns the keys with a single ``freeze``/``init_skip`` pattern made a list.
    """
    values = {k: [v] if k in ("freeze", "init_skip") and isinstance(v, str) else v for k, v in values.items()}
    source = values.get("init_from")
    if source is not None and values.get("weights") is not None:
        raise ConfigError(f"{where}.init_from and {where}.weights both name weights to load", hint="keep one of them")
    for key in ("init_skip", "init_strict", "init_mismatch"):
        if key in values and source is None and values.get("weights") is None:
            raise ConfigError(f"{where}.{key} needs {where}.init_from", hint=f"set {where}.init_from=RUN_DIR")
    if source is not None:
        from engine.runs import check_run_dir

        check_run_dir(source, f"{where}.init_from", checkpoint_ok=True)
    if values.get("weights") is not None:
        _check_shipped(values["weights"], where, config)
    epoch = values.get("unfreeze_at_epoch")
    if epoch is not None:
        if not values.get("freeze"):
            raise ConfigError(
                f"{where}.unfreeze_at_epoch needs {where}.freeze", hint=f"e.g. {where}.freeze=[features.*]"
            )
        if epoch < 1:
            raise ConfigError(f"{where}.unfreeze_at_epoch must be >= 1, got {epoch}", hint="or drop freeze altogether")
    for pattern in values.get("freeze") or []:
        if not pattern:
            raise ConfigError(f"{where}.freeze holds an empty pattern")
    return values


def _check_shipped(name: str, where: str, config: dict[str, Any]) -> None:
    """The model of slot ``where`` ships weights called ``name``."""
    try:
        model = engine.get_registry().resolve("model", config[where]["name"])
    except ConfigError:  # planned with a registry of its own: loading the weights names them
        return
    if name not in model.weights:
        have = ", ".join(model.weights) or "none"
        raise ConfigError(
            f"{where}.weights: model '{model.qualified_name}' ships no weights '{name}'"
            f"{did_you_mean(name, model.weights)}",
            hint=f"weights it ships: {have} (`engine components show {model.qualified_name}`)",
        )


def check_peft(values: dict[str, Any], where: str, config: dict[str, Any]) -> dict[str, Any]:
    """``peft.slot`` is a model slot of the config; targets are non-empty names (one name made a list)."""
    targets = values["target_modules"]
    targets = [targets] if isinstance(targets, str) else list(targets)
    if not targets or any(not isinstance(t, str) or not t.strip() for t in targets):
        raise ConfigError(
            f"{where}.target_modules holds an empty name", hint=f"e.g. {where}.target_modules=[q_proj,v_proj]"
        )
    slot = values["slot"]
    slots = _model_slots(config)
    if slots is not None and slot not in slots:
        raise ConfigError(
            f"{where}.slot={slot}: the task has no model slot '{slot}'{did_you_mean(slot, slots)}",
            hint=f"its model slots: {', '.join(slots) or 'none'}",
        )
    return {**values, "target_modules": targets, "modules_to_save": list(values.get("modules_to_save") or [])}


def _model_slots(config: dict[str, Any]) -> list[str] | None:
    """The model slots of the config's task (None when the task is unknown here: the plan names it)."""
    task = config.get("task")
    try:
        slots = engine.get_registry().resolve("task", task["name"]).slots  # type: ignore[index]
    except (ConfigError, TypeError, KeyError):
        return None
    return [slot for slot, kind in slots.items() if kind == "model"]


def check_distill(values: dict[str, Any], where: str, config: dict[str, Any]) -> None:
    """The teacher is a run directory (or one an earlier pipeline stage will write)."""
    from engine.runs import check_run_dir

    check_run_dir(values["teacher"], f"{where}.teacher")


# --------------------------------------------------------------------------- shipped weights


def fill_shipped_params(config: dict[str, Any]) -> None:
    """``SLOT.weights=NAME``: the model parameters those weights were trained with, filled into the slot.

    A setting of the composed config that differs from the weights' is refused (the weights would not
    fit, or would not be what the user asked for). Weights the model does not ship are left to
    `check_model_keys`, which names them at plan time.
    """
    registry = engine.get_registry()
    task = config.get("task")
    if not isinstance(task, dict) or not isinstance(task.get("name"), str):
        return
    try:
        slots = registry.resolve("task", task["name"]).slots
    except ConfigError:
        return  # the plan names the unknown task
    for slot, kind in slots.items():
        section = config.get(slot)
        if kind != "model" or not isinstance(section, dict):
            continue
        name, model = section.get("weights"), section.get("name")
        if not isinstance(name, str) or not isinstance(model, str):
            continue
        try:
            shipped = registry.resolve("model", model).weights.get(name)
        except ConfigError:
            continue  # the plan names the unknown model
        if shipped is None:
            continue
        for key, value in shipped.params.items():
            if key in section and section[key] != value:
                raise ConfigError(
                    f"{slot}.weights={name} were trained with {slot}.{key}={value!r}; the config sets {section[key]!r}",
                    hint=f"drop {slot}.{key} (the weights fill it), or train your own",
                )
            section.setdefault(key, value)
