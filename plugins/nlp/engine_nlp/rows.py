"""Labelled rows of a CSV or JSONL file: (texts, labels), with a clear message for a missing column (no torch)."""

from __future__ import annotations

import csv
import json
from pathlib import Path

from engine import ConfigError


def read_rows(file: Path, fmt: str, text_column: str, label_column: str) -> tuple[list[str], list[str]]:
    """Texts and labels of ``file`` (``fmt``: csv, jsonl or auto, from the extension)."""
    if fmt == "auto":
        fmt = "jsonl" if file.suffix.lower() in (".jsonl", ".ndjson", ".json") else "csv"
    texts, labels = [], []
    if fmt == "csv":
        with file.open(newline="", encoding="utf-8-sig") as fh:
            reader = csv.DictReader(fh)
            columns = list(reader.fieldnames or [])
            for name in (text_column, label_column):
                if name not in columns:
                    role = "text" if name == text_column else "label"
                    raise ConfigError(
                        f"{file}: no {role} column '{name}'; columns are {', '.join(columns) or '(none)'}",
                        hint=f"set data.{role}_column to one of them",
                    )
            for line, row in enumerate(reader, start=2):
                text, label = row.get(text_column), row.get(label_column)
                if text is None or label is None or label == "":
                    raise ConfigError(f"{file}, line {line}: missing {text_column} or {label_column}")
                texts.append(text)
                labels.append(label)
        return texts, labels
    with file.open(encoding="utf-8") as fh:
        for line, raw in enumerate(fh, start=1):
            if not raw.strip():
                continue
            try:
                row = json.loads(raw)
            except ValueError as exc:
                raise ConfigError(f"{file}, line {line}: not valid JSON: {exc}") from None
            if not isinstance(row, dict):
                raise ConfigError(f"{file}, line {line}: expected a JSON object per line")
            for name in (text_column, label_column):
                if name not in row:
                    role = "text" if name == text_column else "label"
                    raise ConfigError(
                        f"{file}, line {line}: no {role} column '{name}'; keys are {', '.join(row) or '(none)'}",
                        hint=f"set data.{role}_column to one of them",
                    )
            texts.append(str(row[text_column]))
            labels.append(str(row[label_column]))
    return texts, labels
