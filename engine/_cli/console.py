"""Terminal output for every command: aligned tables, a little colour (only on a terminal, not with ``NO_COLOR``).

Written here rather than with rich, whose table alone costs a third of the start-up budget of ``engine plugins list``.
"""

from __future__ import annotations

import os
import sys
from typing import Any

from engine._run.logs import format_metric

__all__ = ["Console", "Table", "add_verbosity_options", "format_metric", "styled"]
_ANSI = {"bold": "1", "dim": "2", "red": "31", "green": "32", "yellow": "33"}


class Styled(str):
    """Text printed in a style (``bold``, ``dim``, ``red``, ``green``, ``yellow``) when colour is on."""

    style = ""


def styled(text: str, style: str) -> Styled:
    """``text`` to be printed in ``style`` (``bold``, ``dim``, ``red``, ``green``, ``yellow``)."""
    out = Styled(text)
    out.style = style
    return out


class Table:
    """Columns padded to their widest cell; the last column wraps to the terminal width."""

    def __init__(self, *columns: str) -> None:
        self.rows: list[tuple[Any, ...]] = [tuple(styled(c, "bold") for c in columns)]

    def add_row(self, *cells: Any) -> None:
        self.rows.append(tuple(cells))

    def __len__(self) -> int:
        """Rows below the header."""
        return len(self.rows) - 1

    def lines(self, paint: Any = None) -> list[str]:
        """The table as text lines; ``paint(cell, text)`` styles a cell (default: no styling)."""
        import shutil
        import textwrap

        paint = paint or (lambda cell, text: text)
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


class Console:
    """``print(table)`` or ``print(*parts, style=...)``; colour only where it will be seen."""

    def __init__(self, file: Any = None) -> None:
        self.file = file or sys.stdout
        self.color = self.file.isatty() and not os.environ.get("NO_COLOR") and os.environ.get("TERM") != "dumb"

    def paint(self, cell: Any, text: str) -> str:
        style = cell.style if isinstance(cell, Styled) else ""
        return f"\033[{_ANSI[style]}m{text}\033[0m" if self.color and style and text else text

    def print(self, *parts: Any, style: str = "") -> None:
        if len(parts) == 1 and isinstance(parts[0], Table):
            print("\n".join(parts[0].lines(self.paint)), file=self.file)
        elif style:
            text = " ".join(map(str, parts))
            print(self.paint(styled(text, style), text), file=self.file)
        else:
            print(" ".join(self.paint(p, str(p)) for p in parts), file=self.file)


def add_verbosity_options(parser: Any) -> None:
    """``--quiet`` / ``--verbose`` for a long command (its handler need not act on them: the CLI does)."""
    loud = parser.add_mutually_exclusive_group()
    loud.add_argument("--quiet", "-q", action="store_true", help="no epoch lines or progress bar; the results only")
    loud.add_argument("--verbose", "-v", action="store_true", help="everything Lightning prints, progress bar included")
