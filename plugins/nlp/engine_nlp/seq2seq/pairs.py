"""Sentence pairs from TSV, CSV or JSONL files (torch-free): ``[(source, target), ...]`` with one-line errors."""

from __future__ import annotations

import csv
import json
from pathlib import Path

from engine import ConfigError

FORMATS = ("auto", "tsv", "csv", "jsonl")


def _format(file: Path, fmt: str) -> str:
    if fmt != "auto":
        return fmt
    suffix = file.suffix.lower()
    if suffix in (".jsonl", ".ndjson", ".json"):
        return "jsonl"
    return "csv" if suffix == ".csv" else "tsv"


def _text(file: Path) -> str:
    try:
        return file.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{file} is not UTF-8 text (byte {exc.start})", hint="convert it: iconv -t UTF-8") from None


def read_pairs(file: Path, fmt: str = "auto", source_column: str = "source", target_column: str = "target") -> list:
    """The (source, target) pairs of ``file``. A TSV whose first row does not name both columns has no header: its
    first two columns are source and target (Tatoeba's pairs as manythings.org ships them: source, target,
    attribution), further columns ignored; rows ``id, sentence, id, translation`` (Tatoeba's own sentence-pair
    export) give the second and fourth columns."""
    fmt = _format(file, fmt)
    text = _text(file)
    pairs: list[tuple[str, str]] = []
    if fmt == "jsonl":
        for line, raw in enumerate(text.splitlines(), start=1):
            if not raw.strip():
                continue
            try:
                row = json.loads(raw)
            except ValueError as exc:
                raise ConfigError(f"{file}, line {line}: not valid JSON: {exc}") from None
            if not isinstance(row, dict) or source_column not in row or target_column not in row:
                keys = ", ".join(row) if isinstance(row, dict) else type(row).__name__
                raise ConfigError(
                    f"{file}, line {line}: needs keys '{source_column}' and '{target_column}', has {keys}",
                    hint="set data.source_column / data.target_column",
                )
            pairs.append((str(row[source_column]), str(row[target_column])))
        return pairs
    if fmt == "tsv":  # no quoting: Tatoeba's sentences contain quotes
        rows = [line.split("\t") for line in text.splitlines()]
    else:
        rows = list(csv.reader(text.splitlines()))
    rows = [r for r in rows if any(c.strip() for c in r)]
    if not rows:
        return pairs
    header = [c.strip() for c in rows[0]]
    if source_column in header and target_column in header:
        s, t = header.index(source_column), header.index(target_column)
        rows = rows[1:]
        start = 2
    elif fmt == "csv":
        raise ConfigError(
            f"{file}: no '{source_column}' and '{target_column}' columns; the header is {', '.join(header)}",
            hint="set data.source_column / data.target_column",
        )
    elif all(len(r) >= 4 and r[0].strip().isdigit() and r[2].strip().isdigit() for r in rows[:100]):
        s, t, start = 1, 3, 1  # Tatoeba's sentence-pair export: id, sentence, id, translation
    else:
        s, t, start = 0, 1, 1
    for line, row in enumerate(rows, start=start):
        if len(row) <= max(s, t):
            raise ConfigError(
                f"{file}, line {line}: {len(row)} column(s), a pair needs {max(s, t) + 1}",
                hint="separate source and target with a tab",
            )
        pairs.append((row[s].strip(), row[t].strip()))
    return pairs
