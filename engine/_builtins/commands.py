"""The core's commands (``run``, ``plugins``, ``components``): parsers only, each handler named lazily."""

from __future__ import annotations

import argparse
from typing import Any

from engine._cli.console import add_verbosity_options

_RAW = argparse.RawDescriptionHelpFormatter

RUN_EPILOG = """\
overrides:
  model=NAME            choose a component (shorthand for model.name=NAME)
  model.hidden=[64,64]  set a parameter (see `engine components show NAME`)
  trainer.max_epochs=5  any lightning.Trainer argument
  data.batch_size=128   loader: batch_size, num_workers, pin_memory
  checkpoint.monitor=val/accuracy checkpoint.mode=max
  early_stopping.patience=5   switch on early stopping
  seed=1  run.dir=runs  run.name=my-run
  run.name=${model.name}-${seed}   another key's value (${oc.env:VAR} is refused: write key="$VAR")
  every config section, the plugins' too: `engine components list --kind section`

examples:
  engine run core/mlp-synthetic trainer.max_epochs=3
  engine run model=mlp data=csv data.path=table.csv --dry-run
  engine run --resume runs/mlp-synthetic-20261201-120000
"""


def add_commands(sub: Any) -> None:
    """Add ``run``, ``plugins``, ``components`` and ``completion``."""
    run = sub.add_parser(
        "run",
        help="compose a config from names and train it",
        description="Compose a run: [RECIPE] then -c files then key=value overrides (later wins), "
        "validate it, train with Lightning, test, and write a run directory.",
        epilog=RUN_EPILOG,
        formatter_class=_RAW,
    )
    run.add_argument("items", nargs="*", metavar="RECIPE|KEY=VALUE")
    run.add_argument("-c", "--config", action="append", metavar="FILE", help="YAML config file (repeatable)")
    run.add_argument("--dry-run", action="store_true", help="validate and print the resolved config; build nothing")
    run.add_argument("--resume", metavar="RUN", help="continue the run in this directory from its last checkpoint")
    add_verbosity_options(run)
    run.set_defaults(handler="engine._cli.run:cmd_run")
    _plugins(sub)
    _components(sub)
    p = sub.add_parser(
        "completion",
        help='print the shell completion script: eval "$(engine completion bash)" (zsh, fish)',
        description="Print the script that makes the shell complete engine's commands, options, component, "
        'recipe, plugin and run names. bash: add `eval "$(engine completion bash)"` to ~/.bashrc; zsh: the '
        "same with zsh in ~/.zshrc; fish: `engine completion fish > ~/.config/fish/completions/engine.fish`.",
    )
    p.add_argument("shell", choices=("bash", "zsh", "fish"))
    p.set_defaults(handler="engine._cli.completion:cmd_completion")


def _plugins(sub: Any) -> None:
    psub = sub.add_parser("plugins", help="list, inspect, install, enable and disable plugins").add_subparsers(
        dest="subcommand", metavar="SUBCOMMAND"
    )
    p = psub.add_parser("list", help="every plugin: distribution, version, status, import time, hooks")
    _json_option(p)
    p.set_defaults(handler="engine._cli.inspect:cmd_plugins_list")
    p = psub.add_parser("info", help="one plugin: its hooks, components, and problems with them")
    p.add_argument("name")
    _json_option(p)
    _import_option(p, "import every target (slower; catches errors inside target modules too)")
    p.set_defaults(handler="engine._cli.inspect:cmd_plugins_info")
    p = psub.add_parser("install", help="pip-install plugin distributions here, then list what they contribute")
    p.add_argument("spec", nargs="*", help="anything pip install accepts: names, paths, -e DIR, --no-deps, …")
    p.set_defaults(handler="engine._cli.manage:cmd_install")
    p = psub.add_parser("uninstall", help="pip-uninstall the distribution providing a plugin")
    p.add_argument("name", help="plugin name, NAME@DISTRIBUTION or distribution name (see `engine plugins list`)")
    p.set_defaults(handler="engine._cli.manage:cmd_uninstall")
    for name, help in (
        ("disable", "turn a plugin off for every command (saved under ENGINE_HOME)"),
        ("enable", "turn a disabled plugin back on (and retry one recorded broken)"),
    ):
        p = psub.add_parser(name, help=help)
        p.add_argument("name", help="plugin name, or NAME@DISTRIBUTION when two distributions provide it")
        p.set_defaults(handler=f"engine._cli.manage:cmd_{name}")


def _components(sub: Any) -> None:
    csub = sub.add_parser("components", help="query the registry of models, data sources, recipes, …").add_subparsers(
        dest="subcommand", metavar="SUBCOMMAND"
    )
    p = csub.add_parser("list", help="components, filtered by kind and glob pattern")
    p.add_argument("pattern", nargs="?", help="glob on the (qualified) name, e.g. 'res*'")
    p.add_argument(
        "--kind", "-k", help="task, model, loss, optimizer, scheduler, data, deploy, recipe, section or step"
    )
    _json_option(p)
    p.set_defaults(handler="engine._cli.inspect:cmd_components_list")
    p = csub.add_parser("show", help="one component: target, facts, parameters with types and defaults")
    p.add_argument("name", help="qualified (vision.resnet) or unambiguous short name")
    p.add_argument("--kind", "-k", help="only look among this kind")
    _import_option(p, "import the target when its source cannot be read statically")
    _json_option(p)
    p.set_defaults(handler="engine._cli.inspect:cmd_components_show")


def _json_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", action="store_true", help="print JSON only (its schema: docs/cli.md)")


def _import_option(parser: argparse.ArgumentParser, help: str) -> None:
    parser.add_argument("--import", dest="import_", action="store_true", help=help)
