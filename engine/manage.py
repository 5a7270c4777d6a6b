"""``engine plugins install|uninstall|enable|disable`` and the checks behind ``plugins info``."""

from __future__ import annotations

import argparse
import subprocess
import sys
from typing import Any

from engine.errors import EngineError, PluginError, did_you_mean


def _pip(*args: str) -> int:
    """Run pip of the running interpreter, streaming its output."""
    return subprocess.call([sys.executable, "-m", "pip", *args])


def _plugins() -> dict[str, Any]:
    from engine.plugins import PluginManager

    return PluginManager(disable=()).plugins


_SNAPSHOT = (
    "import json; from engine.plugins import PluginManager; "
    "print(json.dumps({n: [p.distribution, p.version] for n, p in PluginManager().plugins.items()}))"
)


def _snapshot() -> dict[str, list[str | None]]:
    """Installed plugins as a fresh interpreter sees them (new .pth files only apply at start-up)."""
    import json

    out = subprocess.run([sys.executable, "-c", _SNAPSHOT], capture_output=True, text=True, check=True)
    return json.loads(out.stdout)


def cmd_install(args: argparse.Namespace) -> int:
    """pip-install SPECs into this environment, then show what the new plugins contribute."""
    if not args.spec:
        raise EngineError("nothing to install", hint="engine plugins install NAME|PATH|-e DIR …")
    before = _snapshot()
    rc = _pip("install", *args.spec)
    if rc != 0:
        raise EngineError(f"pip install {' '.join(args.spec)} failed (exit {rc})", hint="see pip's output above")
    after = _snapshot()
    changed = [name for name, dist in after.items() if before.get(name) != dist]
    if not changed:
        print("installed, but no new engine plugin appeared (does the package declare an engine.plugins entry point?)")
        return 0
    rc = 0
    for name in changed:
        rc |= subprocess.call([sys.executable, "-m", "engine", "plugins", "info", name])
    return 1 if rc else 0


def cmd_uninstall(args: argparse.Namespace) -> int:
    plugins = _plugins()
    info = plugins.get(args.name)
    if info is None:
        raise EngineError(
            f"unknown plugin '{args.name}'{did_you_mean(args.name, plugins)}", hint="see `engine plugins list`"
        )
    if info.name == "core":
        raise EngineError("the core plugin is part of the engine; uninstall the 'engine' distribution instead")
    if not info.distribution:
        raise EngineError(f"plugin '{args.name}' has no distribution to uninstall")
    rc = _pip("uninstall", "-y", info.distribution)
    if rc != 0:
        raise EngineError(f"pip uninstall {info.distribution} failed (exit {rc})")
    return 0


def _toggle(args: argparse.Namespace, disabled: bool) -> int:
    from engine import settings

    plugins = _plugins()
    if args.name not in plugins:
        raise EngineError(
            f"unknown plugin '{args.name}'{did_you_mean(args.name, plugins)}", hint="see `engine plugins list`"
        )
    if args.name == "core" and disabled:
        raise PluginError("the core plugin cannot be disabled")
    changed = settings.set_disabled(args.name, disabled)
    state = "disabled" if disabled else "enabled"
    print(f"plugin '{args.name}' {state}" + ("" if changed else " (no change)") + f" — saved in {settings.home()}")
    return 0


def cmd_disable(args: argparse.Namespace) -> int:
    return _toggle(args, True)


def cmd_enable(args: argparse.Namespace) -> int:
    return _toggle(args, False)


def check_components(reg: Any, plugin: str, import_targets: bool = False) -> list[tuple[str, str]]:
    """Problems with a plugin's components, found without importing them unless asked.

    Returns ``(component, problem)`` pairs: targets whose module or attribute cannot be
    found, and recipes that do not validate (e.g. naming a missing component).
    """
    from engine.config import compose, validate
    from engine.signature import locate_module, read_signature

    problems: list[tuple[str, str]] = []
    for e in [e for e in reg.list() if e.plugin == plugin]:
        if e.kind == "recipe":
            try:
                validate(compose(reg, e.qualified_name), reg)
            except EngineError as exc:
                problems.append((e.qualified_name, f"recipe does not validate: {exc.message}"))
            continue
        if not isinstance(e.target, str):
            continue
        if import_targets:
            try:
                e.load()
            except EngineError as exc:
                problems.append((e.qualified_name, exc.message))
            continue
        module, _, attr = e.target.partition(":")
        if not attr:
            problems.append((e.qualified_name, f"target '{e.target}' is not of the form 'module:attr'"))
        elif locate_module(module) is None:
            problems.append((e.qualified_name, f"target module '{module}' not found"))
        elif read_signature(e.target) is None:
            problems.append((e.qualified_name, f"'{attr}' not found in module '{module}' (or not readable statically)"))
    return problems


__all__ = ["check_components", "cmd_disable", "cmd_enable", "cmd_install", "cmd_uninstall"]
