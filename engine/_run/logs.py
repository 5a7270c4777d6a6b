"""What long commands print, at three levels set by ``--quiet`` / ``--verbose`` (torch-free).

``quiet``: the results only; ``normal``: Lightning's progress bar on a terminal, else one line an epoch
(`engine._run.callbacks.EpochLines`), Lightning's tips and banners dropped; ``verbose``: everything.
"""

from __future__ import annotations

import logging
import sys
from typing import Any

QUIET, NORMAL, VERBOSE = 0, 1, 2
_LEVEL = [NORMAL]
#: Lightning's info lines that say nothing about the run (dropped below ``verbose``).
_NOISE = (
    "💡 Tip",
    "GPU available:",
    "TPU available:",
    "HPU available:",
    "IPU available:",
    "Loading `train_dataloader` to estimate",
    "You are using a CUDA device",
    "`Trainer.fit` stopped",
    "Restoring states from the checkpoint",
    "Loaded model weights from the checkpoint",
    "`weights_only` was not set",
    "Restored all states from the checkpoint",  # the CLI's own "resume: continuing RUN from …" says it
)
_LIGHTNING_LOGGERS = ("lightning.pytorch.utilities.rank_zero", "lightning.fabric.utilities.rank_zero")


def set_verbosity(level: int) -> None:
    """Set the level for the rest of the command (``QUIET``, ``NORMAL`` or ``VERBOSE``)."""
    _LEVEL[0] = level
    _install_filter()


def verbosity() -> int:
    """The level of the running command."""
    return _LEVEL[0]


def progress_bar() -> bool:
    """Whether Lightning's progress bar is shown: on a terminal, or when verbose."""
    return _LEVEL[0] >= VERBOSE or (_LEVEL[0] >= NORMAL and sys.stdout.isatty())


def epoch_lines() -> bool:
    """Whether one line per epoch replaces the bar (a log file, CI, a pipe)."""
    return _LEVEL[0] >= NORMAL and not progress_bar()


def format_metric(value: Any) -> str:
    """A metric for a table: floats to 4 decimals, whole numbers above 1 as integers (a counter: 7975), '-' if None."""
    if isinstance(value, float) and value.is_integer() and abs(value) > 1:
        return str(int(value))
    return "-" if value is None else f"{value:.4f}" if isinstance(value, float) else str(value)


class _Noise(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        if _LEVEL[0] >= VERBOSE:
            return True
        if _LEVEL[0] <= QUIET and record.levelno < logging.WARNING:
            return False
        message = str(record.getMessage())
        return "litlogger" not in message and not message.startswith(_NOISE)


_FILTER = _Noise()


def _install_filter() -> None:
    for name in _LIGHTNING_LOGGERS:
        logger = logging.getLogger(name)
        if _FILTER not in logger.filters:
            logger.addFilter(_FILTER)


def quiet_lightning() -> None:
    """Before training: the filter on Lightning's own handlers too (its modules' info lines propagate to them),
    and deprecation warnings of the libraries below ``verbose`` (not the user's business in a run's output)."""
    import warnings

    for name in ("lightning.pytorch", "lightning.fabric"):
        for handler in logging.getLogger(name).handlers:
            if _FILTER not in handler.filters:
                handler.addFilter(_FILTER)
    if _LEVEL[0] < VERBOSE:
        for category in (DeprecationWarning, PendingDeprecationWarning, FutureWarning):
            warnings.filterwarnings("ignore", category=category)


_install_filter()  # Lightning's tips are dropped whoever runs the engine (CLI, tests, Python)
