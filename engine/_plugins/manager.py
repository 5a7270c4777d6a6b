"""Plugins: loaded from ``engine.plugins`` entry points, their hooks called through pluggy, guarded.

A hook that raises marks its plugin broken and the call goes on without it; the core's errors and an
EngineError from a lifecycle hook propagate. pluggy calls the core first, then the plugins by name.
"""

from __future__ import annotations

import contextlib
import functools
import inspect
import os
import signal
import sys
import threading
import time
import types
from collections.abc import Iterable, Iterator
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any, NamedTuple

import pluggy

from engine._contract import hookspecs
from engine._contract.declarations import NAME, import_object
from engine._contract.errors import EngineError, PluginError
from engine._contract.version import API_VERSION, __version__
from engine._plugins.contributions import problem, shape
from engine._plugins.discovery import ENTRY_POINT_GROUP, DiscoveryCache
from engine._plugins.settings import broken_plugins, disabled_plugins, record_broken

#: Hooks called while a run is composed, built, trained: an EngineError they raise is the user's
#: mistake (the plugin stays ok); any other exception stops the command and is recorded.
LIFECYCLE = frozenset({"engine_adjust_config", "engine_callbacks", "engine_model_built", "engine_datasets_built"})
LIFECYCLE |= {"engine_run_finished", "engine_run_main"}
CORE = "core"
#: The plugin whose hook implementation is running (what a `CommandSink` attributes commands to).
CALLER: ContextVar[str] = ContextVar("engine_hook_caller", default=CORE)
#: An import taking longer is noted on stderr (every command waits for it) and listed by ``engine plugins list``.
SLOW_IMPORT_S = 1.0
#: SIGINTs (the user's Ctrl-C) seen while plugin code ran: an interrupt without one is the plugin's own failure.
SIGINTS = [0]

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
    refused: bool = False  # not holding its name: another distribution's, ``core``, or off by NAME@DIST
    installed: int = 0  # when its distribution was installed (ns): the earlier keeps a contested name
    import_s: float | None = None  # how long importing it took

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


@contextlib.contextmanager
def plugin_code(stdout: bool = True) -> Iterator[None]:
    """Run plugin code: its ``print`` on stderr (a command's output stays clean), SIGINT counted in `SIGINTS`."""
    main = threading.current_thread() is threading.main_thread()
    previous = signal.getsignal(signal.SIGINT) if main else None  # None: not set from Python, or not ours to set

    def counted(signum: int, frame: Any) -> None:
        SIGINTS[0] += 1
        if callable(previous):
            previous(signum, frame)
        elif previous != signal.SIG_IGN:
            raise KeyboardInterrupt

    if previous is not None:
        signal.signal(signal.SIGINT, counted)
    try:
        with contextlib.redirect_stdout(sys.stderr) if stdout else contextlib.nullcontext():
            yield
    finally:
        if previous is not None:
            signal.signal(signal.SIGINT, previous)


def users(exc: BaseException, sigints: int) -> bool:
    """Whether ``exc`` (from plugin code) is the user's Ctrl-C: an interrupt or exit after a SIGINT arrived."""
    return not isinstance(exc, Exception) and SIGINTS[0] != sigints


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
        with plugin_code():
            for ep in cache.entry_points:
                loaded += self._load(ep, verdicts)
        cache.save(verdicts)
        return loaded

    def _load(self, ep: dict[str, Any], verdicts: dict[str, str | None]) -> list[tuple[Any, PluginInfo]]:
        """Entry point ``ep`` claimed, checked and imported: ``[(plugin, info)]``, or ``[]`` (listed, not loaded)."""
        name, value = ep["name"], ep["value"]
        info = PluginInfo(name, ep["dist"], ep["version"], value, installed=ep.get("installed") or 0)
        other = self.plugins.get(name)
        if other is not None and other.distribution == info.distribution:
            return []  # the same distribution seen twice on sys.path
        off = f"{name}@{info.distribution}" in self.disabled  # NAME@DIST: this distribution off, the name left free
        why = None if off else self._refusal(info, other)
        if off or why is not None:
            info.status, info.error, info.refused = ("disabled", None, True) if off else ("broken", why, True)
            self.refused.append(info)
            return []
        self.plugins[name] = info
        if name in self.disabled:
            info.status = "disabled"
            return []
        rec = self.recorded.get(name)  # the failure an earlier command recorded for this very version
        if isinstance(rec, dict) and (rec.get("distribution"), rec.get("version")) == (ep["dist"], ep["version"]):
            retry = f"`engine plugins enable {name}` retries it"
            info.status, info.error = "broken", f"{rec.get('error')} (recorded by an earlier command; {retry})"
            return []
        started, sigints = time.perf_counter(), SIGINTS[0]
        try:
            obj = import_object(value)
        except BaseException as exc:  # KeyboardInterrupt, GeneratorExit … raised by the plugin are its failure
            if users(exc, sigints):
                raise
            info.status, info.error = "broken", f"import of '{value}' failed: {describe(exc)}"
            return []
        finally:
            info.import_s = time.perf_counter() - started
        if info.import_s > SLOW_IMPORT_S:
            print(
                f"note: plugin '{name}' took {info.import_s:.1f} s to import; every command waits for it",
                file=sys.stderr,
            )
        why = check_api(obj, verdicts)
        if why is not None:
            info.status, info.error = "incompatible", why
            return []
        return [(obj, info)]

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
        """``fn`` made to record a failure instead of ending the call, to check what it returned, to print on stderr
        (``engine_run_main`` excepted: it is the command), and to say which plugin answered."""
        firstresult = hook in ("engine_run_main", "engine_run_collection")
        if inspect.isgeneratorfunction(fn):  # a hook wrapper: a failure before its yield leaves the call alone

            @functools.wraps(fn)
            def wrapper(*args: Any) -> Any:
                gen, sigints = fn(*args), SIGINTS[0]
                try:
                    with plugin_code(hook != "engine_run_main"):
                        next(gen)
                except StopIteration:
                    return (yield)
                except BaseException as exc:
                    self._failed(info, hook, exc, sigints=sigints)
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
            started, sigints, before = time.perf_counter(), SIGINTS[0], shape(hook, args)
            token = CALLER.set(info.name)
            try:
                with plugin_code(hook != "engine_run_main"):
                    value = fn(*args)
            except BaseException as exc:
                self._failed(info, hook, exc, sigints=sigints)
                return None
            finally:
                CALLER.reset(token)
                if self._trace:
                    took = (time.perf_counter() - started) * 1000
                    print(f"[hook]   {hook} <- {info.name}: {took:.2f} ms", file=sys.stderr, flush=True)
            why = problem(hook, value, args, before)
            if why is not None:
                self._failed(info, hook, why=why)
                return None
            return value if value is None or firstresult else Owned(info.name, value)

        return guarded

    def _failed(
        self, info: PluginInfo, hook: str, exc: BaseException | None = None, sigints: int = 0, why: str = ""
    ) -> None:
        """A hook raised (``sigints``: SIGINTs before the call) or returned garbage (``why``): the core's errors and
        the user's (a config error, a Ctrl-C) propagate, else the plugin is broken (and a run stops)."""
        user = isinstance(exc, EngineError) and hook in LIFECYCLE
        if exc is not None and (info.name == CORE or user or users(exc, sigints)):
            raise exc
        why = why or f"raised {describe(exc)}"  # type: ignore[arg-type]
        self.mark_broken(info, f"hook {hook} {why}", record=hook in LIFECYCLE)
        if hook in LIFECYCLE:
            raise PluginError(
                f"plugin '{info.name}' ({info.distribution or 'no distribution'} {info.version or ''}) "
                f"failed in {hook}: {why}",
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

    def rank(self, plugin: str, name: str) -> tuple[Any, ...]:
        """Who keeps a command, option or config section ``name`` several plugins add: the core; a plugin named
        ``name``; the distribution installed first (then by distribution and plugin name). Never call order."""
        info = self.plugins[plugin]
        return plugin != CORE, plugin != name, info.installed, info.distribution or "", plugin

    def lost(self, what: str, name: str, holder: str, loser: str) -> str:
        """The error of ``loser``, refused the ``what`` called ``name`` that ``holder`` keeps (see `rank`)."""
        if holder == CORE:
            return f"its {what} '{name}' is already provided by the core: rename it"
        keep, other = self.plugins[holder], self.plugins[loser]
        why = "named after it" if holder == name else "installed first"
        if holder != name and keep.installed == other.installed:
            why = "first by distribution name"
        return (
            f"its {what} '{name}' is also provided by plugin '{holder}' ({keep.distribution} {keep.version}), which "
            f"keeps it ({why}); to use this plugin's: `engine plugins disable {holder}`; to hide this error: "
            f"`engine plugins disable {loser}`"
        )

    def infos(self) -> list[PluginInfo]:
        """Every plugin, refused entry points included: the core first, then by name."""
        return sorted([*self.plugins.values(), *self.refused], key=lambda p: (p.name != CORE, p.name, p.refused))

    def is_ok(self, name: str) -> bool:
        info = self.plugins.get(name)
        return info is not None and info.status == "ok"
