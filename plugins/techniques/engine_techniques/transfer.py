"""Transfer learning: load weights from another run, freeze parameters, unfreeze them later.

Keys of any model slot (checked torch-free by `engine_techniques.spec`)::

    model.init_from=runs/pretrained     # a run directory (its best checkpoint) or a weights file
    model.weights=NAME                  # weights the model's plugin ships
    model.init_skip=[head.*]            # parameters not to load (kept freshly initialised)
    model.init_mismatch=reinit          # shapes that differ (another head) stay fresh instead of failing
    model.init_strict=true              # missing / unexpected keys fail instead of being reported
    model.freeze=[features.*]           # glob patterns on the model's parameter names
    model.unfreeze_at_epoch=3           # unfreeze them when epoch 3 starts

Parameter names are the model's own (``features.0.weight``, as in ``model.named_parameters()``).
Per-group learning rates (``optimizer.param_groups``) are the core's. How weights are read and
mapped (adapters, shipped weights) is in `engine_techniques.weights`.
"""

from __future__ import annotations

import sys
import types
from collections.abc import Sequence
from typing import Any

import lightning as L
from torch import nn

from engine import Component, ConfigError
from engine.tasks import matches
from engine_techniques.weights import INIT_ATTR, adapters_of, load_weights, shipped_weights_file

__all__ = [
    "FROZEN_ATTR",
    "INIT_ATTR",
    "UnfreezeAtEpoch",
    "apply_model_keys",
    "freeze",
    "init_reports",
    "load_weights",
    "unfreeze",
]

#: Attribute set on a model whose parameters were frozen by ``freeze``: the names, for unfreezing later.
FROZEN_ATTR = "_engine_frozen"
#: Attribute set on a model by ``freeze``: how many tensors it froze (for summary.json).
FROZEN_TOTAL_ATTR = "_engine_frozen_total"
#: Attribute set on a model by ``unfreeze_at_epoch``: the epoch `UnfreezeAtEpoch` unfreezes it.
UNFREEZE_ATTR = "_engine_unfreeze_at"
#: Batch-norm layers (public classes): when all their parameters are frozen they keep their running statistics.
_BATCH_NORMS = (
    nn.BatchNorm1d,
    nn.BatchNorm2d,
    nn.BatchNorm3d,
    nn.LazyBatchNorm1d,
    nn.LazyBatchNorm2d,
    nn.LazyBatchNorm3d,
    nn.SyncBatchNorm,
)


def freeze(model: nn.Module, patterns: Sequence[str], slot: str = "model") -> list[str]:
    """Freeze the parameters of ``model`` matching ``patterns``; every pattern must match one.

    Batch-norm layers whose parameters are all frozen stay in eval mode until unfrozen: they
    normalise with their (pre-trained) running statistics in training as in evaluation, and do not
    update them (a frozen batch norm, as in torchvision's detection models).
    """
    names = [n for n, _ in model.named_parameters()]
    unused = [p for p in patterns if not any(matches(n, [p]) for n in names)]
    if unused:
        raise ConfigError(
            f"{slot}.freeze pattern(s) {unused} match no parameter of the model",
            hint=f"parameter names look like: {', '.join(names[:4])}, … (globs such as 'features.*')",
        )
    frozen = []
    for name, param in model.named_parameters():
        if matches(name, patterns):
            param.requires_grad_(False)
            frozen.append(name)
    if len(frozen) == len(names):
        print(f"{slot}.freeze: every parameter is frozen; nothing will train until unfrozen", file=sys.stderr)
    for module in model.modules():
        if isinstance(module, _BATCH_NORMS):
            params = list(module.parameters(recurse=False))
            if params and not any(p.requires_grad for p in params):
                module.train = types.MethodType(_stay_in_eval, module)  # type: ignore[method-assign]
                module.eval()
    setattr(model, FROZEN_ATTR, frozen)
    setattr(model, FROZEN_TOTAL_ATTR, len(frozen))
    return frozen


def _stay_in_eval(self: nn.Module, mode: bool = True) -> nn.Module:
    """``train()`` of a frozen batch-norm layer: it stays in eval mode (normalises with its running statistics)."""
    return nn.Module.train(self, False)


def unfreeze(model: nn.Module) -> int:
    """Undo `freeze` on ``model``; returns how many parameters were unfrozen."""
    frozen = getattr(model, FROZEN_ATTR, None) or []
    params = dict(model.named_parameters())
    for name in frozen:
        param = params.get(name, params.get(name + "_orig"))  # pruning renames `weight` to `weight_orig`
        if param is not None:
            param.requires_grad_(True)
    for module in model.modules():
        if "train" in vars(module):  # a frozen batch-norm layer: back to following model.train()
            del module.train
            module.train(model.training)
    setattr(model, FROZEN_ATTR, [])
    return len(frozen)


def apply_model_keys(
    model: nn.Module, keys: dict[str, Any], slot: str, load: bool = True, component: Component | None = None
) -> nn.Module:
    """Apply a model slot's keys (``init_from``, ``weights`` … ``freeze``) to the built ``model``.

    ``component`` is the model's declaration: its ``adapters`` map foreign state dicts, its
    ``weights`` are what ``weights=NAME`` loads. ``load=False`` (a finished run reopened: its own
    checkpoint replaces the weights) skips loading.
    """
    if not isinstance(model, nn.Module):
        raise ConfigError(f"{slot}: init_from and freeze need an nn.Module, the component built {type(model).__name__}")
    source = keys.get("init_from")
    if keys.get("weights") and load:
        if component is None:
            raise ConfigError(f"{slot}.weights needs the model's component (its plugin ships the weights)")
        source = str(shipped_weights_file(component, keys["weights"], slot))
    if source and load:
        load_weights(
            model,
            source,
            slot=slot,
            skip=keys.get("init_skip") or (),
            strict=bool(keys.get("init_strict")),
            mismatch=keys.get("init_mismatch") or "error",
            adapters=adapters_of(component),
        )
    if keys.get("freeze"):
        freeze(model, [keys["freeze"]] if isinstance(keys["freeze"], str) else keys["freeze"], slot)
    if keys.get("unfreeze_at_epoch") is not None:
        setattr(model, UNFREEZE_ATTR, int(keys["unfreeze_at_epoch"]))  # read by UnfreezeAtEpoch
    return model


class UnfreezeAtEpoch(L.Callback):
    """Unfreeze the parameters frozen by ``model.freeze`` when epoch ``model.unfreeze_at_epoch`` starts.

    The frozen parameters are already in the optimizer (with their group's settings), so they
    start training from that epoch on; on resume past that epoch they are unfrozen at once.
    """

    def on_train_epoch_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        for module in pl_module.modules():
            at = getattr(module, UNFREEZE_ATTR, None)
            if at is not None and trainer.current_epoch >= at and getattr(module, FROZEN_ATTR, None):
                n = unfreeze(module)
                print(f"epoch {trainer.current_epoch}: unfroze {n} parameter tensors", file=sys.stderr)


def init_reports(module: nn.Module) -> dict[str, Any]:
    """What ``init_from`` and ``freeze`` did to the models inside ``module`` (for summary.json)."""
    out: dict[str, Any] = {}
    for name, sub in module.named_modules():
        report = getattr(sub, INIT_ATTR, None)
        frozen = getattr(sub, FROZEN_TOTAL_ATTR, None)
        if report is None and frozen is None:
            continue
        entry: dict[str, Any] = {}
        if report is not None:
            entry["init_from"] = report
        if frozen is not None:
            entry["frozen_tensors"] = frozen
        out[name or "task"] = entry
    return out
