"""Plugins: loaded from ``engine.plugins`` entry points, their hooks called through pluggy, guarded.

A hook that raises marks its plugin broken and the call goes on without it; the core's errors and an
EngineError from a lifecycle hook propagate. pluggy calls the core first, then the plugins by name.
"""

from __future__ import annotations

import functools
import inspect
import os
import sys
import time
import types
from collections.abc import Iterable
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any, NamedTuple

import pluggy

from engine._contract import hookspecs
from engine._contract.declarations import NAME, import_object
from engine._contract.errors import EngineError, PluginError
from engine._contract.version import API_VERSION, __version__
from engine._plugins.discovery import ENTRY_POINT_GROUP, DiscoveryCache
from engine._plugins.settings import broken_plugins, disabled_plugins, record_broken

#: Hooks called while a run is composed, built, trained: an EngineError they raise is the user's
#: mistake (the plugin stays ok); any other exception stops the command and is recorded.
LIFECYCLE = frozenset({"engine_adjust_config", "engine_callbacks", "engine_model_built", "engine_datasets_built"})
LIFECYCLE |= {"engine_run_finished", "engine_run_main"}
CORE = "core"
#: The plugin whose hook implementation is running (what a `CommandSink` attributes commands to).
CALLER: ContextVar[str] = ContextVar("engine_hook_caller", default=CORE)

__all__ = ["CORE", "ENTRY_POINT_GROUP", "LIFECYCLE", "PluginInfo", "PluginManager"]


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
    refused: bool = False  # an entry point refused its name (claimed by an earlier distribution, or ``core``)

    @property
    def label(self) -> str:
        dist = f"{self.distribution} {self.version}" if self.distribution else "no distribution"
        return f"{self.name} ({dist})"


class Owned(NamedTuple):
    """A hook implementation's result with the plugin that returned it (see `PluginManager.call`)."""

    plugin: str
    value: Any


def check_api(obj: Any, verdicts: dict[str, str | None] | None = None) -> str | None:
    """Why plugin ``obj`` cannot work with this engine (``ENGINE_API = ">=1,<2"``), or None; ``verdicts`` memoises."""
    if getattr(obj, "ENGINE_API", None) is None:
        return None
    spec, verdicts = str(obj.ENGINE_API), {} if verdicts is None else verdicts
    if spec not in verdicts:
        from packaging.specifiers import InvalidSpecifier, SpecifierSet

        try:
            ok = SpecifierSet(spec).contains(str(API_VERSION))
            verdicts[spec] = None if ok else f"supports engine API {spec}, this engine provides API {API_VERSION}"
        except InvalidSpecifier:
            verdicts[spec] = f"ENGINE_API = {spec!r} is not a version specifier such as '>=1,<2'"
    return verdicts[spec]


def describe(exc: BaseException) -> str:
    """``"ValueError: boom"``, or ``"called sys.exit('bye')"`` for a plugin that tried to end the process."""
    return f"called sys.exit({exc.code!r})" if isinstance(exc, SystemExit) else f"{type(exc).__name__}: {exc}"


class PluginManager:
    """Loads plugins and calls their hooks through pluggy, guarded (see the module docstring)."""

    def __init__(self, disable: Iterable[str] = (), discover: bool = True) -> None:
        self.pm = pluggy.PluginManager("engine")
        self.pm.add_hookspecs(hookspecs)
        self.hook = self.pm.hook
        self.plugins: dict[str, PluginInfo] = {}  # every plugin holding a name, by name
        self.refused: list[PluginInfo] = []  # entry points refused their name: listed, never loaded
        from_env = {n.strip() for n in os.environ.get("ENGINE_DISABLE_PLUGINS", "").split(",") if n.strip()}
        self.disabled_now = set(disable) | from_env  # for this command only
        self.disabled = self.disabled_now | disabled_plugins()
        if CORE in self.disabled:
            raise PluginError("the core plugin cannot be disabled")
        self.recorded = broken_plugins()
        self._trace = bool(os.environ.get("ENGINE_TRACE_HOOKS"))
        if self._trace:
            self.pm.add_hookcall_monitoring(self._before, self._after)
        # pluggy calls the last registered first: plugins in reverse order of name, then the core.
        for obj, info in sorted(self.discover() if discover else [], key=lambda pair: pair[1].name, reverse=True):
            self.register(obj, info)
        self.register(import_object("engine._builtins"), PluginInfo(CORE, "engine", __version__, "engine._builtins"))

    def discover(self) -> list[tuple[Any, PluginInfo]]:
        """Load every plugin advertised in the ``engine.plugins`` entry-point group (not registered yet)."""
        cache = DiscoveryCache()
        verdicts = dict(cache.verdicts)
        loaded = []
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
            self.plugins[name] = info
            if name in self.disabled:
                info.status = "disabled"
                continue
            rec = self.recorded.get(name)  # the failure an earlier command recorded for this very version
            if isinstance(rec, dict) and (rec.get("distribution"), rec.get("version")) == (ep["dist"], ep["version"]):
                retry = f"`engine plugins enable {name}` retries it"
                info.status, info.error = "broken", f"{rec.get('error')} (recorded by an earlier command; {retry})"
                continue
            try:
                obj = import_object(value)
            except (Exception, SystemExit) as exc:
                info.status, info.error = "broken", f"import of '{value}' failed: {describe(exc)}"
                continue
            why = check_api(obj, verdicts)
            if why is not None:
                info.status, info.error = "incompatible", why
                continue
            loaded.append((obj, info))
        cache.save(verdicts)
        return loaded

    @staticmethod
    def _refusal(info: PluginInfo, other: PluginInfo | None) -> str | None:
        """Why ``info`` may not have its name (another distribution holds it, it is reserved), or None."""
        fix = f"uninstall it (`engine plugins uninstall {info.distribution}`)" if info.distribution else "remove it"
        if info.name == CORE:
            return f"the plugin name 'core' is the engine's own; {info.label} cannot use it: {fix}"
        if not NAME.match(info.name):
            return f"'{info.name}' is not a valid plugin name (letters, digits, _ and -): {fix}"
        if other is not None:
            return (
                f"two distributions provide the plugin '{info.name}': {other.label} (installed first, kept) "
                f"and {info.label} (refused); {fix}, or uninstall the other one"
            )
        return None

    def register(self, obj: Any, info: PluginInfo) -> None:
        """Register plugin ``obj`` (a module or object) under ``info.name``, each hook implementation guarded."""
        self.plugins[info.name] = info
        hooks = {name: getattr(obj, name, None) for name in dir(obj) if name.startswith("engine_")}
        guarded = types.SimpleNamespace(**{n: self._guard(info, n, fn) for n, fn in hooks.items() if callable(fn)})
        try:
            self.pm.register(guarded, name=info.name)
            self.pm.check_pending()
        except Exception as exc:
            if info.name == CORE:
                raise
            self._broken(info, f"invalid hooks: {exc}")  # unregisters what was registered
            return
        info.hooks = sorted(h.name for h in self.pm.get_hookcallers(guarded) or [] if h.name.startswith("engine_"))

    def _guard(self, info: PluginInfo, hook: str, fn: Any) -> Any:
        """``fn`` made to record a failure instead of ending the call, and to say which plugin answered."""
        firstresult = hook in ("engine_run_main", "engine_run_collection")
        if inspect.isgeneratorfunction(fn):  # a hook wrapper: a failure before its yield leaves the call alone

            @functools.wraps(fn)
            def wrapper(*args: Any) -> Any:
                gen = fn(*args)
                try:
                    next(gen)
                except StopIteration:
                    return (yield)
                except (Exception, SystemExit) as exc:
                    self._failed(info, hook, exc)
                    return (yield)
                try:  # the rest of the wrapper, unguarded: the inner result (or error) in, its result out
                    try:
                        result = yield
                    except BaseException as exc:
                        gen.throw(exc)
                    else:
                        gen.send(result)
                except StopIteration as stop:
                    return stop.value
                raise RuntimeError("a hook wrapper must not yield twice")

            return wrapper

        @functools.wraps(fn)
        def guarded(*args: Any) -> Any:
            if info.status != "ok":  # broken by an earlier call
                return None
            started = time.perf_counter()
            token = CALLER.set(info.name)
            try:
                value = fn(*args)
            except (Exception, SystemExit) as exc:
                self._failed(info, hook, exc)
                return None
            finally:
                CALLER.reset(token)
                if self._trace:
                    took = (time.perf_counter() - started) * 1000
                    print(f"[hook]   {hook} <- {info.name}: {took:.2f} ms", file=sys.stderr, flush=True)
            return value if value is None or firstresult else Owned(info.name, value)

        return guarded

    def _failed(self, info: PluginInfo, hook: str, exc: BaseException) -> None:
        """A hook raised: the core's and the user's errors propagate, else the plugin is broken (and a run stops)."""
        if info.name == CORE or (isinstance(exc, EngineError) and hook in LIFECYCLE):
            raise exc
        self.mark_broken(info, f"hook {hook} raised {describe(exc)}", record=hook in LIFECYCLE)
        if hook in LIFECYCLE:
            raise PluginError(
                f"plugin '{info.name}' ({info.distribution or 'no distribution'} {info.version or ''}) "
                f"failed in {hook}: {describe(exc)}",
                hint=f"the plugin is marked broken and left out from now on; fix or reinstall it, `engine plugins "
                f"enable {info.name}` to retry it, `engine plugins disable {info.name}` to keep it off",
            ) from exc

    def _before(self, hook: str, impls: list[Any], kwargs: dict[str, Any]) -> None:
        order = ", ".join(reversed([impl.plugin_name for impl in impls])) or "nothing"
        print(f"[hook] {hook}: calling {order}", file=sys.stderr, flush=True)

    def _after(self, outcome: Any, hook: str, impls: list[Any], kwargs: dict[str, Any]) -> None:
        print(f"[hook] {hook}: {'raised' if outcome.exception is not None else 'done'}", file=sys.stderr, flush=True)

    def _broken(self, info: PluginInfo, error: str) -> None:
        info.status, info.error = "broken", error
        self.plugins[info.name] = info
        plugin = self.pm.get_plugin(info.name)
        if plugin is not None:
            self.pm.unregister(plugin)

    def mark_broken(self, info: PluginInfo, error: str, record: bool = False) -> None:
        """Leave a plugin's components, commands and sections out from now on (``record``: in later commands too)."""
        if info.name == CORE:
            raise PluginError(f"the core plugin failed: {error}")
        self._broken(info, error)
        if record:
            record_broken(info.name, info.distribution, info.version, error)

    def call(self, hook: str, **kwargs: Any) -> list[tuple[PluginInfo, Any]]:
        """``pm.hook.<hook>(**kwargs)``: each working plugin's non-None result, in call order, with its plugin."""
        return [(self.plugins[r.plugin], r.value) for r in getattr(self.hook, hook)(**kwargs) if isinstance(r, Owned)]

    def first(self, hook: str, **kwargs: Any) -> Any:
        """``pm.hook.<hook>(**kwargs)`` of a ``firstresult`` hook: the first answer that is not None."""
        return getattr(self.hook, hook)(**kwargs)

    def infos(self) -> list[PluginInfo]:
        """Every plugin, refused entry points included: the core first, then by name."""
        return sorted([*self.plugins.values(), *self.refused], key=lambda p: (p.name != CORE, p.name, p.refused))

    def is_ok(self, name: str) -> bool:
        info = self.plugins.get(name)
        return info is not None and info.status == "ok"
