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

from engine.component import INJECTED, KINDS, Component, Recipe, Section
from engine.errors import ConfigError, PluginError, did_you_mean
from engine.plugins import CORE, PluginManager
from engine.signature import Signature, read_signature, signature_from_object

#: Config keys the core composes itself; no plugin's section may take them.
CORE_KEYS = ("task", "data", "seed", "trainer")

_HOOKS = {
    "task": "engine_tasks",
    "model": "engine_models",
    "loss": "engine_losses",
    "optimizer": "engine_optimizers",
    "scheduler": "engine_schedulers",
    "data": "engine_data_sources",
    "deploy": "engine_deploy_targets",
    "recipe": "engine_recipes",
    "section": "engine_config_sections",
}
_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_\-]*$")

Entry = Component | Recipe | Section


class Registry:
    """Every component the enabled plugins declare, indexed by kind and name."""

    def __init__(self, manager: PluginManager) -> None:
        self.manager = manager
        self._by_kind: dict[str, dict[str, Entry]] = {k: {} for k in KINDS}
        self._signatures: dict[tuple[str, str], Signature | None] = {}  # read from source
        self._imported: dict[tuple[str, str], Signature] = {}  # read by importing the target
        for kind in KINDS:
            for info, declared in manager.call_each(_HOOKS[kind]):
                try:
                    entries = self._check(kind, info.name, declared)
                    if kind == "section":
                        self._check_sections(info.name, entries)
                except PluginError as exc:
                    manager.mark_broken(info, exc.message)
                    continue
                for entry in entries:
                    bound = entry.bind(kind, info.name, info.distribution, info.version)
                    self._by_kind[kind][bound.qualified_name] = bound

    def _entries(self, kind: str) -> dict[str, Entry]:
        """The entries of ``kind`` whose plugin works *now*: one found broken later (a command that
        clashes, a lifecycle hook that raised) loses every component it declared."""
        entries = self._by_kind[kind]
        if all(self.manager.is_ok(e.plugin) for e in entries.values()):
            return entries
        return {q: e for q, e in entries.items() if self.manager.is_ok(e.plugin)}

    def _check_sections(self, plugin: str, sections: list[Any]) -> None:
        """A section name (or slot key) the core or an earlier plugin has is refused, both owners named."""
        earlier = list(self._by_kind["section"].values())
        taken = {name: "the core" for name in CORE_KEYS} | {
            s.name: f"plugin '{s.plugin}'" for s in earlier if s.slot_kind is None
        }
        for section in sections:
            if section.slot_kind is None and section.name in taken:
                raise PluginError(
                    f"plugin '{plugin}' declares the config section '{section.name}', "
                    f"which {taken[section.name]} already provides",
                    hint="rename the section",
                )
            if section.slot_kind is None:
                continue
            # Slot keys (rare outside the core): read the declarations to compare their keys.
            mine = set(self._keys(section.bind("section", plugin, None, None)))
            for other in earlier:
                clash = mine & set(self._keys(other)) if other.slot_kind == section.slot_kind else set()
                if clash:
                    raise PluginError(
                        f"plugin '{plugin}' adds the key(s) {sorted(clash)} to {section.slot_kind} slots, "
                        f"which plugin '{other.plugin}' already adds",
                        hint="rename the keys",
                    )

    def _keys(self, section: Any) -> list[str]:
        sig = self.signature(section)
        return sig.names if sig is not None else []

    @staticmethod
    def _check(kind: str, plugin: str, declared: Any) -> list[Entry]:
        if declared is None:
            return []
        if isinstance(declared, (Component, Recipe, Section)):
            declared = [declared]
        expected = {"recipe": Recipe, "section": Section}.get(kind, Component)
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
            for q, entry in sorted(self._entries(k).items()):
                names = (q, entry.name, f"{entry.plugin}.{entry.name}")  # recipes match 'vision.*' too
                if pattern is None or any(fnmatch.fnmatch(n, pattern) for n in names):
                    out.append(entry)
        return out

    def names(self, kind: str) -> list[str]:
        return sorted(self._entries(kind))

    def resolve(self, kind: str, name: str) -> Any:
        """The component of ``kind`` called ``name`` (qualified or unambiguous short name)."""
        if kind not in self._by_kind:
            raise ConfigError(f"unknown kind '{kind}'{did_you_mean(kind, KINDS)}")
        entries = self._entries(kind)
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
        raise ConfigError(message, hint=self._why_missing(name, kind))

    def _why_missing(self, name: str, kind: str) -> str:
        """The hint for an unknown name: its plugin is broken or disabled, else where to look."""
        owner = next((p for p in self.manager.infos() if name.startswith((p.name + ".", p.name + "/"))), None)
        if owner is not None and owner.status == "broken":
            return f"the plugin '{owner.name}' is broken: {owner.error}"
        if owner is not None and owner.status == "disabled":
            how = (
                f"`engine plugins enable {owner.name}`"
                if owner.name not in self.manager.disabled_now
                else f"drop --disable {owner.name} / ENGINE_DISABLE_PLUGINS"
            )
            return f"the plugin '{owner.name}' ({owner.distribution}) is disabled: enable it with {how}"
        return f"see `engine components list --kind {kind}`"

    def sections(self, slot_kind: str | None = None) -> list[Section]:
        """Config sections (``slot_kind=None``), or the slot-key sections of one component kind."""
        return [s for s in self.list("section") if s.slot_kind == slot_kind]  # type: ignore[union-attr]

    def signature(self, component: Component | Section) -> Signature | None:
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

    def load_signature(self, component: Component | Section) -> Signature:
        """Parameters of ``component``, importing the target when the source was unreadable."""
        sig = self.signature(component)
        if sig is not None:
            return sig
        key = (component.kind, component.qualified_name)
        if key not in self._imported:
            imported = _without_injected(component, signature_from_object(component.load()))
            assert imported is not None
            self._imported[key] = imported
        return self._imported[key]


def _without_injected(component: Component | Section, sig: Signature | None) -> Signature | None:
    if sig is None:
        return None
    hidden = set(INJECTED.get(component.kind, ()))
    if isinstance(component, Component):
        hidden |= set(component.slots)
    return Signature(tuple(p for p in sig.params if p.name not in hidden), sig.open)


# --------------------------------------------------------------------------- the process's registries

_REGISTRIES: dict[tuple[str, ...], Registry] = {}
#: The plugins the running command disabled (``engine --disable NAME ...``): every registry the
#: process builds without naming its own set, e.g. when a run is reopened, leaves them out too.
_DEFAULT_DISABLE: list[tuple[str, ...]] = [()]


def get_registry(disable: tuple[str, ...] | None = None, *, fresh: bool = False) -> Registry:
    """The registry of every enabled plugin's components, built once per ``disable`` set.

    ``disable=None`` means the set the running command was given (see :func:`use_disabled`).
    """
    key = tuple(sorted(_DEFAULT_DISABLE[0] if disable is None else disable))
    if fresh or key not in _REGISTRIES:
        _REGISTRIES[key] = Registry(PluginManager(disable=key))
    return _REGISTRIES[key]


def use_disabled(disable: tuple[str, ...]) -> None:
    """Make ``disable`` the process's default plugin set for :func:`get_registry`."""
    _DEFAULT_DISABLE[0] = tuple(sorted(disable))


def clear_registries() -> None:
    """Forget built registries and the default disabled set (tests, ``fresh`` reloads)."""
    _REGISTRIES.clear()
    _DEFAULT_DISABLE[0] = ()
