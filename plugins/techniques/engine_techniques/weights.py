"""Loading weights from elsewhere into a built model: another run, a weights file, weights a plugin ships.

``model.init_from=SOURCE`` names a run directory (its best checkpoint), a ``.ckpt`` file, a
``.safetensors`` file or a state dict saved by torch (``.pth``/``.bin``); every one is read as data
(`engine.runs.load_checkpoint`, `engine.runs.load_weights_file`), never unpickled.

Weights from other libraries are offered to each *adapter* the model's component declares
(``Component(adapters=("engine_vision.adapters:timm_resnet", ...))``)::

    def timm_resnet(state: dict[str, Tensor], model: nn.Module) -> tuple[dict[str, Tensor], list[str]] | None:
        if "conv1.weight" not in state or "layer1.0.conv1.weight" not in state:
            return None                      # not this format: the next adapter is asked
        ...                                  # rename keys to the model's, adapt a stem's channels
        return mapped, ["stem.0.weight: 3 input channels summed to 1"]

The first adapter that recognises the state dict maps it (its notes are reported as *adapted*);
a state dict no adapter recognises is matched by name as it is. Shapes, ``init_skip``,
``init_mismatch`` and ``init_strict`` then apply to the mapped keys. ``model.weights=NAME`` loads
weights the model's plugin ships (`engine.Weights`), after checking their SHA-256.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import torch
from torch import nn

from engine import Component, ConfigError, EngineError
from engine.runs import load_checkpoint, load_weights_file, open_run
from engine.tasks import matches

#: Attribute set on a model loaded by ``init_from``: what was loaded, missing, unexpected, re-initialised.
INIT_ATTR = "_engine_init_report"

Adapter = Callable[[dict[str, torch.Tensor], nn.Module], "tuple[dict[str, torch.Tensor], list[str]] | None"]


def _state_dict_of(source: str, slot: str) -> tuple[dict[str, torch.Tensor], str]:
    """The weights of model slot ``slot`` (else ``model``) in ``source``, keys without the prefix."""
    path = Path(source).expanduser()
    if path.is_dir() and open_run(path).config.get("peft"):  # a LoRA run: its checkpoints hold the adapters only
        return _merged_state(path), str(path)
    ckpt = open_run(path).checkpoint("best") if path.is_dir() else path
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


def _merged_state(path: Path) -> dict[str, torch.Tensor]:
    """The weights of the LoRA run ``path``'s model with its adapters merged (its base rebuilt from its config)."""
    from engine.protocols import MergesAdapters, implements

    model = open_run(path).model()
    if not implements(model, MergesAdapters):
        raise EngineError(f"{path}: the run's model has no merged() to give its adapted weights")
    return {k: v for k, v in model.merged().state_dict().items() if isinstance(v, torch.Tensor)}


def adapters_of(component: Component | None) -> list[tuple[str, Adapter]]:
    """The ``(name, function)`` adapters ``component`` declares, imported (a PluginError naming it if one fails)."""
    if component is None:
        return []
    return component.load_adapters()


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
            f"the file has {short(sorted(state), 3)}, the model {short(list(own), 3)})",
            hint="init_from needs a run of the same (or a compatible) model"
            + (f"; none of its adapters ({', '.join(names)}) recognised the file" if names else ""),
        )
    try:
        model.load_state_dict(load, strict=False)
    except RuntimeError as exc:  # a model whose load_state_dict checks more than names and shapes
        raise ConfigError(f"{where}: the model refused the weights of {ckpt}: {exc}"[:400]) from None
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
        parts.append(f"adapted {short(adapted, 2)}")
    if report["reinitialized"]:
        parts.append(f"re-initialised {short(report['reinitialized'])}")
    if missing:
        parts.append(f"missing {short(missing)}")
    if unexpected:
        parts.append(f"unexpected {short(unexpected)}")
    print("; ".join(parts), file=sys.stderr)
    return report


def short(names: list[str], n: int = 4) -> str:
    """The first ``n`` of ``names``, and how many more."""
    return ", ".join(names[:n]) + (f" (+{len(names) - n} more)" if len(names) > n else "")


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
