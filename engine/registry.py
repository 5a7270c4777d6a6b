"""Named components: kind, qualified name, owning plugin, lazy target.

Names are qualified by plugin: ``vision.resnet`` (recipes: ``vision/digits``).
A short name (``resnet``) resolves when exactly one plugin declares it; the
core's own components win over plugins for short names, so ``adamw`` always
means the built-in. Queries work like timm's ``list_models``::

    >>> reg = engine.get_registry()
    >>> [c.qualified_name for c in reg.list("model", "*res*")]
    ['vision.resnet']
    >>> reg.resolve("model", "resnet").target
    'engine_vision.models:ResNet'
"""

from __future__ import annotations

import fnmatch
import re
from typing import Any

from engine.component import INJECTED, KINDS, Component, Recipe
from engine.errors import ConfigError, PluginError, did_you_mean
from engine.plugins import CORE, PluginManager
from engine.signature import Signature, read_signature, signature_from_object

_HOOKS = {
    "task": "engine_tasks",
    "model": "engine_models",
    "loss": "engine_losses",
    "optimizer": "engine_optimizers",
    "scheduler": "engine_schedulers",
    "data": "engine_data_sources",
    "deploy": "engine_deploy_targets",
    "recipe": "engine_recipes",
}
_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_\-]*$")

Entry = Component | Recipe


class Registry:
    """Every component the enabled plugins declare, indexed by kind and name."""

    def __init__(self, manager: PluginManager) -> None:
        self.manager = manager
        self._by_kind: dict[str, dict[str, Entry]] = {k: {} for k in KINDS}
        self._signatures: dict[tuple[str, str], Signature | None] = {}
        for kind in KINDS:
            for info, declared in manager.call_each(_HOOKS[kind]):
                try:
                    entries = self._check(kind, info.name, declared)
                except PluginError as exc:
                    manager._broken(info, exc.message)
                    continue
                for entry in entries:
                    bound = entry.bind(kind, info.name, info.distribution, info.version)
                    self._by_kind[kind][bound.qualified_name] = bound
        # A plugin found broken while declaring one kind loses all its components.
        broken = {p.name for p in manager.broken()}
        if broken:
            for kind, entries in self._by_kind.items():
                self._by_kind[kind] = {q: e for q, e in entries.items() if e.plugin not in broken}

    @staticmethod
    def _check(kind: str, plugin: str, declared: Any) -> list[Entry]:
        if declared is None:
            return []
        if isinstance(declared, (Component, Recipe)):
            declared = [declared]
        expected = Recipe if kind == "recipe" else Component
        entries: list[Entry] = []
        seen: set[str] = set()
        for entry in declared:
            if not isinstance(entry, expected):
                raise PluginError(f"{_HOOKS[kind]} returned {entry!r}, expected {expected.__name__} declarations")
            if not _NAME.match(entry.name):
                raise PluginError(f"{kind} name {entry.name!r} is not a valid name (letters, digits, _ and -)")
            if entry.name in seen:
                raise PluginError(f"plugin '{plugin}' declares the {kind} '{entry.name}' twice")
            seen.add(entry.name)
            entries.append(entry)
        return entries

    # ------------------------------------------------------------------ queries

    def list(self, kind: str | None = None, pattern: str | None = None) -> list[Entry]:
        """Components of ``kind`` (all kinds if None) whose name matches a glob ``pattern``."""
        kinds = [kind] if kind else list(KINDS)
        out: list[Entry] = []
        for k in kinds:
            for q, entry in sorted(self._by_kind[k].items()):
                if pattern is None or fnmatch.fnmatch(q, pattern) or fnmatch.fnmatch(entry.name, pattern):
                    out.append(entry)
        return out

    def names(self, kind: str) -> list[str]:
        return sorted(self._by_kind[kind])

    def resolve(self, kind: str, name: str) -> Any:
        """The component of ``kind`` called ``name`` (qualified or unambiguous short name)."""
        if kind not in self._by_kind:
            raise ConfigError(f"unknown kind '{kind}'{did_you_mean(kind, KINDS)}")
        entries = self._by_kind[kind]
        if name in entries:
            return entries[name]
        matches = [e for e in entries.values() if e.name == name]
        if len(matches) > 1:
            core = [e for e in matches if e.plugin == CORE]
            if core:
                return core[0]
            candidates = ", ".join(sorted(e.qualified_name for e in matches))
            raise ConfigError(
                f"{kind} name '{name}' is ambiguous: {candidates}",
                hint="use the qualified name (plugin.name)",
            )
        if matches:
            return matches[0]
        choices = list(entries) + [e.name for e in entries.values()]
        message = f"unknown {kind} '{name}'{did_you_mean(name, set(choices))}"
        broken = [p for p in self.manager.broken() if name.startswith(p.name + ".")]
        hint = (
            f"the plugin '{broken[0].name}' is broken: {broken[0].error}"
            if broken
            else f"see `engine components list --kind {kind}`"
        )
        raise ConfigError(message, hint=hint)

    def signature(self, component: Component) -> Signature | None:
        """User-settable parameters of ``component`` (read from source; torch-free).

        Returns None when the source cannot be read statically; :meth:`load_signature`
        imports the target instead.
        """
        key = (component.kind, component.qualified_name)
        if key not in self._signatures:
            if isinstance(component.target, str):
                sig = read_signature(component.target)
            else:
                sig = signature_from_object(component.target)
            self._signatures[key] = _without_injected(component, sig)
        return self._signatures[key]

    def load_signature(self, component: Component) -> Signature:
        """Parameters of ``component``, importing the target when the source was unreadable."""
        sig = self.signature(component)
        if sig is None:
            sig = _without_injected(component, signature_from_object(component.load()))
            self._signatures[(component.kind, component.qualified_name)] = sig
        assert sig is not None
        return sig


def _without_injected(component: Component, sig: Signature | None) -> Signature | None:
    if sig is None:
        return None
    hidden = set(INJECTED.get(component.kind, ())) | set(component.slots)
    return Signature(tuple(p for p in sig.params if p.name not in hidden), sig.open)
