"""The parameter reader's one interface: what a declaration's parameters are, and checking values against them.

Parameters are read from the target's source without importing it (:mod:`engine._config.signature`),
and their annotations checked as text (:mod:`engine._config.types`); the rest of the engine asks only
this module: :func:`signature_of`, :func:`load_signature`, :func:`check_params`, :func:`slot_keys`.
"""

from __future__ import annotations

from collections.abc import Collection
from typing import Any

from engine._config.signature import REQUIRED, Param, Signature, Unevaluated, read_signature, signature_from_object
from engine._config.types import check_type
from engine._config.types import describe as describe_annotation
from engine._contract.declarations import INJECTED, Component, Section
from engine._contract.errors import ConfigError, PluginError, did_you_mean

__all__ = [
    "REQUIRED",
    "Param",
    "Signature",
    "check_arguments",
    "check_params",
    "describe",
    "describe_annotation",
    "load_signature",
    "section_values",
    "signature_of",
    "slot_keys",
]

_READ: dict[tuple[str, str, str], Signature | None] = {}  # read from source
_IMPORTED: dict[tuple[str, str, str], Signature] = {}  # read by importing the target


def _key(entry: Component | Section) -> tuple[str, str, str]:
    return entry.kind, entry.qualified_name, entry.target_text


def signature_of(entry: Component | Section) -> Signature | None:
    """The user-settable parameters of ``entry``, read from source (torch-free); None when unreadable."""
    key = _key(entry)
    if key not in _READ:
        sig = read_signature(entry.target) if isinstance(entry.target, str) else signature_from_object(entry.target)
        _READ[key] = _without_injected(entry, sig)
    return _READ[key]


def load_signature(entry: Component | Section) -> Signature:
    """The parameters of ``entry``, importing the target when its source could not be read."""
    sig = signature_of(entry)
    if sig is not None:
        return sig
    key = _key(entry)
    if key not in _IMPORTED:
        imported = _without_injected(entry, signature_from_object(entry.load()))
        assert imported is not None
        _IMPORTED[key] = imported
    return _IMPORTED[key]


def _without_injected(entry: Component | Section, sig: Signature | None) -> Signature | None:
    if sig is None:
        return None
    hidden = set(INJECTED.get(entry.kind, ()))
    if isinstance(entry, Component):
        hidden |= set(entry.slots)
    return Signature(tuple(p for p in sig.params if p.name not in hidden), sig.open)


def check_arguments(function: Any, values: dict[str, Any], where: str, skip: int = 0) -> dict[str, Any]:
    """``values`` checked against an imported callable's parameters after the first ``skip`` (see ``engine``)."""
    sig = signature_from_object(function)
    name = getattr(function, "__qualname__", repr(function))
    return check_params(where, f"{name}()", values, Signature(sig.params[skip:], sig.open))


def section_values(section: Section, values: dict[str, Any], where: str | None = None) -> dict[str, Any]:
    """A section's values checked against its dataclass, defaults filled in."""
    return check_params(where or section.name, f"the {where or section.name} section", values, load_signature(section))


def slot_keys(sections: list[Section]) -> dict[str, Section]:
    """Every key the slot-key ``sections`` of one component kind add (``model.freeze`` …), with its section.

    Two plugins adding the same key is refused, both named (the later one is the one to fix).
    """
    owners: dict[str, Section] = {}
    for section in sections:
        for name in load_signature(section).names:
            other = owners.get(name)
            if other is not None and other.plugin != section.plugin:
                raise PluginError(
                    f"plugin '{section.plugin}' adds the key '{name}' to {section.slot_kind} slots, "
                    f"which plugin '{other.plugin}' already adds",
                    hint="rename the key",
                )
            owners.setdefault(name, section)
    return owners


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
