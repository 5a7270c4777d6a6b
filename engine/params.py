"""Checking a component's (or section's) parameters against its signature: names, types, defaults."""

from __future__ import annotations

from collections.abc import Collection
from typing import Any

from engine.errors import ConfigError, did_you_mean
from engine.signature import REQUIRED, Param, Signature, Unevaluated
from engine.typecheck import check_type
from engine.typecheck import describe as describe_annotation


def describe(value: Any) -> str:
    return f"{value!r} ({type(value).__name__})"


def check_params(
    where: str,
    label: str,
    values: dict[str, Any],
    sig: Signature | None,
    extra: dict[str, Param] | None = None,
    provided: Collection[str] = frozenset(),
) -> dict[str, Any]:
    """Validate ``values`` against ``sig``; return them with defaults filled in.

    ``where`` is the config path (``model``); ``label`` names the component for messages;
    ``extra`` are parameters accepted besides the signature's; ``provided`` names parameters the
    data will supply. ``sig=None`` (parameters unknown) accepts anything.
    """
    params = {p.name: p for p in (sig.params if sig else ())}
    params.update(extra or {})
    out: dict[str, Any] = {}
    for key, value in values.items():
        p = params.get(key)
        if p is None:
            if sig is None or sig.open:
                out[key] = value
                continue
            names = list(params)
            takes = ", ".join(names) if len(names) <= 12 else ", ".join(names[:12]) + ", …"
            raise ConfigError(
                f"unknown parameter '{where}.{key}' for {label}{did_you_mean(key, params)}",
                hint=f"{label} takes: {takes or 'no parameters'}",
            )
        if not check_type(value, p.annotation):
            raise ConfigError(f"{where}.{key} must be {describe_annotation(p.annotation)}, got {describe(value)}")
        out[key] = value
    if sig is not None:
        for name, p in params.items():
            if name in out:
                continue
            if p.default is REQUIRED:
                if name not in provided:
                    raise ConfigError(
                        f"{label} needs parameter '{name}'" + (f" ({p.annotation})" if p.annotation else ""),
                        hint=f"set {where}.{name}=...",
                    )
            elif not isinstance(p.default, Unevaluated) and name not in provided:
                out[name] = _plain(p.default)
    return out


def _plain(value: Any) -> Any:
    """Defaults as config data: tuples become lists (YAML and OmegaConf have no tuples)."""
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    return value
