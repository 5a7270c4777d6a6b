"""The ``engine`` command as a plugin sees it: `CommandSink`, what ``engine_add_commands`` receives.

What each plugin adds is staged under its name and joins the real parser only in `CommandSink.build`,
leaving out plugins that failed: a hook that raises half-way leaves no command behind.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable, Container
from dataclasses import dataclass, field
from typing import Any

from engine._contract.errors import PluginError


@dataclass
class _Command:
    owner: str
    staged: argparse.ArgumentParser
    kwargs: dict[str, Any]
    extensions: list[tuple[str, argparse.ArgumentParser]] = field(default_factory=list)


class CommandSink:
    """The ``engine`` sub-commands, for ``engine_add_commands`` (``subparsers``).

    ``add_parser(name, help=..., description=..., epilog=..., formatter_class=..., aliases=[...])``
    returns an ``argparse.ArgumentParser`` to add arguments (and sub-commands) to; name its handler with
    ``parser.set_defaults(handler="package.module:function")``. A command group called without its
    sub-command prints its help (exit 0).
    """

    def __init__(self, owner: Callable[[], str]) -> None:
        self._owner = owner  # the plugin whose hook is running
        self._commands: dict[str, _Command] = {}
        self._names: dict[str, str] = {}  # every name and alias -> its command

    def add_parser(self, name: str, **kwargs: Any) -> argparse.ArgumentParser:
        """A new command ``engine NAME``; a name (or alias) the core or an earlier plugin has is refused."""
        for taken in (name, *kwargs.get("aliases", ())):
            if taken in self._names:
                raise PluginError(f"its command '{taken}' is already provided by {self._label(self._names[taken])}")
        kwargs.setdefault("description", kwargs.get("help"))  # `engine NAME --help` says what it is
        keep = {k: v for k, v in kwargs.items() if k not in ("aliases", "help")}
        staged = argparse.ArgumentParser(prog=f"engine {name}", **keep)
        self._commands[name] = _Command(self._owner(), staged, dict(kwargs))
        for taken in (name, *kwargs.get("aliases", ())):
            self._names[taken] = name
        return staged

    def extend(self, name: str) -> argparse.ArgumentParser:
        """A parser whose options join the existing command ``name`` (``engine run --folds K``); clashes are refused.

        The command's handler sees them in ``args``; a plugin acting on options of ``engine run`` implements
        ``engine_run_main``.
        """
        command = self._commands.get(self._names.get(name, name))
        if command is None:
            raise PluginError(f"it extends the command '{name}', which the core or an earlier plugin does not provide")
        staged = argparse.ArgumentParser(add_help=False)
        command.extensions.append((self._owner(), staged))
        return staged

    def build(
        self, subparsers: Any, failed: Container[str]
    ) -> tuple[dict[str, argparse.ArgumentParser], list[tuple[str, str]]]:
        """Add every command of a plugin not in ``failed`` to ``subparsers``: each command's parser, and
        ``(plugin, why)`` for each extension left out because its options clash with its command's."""
        built, clashes = {}, []
        for name, command in self._commands.items():
            if command.owner in failed:
                continue
            parents = [command.staged]
            for owner, extension in command.extensions:
                if owner in failed:
                    continue
                try:  # a clash of option strings is argparse's ArgumentError: refuse it, naming both owners
                    argparse.ArgumentParser(add_help=False, parents=[*parents, extension])
                except argparse.ArgumentError as exc:
                    clashes.append((owner, f"its options for '{name}' clash with {self._label(name)}'s: {exc}"))
                    continue
                parents.append(extension)
            built[name] = subparsers.add_parser(name, parents=parents, add_help=False, **command.kwargs)
        return built, clashes

    def _label(self, name: str) -> str:
        owner = self._commands[name].owner
        return "the core" if owner == "core" else f"plugin '{owner}'"
