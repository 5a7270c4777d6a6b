"""The ``engine`` command as a plugin sees it: `CommandSink`, what ``engine_add_commands`` receives.

What each plugin adds is staged under its name and joins the real parser only in `CommandSink.build`,
leaving out plugins that failed: a hook that raises half-way leaves no command behind.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable, Container
from dataclasses import dataclass
from typing import Any

from engine._contract.errors import PluginError


@dataclass
class _Command:
    owner: str
    name: str
    staged: argparse.ArgumentParser
    kwargs: dict[str, Any]

    @property
    def names(self) -> tuple[str, ...]:
        return (self.name, *self.kwargs.get("aliases", ()))


class CommandSink:
    """The ``engine`` sub-commands, for ``engine_add_commands`` (``subparsers``).

    ``add_parser(name, help=..., description=..., epilog=..., formatter_class=..., aliases=[...])``
    returns an ``argparse.ArgumentParser`` to add arguments (and sub-commands) to; name its handler with
    ``parser.set_defaults(handler="package.module:function")``. A command group called without its
    sub-command prints its help (exit 0). A name (or option) several plugins add is kept by one of them,
    the same whatever the call order (the core; a plugin named like the command; the one installed first).
    """

    def __init__(self, owner: Callable[[], str]) -> None:
        self._owner = owner  # the plugin whose hook is running
        self._commands: list[_Command] = []
        self._extensions: dict[str, list[tuple[str, argparse.ArgumentParser]]] = {}  # command -> (owner, options)

    def add_parser(self, name: str, **kwargs: Any) -> argparse.ArgumentParser:
        """A new command ``engine NAME`` (another plugin's command of that name: see the class docstring)."""
        owner = self._owner()
        for taken in (name, *kwargs.get("aliases", ())):
            if any(taken in c.names for c in self._commands if c.owner == owner):
                raise PluginError(f"it adds the command '{taken}' twice")
        kwargs.setdefault("description", kwargs.get("help"))  # `engine NAME --help` says what it is
        keep = {k: v for k, v in kwargs.items() if k not in ("aliases", "help")}
        staged = argparse.ArgumentParser(prog=f"engine {name}", **keep)
        self._commands.append(_Command(owner, name, staged, dict(kwargs)))
        return staged

    def extend(self, name: str) -> argparse.ArgumentParser:
        """A parser whose options join the existing command ``name`` (``engine run --folds K``); clashes are refused.

        The command's handler sees them in ``args``; a plugin acting on options of ``engine run`` implements
        ``engine_run_main``.
        """
        command = next((c for c in self._commands if name in c.names), None)
        if command is None:
            raise PluginError(f"it extends the command '{name}', which the core or an earlier plugin does not provide")
        staged = argparse.ArgumentParser(add_help=False)
        self._extensions.setdefault(command.name, []).append((self._owner(), staged))
        return staged

    def build(
        self, subparsers: Any, failed: Container[str], owners: Any
    ) -> tuple[dict[str, argparse.ArgumentParser], list[tuple[str, str]]]:
        """Add the commands of plugins not in ``failed`` to ``subparsers``: each command's parser, and ``(plugin,
        why)`` for each plugin refused a name or an option another keeps (``owners.rank(plugin, name)`` says who,
        ``owners.lost(what, name, holder, loser)`` why)."""
        lost, clashes = set(failed), []
        claims: dict[str, list[str]] = {}
        for command in self._commands:
            for name in command.names:
                claims.setdefault(name, []).append(command.owner)
        for name, plugins in claims.items():
            live = [p for p in plugins if p not in lost]
            holder = min(live, key=lambda p: owners.rank(p, name), default=None)
            for plugin in live:
                if plugin != holder and plugin not in lost:
                    lost.add(plugin)
                    clashes.append((plugin, owners.lost("command", name, holder, plugin)))
        built = {}
        for command in (c for c in self._commands if c.owner not in lost):
            parents, kept = [command.staged], [command.owner]
            for owner, extension in sorted(
                self._extensions.get(command.name, []), key=lambda e: owners.rank(e[0], command.name)
            ):
                if owner in lost:
                    continue
                try:  # a clash of option strings is argparse's ArgumentError: refuse it, naming both owners
                    argparse.ArgumentParser(add_help=False, parents=[*parents, extension])
                except argparse.ArgumentError as exc:
                    holders = " and ".join(sorted({"the core" if o == "core" else f"plugin '{o}'" for o in kept}))
                    why = f"its options for '{command.name}' clash with {holders}'s, kept (installed first): {exc}"
                    clashes.append((owner, why))
                    continue
                parents.append(extension)
                kept.append(owner)
            built[command.name] = subparsers.add_parser(command.name, parents=parents, add_help=False, **command.kwargs)
        return built, clashes
