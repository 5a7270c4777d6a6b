"""Named components: kind, qualified name (``vision.resnet``, recipes ``vision/digits``), owning plugin, lazy target.

A short name resolves when one plugin declares it, or to the core's own (``adamw`` is the built-in).
"""

from __future__ import annotations

import fnmatch
import sys
from collections.abc import Iterable, Mapping
from typing import Any

from engine._contract.declarations import HOOKS, KINDS, NAME, Component, Recipe, Section
from engine._contract.errors import ConfigError, PluginError, did_you_mean
from engine._plugins.contributions import shown
from engine._plugins.manager import CORE, PluginManager

#: Config keys the core composes itself; no plugin's section may take them.
CORE_KEYS = ("task", "data", "seed", "trainer")

Entry = Component | Recipe | Section


class Registry:
    """Every component the enabled plugins declare, indexed by kind and name."""

    def __init__(self, manager: PluginManager) -> None:
        self.manager = manager
        self._by_kind: dict[str, dict[str, Entry]] = {k: {} for k in KINDS}
        self._aliases: dict[tuple[str, str], str] = {}  # (kind, an old name: Component(aliases=...)) -> the name
        self._warned: set[str] = set()
        sections: dict[str, list[Entry]] = {name: [] for name in CORE_KEYS}  # config keys: one plugin holds each
        for kind in KINDS:
            for info, declared in manager.call(HOOKS[kind]):
                try:
                    entries = self._check(kind, info.name, declared)
                except PluginError as exc:
                    manager.mark_broken(info, exc.message)
                    continue
                for entry in entries:
                    bound = entry.bind(kind, info.name, info.distribution, info.version)
                    if kind == "section" and bound.slot_kind is None:
                        sections.setdefault(bound.name, []).append(bound)
                        continue
                    self._by_kind[kind][bound.qualified_name] = bound
                    for old in getattr(bound, "aliases", ()):
                        self._aliases.setdefault((kind, old), bound.qualified_name)
        self._settle(sections)

    def _settle(self, sections: dict[str, list[Entry]]) -> None:
        """Each config section to the plugin `PluginManager.rank` says keeps it; the others are broken."""
        for name, claims in sections.items():
            owners = {e.plugin for e in claims if self.manager.is_ok(e.plugin)} | (
                {CORE} if name in CORE_KEYS else set()
            )
            holder = min(owners, key=lambda p: self.manager.rank(p, name), default=None)
            for entry in claims:
                if entry.plugin != holder and self.manager.is_ok(entry.plugin):
                    lost = self.manager.lost("config section", name, holder, entry.plugin)  # type: ignore[arg-type]
                    self.manager.mark_broken(self.manager.plugins[entry.plugin], lost)
                elif entry.plugin == holder:
                    self._by_kind["section"][entry.qualified_name] = entry

    def _entries(self, kind: str) -> dict[str, Entry]:
        """The entries of ``kind`` whose plugin works *now* (one found broken later loses them all)."""
        entries = self._by_kind[kind]
        if all(self.manager.is_ok(e.plugin) for e in entries.values()):
            return entries
        return {q: e for q, e in entries.items() if self.manager.is_ok(e.plugin)}

    @staticmethod
    def _check(kind: str, plugin: str, declared: Any) -> list[Entry]:
        single = isinstance(declared, (Component, Recipe, Section))
        expected = {"recipe": Recipe, "section": Section}.get(kind, Component)
        listed = isinstance(declared, Iterable) and not isinstance(declared, (str, bytes, Mapping))
        entries = [] if declared is None else [declared] if single else list(declared) if listed else [declared]
        if not all(isinstance(entry, expected) for entry in entries):
            raise PluginError(f"{HOOKS[kind]} returned {shown(declared)}, expected {expected.__name__} declarations")
        for i, entry in enumerate(entries):
            if not NAME.match(entry.name):
                raise PluginError(f"{kind} name {entry.name!r} is not a valid name (letters, digits, _ and -)")
            if entry.name in {e.name for e in entries[:i]}:
                raise PluginError(f"plugin '{plugin}' declares the {kind} '{entry.name}' twice")
        return entries

    def list(self, kind: str | None = None, pattern: str | None = None) -> list[Entry]:
        """Components of ``kind`` (all kinds if None) whose name matches a glob ``pattern``."""
        out: list[Entry] = []
        for k in [kind] if kind else KINDS:
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
        if (kind, name) in self._aliases and self._aliases[(kind, name)] in entries:
            return self._deprecated(name, entries[self._aliases[(kind, name)]])
        matches = [e for e in entries.values() if e.name == name]
        core = [e for e in matches if e.plugin == CORE]  # the core's own win a short name
        if core or len(matches) == 1:
            return (core or matches)[0]
        if matches:
            candidates = ", ".join(sorted(e.qualified_name for e in matches))
            raise ConfigError(
                f"{kind} name '{name}' is ambiguous: {candidates}",
                hint=f"use the qualified name (plugin{'/' if kind == 'recipe' else '.'}name)",
            )
        choices = {*entries, *(e.name for e in entries.values())}
        shown = name if len(name) <= 60 else name[:59] + "…"  # a name is echoed, never a huge one whole
        raise ConfigError(f"unknown {kind} '{shown}'{did_you_mean(name, choices)}", hint=self._why_missing(name, kind))

    def _why_missing(self, name: str, kind: str) -> str:
        """The hint for an unknown name: its plugin is broken or disabled, else where to look."""
        owner = next((p for p in self.manager.infos() if name.startswith((p.name + ".", p.name + "/"))), None)
        if owner is not None and owner.status == "broken":
            return f"the plugin '{owner.name}' is broken: {owner.error}"
        if owner is not None and owner.status == "disabled":
            how = f"`engine plugins enable {owner.name}`"
            if owner.name in self.manager.disabled_now:
                how = f"drop --disable {owner.name} / ENGINE_DISABLE_PLUGINS"
            return f"the plugin '{owner.name}' ({owner.distribution}) is disabled: enable it with {how}"
        return f"see `engine components list --kind {kind}`"

    def plugins(self) -> list[Any]:
        """Every plugin (name, distribution, version, status, error, hooks), the core first, then by name."""
        return self.manager.infos()

    def sections(self, slot_kind: str | None = None) -> list[Section]:
        """Config sections (``slot_kind=None``), or the slot-key sections of one component kind."""
        return [s for s in self.list("section") if s.slot_kind == slot_kind]  # type: ignore[union-attr]

    def _deprecated(self, old: str, entry: Entry) -> Entry:
        """``entry``, found by a name it had before; said once per process on stderr."""
        if old not in self._warned:
            self._warned.add(old)
            now = f"{entry.kind} '{old}' is now '{entry.qualified_name}' ({entry.distribution})"
            print(f"warning: {now}; the old name will be removed in a future version", file=sys.stderr)
        return entry


_REGISTRIES: dict[tuple[str, ...], Registry] = {}
#: The plugins the running command disabled (``engine --disable NAME ...``): every registry the
#: process builds without naming its own set, e.g. when a run is reopened, leaves them out too.
_DEFAULT_DISABLE: list[tuple[str, ...]] = [()]


def get_registry(disable: tuple[str, ...] | None = None, *, fresh: bool = False) -> Registry:
    """The registry of every enabled plugin's components, built once per ``disable`` set (None: the command's)."""
    key = tuple(sorted(_DEFAULT_DISABLE[0] if disable is None else disable))
    if fresh or key not in _REGISTRIES:
        _REGISTRIES[key] = Registry(PluginManager(disable=key))
    return _REGISTRIES[key]


def use_disabled(disable: tuple[str, ...]) -> None:
    """Make ``disable`` the process's default plugin set for `get_registry`."""
    _DEFAULT_DISABLE[0] = tuple(sorted(disable))


def clear_registries() -> None:
    """Forget built registries and the default disabled set (tests, ``fresh`` reloads)."""
    _REGISTRIES.clear()
    _DEFAULT_DISABLE[0] = ()
