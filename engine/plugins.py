"""Plugin discovery: entry points, enable/disable, broken-plugin isolation.

Plugins are found through ``importlib.metadata`` entry points in the
``engine.plugins`` group (cached, see :mod:`engine.discovery`); the entry point's
name is the plugin's name. Loading a plugin imports only its plugin module (keep it light).

Nothing a plugin does stops the others: a plugin that fails to import (``sys.exit`` too),
implements an unknown hook or raises in a hook is *broken*: listed with its error, left out,
everything else working. A name two distributions claim goes to the one installed first; the
later one is refused (broken, both named), as is an entry point called ``core``. Hooks are called
core first, then plugins in alphabetical order of name (:meth:`PluginManager.hookimpls`).
``--disable NAME`` and ``ENGINE_DISABLE_PLUGINS=a,b`` keep a plugin from being loaded at all.
"""

from __future__ import annotations

import importlib
import os
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from types import ModuleType
from typing import Any

import pluggy

from engine import hookspecs
from engine.discovery import ENTRY_POINT_GROUP, DiscoveryCache
from engine.errors import EngineError, PluginError
from engine.hookspecs import hookimpl

#: Hooks called while a run is composed and built. An EngineError they raise is the user's
#: mistake (reported, the plugin stays ok); any other exception stops the run and is recorded.
LIFECYCLE = frozenset({"engine_adjust_config", "engine_callbacks"})
CORE = "core"
_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_\-]*$")

__all__ = ["CORE", "ENTRY_POINT_GROUP", "LIFECYCLE", "PluginInfo", "PluginManager", "hookimpl"]


@dataclass
class PluginInfo:
    """What the engine knows of one plugin."""

    name: str
    distribution: str | None
    version: str | None
    module: str
    status: str = "ok"  # ok | broken | incompatible | disabled
    error: str | None = None
    hooks: list[str] = field(default_factory=list)
    #: An entry point refused its name (claimed by an earlier distribution, or ``core``).
    refused: bool = False

    @property
    def label(self) -> str:
        dist = f"{self.distribution} {self.version}" if self.distribution else "no distribution"
        return f"{self.name} ({dist})"


def disabled_from_env() -> set[str]:
    return {n.strip() for n in os.environ.get("ENGINE_DISABLE_PLUGINS", "").split(",") if n.strip()}


def check_api(obj: Any, verdicts: dict[str, str | None] | None = None) -> str | None:
    """Why plugin ``obj`` cannot work with this engine, or None.

    A plugin states the engine API versions it supports as a PEP 440 specifier in a
    module attribute, ``ENGINE_API = ">=1,<2"``; no attribute means any version.
    ``verdicts`` memoises the answer per specifier (the discovery cache keeps it).
    """
    spec = getattr(obj, "ENGINE_API", None)
    if spec is None:
        return None
    spec = str(spec)
    if verdicts is not None and spec in verdicts:
        return verdicts[spec]
    from packaging.specifiers import InvalidSpecifier, SpecifierSet

    from engine.version import API_VERSION

    try:
        ok = SpecifierSet(spec).contains(str(API_VERSION))
        why = None if ok else f"supports engine API {spec}, this engine provides API {API_VERSION}"
    except InvalidSpecifier:
        why = f"ENGINE_API = {spec!r} is not a version specifier such as '>=1,<2'"
    if verdicts is not None:
        verdicts[spec] = why
    return why


def _load(value: str) -> Any:
    """Import an entry point's object, ``module`` or ``module:attr.attr`` (extras ignored)."""
    module, _, attr = value.split("[", 1)[0].partition(":")
    obj: Any = importlib.import_module(module.strip())
    for part in filter(None, attr.strip().split(".")):
        obj = getattr(obj, part)
    return obj


def describe(exc: BaseException) -> str:
    """``"ValueError: boom"``, or ``"sys.exit('bye')"`` for a plugin that tried to end the process."""
    if isinstance(exc, SystemExit):
        return f"called sys.exit({exc.code!r})"
    return f"{type(exc).__name__}: {exc}"


def call_order(name: str) -> tuple[int, str]:
    """Where plugin ``name``'s hook implementations are called: the core first, then by name."""
    return (0, "") if name == CORE else (1, name)


class PluginManager:
    """Loads plugins and calls their hooks one plugin at a time, in :func:`call_order`."""

    def __init__(self, disable: Iterable[str] = (), discover: bool = True) -> None:
        from engine import builtins
        from engine.settings import broken_plugins, disabled_plugins
        from engine.version import __version__

        self.pm = pluggy.PluginManager("engine")
        self.pm.add_hookspecs(hookspecs)
        #: Every plugin holding a name (loaded, disabled, broken, incompatible), by name.
        self.plugins: dict[str, PluginInfo] = {}
        #: Entry points refused their name; listed, never loaded.
        self.refused: list[PluginInfo] = []
        #: Disabled for this command only (``--disable``, ``ENGINE_DISABLE_PLUGINS``), and in all.
        self.disabled_now = set(disable) | disabled_from_env()
        self.disabled = self.disabled_now | disabled_plugins()
        if CORE in self.disabled:
            raise PluginError("the core plugin cannot be disabled")
        self.recorded = broken_plugins()
        self.register(builtins, PluginInfo(CORE, "engine", __version__, builtins.__name__))
        if discover:
            self.discover()

    # ------------------------------------------------------------------ loading

    def discover(self) -> None:
        """Load every plugin advertised in the ``engine.plugins`` entry-point group."""
        cache = DiscoveryCache()
        verdicts = dict(cache.verdicts)
        for ep in cache.entry_points:
            name, value = ep["name"], ep["value"]
            info = PluginInfo(name, ep["dist"], ep["version"], value)
            other = self.plugins.get(name)
            if other is not None and other.distribution == info.distribution:
                continue  # the same distribution seen twice on sys.path
            why = self._refusal(info, other)
            if why is not None:
                info.status, info.error, info.refused = "broken", why, True
                self.refused.append(info)
                continue
            if name in self.disabled:
                info.status = "disabled"
                self.plugins[name] = info
                continue
            recorded = self._recorded_failure(info)
            if recorded is not None:
                info.status = "broken"
                info.error = f"{recorded} (recorded by an earlier command; `engine plugins enable {name}` retries it)"
                self.plugins[name] = info
                continue
            try:
                obj = _load(value)
            except (Exception, SystemExit) as exc:
                self._broken(info, f"import of '{value}' failed: {describe(exc)}")
                continue
            why = check_api(obj, verdicts)
            if why is not None:
                info.status, info.error = "incompatible", why
                self.plugins[name] = info
                continue
            self.register(obj, info)
        cache.save(verdicts)

    def _recorded_failure(self, info: PluginInfo) -> str | None:
        """The failure an earlier command recorded for this very distribution and version, if any."""
        rec = self.recorded.get(info.name)
        if isinstance(rec, dict) and (rec.get("distribution"), rec.get("version")) == (info.distribution, info.version):
            return str(rec.get("error"))
        return None

    @staticmethod
    def _refusal(info: PluginInfo, other: PluginInfo | None) -> str | None:
        """Why ``info`` may not have its name (another distribution holds it, it is reserved), or None."""
        fix = f"uninstall it (`engine plugins uninstall {info.distribution}`)" if info.distribution else "remove it"
        if info.name == CORE:
            return f"the plugin name 'core' is the engine's own; {info.label} cannot use it: {fix}"
        if not _NAME.match(info.name):
            return f"'{info.name}' is not a valid plugin name (letters, digits, _ and -): {fix}"
        if other is not None:
            return (
                f"two distributions provide the plugin '{info.name}': {other.label} (installed first, kept) "
                f"and {info.label} (refused); {fix}, or uninstall the other one"
            )
        return None

    def register(self, obj: Any, info: PluginInfo) -> None:
        """Register a plugin object (module, class instance) under ``info.name``."""
        try:
            self.pm.register(obj, name=info.name)
            self.pm.check_pending()
        except Exception as exc:
            if info.name == CORE:
                raise
            if self.pm.is_registered(obj):
                self.pm.unregister(obj)
            self._broken(info, f"invalid hooks: {exc}")
            return
        info.hooks = sorted(h.name for h in self.pm.get_hookcallers(obj) or [] if h.name.startswith("engine_"))
        self.plugins[info.name] = info

    def _broken(self, info: PluginInfo, error: str) -> None:
        info.status = "broken"
        info.error = error
        self.plugins[info.name] = info
        plugin = self.pm.get_plugin(info.name)
        if plugin is not None:
            self.pm.unregister(plugin)

    def mark_broken(self, info: PluginInfo, error: str, record: bool = False) -> None:
        """Mark a plugin broken: its components, commands and sections are left out from now on.

        ``record`` keeps the verdict for later commands (until the distribution changes or
        ``engine plugins enable NAME``): lifecycle hooks run only in some commands.
        """
        if info.name == CORE:
            raise PluginError(f"the core plugin failed: {error}")
        self._broken(info, error)
        if record:
            from engine.settings import record_broken

            record_broken(info.name, info.distribution, info.version, error)

    # ------------------------------------------------------------------ calling

    def hookimpls(self, hook: str) -> list[tuple[PluginInfo, Any]]:
        """``(plugin, implementation)`` of every working plugin implementing ``hook``, in call order."""
        pairs = [(self.plugins[impl.plugin_name], impl) for impl in getattr(self.pm.hook, hook).get_hookimpls()]
        return sorted((p for p in pairs if p[0].status == "ok"), key=lambda p: call_order(p[0].name))

    def call(self, info: PluginInfo, impl: Any, hook: str, **kwargs: Any) -> tuple[bool, Any]:
        """Call one implementation; ``(False, None)`` when it raised and its plugin was marked broken.

        The core's own errors propagate; so does an :class:`EngineError` from a lifecycle hook (a
        plugin telling the user what is wrong with their config). Any other exception in a
        lifecycle hook marks the plugin broken *and* stops the command with a PluginError naming
        the plugin, the hook and the error: a run never goes on without a hook that failed.
        """
        try:
            return True, impl.function(*[kwargs[a] for a in impl.argnames])
        except (Exception, SystemExit) as exc:
            if info.name == CORE or (isinstance(exc, EngineError) and hook in LIFECYCLE):
                raise
            error = f"hook {hook} raised {describe(exc)}"
            self.mark_broken(info, error, record=hook in LIFECYCLE)
            if hook in LIFECYCLE:
                raise PluginError(
                    f"plugin '{info.name}' ({info.distribution or 'no distribution'} {info.version or ''}) "
                    f"failed in {hook}: {describe(exc)}",
                    hint=f"the plugin is marked broken and left out from now on; fix or reinstall it, `engine plugins "
                    f"enable {info.name}` to retry it, `engine plugins disable {info.name}` to keep it off",
                ) from exc
            return False, None

    def call_each(self, hook: str, **kwargs: Any) -> list[tuple[PluginInfo, Any]]:
        """Call ``hook`` on each working plugin in call order; returns ``(plugin, result)`` pairs.

        A plugin that raises is marked broken (see :meth:`call`) and left out of the results.
        """
        results = []
        for info, impl in self.hookimpls(hook):
            if info.status != "ok":  # broken by an earlier implementation's call in this loop
                continue
            ok, result = self.call(info, impl, hook, **kwargs)
            if ok:
                results.append((info, result))
        return results

    def infos(self) -> list[PluginInfo]:
        """Every plugin, refused entry points included, in call order."""
        every = [*self.plugins.values(), *self.refused]
        return sorted(every, key=lambda p: (*call_order(p.name), p.refused))

    def broken(self) -> list[PluginInfo]:
        return [p for p in self.infos() if p.status == "broken"]

    def is_ok(self, name: str) -> bool:
        info = self.plugins.get(name)
        return info is not None and info.status == "ok"

    def module_of(self, name: str) -> ModuleType | Any:
        return self.pm.get_plugin(name)
