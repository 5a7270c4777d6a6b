"""The deploy plugin: the torchscript, export, onnx, int8 and container targets; deploy, predict and serve commands.

Hook implementations only: nothing here imports torch, onnx or fastapi, so listing
and ``--help`` stay fast and work even when the optional ONNX packages are missing.
"""

from __future__ import annotations

import argparse
from typing import Any

from engine import Component, hookimpl

ENGINE_API = ">=1,<2"

_DEPLOY_EPILOG = """\
examples:
  engine deploy runs/digits --target onnx                 ONNX + onnxruntime parity, latency
  engine deploy runs/digits --target onnx --opset 17 -o threads=1
  engine deploy runs/digits --target int8                 int8 Linear/LSTM/GRU: size and metric change
  engine deploy runs/digits --target torchscript --out exported/ts
  engine deploy runs/digits --target container --out image/   Docker/Podman build context serving the run
  docker build -t digits image/ && docker run -p 8000:8000 digits    (see image/README.md)
  engine components list --kind deploy                    every target and its plugin

Writes the artifact, manifest.json and sample.json (one raw test input: a valid request for
`engine predict RUN DIR/sample.json` and `curl -d @DIR/sample.json`) into --out (default
RUN/deploy/<target>/). The container target also writes a Dockerfile (non-root, HEALTHCHECK,
ENTRYPOINT engine serve), pinned requirements.txt (CPU torch), wheels/ of the engine distributions
the run used, and the run's files; -o format=onnx serves ONNX Runtime.
Exit codes: 0 verified, 1 verification failed (artifact kept, manifest says passed: false), 2 usage error.
"""

_INPUT_RULE = """\
inputs are raw, as the run's data source holds them before its recorded preprocessing (digit pixels
0..16, image pixels 0..255, table features in their own units); the run's preprocessing (scale,
mean/std: see its facts.json or manifest.json) is applied to them. --preprocessed: they are already
as the model sees them. One sample has the sample shape ([1, 8, 8] for digits; [8, 8] too for
1-channel images), a batch has a leading batch dim ([5, 1, 8, 8] or [5, 8, 8]). Values far outside
the training data draw a warning. `engine deploy` writes such an input: DIR/sample.json.
"""

_PREDICT_EPILOG = (
    """\
inputs:
  x.json   a nested list: one sample or a batch, or {"inputs": ...}
  x.npy    a numpy array: one sample or a batch
  x.csv    rows of features (a header row is skipped; named columns are matched to the run's features)
  x.txt    text runs (a task that generates): one input per line, UTF-8; x.json: a list of strings
  other    files the run's data source reads itself (load_input), e.g. images for vision runs

"""
    + _INPUT_RULE
    + """
examples:
  engine predict runs/digits runs/digits/deploy/onnx/sample.json
  engine predict runs/digits batch.npy --artifact runs/digits/deploy/onnx --top 3 --json
  engine predict runs/table rows.csv                  rows in the data's own units
  engine predict runs/table normalised.npy --preprocessed
  engine predict runs/seed0 digit.png --ensemble runs/seed1 --ensemble runs/seed2   average 3 runs
  engine predict runs/shapes image.png --out boxes.png    detection: boxes printed and drawn (--json too)
"""
)

_SERVE_EPILOG = """\
endpoints:
  POST /predict    {"inputs": one raw sample or a batch, "top_k": 3, "preprocessed": false} -> labels and
                   probabilities (+ "warnings" when inputs lie far outside the training data)
                   text runs (a task that generates): {"inputs": ["text", ...], "max_new_tokens": 32, ...}
                   -> {"outputs": [{"text": ..., "tokens": n}]}; options are the task's generate's
  GET  /health     liveness (no API key needed)
  GET  /ready      readiness: 200 once the model is loaded and has answered a warm-up call
  GET  /metrics    Prometheus metrics: requests by route and status, latency, batch sizes, queue, rejections
  GET  /metadata   input signature, class names, preprocessing, batching settings, limits
  GET  /docs       OpenAPI UI (schema at /openapi.json)

answers: 400 malformed JSON, 401 API key missing/wrong/repeated, 408 too slow, 413 body too large,
415 not application/json, 422 inputs of the wrong shape or type, 431 headers too large,
503 overloaded (Retry-After) or too many connections

examples:
  engine serve runs/digits
  engine serve runs/digits --artifact runs/digits/deploy/onnx --max-batch-size 64 --max-wait-ms 2
  ENGINE_API_KEY=secret engine serve runs/digits --port 9000
  curl -s localhost:8000/predict -H 'content-type: application/json' -d '{"inputs": [[...]]}'
"""


_GENERATE_EPILOG = """\
examples:
  engine generate runs/translate "the cat sleeps"                greedy (the task's defaults)
  engine translate runs/translate "the cat sleeps" --beam 4      beam search, when the task has it
  engine generate runs/lm "Once upon" --max-new-tokens 50 --temperature 0.8 --top-k 40 --seed 1
  engine generate runs/translate "a" "b" "c" --json              one batch, one JSON object per input
  engine generate runs/translate "text" --artifact runs/translate/deploy/onnx    over the deployed network

The run's task implements engine.protocols.Generates and its data source EncodesText (bad text: one line,
exit 2). Options the task's generate does not take are refused, naming the ones it takes.
"""


@hookimpl
def engine_deploy_targets() -> list[Component]:
    m = "engine_deploy.targets"
    return [
        Component(
            "torchscript",
            f"{m}:TorchScript",
            "TorchScript program (model.pt), runs without Python code",
            aliases=("core.torchscript",),
        ),
        Component(
            "export",
            f"{m}:Export",
            "torch.export ExportedProgram (model.pt2), dynamic batch",
            aliases=("core.export",),
        ),
        Component("onnx", f"{m}:Onnx", "ONNX model (model.onnx), dynamic batch, onnx.checker + onnxruntime parity"),
        Component("int8", f"{m}:Int8", "Dynamic int8 quantization of Linear/LSTM/GRU layers (TorchScript model.pt)"),
        Component(
            "int8-weight",
            "engine_deploy.weight_int8:Int8Weight",
            "int8 weight-only Linear layers via torchao (language models: smaller, faster generation on CPU)",
        ),
        Component(
            "container",
            "engine_deploy.container:Container",
            "Docker/Podman build context serving the run: Dockerfile, pinned requirements, engine wheels",
        ),
    ]


@hookimpl
def engine_pipeline_steps() -> list[Component]:
    """``engine pipeline``'s ``deploy:`` step: export a stage's run and verify it (see `engine_deploy.steps`)."""
    return [
        Component(
            "deploy",
            "engine_deploy.steps:deploy_step",
            "Export a run and verify it",
            check="engine_deploy.steps:check_deploy_step",
        )
    ]


def _formatter(prog: str) -> Any:
    return argparse.RawDescriptionHelpFormatter(prog, max_help_position=32)


def add_input_options(p: argparse.ArgumentParser) -> None:
    """``--preprocessed`` (and the old ``--raw``, now the default) for commands reading inputs by `_INPUT_RULE`."""
    p.add_argument(
        "--preprocessed",
        action="store_true",
        help="inputs are already as the model sees them: skip the run's recorded preprocessing (default: raw inputs)",
    )
    p.add_argument("--raw", action="store_true", help="inputs are raw (the default; kept for old scripts)")


@hookimpl
def engine_add_commands(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "deploy",
        help="export a run's model (onnx, int8, torchscript, export, container) and verify it against eager PyTorch",
        description="Export the run's best model to a deployment target, reload the artifact, run it on the "
        "run's test inputs, and report the max abs difference to eager PyTorch (fails above the target's "
        "tolerance), latency p50/p95 at batch 1 and 32, size and test metric. Writes manifest.json beside it.",
        epilog=_DEPLOY_EPILOG,
        formatter_class=_formatter,
    )
    p.add_argument("run", help="run directory (with a checkpoint)")
    p.add_argument("--target", "-t", required=True, metavar="NAME", help="deployment target (onnx, int8, ...)")
    p.add_argument("--out", metavar="DIR", help="output directory (default: RUN/deploy/<target>/)")
    p.add_argument("--opset", type=int, metavar="N", help="ONNX opset (shorthand for -o opset=N)")
    p.add_argument(
        "--option",
        "-o",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="a target parameter, repeatable (see `engine components show TARGET`)",
    )
    p.add_argument("--samples", type=int, default=1024, metavar="N", help="test inputs to verify on (default 1024)")
    p.add_argument(
        "--threads",
        type=int,
        default=1,
        metavar="N",
        help="CPU threads for torch and the runtime while verifying (default 1: steadier latency; 0: all)",
    )
    p.add_argument("--no-timing", action="store_true", help="skip the latency measurements")
    p.add_argument("--json", action="store_true", help="print the manifest as JSON instead of a table")
    p.set_defaults(handler="engine_deploy.cli:cmd_deploy")

    p = subparsers.add_parser(
        "predict",
        help="predict labels/probabilities (or boxes) for input files with a run's model or a deployed artifact",
        description="Run the run's model (eager, default) or a deployed artifact (--artifact) on input files and "
        "print the top labels with their probabilities (the labels over 0.5 for multi-label runs; values in the "
        "model's output shape for regression; boxes with labels and scores for detection runs, drawn on the "
        "images with --out).",
        epilog=_PREDICT_EPILOG,
        formatter_class=_formatter,
    )
    p.add_argument("run", help="run directory (with a checkpoint)")
    p.add_argument("inputs", nargs="+", metavar="INPUT", help="input files (.json, .npy, .csv, or the data's own)")
    p.add_argument("--artifact", metavar="DIR", help="use the artifact deployed in DIR (with its manifest.json)")
    p.add_argument("--top", type=int, default=3, metavar="K", help="labels to show per sample (default 3)")
    p.add_argument("--json", action="store_true", help="print JSON (one object per sample)")
    add_input_options(p)
    p.add_argument(
        "--out",
        metavar="PATH",
        help="detection runs: draw the boxes, labels and scores on the input image into PATH (a directory, "
        "<input name>.png in it, for several inputs)",
    )
    p.add_argument(
        "--min-score",
        type=float,
        default=None,
        metavar="S",
        help="detection runs: show only detections scoring at least S (the task's score_threshold applies anyway)",
    )
    p.add_argument(
        "--ensemble",
        action="append",
        default=[],
        metavar="RUN",
        help="another run to average with RUN (repeatable): probabilities (values for regression) are averaged; "
        "every run must predict the same classes from the same inputs",
    )
    p.set_defaults(handler="engine_deploy.cli:cmd_predict")

    p = subparsers.add_parser(
        "serve",
        help="serve a run's model over HTTP (FastAPI + uvicorn, dynamic batching, optional API key)",
        description="Serve the run's model (or a deployed artifact) over HTTP with dynamic batching: requests "
        "arriving together are run as one batch (up to --max-batch-size samples, waiting at most --max-wait-ms "
        "for the batch to fill). Binds 127.0.0.1 unless told otherwise.",
        epilog=_SERVE_EPILOG,
        formatter_class=_formatter,
    )
    p.add_argument("run", help="run directory (with a checkpoint)")
    p.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1: this machine only)")
    p.add_argument("--port", type=int, default=8000, help="port (default 8000; 0 picks a free one)")
    p.add_argument("--artifact", metavar="DIR", help="serve the artifact deployed in DIR instead of eager PyTorch")
    p.add_argument(
        "--max-batch-size", type=int, default=32, metavar="N", help="samples per model call (default 32; 1 = off)"
    )
    p.add_argument(
        "--max-wait-ms", type=float, default=5.0, metavar="T", help="how long a batch waits to fill (default 5)"
    )
    p.add_argument(
        "--api-key", metavar="KEY", help="require this key (X-API-Key or Bearer); default: env ENGINE_API_KEY"
    )
    limits = p.add_argument_group("limits (what a public server must bound; the defaults suit one machine)")
    limits.add_argument("--max-body-bytes", type=int, default=1_048_576, metavar="N", help="request body (413; 1 MiB)")
    limits.add_argument(
        "--max-header-bytes", type=int, default=16_384, metavar="N", help="request line + headers (431; 16 KiB)"
    )
    limits.add_argument(
        "--read-timeout",
        type=float,
        default=10.0,
        metavar="S",
        help="to receive a request head, then its body (408; 10)",
    )
    limits.add_argument("--keep-alive", type=float, default=5.0, metavar="S", help="idle keep-alive connection (5)")
    limits.add_argument(
        "--max-connections",
        type=int,
        default=512,
        metavar="N",
        help="open connections and requests (503, /health and /ready exempt; 512)",
    )
    limits.add_argument(
        "--max-pending",
        type=int,
        default=None,
        metavar="N",
        help="connections still sending a request or idle; over it the oldest is closed (half --max-connections)",
    )
    limits.add_argument(
        "--max-pending-per-client",
        type=int,
        default=64,
        metavar="N",
        help="of those, from one client address (64)",
    )
    limits.add_argument(
        "--max-queue",
        type=int,
        default=1024,
        metavar="N",
        help="samples waiting for the model (503 + Retry-After; 1024)",
    )
    limits.add_argument("--max-samples", type=int, default=256, metavar="N", help="samples in one request (422; 256)")
    limits.add_argument(
        "--max-depth", type=int, default=32, metavar="N", help="nesting of a request's inputs (422; 32)"
    )
    limits.add_argument(
        "--max-text-chars", type=int, default=4096, metavar="N", help="text runs: characters of one input (422; 4096)"
    )
    limits.add_argument(
        "--max-new-tokens",
        type=int,
        default=256,
        metavar="N",
        help="text runs: tokens generated per input (422 when asked for more; the default when not asked; 256)",
    )
    p.add_argument("--access-log", action="store_true", help="log one JSON line per request (method, path, status, ms)")
    p.add_argument("--threads", type=int, default=0, metavar="N", help="torch intra-op threads (default: torch's)")
    p.add_argument("--log-level", default="info", choices=["critical", "error", "warning", "info", "debug"])
    p.set_defaults(handler="engine_deploy.cli:cmd_serve")

    p = subparsers.add_parser(
        "generate",
        aliases=["translate"],
        help="generate text with a run whose task generates (translation, transduction, language models)",
        description="Encode TEXT with the run's data source, run the task's decoding loop over the run's model "
        "(or a deployed artifact) and print the generated text (streamed as it comes when the task streams). "
        "Only the options given are passed to the task's generate; an option it does not take is refused.",
        epilog=_GENERATE_EPILOG,
        formatter_class=_formatter,
    )
    from engine_deploy.generate import add_arguments

    add_arguments(p)
    p.set_defaults(handler="engine_deploy.generate:cmd_generate")
