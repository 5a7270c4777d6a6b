"""The files ``engine explain`` writes into its output directory, per kind of input.

- images and spectrograms: ``NNN-name.png`` (input, signed attribution, magnitude overlaid);
- feature vectors and CSV rows: ``NNN-name.png`` (ranked bars) and ``attributions.csv`` (every feature);
- text: ``attributions.html`` (tokens shaded by attribution);
- transformers: ``NNN-name-attention.png`` (layers x heads), and for a vision transformer
  ``NNN-name-cls.png`` (the class token's attention to the patches over the image);
- always ``attributions.json``: per input the prediction, the explained output and the raw attributions.
"""

from __future__ import annotations

import csv
import json
import re
from pathlib import Path
from typing import Any

import numpy as np

from engine_explain import render


def _title(report: Any, item: Any) -> str:
    said = item.prediction.get("label", item.prediction.get("value"))
    if isinstance(said, float):
        said = f"{said:.4g}"
    return f"{Path(item.name).name}: predicted {said}, explaining {item.target_label} ({report.method})"


def slug(index: int, name: str) -> str:
    """A file stem for input ``name`` (``batch.npy[3]`` -> ``003-batch-3``)."""
    stem = Path(name.split("[")[0]).stem + ("-" + name.split("[")[1].rstrip("]") if "[" in name else "")
    return f"{index:03d}-" + (re.sub(r"[^A-Za-z0-9_.-]+", "_", stem).strip("_") or "input")


def write(report: Any, layers: list[np.ndarray], top: int) -> None:
    """Write every file for ``report`` (an `engine_explain.explain.Report`) and record them on it."""
    out: Path = report.out
    names = report.feature_names
    if report.kind == "features":
        width = len(report.items[0].attribution) if report.items else 0
        if not names or len(names) != width:
            names = [f"x{i}" for i in range(width)]
        report.feature_names = names
    for i, item in enumerate(report.items):
        stem = slug(i, item.name)
        title = _title(report, item)
        if report.kind in ("image", "spectrogram", "matrix"):
            path = render.heatmap_png(
                out / f"{stem}.png", item.values, item.attribution, title, spectrogram=report.kind == "spectrogram"
            )
            item.files.append(path)
        elif report.kind == "features":
            item.files.append(render.bars_png(out / f"{stem}.png", names, item.values, item.attribution, title, top))
        if layers:
            item.files += _attention(out, stem, report, item, [layer[i] for layer in layers])
    if report.kind == "features":
        report.files.append(_csv(out / "attributions.csv", report))
    if report.kind == "text":
        sections = [
            {"heading": _title(report, item), "tokens": item.tokens or [], "scores": item.attribution.tolist()}
            for item in report.items
        ]
        report.files.append(
            render.html_page(out / "attributions.html", f"{report.run.name}: {report.method}", sections)
        )
    report.files.append(_json(out / "attributions.json", report))


def _attention(out: Path, stem: str, report: Any, item: Any, layers: list[np.ndarray]) -> list[Path]:
    """Attention grids for one input; text maps are cut to its real tokens ([CLS] first when the model adds it)."""
    labels = None
    if report.kind == "text" and item.tokens is not None:
        n = len(item.tokens)
        extra = layers[0].shape[-1] - len(item.values)  # a [CLS] the model prepends
        keep = n + max(0, extra)
        layers = [m[:, :keep, :keep] for m in layers]
        labels = ["[CLS]"] * max(0, extra) + [t.strip() or repr(t) for t in item.tokens]
    title = f"{Path(item.name).name}: attention ({len(layers)} layers)"
    files = [render.attention_png(out / f"{stem}-attention.png", layers, labels, title)]
    if report.kind == "image":
        cls = render.cls_png(
            out / f"{stem}-cls.png", item.values, layers, f"{Path(item.name).name}: class-token attention"
        )
        if cls is not None:
            files.append(cls)
    return files


def _csv(path: Path, report: Any) -> Path:
    """One row per input and feature: value, attribution, rank (1 = largest absolute attribution)."""
    with path.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow(["input", "target", "rank", "feature", "value", "attribution"])
        for item in report.items:
            order = np.argsort(-np.abs(item.attribution))
            for rank, j in enumerate(order, start=1):
                writer.writerow(
                    [item.name, item.target_label, rank, report.feature_names[j], f"{item.values[j]:.6g}",
                     f"{item.attribution[j]:.6g}"]
                )  # fmt: skip
    return path


def _json(path: Path, report: Any) -> Path:
    records = []
    for item in report.items:
        record: dict[str, Any] = {
            "input": item.name,
            "prediction": item.prediction,
            "target": item.target,
            "target_label": item.target_label,
            "method": report.method,
            "kind": report.kind,
            "attribution": np.round(item.attribution, 6).tolist(),
            "files": [p.name for p in item.files],
        }
        if item.tokens is not None:
            record["tokens"] = item.tokens
        if report.kind == "features" and report.feature_names:
            record["features"] = report.feature_names
        records.append(record)
    path.write_text(json.dumps({"run": str(report.run), "method": report.method, "inputs": records}, indent=1))
    return path


def write_sequences(out: Path, run: Path, method: str, items: list[Any]) -> list[Path]:
    """Files for generated text (`engine_explain.sequence.Explained`): per input ``NNN-name.png`` (output tokens
    down, input tokens across), ``attributions.html`` (one row per output token) and ``attributions.json``."""
    sections = []
    for i, item in enumerate(items):
        title = f"{Path(item.name.split('[')[0]).name}: {item.text!r} -> {item.output_text!r} ({method})"
        if len(item.output_tokens):
            rows = [f"{t} ({p:.2f})" for t, p in zip(item.output_tokens, item.probabilities, strict=True)]
            item.files.append(
                render.matrix_png(out / f"{slug(i, item.name)}.png", item.attribution, rows, item.input_tokens, title)
            )
        sections.append({"heading": title, "tokens": [], "scores": []})
        for t, (token, p) in enumerate(zip(item.output_tokens, item.probabilities, strict=True)):
            sections.append(
                {"heading": f"output token {t}: {token!r} (p={p:.3f})", "tokens": item.input_tokens,
                 "scores": item.attribution[t].tolist(), "level": 3}
            )  # fmt: skip
    files = [render.html_page(out / "attributions.html", f"{run.name}: {method}", sections)]
    records = [sequence_record(item, method) for item in items]
    path = out / "attributions.json"
    path.write_text(json.dumps({"run": str(run), "method": method, "kind": "sequence", "inputs": records}, indent=1))
    return [*files, path]


def sequence_record(item: Any, method: str) -> dict[str, Any]:
    """One generated input as JSON: texts, tokens as text, ids, probabilities, ``attribution[output][input]``."""
    return {
        "input": item.name,
        "text": item.text,
        "output": item.output_text,
        "method": method,
        "input_tokens": item.input_tokens,
        "output_tokens": item.output_tokens,
        "output_ids": item.output_ids,
        "probabilities": item.probabilities,
        "attribution": np.round(item.attribution, 6).tolist(),
        "files": [p.name for p in item.files],
    }
