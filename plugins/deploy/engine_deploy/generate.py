"""``engine generate RUN "text" ...`` (alias ``engine translate``): text out of any run whose task generates.

The task implements `engine.protocols.Generates` and its data source `engine.protocols.EncodesText`; the command
passes only the decoding options given on the command line, each checked against the task's ``generate``
signature (an option it does not take: one line naming the options it does take). With one input and a task
implementing `engine_deploy.protocols.StreamsTokens`, the text is printed as it is generated.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from engine import EngineError

#: Command-line flags and the ``generate`` parameter each sets (given ones only).
OPTIONS = {
    "max_new_tokens": "--max-new-tokens",
    "beam": "--beam",
    "temperature": "--temperature",
    "top_k": "--top-k",
    "top_p": "--top-p",
    "stop": "--stop",
    "seed": "--seed",
    "length_penalty": "--length-penalty",
}


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("run", help="run directory (with a checkpoint) of a task that generates")
    p.add_argument("texts", nargs="*", metavar="TEXT", help="input text(s); several are generated as one batch")
    p.add_argument("--prompt", action="append", default=[], metavar="TEXT", help="an input text too (repeatable)")
    p.add_argument("--max-new-tokens", type=int, metavar="N", help="tokens to generate at most per input")
    p.add_argument("--beam", type=int, metavar="N", help="beam search width (tasks with beam search)")
    p.add_argument("--length-penalty", type=float, metavar="A", help="beam search length penalty")
    p.add_argument("--temperature", type=float, metavar="T", help="sampling temperature (0: greedy)")
    p.add_argument("--top-k", type=int, metavar="K", help="sample among the K likeliest tokens")
    p.add_argument("--top-p", type=float, metavar="P", help="sample among the likeliest tokens of mass P")
    p.add_argument(
        "--stop", action="append", metavar="TEXT", help="end the output where this text first appears (repeatable)"
    )
    p.add_argument("--seed", type=int, metavar="S", help="random seed of the sampling")
    p.add_argument("--artifact", metavar="DIR", help="generate over the artifact deployed in DIR (the loop in Python)")
    p.add_argument("--json", action="store_true", help="print one JSON object per input")
    p.add_argument("--no-stream", action="store_true", help="print the whole text at the end")


def given_options(args: argparse.Namespace, accepted: dict[str, Any], task: str, open_: bool = False) -> dict[str, Any]:
    """The decoding options set on the command line; one line for an option the task does not take (a task whose
    ``generate`` takes ``**options`` checks them itself)."""
    options: dict[str, Any] = {}
    for name, flag in OPTIONS.items():
        value = getattr(args, name, None)
        if value is None:
            continue
        if name not in accepted and not open_ and name != "stop":  # stop texts: the text path's (any task)
            took = ", ".join(OPTIONS.get(k, k) for k in accepted) or "none"
            raise EngineError(f"{flag}: this run's task ({task}) does not take it (its options: {took})")
        options[name] = value
    return options


def cmd_generate(args: argparse.Namespace) -> int:
    from pathlib import Path

    from engine.console import Console
    from engine.runs import open_run

    open_run(args.run).checkpoint("best")  # a run without checkpoint: one line, before torch
    texts = [*args.texts, *args.prompt]
    if not texts:
        raise EngineError('give the text to start from: engine generate RUN "text"')
    if args.artifact is not None and not (Path(args.artifact).expanduser() / "manifest.json").is_file():
        raise EngineError(f"no deployed artifact in {args.artifact} (no manifest.json)", hint="deploy first")
    from engine_deploy.inputs import InputError
    from engine_deploy.predictor import Predictor

    predictor = Predictor(args.run, args.artifact)
    text = predictor.text
    if text is None:
        task = str(predictor.run.config.get("task", {}).get("name", "?"))
        raise EngineError(
            f"run {args.run}: its task ({task}) does not generate text",
            hint="engine generate works on runs whose task implements engine.protocols.Generates; "
            "use engine predict for other runs",
        )
    name = type(text.task).__name__
    options = given_options(args, text.defaults, name, text.open)
    try:
        options = text.options(options, "options")
        ids = text.encode(texts, "TEXT")
    except InputError as exc:
        raise EngineError(exc.message) from None
    if len(ids) == 1 and text.streams and not args.json and not args.no_stream:
        out = sys.stdout
        for piece in text.stream(ids[0], **options):
            out.write(piece)
            out.flush()
        out.write("\n")
        return 0
    records = predictor.predict(ids, options=options)
    if args.json:
        for given, record in zip(texts, records, strict=True):
            sys.stdout.write(json.dumps({"input": given, **record}, ensure_ascii=False) + "\n")
        return 0
    if len(records) == 1:
        sys.stdout.write(records[0]["text"] + "\n")
        return 0
    from engine.console import Table

    table = Table("input", "output")
    for given, record in zip(texts, records, strict=True):
        table.add_row(given, record["text"])
    Console().print(table)
    return 0
