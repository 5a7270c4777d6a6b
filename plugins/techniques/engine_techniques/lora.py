"""Parameter-efficient fine-tuning with Hugging Face ``peft``: LoRA adapters on any model slot.

``peft.method=lora peft.r=8 peft.alpha=16 peft.dropout=0.05 peft.target_modules=[q_proj,v_proj]``
wraps the slot's model when it is built (``engine_model_built``, after ``init_from`` loaded the base):

- only the adapters (and ``modules_to_save``) train; the base weights are frozen;
- the model becomes an `AdaptedModel`: called like the model, its other attributes forwarded to it
  (``generate`` …); its ``state_dict`` (so every checkpoint and ``model.safetensors``) holds the adapter
  weights only, and loading one keeps the base weights the model was built with. The base is rebuilt
  from the run's config: the model's parameters and ``init_from`` / ``weights`` (or the pretrained
  directory a Hugging Face component loads). With none of these (a base trained nowhere else) the
  base weights are saved too (``peft.save_base``);
- ``merged()`` returns the plain model with the adapters merged into its weights (peft's
  ``merge_and_unload``): what ``engine deploy`` exports (the ``MergesAdapters`` protocol).

Targets are layer names (``q_proj`` adapts every layer called so, as in peft), glob patterns on the
model's module names (the rule of ``freeze``, `engine.tasks.matches`) or ``all-linear``.
"""

from __future__ import annotations

import copy
import re
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import torch
from torch import nn

from engine import ConfigError, did_you_mean
from engine.tasks import matches

__all__ = ["AdaptedModel", "adapt_model", "adaptable_layers", "count_parameters", "select_targets"]

#: Layer types ``peft`` LoRA adapts (transformers' GPT-2 ``Conv1D`` is matched by name: transformers is optional).
_LAYERS: tuple[type[nn.Module], ...] = (nn.Linear, nn.Embedding, nn.Conv1d, nn.Conv2d, nn.Conv3d)


def _adaptable(module: nn.Module) -> bool:
    return isinstance(module, _LAYERS) or type(module).__name__ == "Conv1D"


def adaptable_layers(model: nn.Module) -> list[str]:
    """Names of the layers LoRA can adapt, in order; linear layers inside ``nn.MultiheadAttention`` are left out
    (it reads their weights directly, never calling them, so an adapter there would do nothing)."""
    inside_mha = {
        f"{name}.{child}" if name else child
        for name, module in model.named_modules()
        if isinstance(module, nn.MultiheadAttention)
        for child, _ in module.named_modules()
        if child
    }
    return [n for n, m in model.named_modules() if n and n not in inside_mha and _adaptable(m)]


def _target_matches(name: str, target: str) -> bool:
    return name == target or name.endswith("." + target) or matches(name, [target])


def select_targets(model: nn.Module, targets: Sequence[str], where: str = "peft") -> list[str]:
    """Full names of the layers ``targets`` select; a ConfigError (did-you-mean) for a target matching none."""
    layers = adaptable_layers(model)
    if list(targets) == ["all-linear"]:
        linear = [n for n in layers if isinstance(model.get_submodule(n), nn.Linear) or _conv1d(model, n)]
        chosen = linear[:-1]  # the last one is the output head (the vocabulary, the classes)
        if not chosen:
            raise ConfigError(f"{where}.target_modules=all-linear: the model has no linear layer besides its output")
        return chosen
    chosen: list[str] = []
    for target in targets:
        found = [n for n in layers if _target_matches(n, target)]
        if not found:
            names = sorted({n.rsplit(".", 1)[-1] for n in layers})
            modules = [n for n, _ in model.named_modules() if n]
            guess = did_you_mean(target, names + modules)
            raise ConfigError(
                f"{where}.target_modules: '{target}' matches no layer of the model{guess}",
                hint=f"its adaptable layers are called: {', '.join(names[:12])}"
                + (" …" if len(names) > 12 else "")
                + " (names, globs such as 'blocks.*.attn.qkv', or all-linear)",
            )
        chosen += [n for n in found if n not in chosen]
    return chosen


def _conv1d(model: nn.Module, name: str) -> bool:
    return type(model.get_submodule(name)).__name__ == "Conv1D"


def count_parameters(model: nn.Module) -> tuple[int, int]:
    """(trainable, total) parameters of ``model``, shared tensors counted once."""
    seen: dict[int, nn.Parameter] = {id(p): p for p in model.parameters()}
    total = sum(p.numel() for p in seen.values())
    return sum(p.numel() for p in seen.values() if p.requires_grad), total


class AdaptedModel(nn.Module):
    """A model with LoRA adapters: called like it, saved as its adapters only, merged for export.

    The model itself (``net``) is changed in place by peft (its target layers wrapped); peft's
    ``PeftModel`` is kept beside it (not a submodule) for merging.
    """

    def __init__(self, net: nn.Module, peft_model: nn.Module, info: dict[str, Any], save_base: bool) -> None:
        super().__init__()
        self.net = net
        self.__dict__["_peft"] = peft_model
        self.peft_info = info
        self.save_base = save_base
        self.adapter_keys = {f"net.{n}" for n, p in net.named_parameters() if p.requires_grad}
        self.register_state_dict_post_hook(_adapters_only)
        self.register_load_state_dict_pre_hook(_keep_base)

    def forward(self, *args: Any, **kwargs: Any) -> Any:
        return self.net(*args, **kwargs)

    def __getattr__(self, name: str) -> Any:
        try:
            return super().__getattr__(name)
        except AttributeError:
            if name.startswith("_") or "net" not in self._modules:
                raise
            return getattr(self._modules["net"], name)  # the model's own methods and attributes (generate …)

    def merged(self) -> nn.Module:
        """A copy of the model with the adapters merged into its weights (peft's ``merge_and_unload``), eval mode."""
        peft_model = copy.deepcopy(self.__dict__["_peft"])
        return peft_model.merge_and_unload().eval()

    def adapter_state_dict(self) -> dict[str, torch.Tensor]:
        """The adapters' tensors (what checkpoints hold), keys as in ``state_dict``."""
        return {k: v for k, v in self.state_dict().items() if k in self.adapter_keys}


def _adapters_only(module: AdaptedModel, state: dict[str, Any], prefix: str, local_metadata: Any) -> None:
    """``state_dict`` hook: drop the frozen base weights (unless they are saved: ``peft.save_base``)."""
    if module.save_base:
        return
    for key in [k for k in state if k.startswith(prefix) and k[len(prefix) :] not in module.adapter_keys]:
        del state[key]


def _keep_base(
    module: AdaptedModel,
    state: dict[str, Any],
    prefix: str,
    local_metadata: Any,
    strict: bool,
    missing: list[str],
    unexpected: list[str],
    errors: list[str],
) -> None:
    """``load_state_dict`` pre-hook: base weights absent from a checkpoint of adapters keep the built ones."""
    own = nn.Module.state_dict(module.net, prefix=prefix + "net.", keep_vars=True)
    for key, value in own.items():
        if key[len(prefix) :] not in module.adapter_keys:  # missing adapters stay missing (an error when strict)
            state.setdefault(key, value.detach())


# --------------------------------------------------------------------------- building


def _pretrained_dir(model: nn.Module) -> str | None:
    """The local directory a Hugging Face model inside ``model`` was loaded from (its ``name_or_path``), if any."""
    for module in model.modules():
        path = getattr(module, "name_or_path", None)
        if isinstance(path, str) and path and Path(path).expanduser().is_dir():
            return path
    return None


def adapt_model(
    model: nn.Module, settings: Mapping[str, Any], slot: str, keys: Mapping[str, Any] | None = None
) -> AdaptedModel:
    """``model`` with the ``peft`` section's adapters (``settings``), its base frozen."""
    if not isinstance(model, nn.Module):
        raise ConfigError(f"peft needs an nn.Module in slot '{slot}', the component built {type(model).__name__}")
    if isinstance(model, AdaptedModel):
        raise ConfigError(f"{slot} already has adapters", hint="set peft once")
    from peft import LoraConfig, get_peft_model

    targets = settings.get("target_modules") or ["all-linear"]
    targets = [targets] if isinstance(targets, str) else list(targets)
    chosen = select_targets(model, targets)
    layers = {n for n, _ in model.named_modules()}
    to_save = []
    for pattern in settings.get("modules_to_save") or []:
        found = [n for n in layers if n and (_target_matches(n, pattern))]
        if not found:
            raise ConfigError(
                f"peft.modules_to_save: '{pattern}' matches no module of the model"
                f"{did_you_mean(pattern, sorted(n.rsplit('.', 1)[-1] for n in layers if n))}"
            )
        to_save += [n for n in found if not any(n.startswith(o + ".") for o in found if o != n)]
    total_before = count_parameters(model)[1]
    config = LoraConfig(
        r=int(settings.get("r", 8)),
        lora_alpha=float(settings.get("alpha", 16.0)),
        lora_dropout=float(settings.get("dropout", 0.05)),
        target_modules="^(" + "|".join(re.escape(n) for n in chosen) + ")$",
        bias=settings.get("bias", "none"),
        modules_to_save=sorted(set(to_save)) or None,
    )
    peft_model = get_peft_model(model, config)
    net = peft_model.get_base_model()  # the model itself, its target layers now wrapped
    _no_fast_path(net, chosen)
    keys = keys or {}
    base = {k: str(keys[k]) for k in ("init_from", "weights") if keys.get(k)}
    if _pretrained_dir(net):
        base["pretrained"] = str(_pretrained_dir(net))
    save_base = settings.get("save_base")
    if save_base is None:
        save_base = not base
    trainable, total = count_parameters(net)
    info = {
        "method": "lora",
        "r": config.r,
        "alpha": config.lora_alpha,
        "dropout": config.lora_dropout,
        "slot": slot,
        "target_modules": targets,
        "adapted_layers": len(chosen),
        "trainable_params": trainable,
        "total_params": total,
        "base_params": total_before,
        "trainable_fraction": round(trainable / max(total, 1), 6),
        "base_saved": bool(save_base),
        "base": base,  # what rebuilds the base weights (besides the model's settings in config.yaml)
    }
    print(
        f"peft: LoRA r={config.r} on {len(chosen)} layers of {slot}: {trainable:,} of {total:,} parameters train "
        f"({100 * trainable / max(total, 1):.2f} %)",
        file=sys.stderr,
    )
    return AdaptedModel(net, peft_model, info, bool(save_base))


def _no_fast_path(net: nn.Module, adapted: list[str]) -> None:
    """Keep torch's transformer layers holding adapters off their fused inference path, which reads the layers'
    weights directly (an adapter would be ignored in eval mode): a (no-op) forward pre-hook disables it."""
    for name, module in net.named_modules():
        if isinstance(module, (nn.TransformerEncoderLayer, nn.TransformerDecoderLayer)):
            if any(a.startswith(f"{name}.") for a in adapted):
                module.register_forward_pre_hook(_pass)


def _pass(module: nn.Module, args: Any) -> None:
    """A forward pre-hook doing nothing (its presence is what counts)."""


def peft_reports(module: nn.Module) -> dict[str, Any]:
    """What ``peft`` did to the models inside ``module`` (for summary.json), by slot."""
    return {m.peft_info["slot"]: dict(m.peft_info) for m in module.modules() if isinstance(m, AdaptedModel)}
