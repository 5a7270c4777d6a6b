"""Plugins: loading them from entry points, calling their hooks through pluggy, isolating the broken.

Plugins are found through ``importlib.metadata`` entry points in the ``engine.plugins`` group
(cached, see :mod:`engine._plugins.discovery`); the entry point's name is the plugin's name. The
core is a plugin too (``engine._builtins``, loaded by name like the others, always first).

Every hook is called by pluggy (``manager.hook.engine_models()``). Each implementation is
registered *guarded*: a plugin that raises, in any hook, is marked broken and left out while the
other implementations of the same call go on; an :class:`EngineError` from a lifecycle hook (the
user's mistake) and any error of the core propagate. Order is pluggy's own: the core is registered
last and plugins in reverse alphabetical order, so pluggy's LIFO calls the core first, then the
plugins by name; ``tryfirst``/``trylast``/``wrapper`` work as in pluggy. ``ENGINE_TRACE_HOOKS=1``
prints each call through pluggy's monitoring API, with each implementation's duration.

A plugin that fails to import (``sys.exit`` too), implements an unknown hook or raises is
*broken*: listed with its error, left out. A name two distributions claim goes to the one installed
first. ``--disable NAME`` and ``ENGINE_DISABLE_PLUGINS=a,b`` keep a plugin from being loaded.
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
from engine._plugins.discovery import ENTRY_POINT_GROUP, DiscoveryCache

#: Hooks called while a command runs (a run composed, built, trained). An EngineError they raise is the
#: user's mistake (reported, the plugin stays ok); any other exception stops the command and is recorded.
LIFECYCLE = frozenset(
    {
        "engine_adjust_config",
        "engine_callbacks",
        "engine_model_built",
        "engine_datasets_built",
        "engine_run_finished",
        "engine_run_main",
    }
)
CORE = "core"
CORE_MODULE = "engine._builtins"
TRACE_ENV = "ENGINE_TRACE_HOOKS"
#: The plugin whose hook implementation is running (what a :class:`CommandSink` attributes commands to).
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
    #: An entry point refused its name (claimed by an earlier distribution, or ``core``).
    refused: bool = False

    @property
    def label(self) -> str:
        dist = f"{self.distribution} {self.version}" if self.distribution else "no distribution"
        return f"{self.name} ({dist})"


class Owned(NamedTuple):
    """A hook implementation's result with the plugin that returned it (see :meth:`PluginManager.call`)."""

    plugin: str
    value: Any


def disabled_from_env() -> set[str]:
    return {n.strip() for n in os.environ.get("ENGINE_DISABLE_PLUGINS", "").split(",") if n.strip()}


def check_api(obj: Any, verdicts: dict[str, str | None] | None = None) -> str | None:
    """Why plugin ``obj`` cannot work with this engine, or None.

    A plugin states the engine API versions it supports as a PEP 440 specifier in a module
    attribute, ``ENGINE_API = ">=1,<2"``; no attribute means any version. ``verdicts`` memoises the
    answer per specifier (the discovery cache keeps it).
    """
    spec = getattr(obj, "ENGINE_API", None)
    if spec is None:
        return None
    spec = str(spec)
    if verdicts is not None and spec in verdicts:
        return verdicts[spec]
    from packaging.specifiers import InvalidSpecifier, SpecifierSet

    from engine._contract.version import API_VERSION

    try:
        ok = SpecifierSet(spec).contains(str(API_VERSION))
        why = None if ok else f"supports engine API {spec}, this engine provides API {API_VERSION}"
    except InvalidSpecifier:
        why = f"ENGINE_API = {spec!r} is not a version specifier such as '>=1,<2'"
    if verdicts is not None:
        verdicts[spec] = why
    return why


def describe(exc: BaseException) -> str:
    """``"ValueError: boom"``, or ``"called sys.exit('bye')"`` for a plugin that tried to end the process."""
    if isinstance(exc, SystemExit):
        return f"called sys.exit({exc.code!r})"
    return f"{type(exc).__name__}: {exc}"


class PluginManager:
    """Loads plugins and calls their hooks through pluggy, guarded (see the module docstring)."""

    def __init__(self, disable: Iterable[str] = (), discover: bool = True) -> None:
        from engine._contract.version import __version__
        from engine._plugins.settings import broken_plugins, disabled_plugins

        self.pm = pluggy.PluginManager("engine")
        self.pm.add_hookspecs(hookspecs)
        self.hook = self.pm.hook
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
        self._trace = bool(os.environ.get(TRACE_ENV))
        if self._trace:
            self.pm.add_hookcall_monitoring(self._before, self._after)
        loaded = self.discover() if discover else []
        # pluggy calls the last registered first: plugins in reverse order of name, then the core.
        for obj, info in sorted(loaded, key=lambda pair: pair[1].name, reverse=True):
            self.register(obj, info)
        self.register(import_object(CORE_MODULE), PluginInfo(CORE, "engine", __version__, CORE_MODULE))

    # ------------------------------------------------------------------ loading

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
            recorded = self._recorded_failure(info)
            if recorded is not None:
                info.status = "broken"
                info.error = f"{recorded} (recorded by an earlier command; `engine plugins enable {name}` retries it)"
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
        guarded = self._guarded(obj, info)
        try:
            self.pm.register(guarded, name=info.name)
            self.pm.check_pending()
        except Exception as exc:
            if info.name == CORE:
                raise
            if self.pm.is_registered(guarded):
                self.pm.unregister(guarded)
            self._broken(info, f"invalid hooks: {exc}")
            return
        info.hooks = sorted(h.name for h in self.pm.get_hookcallers(guarded) or [] if h.name.startswith("engine_"))

    def _guarded(self, obj: Any, info: PluginInfo) -> Any:
        """A namespace holding ``obj``'s hook implementations, each wrapped by :meth:`_guard`."""
        proxy = types.SimpleNamespace()
        for name in dir(obj):
            if name.startswith("engine_"):
                fn = getattr(obj, name, None)
                if callable(fn):
                    setattr(proxy, name, self._guard(info, name, fn))
        return proxy

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
                return (yield from _rest(gen))

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
        """A plugin's hook raised: propagate the core's and the user's errors, else mark the plugin broken.

        A lifecycle hook's failure also stops the command (a PluginError naming plugin, hook and error):
        a run never goes on without a hook that failed.
        """
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
        order = ", ".join(reversed([impl.plugin_name for impl in impls]))
        print(f"[hook] {hook}: calling {order or 'nothing'}", file=sys.stderr, flush=True)

    def _after(self, outcome: Any, hook: str, impls: list[Any], kwargs: dict[str, Any]) -> None:
        state = "raised" if outcome.exception is not None else "done"
        print(f"[hook] {hook}: {state}", file=sys.stderr, flush=True)

    def _broken(self, info: PluginInfo, error: str) -> None:
        info.status, info.error = "broken", error
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
            from engine._plugins.settings import record_broken

            record_broken(info.name, info.distribution, info.version, error)

    # ------------------------------------------------------------------ calling

    def call(self, hook: str, **kwargs: Any) -> list[tuple[PluginInfo, Any]]:
        """``pm.hook.<hook>(**kwargs)``: each working plugin's non-None result, in call order, with its plugin."""
        results = getattr(self.hook, hook)(**kwargs)
        return [(self.plugins[r.plugin], r.value) for r in results if isinstance(r, Owned)]

    def first(self, hook: str, **kwargs: Any) -> Any:
        """``pm.hook.<hook>(**kwargs)`` of a ``firstresult`` hook: the first answer that is not None."""
        return getattr(self.hook, hook)(**kwargs)

    def infos(self) -> list[PluginInfo]:
        """Every plugin, refused entry points included: the core first, then by name."""
        every = [*self.plugins.values(), *self.refused]
        return sorted(every, key=lambda p: (p.name != CORE, p.name, p.refused))

    def broken(self) -> list[PluginInfo]:
        return [p for p in self.infos() if p.status == "broken"]

    def is_ok(self, name: str) -> bool:
        info = self.plugins.get(name)
        return info is not None and info.status == "ok"


def _rest(gen: Any) -> Any:
    """The remainder of a hook wrapper after its ``yield``: pass the inner result in, return the wrapper's."""
    try:
        result = yield
    except BaseException as exc:
        try:
            gen.throw(exc)
        except StopIteration as stop:
            return stop.value
        raise RuntimeError("a hook wrapper must not yield twice") from None
    try:
        gen.send(result)
    except StopIteration as stop:
        return stop.value
    raise RuntimeError("a hook wrapper must not yield twice")
