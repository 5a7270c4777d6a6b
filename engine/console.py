"""Terminal output for every command, the core's and the plugins' (public).

::

    from engine.console import Console, Table, format_metric, styled

    table = Table("metric", "value")
    table.add_row("val/accuracy", format_metric(0.98123))
    Console().print(table)

Aligned tables with a little colour (only on a terminal, not with ``NO_COLOR``), and the verbosity
of long commands: :func:`add_verbosity_options` gives a command ``--quiet``/``--verbose``, which the
CLI applies before the handler runs (:func:`verbosity` reads the level).
"""

from engine._cli.console import Console, Table, add_verbosity_options, format_metric, styled
from engine._run.logs import NORMAL, QUIET, VERBOSE, set_verbosity, verbosity

__all__ = [
    "NORMAL",
    "QUIET",
    "VERBOSE",
    "Console",
    "Table",
    "add_verbosity_options",
    "format_metric",
    "set_verbosity",
    "styled",
    "verbosity",
]
