"""The parameter reader's interface: a declaration's parameters (read from source), and values checked against them."""

from __future__ import annotations

from collections.abc import Collection
from pathlib import Path
from typing import Any

from engine._config.signature import REQUIRED, Param, Signature, Unevaluated, read_signature, signature_from_object
from engine._config.types import EXISTING_PATH, check_type, nonfinite
from engine._config.types import describe as describe_annotation
from engine._contract.declarations import INJECTED, Component, Section
from engine._contract.errors import ConfigError, PluginError, did_you_mean

_READ: dict[tuple[str, str, str], Signature | None] = {}  # read from source
_IMPORTED: dict[tuple[str, str, str], Signature] = {}  # read by importing the target


def signature_of(entry: Component | Section) -> Signature | None:
    """The user-settable parameters of ``entry``, read from source (torch-free); None when unreadable."""
    key = (entry.kind, entry.qualified_name, entry.target_text)
    if key not in _READ:
        sig = read_signature(entry.target) if isinstance(entry.target, str) else signature_from_object(entry.target)
        _READ[key] = None if sig is None else _without_injected(entry, sig)
    return _READ[key]


def load_signature(entry: Component | Section) -> Signature:
    """The parameters of ``entry``, importing the target when its source could not be read."""
    sig = signature_of(entry)
    if sig is not None:
        return sig
    key = (entry.kind, entry.qualified_name, entry.target_text)
    if key not in _IMPORTED:
        _IMPORTED[key] = _without_injected(entry, signature_from_object(entry.load()))
    return _IMPORTED[key]


def _without_injected(entry: Component | Section, sig: Signature) -> Signature:
    hidden = set(INJECTED.get(entry.kind, ())) | (set(entry.slots) if isinstance(entry, Component) else set())
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
    """Every key the slot-key ``sections`` of one kind add (``model.freeze`` …), with its section; no key twice."""
    owners: dict[str, Section] = {}
    for section in sections:
        for name in load_signature(section).names:
            other = owners.setdefault(name, section)
            if other.plugin != section.plugin:
                raise PluginError(
                    f"plugin '{section.plugin}' adds the key '{name}' to {section.slot_kind} slots, "
                    f"which plugin '{other.plugin}' already adds",
                    hint="rename the key",
                )
    return owners


def describe(value: Any) -> str:
    """A value as a message shows it: its repr clipped to ~60 characters and its type (or: not a finite number)."""
    if isinstance(value, (float, str)) and nonfinite(value, text=True):
        return f"{clip(str(value).strip())} (not a finite number)"
    return f"{clip(repr(value))} ({type(value).__name__})"


def clip(text: Any, width: int = 60) -> str:
    """``text`` cut to ``width`` characters with ``…``: a message never echoes a huge value whole."""
    text = str(text)
    return text if len(text) <= width else text[: width - 1] + "…"


def check_params(
    where: str,
    label: str,
    values: dict[str, Any],
    sig: Signature | None,
    extra: dict[str, Param] | None = None,
    provided: Collection[str] = frozenset(),
) -> dict[str, Any]:
    """``values`` (at config path ``where``) checked against ``sig`` (None: anything goes), defaults filled in.

    ``label`` names the component in messages, ``extra`` are parameters besides the signature's,
    ``provided`` the ones the data will supply.
    """
    params = {p.name: p for p in (sig.params if sig else ())} | (extra or {})
    out: dict[str, Any] = {}
    for key, value in values.items():
        p = params.get(key)
        if p is None and sig is not None and not sig.open:
            names = list(params)
            takes = ", ".join(names[:12]) + (", …" if len(names) > 12 else "")
            raise ConfigError(
                f"unknown parameter '{clip(f'{where}.{key}')}' for {label}{did_you_mean(str(key), params)}",
                hint=f"{label} takes: {takes or 'no parameters'}",
            )
        if p is not None and isinstance(value, str) and nonfinite(value, True):  # ``x=inf`` reads as text:
            value = float(value) if check_type(float(value), p.annotation) else value  # a float where one is allowed
        if p is not None and not check_type(value, p.annotation):
            raise ConfigError(f"{where}.{key} must be {describe_annotation(p.annotation)}, got {describe(value)}")
        out[key] = value
    for name, p in params.items() if sig is not None else ():
        if name in out or name in provided or isinstance(p.default, Unevaluated):
            continue
        if p.default is REQUIRED:
            raise ConfigError(
                f"{label} needs parameter '{name}'" + (f" ({p.annotation})" if p.annotation else ""),
                hint=f"set {where}.{name}=...",
            )
        out[name] = _plain(p.default)
    return out


def check_paths(where: str, sig: Signature | None, values: dict[str, Any]) -> None:
    """Paths declared ``Annotated[str, "existing_path"]`` exist: a missing file is refused before torch is imported."""
    for p in sig.params if sig else ():
        value = values.get(p.name)
        if isinstance(value, str) and EXISTING_PATH in (p.annotation or "") and not Path(value).expanduser().exists():
            raise ConfigError(f"{where}.{p.name}: no such file or directory: {clip(value, 200)}", hint="check the path")


def _plain(value: Any) -> Any:
    """Defaults as config data: tuples become lists (YAML and OmegaConf have no tuples)."""
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    return value
