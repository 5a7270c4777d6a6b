"""The ``engine explain`` command: run `engine_explain.explain.explain` and print what it found."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

import numpy as np

from engine.console import Console, Table


def cmd_explain(args: argparse.Namespace) -> int:
    from engine_deploy.cli import check_inputs, warn

    from engine import EngineError, did_you_mean
    from engine_explain.plugin import METHODS

    if args.method not in METHODS:  # before importing torch (and opening the run): a typo costs nothing
        raise EngineError(
            f"unknown attribution method '{args.method}'{did_you_mean(args.method, METHODS)}",
            hint=f"choose from {', '.join(METHODS)}",
        )
    check_inputs(args)
    from engine_explain.explain import explain

    warnings: list[str] = []
    report = explain(
        args.run,
        args.inputs,
        method=args.method,
        target=args.target,
        out=args.out,
        batch_size=args.batch_size,
        steps=args.steps,
        samples=args.samples,
        top=args.top,
        attention=not args.no_attention,
        preprocessed=args.preprocessed,
        warnings=warnings,
        generation={"max_new_tokens": args.max_new_tokens} if args.max_new_tokens is not None else None,
    )
    warn(warnings)
    if report.kind == "sequence":
        _sequences(report, args.json)
        return 0
    if args.json:
        for item in report.items:
            record = {
                "input": item.name,
                "prediction": item.prediction,
                "target": item.target_label,
                "method": report.method,
                "attribution": np.round(item.attribution, 6).tolist(),
                "files": [str(p) for p in item.files],
            }
            if item.tokens is not None:
                record["tokens"] = item.tokens
            sys.stdout.write(json.dumps(record) + "\n")
        return 0
    console = Console()
    _print(console, report, args.top)
    return 0


def _shown(label: Any) -> str:
    """A label as printed: a token of a language model that is (or has) whitespace in quotes."""
    text = str(label)
    return text if text and text.strip() == text else repr(text)


def _number(value: Any) -> str:
    """A value as printed: numbers to 4 significant digits, a missing one as ``-`` (never a format error)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return "-" if value is None else str(value)
    return f"{value:.4g}"


def _said(item: Any) -> str:
    p = item.prediction or {}
    if "label" in p:
        probability = p.get("probability")
        return f"{_shown(p['label'])} ({probability:.3f})" if isinstance(probability, float) else _shown(p["label"])
    value = p.get("value")
    if isinstance(value, list):
        return ", ".join(_number(v) for v in value)
    return _number(value) if "value" in p or not p else ", ".join(f"{k}={v}" for k, v in p.items())


def _sequences(report: Any, as_json: bool) -> None:
    """Generated text: per input its tokens and, one row per generated token, the input tokens coloured."""
    from engine_explain.outputs import sequence_record
    from engine_explain.render import terminal_tokens

    if as_json:
        for item in report.items:
            sys.stdout.write(json.dumps(sequence_record(item, report.method)) + "\n")
        return
    console = Console()
    for item in report.items:
        console.print(f"{item.name}: {item.text!r} -> {item.output_text!r}", style="bold")
        if not item.output_tokens:
            console.print("  (nothing generated)", style="dim")
        for t, (token, p) in enumerate(zip(item.output_tokens, item.probabilities, strict=True)):
            row = terminal_tokens(item.input_tokens, item.attribution[t].tolist(), console.color)
            console.print(f"  {t:>3} {_shown(token):>8} p={p:.2f}  {row}")
    console.print(f"{report.method} attributions of each generated token written to {report.out}", style="dim")
    console.print(f"  also: {', '.join(p.name for p in report.files)}", style="dim")


def _print(console: Console, report: Any, top: int) -> None:
    if report.kind == "features":
        _features(console, report, top)
    elif report.kind == "text":
        for item in report.items:
            console.print(f"{item.name}: predicted {_said(item)}, explaining {_shown(item.target_label)}", style="bold")
            from engine_explain.render import terminal_tokens

            console.print(terminal_tokens(item.tokens or [], item.attribution.tolist(), console.color))
    else:
        table = Table("input", "prediction", "explained", "file")
        for item in report.items:
            table.add_row(item.name, _said(item), _shown(item.target_label), item.files[0].name if item.files else "-")
        console.print(table)
    if report.attention_layers:
        console.print(f"attention: {report.attention_layers} layers captured (NNN-name-attention.png)", style="dim")
    shown = [p.name for p in report.files]
    console.print(f"{report.method} attributions for {len(report.items)} input(s) written to {report.out}", style="dim")
    if shown:
        console.print(f"  also: {', '.join(shown)}", style="dim")


def _features(console: Console, report: Any, top: int) -> None:
    names = report.feature_names or []
    if len(report.items) <= 5:
        for item in report.items:
            console.print(f"{item.name}: predicted {_said(item)}, explaining {_shown(item.target_label)}", style="bold")
            table = Table("rank", "feature", "value", "attribution")
            for rank, j in enumerate(np.argsort(-np.abs(item.attribution))[:top], start=1):
                table.add_row(str(rank), names[j], f"{item.values[j]:.4g}", f"{item.attribution[j]:+.4f}")
            console.print(table)
        return
    mean = np.mean([np.abs(item.attribution) for item in report.items], axis=0)
    console.print(f"mean |attribution| over {len(report.items)} inputs", style="bold")
    table = Table("rank", "feature", "mean |attribution|")
    for rank, j in enumerate(np.argsort(-mean)[:top], start=1):
        table.add_row(str(rank), names[j], f"{mean[j]:.4f}")
    console.print(table)
