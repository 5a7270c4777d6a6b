"""Plan-time checks of the speech data sources (``Component(check=...)``): torch-free, at ``--dry-run`` too.

Each catches a task that cannot work on the data before anything is built: ``speech.transcribed``
and ``speech.spoken_digits`` in ``strings`` mode yield transcribed sequences (for ``speech.ctc``),
``speech.spoken_digits`` in ``words`` mode labelled clips (for the supervised task).
"""

from __future__ import annotations

from typing import Any

from engine import ConfigError


def _task_fits(task: str, data: str, sequences: bool) -> None:
    if task == "speech.ctc" and not sequences:
        raise ConfigError(
            f"task speech.ctc needs transcribed speech, but {data} is in words mode",
            hint="set data.mode=strings (or use the supervised task with model=speech.kws_cnn for words)",
        )
    if task == "core.supervised" and sequences:
        raise ConfigError(
            f"the supervised task classifies clips, but {data} yields transcribed sequences",
            hint="use task=speech.ctc model=speech.ctc_asr (or data.mode=words for keyword spotting)",
        )


def spoken_digits(values: dict[str, Any], where: str, config: dict[str, Any]) -> None:
    """``speech.spoken_digits``: clips in ``words`` mode, transcribed digit strings in ``strings`` mode."""
    _task_fits(config["task"]["name"], "speech.spoken_digits", values.get("mode", "words") == "strings")


def transcribed(values: dict[str, Any], where: str, config: dict[str, Any]) -> None:
    """``speech.transcribed``: always transcribed sequences."""
    _task_fits(config["task"]["name"], "speech.transcribed", sequences=True)
