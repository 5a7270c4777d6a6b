"""Terminal output for every command (public): aligned tables with a little colour, and verbosity options."""

from engine._cli.console import Console, Table, add_verbosity_options, format_metric, styled
from engine._run.logs import NORMAL, QUIET, VERBOSE, set_verbosity, verbosity

__all__ = ["NORMAL", "QUIET", "VERBOSE", "Console", "Table", "add_verbosity_options", "format_metric", "set_verbosity"]
__all__ += ["styled", "verbosity"]
