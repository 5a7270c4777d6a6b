"""``engine new plugin NAME``: write a pip-installable plugin that passes its own tests.

::

    from engine_scaffold.scaffold import scaffold

    scaffold("acme-widgets", Path("engine-acme-widgets"))   # distribution engine-acme-widgets,
                                                             # package engine_acme_widgets, plugin acme_widgets
"""

from __future__ import annotations

import argparse
import keyword
import re
from pathlib import Path

import engine
from engine import EngineError
from engine_scaffold.templates import FILES

#: The plugin-name rule: lower-case letters, digits and ``_`` (``-`` is read as ``_``), a letter first.
_NAME = re.compile(r"^[a-z][a-z0-9_]*$")
#: The entry-point group every engine plugin is found in.
_GROUP = "engine.plugins"


def plugin_name(name: str) -> str:
    """The plugin name for what the user typed: ``acme-widgets`` -> ``acme_widgets`` (a Python identifier)."""
    plugin = name.replace("-", "_")
    if not _NAME.match(plugin) or keyword.iskeyword(plugin):
        raise EngineError(
            f"'{name}' is not a valid plugin name",
            hint="use lower-case letters, digits, _ or -, starting with a letter (acme-widgets: package "
            "engine_acme_widgets, plugin acme_widgets)",
        )
    return plugin


def installed_plugins() -> dict[str, str]:
    """Every plugin name taken in this environment (entry points of the ``engine.plugins`` group), with its owner."""
    from importlib.metadata import entry_points

    taken = {"core": "built in"}
    for ep in entry_points(group=_GROUP):
        taken.setdefault(ep.name, ep.dist.name if ep.dist is not None else "unknown distribution")
    return taken


def validate_name(name: str) -> str:
    """The plugin name for ``name``; an EngineError when it is not valid or already installed."""
    plugin = plugin_name(name)
    owner = installed_plugins().get(plugin)
    if owner is not None:
        raise EngineError(f"a plugin named '{plugin}' is already installed ({owner})", hint="choose another name")
    return plugin


def scaffold(name: str, directory: Path) -> list[Path]:
    """Write the plugin package for ``name`` into ``directory``; returns the files written."""
    plugin = validate_name(name)
    if directory.exists() and any(directory.iterdir()):
        raise EngineError(f"{directory} exists and is not empty", hint="choose another --dir")
    values = {
        "name": plugin,
        "dist": f"engine-{plugin.replace('_', '-')}",
        "package": f"engine_{plugin}",
        "engine_version": engine.__version__,
        "engine_api": f">={engine.API_VERSION},<{engine.API_VERSION + 1}",
    }
    written = []
    for template_path, template in FILES.items():
        path = directory / template_path.format(**values)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(template.format(**values), encoding="utf-8")
        written.append(path)
    return written


def cmd_new_plugin(args: argparse.Namespace) -> int:
    """``engine new plugin NAME [--dir DIR]``."""
    name = plugin_name(args.name)
    directory = Path(args.dir or f"engine-{name.replace('_', '-')}")
    files = scaffold(name, directory)
    for f in files:
        print(f"  created {f}")
    print(
        f"\nnext:\n  engine plugins install -e {directory}\n  pytest {directory}\n  engine plugins list\n"
        f"  engine run {name}/demo"
    )
    return 0
