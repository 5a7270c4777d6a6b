"""The scaffold plugin: the ``engine new plugin NAME [--dir DIR]`` command.

Declarations only (argparse, nothing else): the handler is named lazily and imported when the
command runs, so ``engine --help`` stays fast.
"""

from __future__ import annotations

import argparse

from engine import CommandSink, hookimpl

ENGINE_API = ">=1,<2"

_EPILOG = """\
examples:
  engine new plugin weather                  -> ./engine-weather (package engine_weather, plugin weather)
  engine new plugin acme-widgets --dir src/  -> src/ (package engine_acme_widgets, plugin acme_widgets)

then:
  engine plugins install -e ./engine-weather
  pytest engine-weather                      the conformance kit checks every component
  engine run weather/demo
"""


@hookimpl
def engine_add_commands(subparsers: CommandSink) -> None:
    new = subparsers.add_parser("new", help="scaffold a new plugin package")
    kinds = new.add_subparsers(dest="new_command", metavar="WHAT")
    p = kinds.add_parser(
        "plugin",
        help="a pip-installable plugin: a model, a data source, a recipe, tests using the conformance kit",
        description="Write a pip-installable plugin package: a model, a data source, a recipe, a README and "
        "tests using the conformance kit (they pass as generated).",
        epilog=_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument(
        "name", help="plugin name: lower-case letters, digits, _ or - (acme-widgets: package engine_acme_widgets)"
    )
    p.add_argument("--dir", help="where to write it (default: ./engine-<name>)")
    p.set_defaults(handler="engine_scaffold.scaffold:cmd_new_plugin")
