"""The command-line side of text runs: ``engine predict RUN input.txt`` and the rows of ``engine deploy``'s table."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from engine import EngineError
from engine.console import Console, Table


def read_inputs(path: str) -> list[str]:
    """One file's texts: a JSON list of strings (or ``{"inputs": [...]}``) for .json, else one text per line."""
    from engine_deploy.inputs import InputError
    from engine_deploy.text import read_texts

    if Path(path).suffix.lower() != ".json":
        return read_texts(path)
    try:
        value = json.loads(Path(path).expanduser().read_bytes().decode("utf-8"))
    except (ValueError, RecursionError) as exc:
        raise InputError(f"{path}: not valid UTF-8 JSON: {str(exc)[:200]}") from None
    value = value.get("inputs") if isinstance(value, dict) else value
    value = [value] if isinstance(value, str) else value
    if not isinstance(value, list) or not all(isinstance(t, str) for t in value):
        raise InputError(f'{path}: this run takes text: a list of strings, or {{"inputs": ["text", ...]}}')
    return value


def predict_text(predictor: Any, args: argparse.Namespace) -> int:
    """``engine predict`` of a generating run: every input (a line of a text file) and its generated text."""
    for flag, used in (
        ("--out", args.out),
        ("--min-score", args.min_score is not None),
        ("--ensemble", args.ensemble),
        ("--preprocessed", args.preprocessed),
    ):
        if used:
            raise EngineError(f"{flag} does not apply to this run: it generates text", hint=f"drop {flag}")
    names: list[str] = []
    ids: list[list[int]] = []
    texts: list[str] = []
    for path in args.inputs:
        lines = read_inputs(path)
        for i, line in enumerate(lines, start=1):
            where = f"{path}, input {i}" if len(lines) > 1 else path
            ids += predictor.text.encode([line], where)
            names.append(where)
            texts.append(line)
    records = predictor.predict(ids)
    if args.json:
        for name, text, record in zip(names, texts, records, strict=True):
            sys.stdout.write(json.dumps({"input": name, "text": text, "output": record["text"]}) + "\n")
        return 0
    table = Table("input", "text", "output")
    for name, text, record in zip(names, texts, records, strict=True):
        table.add_row(name, text, record["text"])
    console = Console()
    console.print(table)
    console.print(f"({predictor.backend}; {predictor.problem})", style="dim")
    return 0


def deploy_rows(table: Table, manifest: dict[str, Any]) -> None:
    """``engine deploy``'s rows for a generating run: what was exported, how it was checked."""
    v = manifest["verification"]
    g = v["generation"]
    args = ", ".join(f"{a['dtype']}{a['shape']}" for a in manifest["input"]["arguments"])
    table.add_row(
        "problem", f"{manifest['problem']} ({manifest['input']['kind']} in, {manifest['output']['kind']} out)"
    )
    table.add_row("network", f"takes {args} (batch and lengths dynamic); the decoding loop runs in Python over it")
    lengths = ", ".join(map(str, g["batch_lengths"]))
    table.add_row(
        "max abs diff",
        f"{v['max_abs_diff']:.3g} (tolerance {v['tolerance']:g}; {g['network_calls']} network calls of "
        f"{g['call_shapes']} shapes, {v['samples']} {v['split']} samples in batches of lengths {lengths})",
    )
    table.add_row("same generations", f"{g['same_outputs']:.4f}")
    if manifest.get("vocabulary"):
        sizes = ", ".join(f"{k} {n}" for k, n in manifest["vocabulary"].items())
        table.add_row("vocabulary", f"{sizes}{'; packaged in data/' if manifest.get('data_artifacts') else ''}")
    seconds = g["generate_s"]
    table.add_row("generate", f"eager {seconds['eager']:.3f} s  artifact {seconds['artifact']:.3f} s (all batches)")
