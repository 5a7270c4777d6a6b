"""``engine plugins install|uninstall|enable|disable`` and the checks behind ``plugins info``."""

from __future__ import annotations

import argparse
import subprocess
import sys
from typing import Any

from engine._contract.errors import EngineError, PluginError, did_you_mean


def _pip(*args: str) -> tuple[int, str]:
    """Run pip of the running interpreter, streaming its output; returns its exit code and last error line."""
    proc = subprocess.Popen([sys.executable, "-m", "pip", *args], stderr=subprocess.PIPE, text=True)
    last = ""
    assert proc.stderr is not None
    for line in proc.stderr:
        sys.stderr.write(line)
        if line.strip() and not line.startswith(("WARNING", "[notice]")):
            last = line.strip()
    return proc.wait(), last


def _plugins() -> Any:
    from engine._plugins.manager import PluginManager

    return PluginManager(disable=())


_SNAPSHOT = (
    "import json; from engine._plugins.manager import PluginManager; "
    "print(json.dumps({p.name + ('@' + (p.distribution or '') if p.refused else ''): [p.distribution, p.version] "
    "for p in PluginManager().infos()}))"
)


def _fresh_python(code: str, capture: bool = True) -> subprocess.CompletedProcess[str]:
    """Run ``code`` in a fresh interpreter that sees the installed engine, never the current directory's.

    A folder named ``engine/`` where the user stands (the tutorial's layout next to a clone) must
    not shadow the installed package: the helper starts in an empty directory and drops the
    current directory from its path before importing anything.
    """
    import tempfile

    prelude = "import os, sys; sys.path[:] = [p for p in sys.path if p not in ('', os.getcwd())]\n"
    with tempfile.TemporaryDirectory(prefix="engine-") as empty:
        return subprocess.run([sys.executable, "-c", prelude + code], capture_output=capture, text=True, cwd=empty)


def _snapshot() -> dict[str, list[str | None]]:
    """Installed plugins as a fresh interpreter sees them (new .pth files only apply at start-up)."""
    import json

    out = _fresh_python(_SNAPSHOT)
    if out.returncode != 0:
        last = (out.stderr.strip().splitlines() or ["no output"])[-1]
        raise EngineError(f"cannot list the installed plugins with {sys.executable}: {last}")
    return json.loads(out.stdout)


def cmd_install(args: argparse.Namespace) -> int:
    """pip-install SPECs into this environment, then show what the new plugins contribute."""
    if not args.spec:
        raise EngineError("nothing to install", hint="engine plugins install NAME|PATH|-e DIR …")
    before = _snapshot()
    rc, error = _pip("install", *args.spec)
    if rc != 0:
        raise EngineError(
            f"pip install {' '.join(args.spec)} failed (exit {rc}): {error}", hint="see pip's output above"
        )
    after = _snapshot()
    changed = [name for name, dist in after.items() if before.get(name) != dist and "@" not in name]
    if not changed:
        print("installed, but no new engine plugin appeared (does the package declare an engine.plugins entry point?)")
        return 0
    rc = 0
    for name in changed:
        info = f"from engine._cli.main import main; sys.exit(main(['plugins', 'info', {name!r}]))"
        rc |= _fresh_python(info, capture=False).returncode
    return 1 if rc else 0


def _distribution(name: str) -> str:
    """The distribution to uninstall for ``name``: a plugin's (when one provides it) or a distribution's name."""
    infos = _plugins().infos()
    by_dist = {i.distribution for i in infos if i.distribution and name.lower() == i.distribution.lower()}
    if by_dist:
        return by_dist.pop()
    providers = [i for i in infos if i.name == name]
    if not providers:
        names = {i.name for i in infos} | {i.distribution for i in infos if i.distribution}
        raise EngineError(f"unknown plugin '{name}'{did_you_mean(name, names)}", hint="see `engine plugins list`")
    if name == "core" and all(i.distribution == "engine" for i in providers):
        raise EngineError("the core plugin is part of the engine; uninstall the 'engine' distribution instead")
    dists = sorted({i.distribution for i in providers if i.distribution and i.distribution != "engine"})
    if not dists:
        raise EngineError(f"plugin '{name}' has no distribution to uninstall")
    if len(dists) > 1:
        raise EngineError(
            f"{len(dists)} distributions provide the plugin '{name}': {', '.join(dists)}",
            hint=f"name the one to remove: engine plugins uninstall {dists[-1]}",
        )
    return dists[0]


def cmd_uninstall(args: argparse.Namespace) -> int:
    from engine._plugins import settings

    dist = _distribution(args.name)
    names = [i.name for i in _plugins().infos() if i.distribution == dist]
    rc, error = _pip("uninstall", "-y", dist)
    if rc != 0:
        raise EngineError(f"pip uninstall {dist} failed (exit {rc}): {error}")
    for name in names:  # a later install of the same name starts clean
        if settings.set_disabled(name, False) | settings.clear_broken(name):
            print(f"plugin '{name}': its disabled setting and recorded failure are forgotten")
    return 0


def _toggle(args: argparse.Namespace, disabled: bool) -> int:
    from engine._plugins import settings

    infos = _plugins().infos()
    names = {i.name for i in infos}
    if args.name not in names:
        raise EngineError(
            f"unknown plugin '{args.name}'{did_you_mean(args.name, names)}", hint="see `engine plugins list`"
        )
    if args.name == "core" and disabled:
        raise PluginError("the core plugin cannot be disabled")
    changed = settings.set_disabled(args.name, disabled)
    if not disabled and settings.clear_broken(args.name):
        changed = True
        print(f"plugin '{args.name}': its recorded failure is forgotten; the next command loads it again")
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
    from engine._config.compose import compose
    from engine._config.plan import make_plan
    from engine._config.signature import locate_module, read_signature

    problems: list[tuple[str, str]] = []
    for e in [e for e in reg.list() if e.plugin == plugin]:
        if e.kind == "recipe":
            if e.required:  # it runs on the user's own files: `engine components show` lists what to set
                continue
            try:
                make_plan(compose(reg, e.qualified_name), reg)
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
