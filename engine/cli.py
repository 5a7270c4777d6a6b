"""The ``engine`` command.

Listing, showing, ``--help`` and ``run --dry-run`` never import torch; only a
real run (or a plugin command that needs it) does.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from engine.errors import EngineError

EPILOG = """\
examples:
  engine plugins list                          what is installed, and what is broken
  engine components list --kind model 'res*'   query components by kind and glob
  engine components show mlp                   a component's parameters
  engine run model=mlp data=synthetic optimizer.lr=3e-3 trainer.max_epochs=5
  engine run core/mlp-synthetic --dry-run      validate and print the resolved config
  engine run --resume runs/mlp-synthetic-...   continue an interrupted run
  engine runs list
  engine evaluate runs/mlp-synthetic-...      evaluate a trained run again (test split)
  engine evaluate RUN1 RUN2 RUN3 --ensemble    average several runs' probabilities
  engine report RUN [RUN...]                   training curves (PNG) and a Markdown summary
  engine new plugin myplugin                   scaffold a plugin package

Exit codes: 0 success, 1 a run failed, 2 a usage or configuration error.
Set ENGINE_DISABLE_PLUGINS=a,b or pass --disable NAME to turn plugins off.
"""


def _registry(args: argparse.Namespace) -> Any:
    import engine

    return engine.get_registry(tuple(args.disable or ()))


# Output: aligned plain-text tables, bold/colour only on a terminal (and not with NO_COLOR).
# Written here rather than with rich: importing rich.table costs ~70 ms of CPU, a third of the
# start-up budget of `engine plugins list` and `engine components list` (bench/p1_startup.py).

_ANSI = {"bold": "1", "dim": "2", "red": "31", "green": "32", "yellow": "33"}


class _Styled(str):
    """Text printed in a style (``bold``, ``dim``, ``red``, ``green``, ``yellow``) when colour is on."""

    style = ""


class _Table:
    """Columns padded to their widest cell; the last column wraps to the terminal width."""

    def __init__(self, *columns: str) -> None:
        self.rows: list[tuple[Any, ...]] = [tuple(_styled(c, "bold") for c in columns)]

    def add_row(self, *cells: Any) -> None:
        self.rows.append(tuple(cells))

    def lines(self, paint: Any) -> list[str]:
        import shutil
        import textwrap

        text = [[" ".join(str(c).splitlines()) for c in row] for row in self.rows]
        widths = [max(len(row[i]) for row in text) for i in range(len(text[0]) - 1)]
        indent = sum(widths) + 2 * len(widths)
        room = shutil.get_terminal_size((200, 24)).columns - indent
        out = []
        for row, cells in zip(self.rows, text, strict=True):
            padded = [paint(row[i], cells[i]) + " " * (widths[i] - len(cells[i]) + 2) for i in range(len(widths))]
            last = textwrap.wrap(cells[-1], room) if room >= 20 and len(cells[-1]) > room else [cells[-1]]
            out.append("".join(padded) + paint(row[-1], last[0] if last else ""))
            out.extend(" " * indent + more for more in last[1:])
        return [line.rstrip() for line in out]


class _Console:
    """``print(table)`` or ``print(*parts, style=...)``; every command prints through one of these."""

    def __init__(self) -> None:
        self.color = sys.stdout.isatty() and not os.environ.get("NO_COLOR") and os.environ.get("TERM") != "dumb"

    def paint(self, cell: Any, text: str) -> str:
        style = getattr(cell, "style", "")
        return f"\033[{_ANSI[style]}m{text}\033[0m" if self.color and style and text else text

    def print(self, *parts: Any, style: str = "") -> None:
        if len(parts) == 1 and isinstance(parts[0], _Table):
            print("\n".join(parts[0].lines(self.paint)))
        elif style:
            print(self.paint(_styled(" ".join(map(str, parts)), style), " ".join(map(str, parts))))
        else:
            print(" ".join(self.paint(p, str(p)) for p in parts))


def _console() -> Any:
    return _Console()


def _styled(text: str, style: str) -> Any:
    styled = _Styled(text)
    styled.style = style
    return styled


def _table(*columns: str) -> Any:
    return _Table(*columns)


def _metric(value: Any) -> str:
    """A metric for a table: floats to 4 decimals, a missing one as '-'."""
    return "-" if value is None else f"{value:.4f}" if isinstance(value, float) else str(value)


# --------------------------------------------------------------------------- plugins


def cmd_plugins_list(args: argparse.Namespace) -> int:
    reg = _registry(args)
    counts: dict[str, int] = {}
    for entry in reg.list():
        counts[entry.plugin] = counts.get(entry.plugin, 0) + 1
    table = _table("plugin", "distribution", "version", "status", "components", "hooks")
    for info in reg.manager.plugins.values():
        status = _styled(info.status, {"ok": "green", "disabled": "yellow"}.get(info.status, "red"))
        hooks = ", ".join(h.removeprefix("engine_") for h in info.hooks)
        table.add_row(
            info.name,
            info.distribution or "-",
            info.version or "-",
            status,
            str(counts.get(info.name, 0)),
            hooks,
        )
    console = _console()
    console.print(table)
    for info in reg.manager.plugins.values():
        if info.error:
            console.print(_styled(info.status, "red"), f"{info.label}: {info.error}")
    return 0


def cmd_plugins_info(args: argparse.Namespace) -> int:
    from engine.errors import did_you_mean

    reg = _registry(args)
    plugins = reg.manager.plugins
    if args.name not in plugins:
        raise EngineError(
            f"unknown plugin '{args.name}'{did_you_mean(args.name, plugins)}", hint="see `engine plugins list`"
        )
    info = plugins[args.name]
    console = _console()
    console.print(_styled(info.name, "bold"), f" {info.distribution or '-'} {info.version or ''}")
    console.print(f"module:  {info.module}")
    console.print(f"status:  {info.status}" + (f" — {info.error}" if info.error else ""))
    console.print(f"hooks:   {', '.join(info.hooks) or '-'}")
    entries = [e for e in reg.list() if e.plugin == info.name]
    if entries:
        table = _table("kind", "name", "summary")
        for e in entries:
            table.add_row(e.kind, e.qualified_name, e.summary)
        console.print(table)
    from engine.manage import check_components

    problems = check_components(reg, info.name, import_targets=args.import_)
    for name, problem in problems:
        console.print(_styled("problem", "red"), f"{name}: {problem}")
    return 1 if problems or info.status != "ok" else 0


# --------------------------------------------------------------------------- components


def cmd_components_list(args: argparse.Namespace) -> int:
    from engine.component import KINDS
    from engine.errors import ConfigError, did_you_mean

    if args.kind and args.kind not in KINDS:
        raise ConfigError(
            f"unknown kind '{args.kind}'{did_you_mean(args.kind, KINDS)}", hint=f"kinds: {', '.join(KINDS)}"
        )
    reg = _registry(args)
    entries = reg.list(args.kind, args.pattern)
    table = _table("kind", "name", "summary")
    for e in entries:
        table.add_row(e.kind, e.qualified_name, e.summary)
    console = _console()
    if entries:
        console.print(table)
    else:
        console.print("no components match" + (f" '{args.pattern}'" if args.pattern else ""))
    return 0


def _fmt_default(p: Any) -> Any:
    from engine.signature import REQUIRED

    if p.default is REQUIRED:
        return _styled("required", "bold")
    return repr(p.default)


def cmd_components_show(args: argparse.Namespace) -> int:
    from engine.component import KINDS
    from engine.errors import ConfigError, did_you_mean

    reg = _registry(args)
    kinds = [args.kind] if args.kind else list(KINDS)
    found = []
    for kind in kinds:
        try:
            found.append(reg.resolve(kind, args.name))
        except ConfigError as exc:
            if "ambiguous" in exc.message:
                raise
    if not found:
        every = {e.qualified_name for e in reg.list()} | {e.name for e in reg.list()}
        raise ConfigError(
            f"no component named '{args.name}'{did_you_mean(args.name, every)}", hint="see `engine components list`"
        )
    console = _console()
    for entry in found:
        console.print(_styled(entry.qualified_name, "bold"), f" ({entry.kind})  {entry.summary}")
        console.print(f"  plugin:  {entry.plugin} ({entry.distribution or '-'} {entry.version or ''})")
        console.print(f"  target:  {entry.target_text}")
        if entry.kind == "recipe":
            import yaml

            console.print("  config:")
            console.print("    " + yaml.safe_dump(entry.load_config(), sort_keys=False).replace("\n", "\n    "))
            continue
        if entry.facts:
            console.print(f"  facts:   {', '.join(entry.facts)}")
        if entry.slots:
            slots = ", ".join(f"{s} ({k}, default {entry.defaults.get(s) or '-'})" for s, k in entry.slots.items())
            console.print(f"  slots:   {slots}")
        sig = reg.load_signature(entry) if args.import_ else reg.signature(entry)
        if sig is None:
            console.print("  parameters: not readable from source; add --import to import the target")
            continue
        table = _table("parameter", "type", "default", "description")
        for p in sig.params:
            table.add_row(
                f"{entry.kind if entry.kind != 'data' else 'data'}.{p.name}",
                p.annotation or "",
                _fmt_default(p),
                p.doc,
            )
        if entry.kind == "data":
            from engine.config import LOADER_PARAMS

            for p in LOADER_PARAMS.values():
                table.add_row(f"data.{p.name}", p.annotation or "", _fmt_default(p), p.doc)
        from engine.config import reserved_keys

        for p in reserved_keys(entry.kind, sig).values():  # model.init_from, model.freeze, optimizer.param_groups
            table.add_row(f"{entry.kind}.{p.name}", p.annotation or "", _fmt_default(p), p.doc)
        console.print(table)
        if sig.open:
            console.print("  (also accepts other keyword arguments)")
    return 0


# --------------------------------------------------------------------------- run


def _compose(args: argparse.Namespace, reg: Any) -> tuple[dict[str, Any], Path | None]:
    from engine.config import compose, load_file, validate

    recipe = None
    overrides: list[str] = []
    for item in args.items:
        if "=" in item:
            overrides.append(item)
        elif recipe is None and not overrides and args.resume is None:
            recipe = item
        else:
            raise EngineError(
                f"cannot read '{item}': expected key=value",
                hint="only one recipe name may come first; for example model=mlp",
            )
    resume = None
    base = None
    if args.resume:
        resume = Path(args.resume)
        if not (resume / "config.yaml").is_file():
            raise EngineError(f"{resume} is not a run directory (no config.yaml)", hint="see `engine runs list`")
        base = load_file(str(resume / "config.yaml"))
    cfg = compose(reg, recipe, args.config or [], overrides, base=base)
    return validate(cfg, reg), resume


def cmd_run(args: argparse.Namespace) -> int:
    reg = _registry(args)
    cfg, resume = _compose(args, reg)
    if args.dry_run:
        import yaml

        sys.stdout.write(yaml.safe_dump(cfg, sort_keys=False))
        print("# config is valid (dry run: nothing was built or trained)", file=sys.stderr)
        return 0
    from engine.runner import run

    result = run(cfg, reg, resume=resume)
    if os.environ.get("LOCAL_RANK", "0") != "0":
        return 0
    console = _console()
    metrics = result.summary.get("metrics", {})
    table = _table("metric", "value")
    for key in sorted(metrics):
        if key.startswith(("test/", "val/")):
            value = metrics[key]
            table.add_row(key, _metric(value))
    console.print(table)
    console.print(f"wall time {result.summary['wall_time_s']:.1f} s, {result.summary['global_step']} steps")
    console.print(f"run directory: {result.run_dir}")
    return 0


def cmd_runs_list(args: argparse.Namespace) -> int:
    import json

    root = Path(args.dir)
    rows = []
    for summary_file in sorted(root.glob("*/summary.json")):
        try:
            s = json.loads(summary_file.read_text())
        except (OSError, ValueError):
            continue
        metrics = s.get("metrics", {})
        key = next((k for k in sorted(metrics) if k.startswith("test/") and k != "test/loss"), None)
        key = key or next((k for k in sorted(metrics) if k.startswith("val/")), None)
        shown = f"{key}={metrics[key]:.4f}" if key else "-"
        wall = f"{s['wall_time_s']:.1f}s" if "wall_time_s" in s else "-"
        rows.append((summary_file.parent.name, s.get("status", "?"), shown, wall, summary_file.parent.stat().st_mtime))
    console = _console()
    if not rows:
        console.print(f"no runs in {root}/")
        return 0
    table = _table("run", "status", "metric", "wall time")
    for name, status, shown, wall, _ in sorted(rows, key=lambda r: r[-1]):
        table.add_row(name, status, shown, wall)
    console.print(table)
    return 0


# --------------------------------------------------------------------------- parser


def build_parser(manager: Any = None) -> argparse.ArgumentParser:
    from engine import __version__

    parser = argparse.ArgumentParser(
        prog="engine",
        description="A plugin-based deep-learning engine on Lightning: compose runs from plugin names.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"engine {__version__}")
    parser.add_argument("--debug", action="store_true", help="show tracebacks for errors")
    parser.add_argument(
        "--disable", action="append", metavar="NAME", default=[], help="disable a plugin for this command (repeatable)"
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    plugins = sub.add_parser("plugins", help="list, inspect, install, enable and disable plugins")
    plugins.set_defaults(handler=_group_help(plugins))
    psub = plugins.add_subparsers(dest="subcommand", metavar="SUBCOMMAND")
    psub.add_parser("list", help="every plugin: distribution, version, status, hooks").set_defaults(
        handler=cmd_plugins_list
    )
    p = psub.add_parser("info", help="one plugin: its hooks, components, and problems with them")
    p.add_argument("name")
    p.add_argument(
        "--import",
        dest="import_",
        action="store_true",
        help="import every target (slower; catches errors inside target modules too)",
    )
    p.set_defaults(handler=cmd_plugins_info)
    p = psub.add_parser("install", help="pip-install plugin distributions here, then list what they contribute")
    p.add_argument("spec", nargs="*", help="anything pip install accepts: names, paths, -e DIR, --no-deps, …")
    p.set_defaults(handler="engine.manage:cmd_install")
    p = psub.add_parser("uninstall", help="pip-uninstall the distribution providing a plugin")
    p.add_argument("name", help="plugin name (see `engine plugins list`)")
    p.set_defaults(handler="engine.manage:cmd_uninstall")
    p = psub.add_parser("disable", help="turn a plugin off for every command (saved under ENGINE_HOME)")
    p.add_argument("name")
    p.set_defaults(handler="engine.manage:cmd_disable")
    p = psub.add_parser("enable", help="turn a disabled plugin back on")
    p.add_argument("name")
    p.set_defaults(handler="engine.manage:cmd_enable")

    new = sub.add_parser("new", help="scaffold a new plugin package")
    new.set_defaults(handler=_group_help(new))
    nsub = new.add_subparsers(dest="subcommand", metavar="SUBCOMMAND")
    p = nsub.add_parser(
        "plugin",
        help="a pip-installable plugin: a model, a data source, a recipe, tests using the conformance kit",
    )
    p.add_argument("name", help="plugin name: lower-case letters, digits, _ (package engine_<name>)")
    p.add_argument("--dir", help="where to write it (default: ./engine-<name>)")
    p.set_defaults(handler="engine.scaffold:cmd_new_plugin")

    comps = sub.add_parser("components", help="query the registry of models, data sources, recipes, …")
    comps.set_defaults(handler=_group_help(comps))
    csub = comps.add_subparsers(dest="subcommand", metavar="SUBCOMMAND")
    p = csub.add_parser("list", help="components, filtered by kind and glob pattern")
    p.add_argument("pattern", nargs="?", help="glob on the (qualified) name, e.g. 'res*'")
    p.add_argument("--kind", "-k", help="task, model, loss, optimizer, scheduler, data, deploy or recipe")
    p.set_defaults(handler=cmd_components_list)
    p = csub.add_parser("show", help="one component: target, facts, parameters with types and defaults")
    p.add_argument("name", help="qualified (vision.resnet) or unambiguous short name")
    p.add_argument("--kind", "-k", help="only look among this kind")
    p.add_argument(
        "--import",
        dest="import_",
        action="store_true",
        help="import the target when its source cannot be read statically",
    )
    p.set_defaults(handler=cmd_components_show)

    run = sub.add_parser(
        "run",
        help="compose a config from names and train it",
        description="Compose a run: [RECIPE] then -c files then key=value overrides (later wins), "
        "validate it, train with Lightning, test, and write a run directory.",
        epilog="overrides:\n  model=NAME            choose a component (shorthand for model.name=NAME)\n"
        "  model.hidden=[64,64]  set a parameter (see `engine components show NAME`)\n"
        "  trainer.max_epochs=5  any lightning.Trainer argument\n"
        "  data.batch_size=128   loader: batch_size, num_workers, pin_memory\n"
        "  checkpoint.monitor=val/accuracy checkpoint.mode=max\n"
        "  early_stopping.patience=5   switch on early stopping\n"
        "  prune.amount=0.5      prune 50% of the weights during training (see docs/techniques.md)\n"
        "  model.init_from=RUN model.freeze=[features.*]   fine-tune from another run\n"
        "  task=distill task.teacher=RUN   distil a trained run into the model\n"
        "  seed=1  run.dir=runs  run.name=my-run",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    run.add_argument("items", nargs="*", metavar="RECIPE|KEY=VALUE")
    run.add_argument("-c", "--config", action="append", metavar="FILE", help="YAML config file (repeatable)")
    run.add_argument("--dry-run", action="store_true", help="validate and print the resolved config; build nothing")
    run.add_argument("--resume", metavar="RUN", help="continue the run in this directory from its last checkpoint")
    run.set_defaults(handler=cmd_run)

    from engine.evaluate import add_parser as add_evaluate

    add_evaluate(sub)

    runs = sub.add_parser("runs", help="list run directories")
    runs.set_defaults(handler=_group_help(runs))
    rsub = runs.add_subparsers(dest="subcommand", metavar="SUBCOMMAND")
    p = rsub.add_parser("list", help="runs with status, main metric and wall time")
    p.add_argument("--dir", default="runs", help="directory holding runs (default: runs)")
    p.set_defaults(handler=cmd_runs_list)

    if manager is not None:
        manager.call_each("engine_add_commands", subparsers=sub)
    return parser


def _group_help(group: argparse.ArgumentParser) -> Any:
    """Handler for a command group called without a subcommand: show its help, exit 2."""

    def show(args: argparse.Namespace) -> int:
        group.print_help()
        return 2

    return show


def _dispatch(handler: Any, args: argparse.Namespace) -> int:
    if isinstance(handler, str):
        from importlib import import_module

        module, _, attr = handler.partition(":")
        handler = getattr(import_module(module), attr)
    return int(handler(args) or 0)


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in argv
    try:
        disable = [argv[i + 1] for i, a in enumerate(argv[:-1]) if a == "--disable"]
        disable += [a.split("=", 1)[1] for a in argv if a.startswith("--disable=")]
        import engine

        reg = engine.get_registry(tuple(disable))
        parser = build_parser(reg.manager)
        pip_args: list[str] = []
        for i in range(len(argv) - 1):
            if (
                argv[i : i + 2] == ["plugins", "install"]
                and "-h" not in argv[i + 2 :]
                and "--help" not in argv[i + 2 :]
            ):
                argv, pip_args = argv[: i + 2], argv[i + 2 :]  # everything after `install` belongs to pip
                break
        args = parser.parse_args(argv)
        if pip_args:
            args.spec = pip_args
        if not hasattr(args, "handler"):  # `engine` alone
            parser.print_help()
            return 0
        return _dispatch(args.handler, args)
    except EngineError as exc:
        if debug:
            raise
        print(f"error: {exc.message}", file=sys.stderr)
        if exc.hint:
            print(f"  hint: {exc.hint}", file=sys.stderr)
        return exc.exit_code
    except BrokenPipeError:  # `engine components list | head`: the reader has all it wants
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # no second error at exit
        return 0
    except KeyboardInterrupt:
        run_dir = os.environ.get("ENGINE_RUN_DIR")
        print("interrupted" + (f"; continue with `engine run --resume {run_dir}`" if run_dir else ""), file=sys.stderr)
        return 130
    except Exception as exc:
        if debug:
            raise
        print(f"error: {type(exc).__name__}: {exc}", file=sys.stderr)
        print("  hint: rerun with --debug for the traceback", file=sys.stderr)
        return 1


def entrypoint() -> None:
    sys.exit(main())
