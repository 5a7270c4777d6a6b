"""Shell completion (argcomplete): ``engine completion bash|zsh|fish`` prints the script to source.

Completes commands and options, component and recipe names (``model=<TAB>``, ``components show <TAB>``),
plugin names and run names (an argument whose metavar says ``RUN``): all read from the registry, torch-free.
``main`` imports this module only when the shell asks for completions (``_ARGCOMPLETE`` set).
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Iterator
from typing import Any

from engine._contract.errors import EngineError

SHELLS = ("bash", "zsh", "fish")


def cmd_completion(args: argparse.Namespace) -> int:
    try:
        import argcomplete
    except ImportError:
        raise EngineError("shell completion needs argcomplete", hint="pip install argcomplete") from None
    print(argcomplete.shellcode(["engine"], shell=args.shell))
    return 0


def runs(prefix: str, **_: Any) -> list[str]:
    """Run names as `engine runs list` prints them (the runs directory's), and paths."""
    from engine._plugins.settings import runs_root

    root = runs_root()
    names = [p.name for p in root.iterdir() if p.is_dir()] if root.is_dir() else []
    folder = os.path.dirname(prefix)
    paths = [os.path.join(folder, e.name) + "/" for e in os.scandir(folder or ".") if e.is_dir()]
    return sorted(n for n in names + paths if n.startswith(prefix))


def items(prefix: str, **_: Any) -> list[str]:
    """``engine run`` items: recipes, sections as ``KEY=``, and components after ``KIND=``."""
    from engine._plugins.registry import get_registry

    reg = get_registry()
    key, eq, _ = prefix.partition("=")
    if eq:
        kind = (
            key
            if key in ("task", "data")
            else next((k for k in ("model", "loss", "optimizer", "scheduler") if key.startswith(k)), None)
        )
        names = {n for e in (reg.list(kind) if kind else []) for n in (e.name, e.qualified_name)}
        return sorted(f"{key}={n}" for n in names)
    sections = {s.name for s in reg.list("section")} | {"model", "task", "data", "loss", "optimizer", "scheduler"}
    return sorted(e.qualified_name for e in reg.list("recipe")) + sorted(f"{s}=" for s in sections)


def components(prefix: str, **_: Any) -> list[str]:
    from engine._plugins.registry import get_registry

    return sorted({e.qualified_name for e in get_registry().list()})


def plugins(prefix: str, **_: Any) -> list[str]:
    from engine._plugins.registry import get_registry

    return [i.name for i in get_registry().manager.infos()]


def _actions(parser: argparse.ArgumentParser, path: str = "") -> Iterator[tuple[str, argparse.Action]]:
    for action in parser._actions:
        yield path, action
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                yield from _actions(sub, f"{path} {name}".strip())


def attach(parser: argparse.ArgumentParser) -> None:
    """Give every argument naming a run, a component, a recipe or a plugin its completer."""
    for path, action in _actions(parser):
        metavar = str(action.metavar or "")
        if "RUN" in metavar:
            action.completer = runs  # type: ignore[attr-defined]
        elif path == "run" and action.dest == "items":
            action.completer = items  # type: ignore[attr-defined]
        elif path == "components show" and action.dest == "name":
            action.completer = components  # type: ignore[attr-defined]
        elif path.startswith("plugins ") and action.dest == "name":
            action.completer = plugins  # type: ignore[attr-defined]


def complete(parser: argparse.ArgumentParser) -> None:
    """Answer the shell (argcomplete's protocol) and exit; nothing when argcomplete is missing."""
    try:
        import argcomplete
    except ImportError:
        return
    attach(parser)
    argcomplete.autocomplete(parser)
