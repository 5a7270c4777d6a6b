"""Transcript text: normalisation and character ids (1-based; 0 is the CTC blank)."""

from __future__ import annotations

from collections.abc import Sequence

from engine import ConfigError


def normalize_text(text: str) -> str:
    """Lower-case, whitespace collapsed to single spaces, stripped."""
    return " ".join(str(text).lower().split())


def encode_text(text: str, vocabulary: Sequence[str], where: str = "transcript") -> list[int]:
    """Character ids (1-based; 0 is the CTC blank) of the normalised ``text``."""
    index = {c: i + 1 for i, c in enumerate(vocabulary)}
    text = normalize_text(text)
    unknown = sorted({c for c in text if c not in index})
    if unknown:
        raise ConfigError(
            f"{where}: character(s) {''.join(unknown)!r} outside the vocabulary {''.join(vocabulary)!r}",
            hint="add them to data.vocabulary, or fix the transcript",
        )
    if not text:
        raise ConfigError(f"{where}: empty transcript")
    return [index[c] for c in text]


def decode_ids(ids: Sequence[int], vocabulary: Sequence[str]) -> str:
    return "".join(vocabulary[i - 1] for i in ids if 0 < i <= len(vocabulary))
