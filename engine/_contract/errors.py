"""Errors the engine reports to users: the CLI prints one line (and its hint), exits with ``exit_code``."""

from __future__ import annotations

import difflib
from collections.abc import Iterable


class EngineError(Exception):
    """A user-facing error: a clear message, an optional hint, an exit code."""

    exit_code = 2

    def __init__(self, message: str, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return self.message if not self.hint else f"{self.message}\n  hint: {self.hint}"


class ConfigError(EngineError):
    """The composed configuration is invalid (unknown name, parameter, wrong type)."""


class PluginError(EngineError):
    """A plugin could not be loaded or two plugins conflict."""


def did_you_mean(word: str, choices: Iterable[str], n: int = 3) -> str:
    """Return ``" — did you mean 'x'?"`` for the closest choices, or ``""``."""
    choices = sorted(set(choices))  # the same suggestions whatever the order (a set's differs between processes)
    close = difflib.get_close_matches(word, choices, n=n, cutoff=0.6)
    if not close:
        lowered = word.lower()
        close = [c for c in choices if lowered in c.lower() or c.lower().endswith("." + lowered)][:n]
    # "cosine" and "core.cosine" are one suggestion: keep the short form.
    close = [c for c in close if not ("." in c and c.split(".", 1)[1] in close)]
    if not close:
        return ""
    return " — did you mean " + " or ".join(f"'{c}'" for c in close) + "?"
