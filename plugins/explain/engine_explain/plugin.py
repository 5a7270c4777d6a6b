"""The explain plugin: ``engine explain RUN INPUT...``, attributions (Captum) and attention maps for a run's model.

Declarations only: torch, captum and matplotlib are imported when the command runs.
"""

from __future__ import annotations

import argparse
from typing import Any

from engine_deploy.plugin import add_input_options

from engine import CommandSink, hookimpl

ENGINE_API = ">=1,<2"

METHODS = ("integrated_gradients", "saliency", "occlusion", "gradient_shap")

_EPILOG = """\
methods (Captum):
  integrated_gradients  gradients integrated from a baseline (zeros; <pad> tokens for text)   (default)
  saliency              the absolute gradient at the input
  occlusion             the output's change when a window (a token for text) is blanked: no gradients
  gradient_shap         expected gradients against a background of the run's own inputs

inputs (read as `engine predict` reads them, by the rule of docs/plugins/deploy.md#inputs):
  x.json  x.npy  x.csv  one raw sample or a batch; CSV rows matched to the run's feature names;
                        the run's recorded preprocessing is applied (--preprocessed: already applied)
  other   files the run's data source reads itself (images for vision runs, text files for nlp runs)

writes into --out (default RUN/explain/<method>/):
  images, spectrograms   NNN-name.png: input, signed attribution, |attribution| over the input
  feature vectors, CSV   NNN-name.png: ranked bars; attributions.csv: every feature; a table on screen
  text                   attributions.html: tokens shaded red/blue; coloured tokens on screen
  generated text         one row per generated token (its logit given its prefix) over the input tokens:
                         NNN-name.png (output x input), attributions.html, rows on screen; a task
                         generating text (Generates, output_kind "text") reads text files, one input a line
  transformers           NNN-name-attention.png: attention per layer and head (vision.vit: NNN-name-cls.png)
  always                 attributions.json: prediction, explained output, raw attributions per input

examples:
  engine explain runs/digits seven.npy                          integrated gradients of the predicted class
  engine explain runs/digits batch.npy --method occlusion --target 3 --out why-3/
  engine explain runs/churn rows.csv --method gradient_shap --top 5
  engine explain runs/snippets snippet.txt --method saliency   per-token attributions (+ attention maps)

Exit codes: 0 written, 2 a mistake (unknown method, input of the wrong shape, a model Captum cannot
differentiate: try --method occlusion).
"""


def _formatter(prog: str) -> Any:
    return argparse.RawDescriptionHelpFormatter(prog, max_help_position=30)


@hookimpl
def engine_add_commands(subparsers: CommandSink) -> None:
    p = subparsers.add_parser(
        "explain",
        help="attribute a run's predictions to its inputs (Captum): heatmaps, ranked features, tokens, attention",
        description="Explain what the run's model based its outputs on: for each input, Captum attributes the "
        "explained output (the predicted class, or --target) to the input's pixels, features or tokens, and the "
        "results are drawn (PNG), shaded (HTML, terminal) and written as JSON. Transformers' attention maps too.",
        epilog=_EPILOG,
        formatter_class=_formatter,
    )
    p.add_argument("run", help="run directory (with a checkpoint)")
    p.add_argument("inputs", nargs="+", metavar="INPUT", help="input files (.json, .npy, .csv, or the data's own)")
    p.add_argument(
        "--method",
        "-m",
        default="integrated_gradients",
        metavar="NAME",
        help=f"attribution method: {', '.join(METHODS)} (default integrated_gradients)",
    )
    add_input_options(p)
    p.add_argument("--target", "-t", metavar="CLASS", help="class name or output index to explain (default: predicted)")
    p.add_argument("--out", "-o", metavar="DIR", help="output directory (default RUN/explain/<method>/)")
    p.add_argument("--batch-size", type=int, default=16, metavar="N", help="inputs attributed together (default 16)")
    p.add_argument("--steps", type=int, default=50, metavar="N", help="integrated gradients steps (default 50)")
    p.add_argument("--samples", type=int, default=16, metavar="N", help="gradient_shap samples per input (default 16)")
    p.add_argument("--top", type=int, default=10, metavar="K", help="features shown in tables and bars (default 10)")
    p.add_argument(
        "--max-new-tokens",
        type=int,
        metavar="N",
        help="models generating text: tokens generated per input (default: the task's own)",
    )
    p.add_argument("--no-attention", action="store_true", help="skip the attention maps of transformer models")
    p.add_argument("--json", action="store_true", help="print one JSON object per input instead of tables")
    p.set_defaults(handler="engine_explain.cli:cmd_explain")
