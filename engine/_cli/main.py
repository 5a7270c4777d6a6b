"""The ``engine`` command: a parser assembled from every plugin's commands (``engine_add_commands``), the core's first.

A command name already taken is refused and its plugin marked broken. Listing, ``--help`` and ``--dry-run``
never import torch.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from typing import Any

from engine._contract.commands import CommandSink
from engine._contract.declarations import import_object
from engine._contract.errors import EngineError, did_you_mean
from engine._contract.version import __version__
from engine._plugins.manager import CALLER, PluginManager

EPILOG = """\
examples:
  engine plugins list                          what is installed, and what is broken
  engine components list --kind model 'res*'   query components by kind and glob
  engine components show mlp                   a component's parameters
  engine run model=mlp data=synthetic optimizer.lr=3e-3 trainer.max_epochs=5
  engine run core/mlp-synthetic --dry-run      validate and print the resolved config
  engine run --resume runs/mlp-synthetic-...   continue an interrupted run
  engine COMMAND --help                        every command's options (the plugins' commands too)
  eval "$(engine completion bash)"             tab completion (zsh, fish too): commands, names, runs

Exit codes: 0 success, 1 a run failed, 2 a usage or configuration error, 130 interrupted, 143 SIGTERM.
Set ENGINE_DISABLE_PLUGINS=a,b or pass --disable NAME to turn plugins off; ENGINE_TRACE_HOOKS=1
prints every hook call.
"""


class Parser(argparse.ArgumentParser):
    """argparse with a did-you-mean for a command or choice it does not know (``engine rn``)."""

    def _check_value(self, action: argparse.Action, value: Any) -> None:
        if action.choices is not None and value not in action.choices:
            names = [str(c) for c in action.choices]
            raise argparse.ArgumentError(
                action, f"invalid choice: '{value}'{did_you_mean(str(value), names)} (choose from {', '.join(names)})"
            )


def build_parser(manager: Any = None) -> tuple[argparse.ArgumentParser, dict[str, argparse.ArgumentParser]]:
    """The ``engine`` parser with every working plugin's commands (the core's first), and each command's parser."""
    parser = Parser(
        prog="engine",
        description="A plugin-based deep-learning engine on Lightning: compose runs from plugin names.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"engine {__version__}")
    parser.add_argument("--debug", action="store_true", help="show tracebacks for errors (anywhere on the line)")
    parser.add_argument(
        "--disable", action="append", metavar="NAME", default=[], help="disable plugin NAME (or NAME@DIST) this once"
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    manager = manager or PluginManager(discover=False)
    sink = CommandSink(CALLER.get)
    manager.hook.engine_add_commands(subparsers=sink)
    failed = {name for name, info in manager.plugins.items() if info.status != "ok"}
    commands, clashes = sink.build(sub, failed, manager)
    for plugin, why in clashes:
        manager.mark_broken(manager.plugins[plugin], why)
    return parser, commands


def dispatch(handler: Any, args: argparse.Namespace) -> int:
    """Run a command's handler (a callable, or ``"module:function"`` imported now)."""
    if isinstance(handler, str):
        handler = import_object(handler)
    return int(handler(args) or 0)


def _disabled(argv: list[str]) -> tuple[str, ...]:
    disable = [argv[i + 1] for i, a in enumerate(argv[:-1]) if a == "--disable"]
    return tuple(disable + [a.split("=", 1)[1] for a in argv if a.startswith("--disable=")])


def _split_pip(argv: list[str]) -> tuple[list[str], list[str]]:
    """``engine plugins install ARGS…``: everything after ``install`` belongs to pip (unless asking for help)."""
    for i in range(len(argv) - 1):
        if argv[i : i + 2] == ["plugins", "install"] and not {"-h", "--help"} & set(argv[i + 2 :]):
            return argv[: i + 2], argv[i + 2 :]
    return argv, []


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in argv
    try:
        from engine._plugins.registry import get_registry, use_disabled

        disable = _disabled(argv)
        use_disabled(disable)  # runs reopened by this command leave the same plugins out
        manager = get_registry(disable).manager
        if disable:
            from engine._cli.manage import plugin_key

            for name in disable:
                plugin_key(name, manager.infos())
        parser, commands = build_parser(manager)
        if "_ARGCOMPLETE" in os.environ:  # the shell asks for completions (`engine completion SHELL`)
            from engine._cli.completion import complete

            complete(parser)
        argv, pip_args = _split_pip(argv)
        argv = ["--debug"] * debug + [a for a in argv if a != "--debug"]  # `engine run … --debug` too
        args, extra = parser.parse_known_args(argv)
        options = [e for e in extra if e.startswith("-")]
        if extra and "items" in vars(args) and not options:
            args.items += extra  # `engine run --folds 5 model=mlp …`: overrides after an option
        elif extra:
            parser.error(f"unrecognized arguments: {' '.join(options or extra)}")
        if pip_args:
            args.spec = pip_args
        if "handler" not in vars(args):  # `engine` alone, or a command group without its sub-command
            commands.get(args.command, parser).print_help()
            return 0
        if vars(args).get("quiet") or vars(args).get("verbose"):
            from engine._run import logs

            logs.set_verbosity(logs.QUIET if args.quiet else logs.VERBOSE)
        return dispatch(args.handler, args)
    except BrokenPipeError:  # `engine components list | head`: the reader has all it wants
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # no second error at exit
        return 0
    except KeyboardInterrupt as exc:  # Ctrl-C; a run's RunInterrupted (Ctrl-C or SIGTERM) names its directory
        run_dir = getattr(exc, "run_dir", None) or os.environ.get("ENGINE_RUN_DIR")
        print("interrupted" + (f"; continue with `engine run --resume {run_dir}`" if run_dir else ""), file=sys.stderr)
        return getattr(exc, "exit_code", 130)
    except Exception as exc:
        if debug:
            raise
        hint = "rerun with --debug for the traceback"
        if isinstance(exc, EngineError):
            message, hint, code = exc.message, exc.hint, exc.exit_code
        elif isinstance(exc, OSError):  # the file system refused (disk full, read-only, a name too long): not a bug
            message = str(exc.strerror or exc) + (f": {str(exc.filename)[:200]}" if exc.filename else "")
            hint, code = f"check the path, free space and permissions; {hint}", 2
        else:
            message, code = f"{type(exc).__name__}: {exc}", 1
        print(f"error: {message}", file=sys.stderr)
        if hint:
            print(f"  hint: {hint}", file=sys.stderr)
        return code


def entrypoint() -> None:
    sys.exit(main())
