"""Plugin discovery: entry points, enable/disable, broken-plugin isolation.

Plugins are found through ``importlib.metadata`` entry points in the
``engine.plugins`` group. Loading a plugin imports only its plugin module (keep
it light); a plugin that fails to import, implements an unknown hook, or raises
in a hook is recorded as *broken* with its error, and everything else keeps
working. ``--disable NAME`` and ``ENGINE_DISABLE_PLUGINS=a,b`` keep a plugin
from being loaded at all.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass, field
from importlib.metadata import entry_points
from types import ModuleType
from typing import Any

import pluggy

from engine import hookspecs
from engine.errors import EngineError, PluginError

ENTRY_POINT_GROUP = "engine.plugins"
#: Hooks that look at a user's config: an EngineError they raise is the user's mistake, reported as such.
_USER_FACING = frozenset({"engine_adjust_config", "engine_callbacks"})
CORE = "core"

hookimpl = pluggy.HookimplMarker("engine")


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

    @property
    def label(self) -> str:
        dist = f"{self.distribution} {self.version}" if self.distribution else "no distribution"
        return f"{self.name} ({dist})"


def disabled_from_env() -> set[str]:
    return {n.strip() for n in os.environ.get("ENGINE_DISABLE_PLUGINS", "").split(",") if n.strip()}


def check_api(obj: Any) -> str | None:
    """Why plugin ``obj`` cannot work with this engine, or None.

    A plugin states the engine API versions it supports as a PEP 440 specifier in a
    module attribute, ``ENGINE_API = ">=1,<2"``; no attribute means any version.
    """
    spec = getattr(obj, "ENGINE_API", None)
    if spec is None:
        return None
    from packaging.specifiers import InvalidSpecifier, SpecifierSet

    from engine import API_VERSION

    try:
        ok = SpecifierSet(str(spec)).contains(str(API_VERSION))
    except InvalidSpecifier:
        return f"ENGINE_API = {spec!r} is not a version specifier such as '>=1,<2'"
    return None if ok else f"supports engine API {spec}, this engine provides API {API_VERSION}"


class PluginManager:
    """Loads plugins and calls their hooks one plugin at a time."""

    def __init__(self, disable: Iterable[str] = (), discover: bool = True) -> None:
        self.pm = pluggy.PluginManager("engine")
        self.pm.add_hookspecs(hookspecs)
        self.plugins: dict[str, PluginInfo] = {}
        from engine.settings import disabled_plugins

        self.disabled = set(disable) | disabled_from_env() | disabled_plugins()
        if CORE in self.disabled:
            raise PluginError("the core plugin cannot be disabled")
        from engine import __version__, builtins

        self.register(builtins, PluginInfo(CORE, "engine", __version__, builtins.__name__))
        if discover:
            self.discover()

    # ------------------------------------------------------------------ loading

    def discover(self) -> None:
        """Load every plugin advertised in the ``engine.plugins`` entry-point group."""
        for ep in sorted(entry_points(group=ENTRY_POINT_GROUP), key=lambda e: e.name):
            dist = getattr(ep, "dist", None)
            info = PluginInfo(ep.name, dist.name if dist else None, dist.version if dist else None, ep.value)
            if ep.name in self.disabled:
                info.status = "disabled"
                self.plugins[ep.name] = info
                continue
            if ep.name in self.plugins:
                other = self.plugins[ep.name]
                if other.distribution == info.distribution:
                    continue  # the same distribution seen twice on sys.path
                raise PluginError(
                    f"two distributions provide the plugin '{ep.name}': "
                    f"{other.distribution} {other.version} and {info.distribution} {info.version}",
                    hint=f"uninstall one of them, or disable the name with --disable {ep.name}",
                )
            try:
                obj = ep.load()
            except Exception as exc:
                self._broken(info, f"import of '{ep.value}' failed: {type(exc).__name__}: {exc}")
                continue
            why = check_api(obj)
            if why is not None:
                info.status, info.error = "incompatible", why
                self.plugins[ep.name] = info
                continue
            self.register(obj, info)

    def register(self, obj: Any, info: PluginInfo) -> None:
        """Register a plugin object (module, class instance) under ``info.name``."""
        if info.name in self.plugins and self.plugins[info.name].status != "disabled":
            other = self.plugins[info.name]
            raise PluginError(
                f"two plugins are named '{info.name}': {other.label} and {info.label}",
                hint=f"uninstall one of them, or disable the name with --disable {info.name}",
            )
        try:
            self.pm.register(obj, name=info.name)
            self.pm.check_pending()
        except Exception as exc:
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

    # ------------------------------------------------------------------ calling

    def call_each(self, hook: str, **kwargs: Any) -> list[tuple[PluginInfo, Any]]:
        """Call ``hook`` on each plugin separately; a plugin that raises is marked broken.

        Returns ``(plugin, result)`` pairs in registration order (core first).
        """
        caller = getattr(self.pm.hook, hook)
        results = []
        for impl in reversed(caller.get_hookimpls()):  # pluggy stores LIFO
            info = self.plugins[impl.plugin_name]
            if info.status != "ok":
                continue
            try:
                result = impl.function(*[kwargs[a] for a in impl.argnames])
            except Exception as exc:
                if info.name == CORE or (isinstance(exc, EngineError) and hook in _USER_FACING):
                    raise  # a plugin telling the user what is wrong with their config is not broken
                self._broken(info, f"hook {hook} raised {type(exc).__name__}: {exc}")
                continue
            results.append((info, result))
        return results

    def broken(self) -> list[PluginInfo]:
        return [p for p in self.plugins.values() if p.status == "broken"]

    def module_of(self, name: str) -> ModuleType | Any:
        return self.pm.get_plugin(name)
