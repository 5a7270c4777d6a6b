"""What long commands print, at three levels set by ``--quiet`` / ``--verbose`` (torch-free).

``quiet``: the results only; ``normal``: Lightning's progress bar on a terminal, else one line an epoch
(`engine._run.callbacks.EpochLines`), Lightning's tips and banners dropped; ``verbose``: everything.
"""

from __future__ import annotations

import logging
import sys

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


_install_filter()  # Lightning's tips are dropped whoever runs the engine (CLI, tests, Python)
