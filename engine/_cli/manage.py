"""``engine plugins install|uninstall|enable|disable``."""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from typing import Any

from engine._cli.inspect import unknown_plugin
from engine._contract.errors import EngineError, PluginError


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


def _infos() -> list[Any]:
    """Every installed plugin, none disabled."""
    from engine._plugins.manager import PluginManager

    return PluginManager(disable=()).infos()


def _fresh_python(code: str, capture: bool = True) -> subprocess.CompletedProcess[str]:
    """Run ``code`` in a fresh interpreter, from an empty directory: a folder ``engine/`` here must not shadow ours."""
    prelude = "import os, sys; sys.path[:] = [p for p in sys.path if p not in ('', os.getcwd())]\n"
    with tempfile.TemporaryDirectory(prefix="engine-") as empty:
        return subprocess.run([sys.executable, "-c", prelude + code], capture_output=capture, text=True, cwd=empty)


def _snapshot() -> dict[str, list[str | None]]:
    """Installed plugins as a fresh interpreter sees them (new .pth files only apply at start-up)."""
    out = _fresh_python(
        "import json; from engine._plugins.manager import PluginManager; "
        "print(json.dumps({p.name + ('@' + (p.distribution or '') if p.refused else ''): [p.distribution, p.version] "
        "for p in PluginManager().infos()}))"
    )
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
    infos = _infos()
    if "@" in name:  # NAME@DISTRIBUTION, as `engine plugins disable` takes it
        return plugin_key(name, infos).partition("@")[2]
    by_dist = {i.distribution for i in infos if i.distribution and name.lower() == i.distribution.lower()}
    if by_dist:
        return by_dist.pop()
    providers = [i for i in infos if i.name == name]
    if not providers:
        raise unknown_plugin(name, {i.name for i in infos} | {i.distribution for i in infos if i.distribution})
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
    names = [i.name for i in _infos() if i.distribution == dist]
    rc, error = _pip("uninstall", "-y", dist)
    if rc != 0:
        raise EngineError(f"pip uninstall {dist} failed (exit {rc}): {error}")
    for name in names:  # a later install of the same name starts clean
        if settings.set_disabled(name, False) | settings.clear_broken(name):
            print(f"plugin '{name}': its disabled setting and recorded failure are forgotten")
    return 0


def plugin_key(text: str, infos: list[Any], ambiguous: bool = False) -> str:
    """``NAME`` or ``NAME@DISTRIBUTION`` as ``--disable`` and ``plugins disable|enable`` take it, checked against
    ``infos``: an unknown plugin is refused, and (unless ``ambiguous``) a name several distributions provide."""
    name, _, dist = text.partition("@")
    providers = [i for i in infos if i.name == name and dist in ("", i.distribution)]
    qualified = sorted({f"{i.name}@{i.distribution}" for i in infos if i.distribution})
    if not providers:
        names = {i.name for i in infos} | {q for q in qualified if "@" in text or q.split("@")[0] == name}
        raise unknown_plugin(text, names)
    choices = [q for q in qualified if q.split("@")[0] == name]
    if not dist and len(choices) > 1 and not ambiguous:
        raise EngineError(
            f"{len(choices)} distributions provide the plugin '{name}': {', '.join(choices)}",
            hint=f"name one as NAME@DISTRIBUTION, e.g. `{choices[-1]}`",
        )
    return text


def _toggle(args: argparse.Namespace, disabled: bool) -> int:
    from engine._plugins import settings

    key = plugin_key(args.name, _infos(), ambiguous=not disabled)  # enable NAME: every distribution of it
    if key == "core" and disabled:
        raise PluginError("the core plugin cannot be disabled")
    changed = settings.set_disabled(key, disabled)
    if not disabled and settings.clear_broken(key.partition("@")[0]):
        changed = True
        print(f"plugin '{key}': its recorded failure is forgotten; the next command loads it again")
    state = "disabled" if disabled else "enabled"
    print(f"plugin '{key}' {state}" + ("" if changed else " (no change)") + f" — saved in {settings.home()}")
    return 0


def cmd_disable(args: argparse.Namespace) -> int:
    return _toggle(args, True)


def cmd_enable(args: argparse.Namespace) -> int:
    return _toggle(args, False)
