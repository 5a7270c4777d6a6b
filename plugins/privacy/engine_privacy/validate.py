"""Can Opacus train this built model with DP-SGD? Opacus' own validators, reported as one clear error.

This is the check on the real module, when training starts; `engine_privacy.static` refuses
the models it can recognise from their source already at ``--dry-run``.
"""

from __future__ import annotations

from torch import nn

from engine import ConfigError

_FIXES = {
    "BatchNorm": "use GroupNorm or LayerNorm (model.norm=group where the model has that option; "
    "opacus.validators.ModuleValidator.fix(model) shows the replacement)",
    "LSTM": "use Opacus' DPLSTM (opacus.layers), a drop-in replacement",
    "GRU": "use Opacus' DPGRU (opacus.layers), a drop-in replacement",
    "RNN": "use Opacus' DPRNN (opacus.layers), a drop-in replacement",
    "MultiheadAttention": "use Opacus' DPMultiheadAttention, or attention built from nn.Linear layers",
}


def problems(module: nn.Module) -> list[tuple[str, str]]:
    """``(where, why)`` for every trainable layer Opacus cannot compute per-sample gradients for."""
    from opacus.utils.module_utils import trainable_modules
    from opacus.validators import ModuleValidator

    found: list[tuple[str, str]] = []
    for name, sub in trainable_modules(module):
        where = f"{name or 'the model'} ({type(sub).__name__})"
        validator = ModuleValidator.VALIDATORS.get(type(sub))
        for error in validator(sub) if validator is not None else []:
            found.append((where, _first_sentence(str(error))))
        if validator is None and any(True for _ in sub.buffers()):
            found.append((where, "a trainable layer with buffers (running statistics), which Opacus does not support"))
    return found


def check_trainable(module: nn.Module, where: str = "privacy") -> None:
    """Raise `ConfigError` naming the first layer DP-SGD cannot train, why, and the fix."""
    found = problems(module)
    if not found:
        return
    layer, why = found[0]
    more = f" (and {len(found) - 1} more)" if len(found) > 1 else ""
    kind = layer.rsplit("(", 1)[-1].rstrip(")")
    fix = next((f for key, f in _FIXES.items() if key in kind), "replace the layer (see Opacus' ModuleValidator)")
    raise ConfigError(f"{where}: Opacus cannot train {layer}{more} with DP-SGD: {why}", hint=fix)


def _first_sentence(text: str) -> str:
    head = text.split(". ", 1)[0].strip()
    return head.rstrip(".")
