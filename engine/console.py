"""Terminal output for every command, the core's and the plugins' (public).

Aligned tables with a little colour (only on a terminal, not with ``NO_COLOR``);
:func:`add_verbosity_options` gives a command ``--quiet``/``--verbose``, :func:`verbosity` reads the level.
"""

from engine._cli.console import Console, Table, add_verbosity_options, format_metric, styled
from engine._run.logs import NORMAL, QUIET, VERBOSE, set_verbosity, verbosity

__all__ = ["NORMAL", "QUIET", "VERBOSE", "Console", "Table", "add_verbosity_options", "format_metric", "set_verbosity"]
__all__ += ["styled", "verbosity"]
