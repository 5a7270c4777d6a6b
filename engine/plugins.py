"""Plugin discovery: entry points, enable/disable, broken-plugin isolation.

Plugins are found through ``importlib.metadata`` entry points in the
``engine.plugins`` group. What it finds is cached (``$ENGINE_CACHE_DIR/plugins.json``)
under a fingerprint of the installed distributions (every ``*.dist-info`` on
``sys.path`` and its ``entry_points.txt``), so a command that only lists or
validates does not pay for importing and scanning package metadata; installing,
removing or reinstalling any distribution changes the fingerprint. Loading a plugin imports only its plugin module (keep
it light); a plugin that fails to import, implements an unknown hook, or raises
in a hook is recorded as *broken* with its error, and everything else keeps
working. ``--disable NAME`` and ``ENGINE_DISABLE_PLUGINS=a,b`` keep a plugin
from being loaded at all.
"""

from __future__ import annotations

import importlib
import json
import os
import sys
import zlib
from collections.abc import Iterable
from dataclasses import dataclass, field
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

    from engine import API_VERSION

    try:
        ok = SpecifierSet(spec).contains(str(API_VERSION))
        why = None if ok else f"supports engine API {spec}, this engine provides API {API_VERSION}"
    except InvalidSpecifier:
        why = f"ENGINE_API = {spec!r} is not a version specifier such as '>=1,<2'"
    if verdicts is not None:
        verdicts[spec] = why
    return why


# --------------------------------------------------------------------------- discovery cache

_CACHE_VERSION = 1


def _fingerprint() -> str:
    """What discovery depends on: the interpreter, the engine API, every distribution on ``sys.path``.

    One ``scandir`` per ``sys.path`` directory and one ``stat`` per distribution: a few
    milliseconds, against tens for importing ``importlib.metadata`` and reading metadata.
    """
    from engine import API_VERSION

    parts = [sys.version, str(API_VERSION)]
    for entry in sys.path:
        try:
            with os.scandir(entry or ".") as it:
                dists = sorted(e.name for e in it if e.name.endswith((".dist-info", ".egg-info")))
        except OSError:  # a zip file, or gone
            try:
                parts.append(f"{entry} {os.stat(entry).st_mtime_ns}")
            except OSError:
                pass
            continue
        parts.append(entry)
        for name in dists:
            try:
                st = os.stat(os.path.join(entry, name, "entry_points.txt"))
                parts.append(f" {name} {st.st_mtime_ns} {st.st_size}")
            except OSError:
                parts.append(f" {name}")
    text = "\n".join(parts).encode()
    return f"{len(text)}-{zlib.crc32(text):08x}-{zlib.adler32(text):08x}"


def _cache_file() -> Any:
    from engine.settings import cache_dir

    return cache_dir() / f"plugins-v{_CACHE_VERSION}.json"


def _scan() -> list[dict[str, Any]]:
    """The ``engine.plugins`` entry points, read with ``importlib.metadata``."""
    from importlib.metadata import entry_points

    found = []
    for ep in sorted(entry_points(group=ENTRY_POINT_GROUP), key=lambda e: e.name):
        dist = getattr(ep, "dist", None)
        found.append(
            {
                "name": ep.name,
                "value": ep.value,
                "dist": dist.name if dist else None,
                "version": dist.version if dist else None,
            }
        )
    return found


def _load(value: str) -> Any:
    """Import an entry point's object, ``module`` or ``module:attr.attr`` (extras ignored)."""
    module, _, attr = value.split("[", 1)[0].partition(":")
    obj: Any = importlib.import_module(module.strip())
    for part in filter(None, attr.strip().split(".")):
        obj = getattr(obj, part)
    return obj


class _DiscoveryCache:
    """The entry points and ``ENGINE_API`` verdicts of the current set of distributions.

    The file keeps the last few fingerprints: ``engine`` (script directory first on
    ``sys.path``) and ``python -m engine`` (current directory first) see different paths.
    """

    KEEP = 8

    def __init__(self) -> None:
        self.key = _fingerprint()
        try:
            data = json.loads(_cache_file().read_text(encoding="utf-8"))
            self.known: dict[str, Any] = data if isinstance(data, dict) else {}
        except (OSError, ValueError):
            self.known = {}
        entry = self.known.get(self.key)
        self.dirty = not (isinstance(entry, dict) and {"entry_points", "verdicts"} <= entry.keys())
        if self.dirty:
            entry = {"entry_points": _scan(), "verdicts": {}}
        self.entry_points: list[dict[str, Any]] = entry["entry_points"]
        self.verdicts: dict[str, str | None] = entry["verdicts"]

    def save(self, verdicts: dict[str, str | None]) -> None:
        if not self.dirty and verdicts == self.verdicts:
            return
        from engine.settings import write_json_atomic

        self.known.pop(self.key, None)
        kept = dict(list(self.known.items())[-(self.KEEP - 1) :])
        kept[self.key] = {"entry_points": self.entry_points, "verdicts": verdicts}  # newest last
        try:
            write_json_atomic(_cache_file(), kept)
        except OSError:
            pass  # a read-only cache directory only costs speed


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
        cache = _DiscoveryCache()
        verdicts = dict(cache.verdicts)
        for ep in cache.entry_points:
            name, value = ep["name"], ep["value"]
            info = PluginInfo(name, ep["dist"], ep["version"], value)
            if name in self.disabled:
                info.status = "disabled"
                self.plugins[name] = info
                continue
            if name in self.plugins:
                other = self.plugins[name]
                if other.distribution == info.distribution:
                    continue  # the same distribution seen twice on sys.path
                raise PluginError(
                    f"two distributions provide the plugin '{name}': "
                    f"{other.distribution} {other.version} and {info.distribution} {info.version}",
                    hint=f"uninstall one of them, or disable the name with --disable {name}",
                )
            try:
                obj = _load(value)
            except Exception as exc:
                self._broken(info, f"import of '{value}' failed: {type(exc).__name__}: {exc}")
                continue
            why = check_api(obj, verdicts)
            if why is not None:
                info.status, info.error = "incompatible", why
                self.plugins[name] = info
                continue
            self.register(obj, info)
        cache.save(verdicts)

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
