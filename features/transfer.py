"""Transfer learning: load weights from another run, freeze parameters, per-group learning rates.

Config keys of any ``model`` slot (validated torch-free in :mod:`engine.config`)::

    model.init_from=runs/pretrained     # a run directory (its best checkpoint) or a .ckpt file
    model.init_skip=[head.*]            # parameters not to load (kept freshly initialised)
    model.init_mismatch=reinit          # shapes that differ (another head) stay fresh instead of failing
    model.init_strict=true              # missing / unexpected keys fail instead of being reported
    model.freeze=[features.*]           # glob patterns on the model's parameter names
    model.unfreeze_at_epoch=3           # unfreeze them when epoch 3 starts

and of any ``optimizer`` slot::

    optimizer.param_groups=[{params: 'features.*', lr: 1e-4}]

Parameter names are the model's own (``features.0.weight``, as in ``model.named_parameters()``).

Weights from other libraries: ``model.init_from=resnet18.safetensors`` (or a ``.pth``/``.bin``
state dict, read with ``weights_only=True``) is offered to each *adapter* the model's component
declares (``Component(adapters=("engine_vision.adapters:timm_resnet", ...))``)::

    def timm_resnet(state: dict[str, Tensor], model: nn.Module) -> tuple[dict[str, Tensor], list[str]] | None:
        if "conv1.weight" not in state or "layer1.0.conv1.weight" not in state:
            return None                      # not this format: the next adapter is asked
        ...                                  # rename keys to the model's, adapt a stem's channels
        return mapped, ["stem.0.weight: 3 input channels summed to 1"]

The first adapter that recognises the state dict maps it (its notes are reported as *adapted*);
a state dict no adapter recognises is matched by name as it is. Shapes, ``init_skip``,
``init_mismatch`` and ``init_strict`` then apply to the mapped keys. ``model.weights=NAME`` loads
weights the model's plugin ships (:class:`engine.Weights`), after checking their SHA-256.
"""

from __future__ import annotations

import fnmatch
import sys
import types
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

import lightning as L
import torch
from torch import nn

from engine.component import Component, _load_target
from engine.errors import ConfigError, EngineError

#: Attribute set on a model whose parameters were frozen by ``freeze``: the names, for unfreezing later.
FROZEN_ATTR = "_engine_frozen"
#: Attribute set on a model loaded by ``init_from``: what was loaded, missing, unexpected, re-initialised.
INIT_ATTR = "_engine_init_report"


def matches(name: str, patterns: Iterable[str]) -> bool:
    """Whether parameter ``name`` matches one of the glob ``patterns`` (a bare prefix also matches: ``head``)."""
    return any(fnmatch.fnmatchcase(name, p) or name.startswith(p + ".") for p in patterns)


def _state_dict_of(source: str, slot: str) -> tuple[dict[str, torch.Tensor], str]:
    """The weights of model slot ``slot`` (else ``model``) in ``source``, keys without the prefix.

    ``source`` is a run directory (its best checkpoint), a ``.ckpt`` file or a ``.safetensors``
    file; every one is read as data (``weights_only``, safetensors), never unpickled.
    """
    from engine.checkpoints import load_checkpoint, load_weights_file
    from engine.rundir import checkpoint_path, expand, read_json, run_root

    path = expand(source, f"{slot}.init_from")
    if path.is_dir():
        root = run_root(path)
        ckpt = checkpoint_path(root, read_json(root, "summary.json"), "best")
    else:
        ckpt = path
    if ckpt.suffix == ".safetensors":
        state: Any = load_weights_file(ckpt)
    else:
        state = load_checkpoint(ckpt)
        state = state.get("state_dict", state)
    if not isinstance(state, dict):
        raise EngineError(f"{ckpt} holds no state dict")
    for prefix in dict.fromkeys((slot, "model")):
        found = {k[len(prefix) + 1 :]: v for k, v in state.items() if k.startswith(prefix + ".")}
        if found:
            return found, str(ckpt)
    if any(not k.startswith(("model.", slot + ".")) and "." in k for k in state):
        return dict(state), str(ckpt)  # a bare model state dict
    raise EngineError(
        f"{ckpt} has no weights for a '{slot}' slot",
        hint="init_from loads the weights of the same slot (or 'model') of another run",
    )


Adapter = Callable[[dict[str, torch.Tensor], nn.Module], "tuple[dict[str, torch.Tensor], list[str]] | None"]


def adapt(
    state: dict[str, torch.Tensor], model: nn.Module, adapters: Sequence[tuple[str, Adapter]], where: str
) -> tuple[dict[str, torch.Tensor], str | None, list[str]]:
    """``state`` mapped by the first adapter that recognises it: (mapped state, adapter name, notes)."""
    for name, adapter in adapters:
        try:
            result = adapter(state, model)
        except EngineError as exc:  # the adapter's own diagnosis (another depth, vocabulary …): keep it whole
            raise ConfigError(f"{where}: {exc.message}", hint=exc.hint) from exc
        except Exception as exc:
            raise ConfigError(f"{where}: adapter {name} failed on these weights: {type(exc).__name__}: {exc}") from exc
        if result is not None:
            mapped, notes = result
            return dict(mapped), name, list(notes)
    return state, None, []


def load_weights(
    model: nn.Module,
    source: str,
    slot: str = "model",
    skip: Sequence[str] = (),
    strict: bool = False,
    mismatch: str = "error",
    adapters: Sequence[tuple[str, Adapter]] = (),
) -> dict[str, Any]:
    """Load ``source``'s weights for ``slot`` into ``model``; return a report (also kept on the model).

    The state dict is first offered to ``adapters`` (``(name, function)`` pairs, see the module
    docstring); then keys are matched by name. Keys the model has but the file lacks are *missing*;
    keys only in the file are *unexpected*; both are reported (``strict``: an error). Tensors whose
    shape differs fail unless ``mismatch="reinit"``, which keeps the model's fresh initialisation.
    """
    where = f"{slot}.init_from"
    state, ckpt = _state_dict_of(source, slot)
    state, adapter, adapted = adapt(state, model, adapters, where)
    own = model.state_dict()
    unused_skip = [p for p in skip if not any(matches(k, [p]) for k in own)]
    if unused_skip:
        raise ConfigError(
            f"{slot}.init_skip pattern(s) {unused_skip} match no parameter of the model",
            hint=f"parameter names look like: {', '.join(list(own)[:4])}, …",
        )
    load, mismatched, skipped = {}, [], []
    for key, value in state.items():
        if key not in own:
            continue
        if matches(key, skip):
            skipped.append(key)
        elif tuple(own[key].shape) != tuple(value.shape):
            mismatched.append(f"{key} {list(value.shape)} -> {list(own[key].shape)}")
        else:
            load[key] = value
    missing = sorted(k for k in own if k not in state)
    unexpected = sorted(k for k in state if k not in own)
    if mismatched and mismatch != "reinit":
        raise ConfigError(
            f"{where}: {len(mismatched)} tensor(s) of {ckpt} do not fit the model: {', '.join(mismatched[:4])}",
            hint=f"keep them freshly initialised with {slot}.init_mismatch=reinit (e.g. a head for other classes), "
            f"or skip them with {slot}.init_skip=[...]",
        )
    if strict and (missing or unexpected):
        raise ConfigError(
            f"{where}: the checkpoint does not match the model: missing {missing[:5]}, unexpected {unexpected[:5]}",
            hint=f"drop {slot}.init_strict=true to load what matches and report the rest",
        )
    if not load:
        names = [n for n, _ in adapters]
        raise ConfigError(
            f"{where}: no tensor of {ckpt} fits the model ({len(state)} in the file, {len(own)} in the model; "
            f"the file has {_short(sorted(state), 3)}, the model {_short(list(own), 3)})",
            hint="init_from needs a run of the same (or a compatible) model"
            + (f"; none of its adapters ({', '.join(names)}) recognised the file" if names else ""),
        )
    model.load_state_dict(load, strict=False)
    report = {
        "source": str(source),
        "checkpoint": ckpt,
        "loaded": len(load),
        "adapter": adapter,
        "adapted": adapted,
        "missing": missing,
        "unexpected": unexpected,
        "reinitialized": [m.split(" ")[0] for m in mismatched] + skipped,
    }
    setattr(model, INIT_ATTR, report)
    parts = [f"{slot}.init_from: loaded {len(load)}/{len(own)} tensors from {ckpt}"]
    if adapter:
        parts[0] += f" (mapped by {adapter})"
    if adapted:
        parts.append(f"adapted {_short(adapted, 2)}")
    if report["reinitialized"]:
        parts.append(f"re-initialised {_short(report['reinitialized'])}")
    if missing:
        parts.append(f"missing {_short(missing)}")
    if unexpected:
        parts.append(f"unexpected {_short(unexpected)}")
    print("; ".join(parts), file=sys.stderr)
    return report


def _short(names: list[str], n: int = 4) -> str:
    return ", ".join(names[:n]) + (f" (+{len(names) - n} more)" if len(names) > n else "")


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
        if isinstance(module, nn.modules.batchnorm._BatchNorm):
            params = list(module.parameters(recurse=False))
            if params and not any(p.requires_grad for p in params):
                module.train = types.MethodType(_stay_in_eval, module)  # type: ignore[method-assign]
                module.eval()
    setattr(model, FROZEN_ATTR, frozen)
    model._engine_frozen_total = len(frozen)
    return frozen


def _stay_in_eval(self: nn.Module, mode: bool = True) -> nn.Module:
    """``train()`` of a frozen batch-norm layer: it stays in eval mode (normalises with its running statistics)."""
    return nn.Module.train(self, False)


def unfreeze(model: nn.Module) -> int:
    """Undo :func:`freeze` on ``model``; returns how many parameters were unfrozen."""
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
    """Apply a model slot's reserved keys (``init_from``, ``weights`` … ``freeze``) to the built ``model``.

    ``component`` is the model's declaration: its ``adapters`` map foreign state dicts, its
    ``weights`` are what ``weights=NAME`` loads.
    """
    if not isinstance(model, nn.Module):
        raise ConfigError(f"{slot}: init_from and freeze need an nn.Module, the component built {type(model).__name__}")
    source = keys.get("init_from")
    if keys.get("weights") and load:
        if component is None:
            raise ConfigError(f"{slot}.weights needs the model's component (its plugin ships the weights)")
        source = str(shipped_weights_file(component, keys["weights"], slot))
    if source and load:
        adapters = [(a, _load_target(component, a)) for a in (component.adapters if component else ())]
        load_weights(
            model,
            source,
            slot=slot,
            skip=keys.get("init_skip") or (),
            strict=bool(keys.get("init_strict")),
            mismatch=keys.get("init_mismatch") or "error",
            adapters=adapters,
        )
    if keys.get("freeze"):
        freeze(model, keys["freeze"], slot)
    if keys.get("unfreeze_at_epoch") is not None:
        model._engine_unfreeze_at = int(keys["unfreeze_at_epoch"])  # read by UnfreezeAtEpoch
    return model


def shipped_weights_file(component: Component, name: str, slot: str = "model") -> Path:
    """The file of weights ``name`` that ``component``'s plugin ships, after checking its SHA-256."""
    import hashlib
    from importlib.resources import files

    shipped = component.weights.get(name)
    if shipped is None:
        raise ConfigError(f"{slot}.weights: {component.qualified_name} ships no weights '{name}'")
    package, _, resource = shipped.file.partition(":")
    try:
        path = Path(str(files(package).joinpath(resource)))
        digest = hashlib.sha256(path.read_bytes()).hexdigest()
    except (ModuleNotFoundError, OSError) as exc:
        raise EngineError(
            f"{slot}.weights={name}: {shipped.file} of plugin '{component.plugin}' cannot be read: {exc}",
            hint=f"reinstall {component.distribution or 'the plugin'}",
        ) from None
    if digest != shipped.sha256.lower():
        raise EngineError(
            f"refusing {slot}.weights={name}: {path} has SHA-256 {digest[:12]}…, the plugin declares "
            f"{shipped.sha256[:12]}… (changed or corrupted)",
            hint=f"reinstall {component.distribution or 'the plugin'}; the file is not loaded",
        )
    return path


def param_groups(named: Iterable[tuple[str, nn.Parameter]], groups: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Torch parameter groups from ``optimizer.param_groups``: each parameter joins the first group matching it.

    Names are matched as given and without their first component (the task's slot attribute:
    ``model.features.0.weight`` matches ``features.*``). Parameters matched by no group form the
    default group (the optimizer's own settings). Frozen parameters stay in their group, so
    unfreezing them later trains them with the group's settings.
    """
    named = list(named)
    buckets: list[list[nn.Parameter]] = [[] for _ in groups]
    rest: list[nn.Parameter] = []
    for name, param in named:
        short = name.split(".", 1)[1] if "." in name else name
        for i, group in enumerate(groups):
            patterns = [group["params"]] if isinstance(group["params"], str) else list(group["params"])
            if matches(name, patterns) or matches(short, patterns):
                buckets[i].append(param)
                break
        else:
            rest.append(param)
    out = []
    for i, (group, params) in enumerate(zip(groups, buckets, strict=True)):
        if not params:
            raise ConfigError(
                f"optimizer.param_groups[{i}]: params {group['params']!r} match no parameter",
                hint=f"parameter names look like: {', '.join(n for n, _ in named[:4])}, …",
            )
        settings = {k: tuple(v) if isinstance(v, list) else v for k, v in group.items() if k != "params"}
        out.append({"params": params, **settings})
    if rest:
        out.append({"params": rest})
    return out


class UnfreezeAtEpoch(L.Callback):
    """Unfreeze the parameters frozen by ``model.freeze`` when epoch ``model.unfreeze_at_epoch`` starts.

    The frozen parameters are already in the optimizer (with their group's settings), so they
    start training from that epoch on; on resume past that epoch they are unfrozen at once.
    """

    def on_train_epoch_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        for module in pl_module.modules():
            at = getattr(module, "_engine_unfreeze_at", None)
            if at is not None and trainer.current_epoch >= at and getattr(module, FROZEN_ATTR, None):
                n = unfreeze(module)
                print(f"epoch {trainer.current_epoch}: unfroze {n} parameter tensors", file=sys.stderr)


def init_reports(module: nn.Module) -> dict[str, Any]:
    """What ``init_from`` and ``freeze`` did to the models inside ``module`` (for summary.json)."""
    out: dict[str, Any] = {}
    for name, sub in module.named_modules():
        report = getattr(sub, INIT_ATTR, None)
        frozen = getattr(sub, "_engine_frozen_total", None)
        if report is None and frozen is None:
            continue
        entry: dict[str, Any] = {}
        if report is not None:
            entry["init_from"] = report
        if frozen is not None:
            entry["frozen_tensors"] = frozen
        out[name or "task"] = entry
    return out
