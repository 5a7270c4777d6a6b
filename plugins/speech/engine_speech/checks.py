"""Plan-time checks of the speech data sources (``Component(check=...)``): torch-free, at ``--dry-run`` too."""

from __future__ import annotations

from typing import Any

from engine import ConfigError


def task_fits(values: dict[str, Any], where: str, config: dict[str, Any]) -> None:
    """Catch a task that cannot work on the chosen speech data before anything is built.

    ``speech.transcribed`` and ``speech.spoken_digits`` in ``strings`` mode yield transcribed
    sequences (for ``speech.ctc``); ``speech.spoken_digits`` in ``words`` mode yields labelled clips
    (for the supervised task).
    """
    task, data = config["task"]["name"], config[where]["name"]
    sequences = data == "speech.transcribed" or values.get("mode", "words") == "strings"
    if task == "speech.ctc" and not sequences:
        raise ConfigError(
            "task speech.ctc needs transcribed speech, but speech.spoken_digits is in words mode",
            hint="set data.mode=strings (or use the supervised task with model=speech.kws_cnn for words)",
        )
    if task == "core.supervised" and sequences:
        raise ConfigError(
            f"the supervised task classifies clips, but {data} yields transcribed sequences",
            hint="use task=speech.ctc model=speech.ctc_asr (or data.mode=words for keyword spotting)",
        )
