"""Handlers of ``engine deploy``, ``engine predict`` and ``engine serve`` (imported only when they run)."""

from __future__ import annotations

import argparse
import json
import os
import sys
from typing import Any

from engine.console import Console, Table
from engine.errors import EngineError


def _options(args: argparse.Namespace) -> dict[str, Any]:
    from engine.config import parse_override

    options: dict[str, Any] = {}
    for item in args.option:
        keys, value = parse_override(item)
        if len(keys) != 1:
            raise EngineError(f"cannot read option '{item}': expected KEY=VALUE", hint="for example -o opset=17")
        options[keys[0]] = value
    if args.opset is not None:
        options["opset"] = args.opset
    return options


def _size(n: int) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024  # type: ignore[assignment]
    return str(n)


def cmd_deploy(args: argparse.Namespace) -> int:
    from engine_deploy.deploy import deploy

    if args.threads < 0:
        raise EngineError(f"--threads must be >= 0, got {args.threads}")
    if args.samples < 1:
        raise EngineError(f"--samples must be >= 1, got {args.samples}")
    manifest = deploy(
        args.run,
        args.target,
        out=args.out,
        options=_options(args),
        samples=args.samples,
        timing=not args.no_timing,
        threads=args.threads,
    )
    if args.json:
        sys.stdout.write(json.dumps(manifest, indent=2) + "\n")
        return 0
    v = manifest["verification"]
    console = Console()
    table = Table("check", "value")
    options = ", ".join(f"{k}={v}" for k, v in manifest["options"].items())
    table.add_row("target", f"{manifest['target']} ({options})")
    table.add_row("input", f"{manifest['input']['shape']} {manifest['input']['dtype']}")
    table.add_row(
        "max abs diff", f"{v['max_abs_diff']:.3g} (tolerance {v['tolerance']:g}, {v['samples']} {v['split']} samples)"
    )
    if "top1_agreement" in v:
        table.add_row("top-1 agreement", f"{v['top1_agreement']:.4f}")
    metric = v.get("metric", {})
    if "eager" in metric:
        table.add_row(
            metric["name"],
            f"eager {metric['eager']:.4f}  artifact {metric['artifact']:.4f}  change {metric['change']:+.4f}",
        )
    sizes = v["size_bytes"]
    ratio = sizes["artifact"] / sizes["eager"]
    table.add_row("size", f"eager {_size(sizes['eager'])}  artifact {_size(sizes['artifact'])}  ({ratio:.2f}x)")
    weights = v.get("target_report", {}).get("weights_bytes")
    if weights:
        before, after = weights["float32"], weights["int8"]
        table.add_row("weights", f"float32 {_size(before)}  int8 {_size(after)}  ({after / before:.2f}x)")
    console.print(table)
    if v.get("latency_ms"):
        lat = Table("latency (ms)", "eager p50", "eager p95", "artifact p50", "artifact p95", "ratio p50")
        for batch, row in v["latency_ms"].items():
            e, a = row["eager"], row["artifact"]
            lat.add_row(
                batch.replace("batch", "batch "),
                f"{e['p50_ms']:.3f}",
                f"{e['p95_ms']:.3f}",
                f"{a['p50_ms']:.3f}",
                f"{a['p95_ms']:.3f}",
                f"{a['p50_ms'] / e['p50_ms']:.2f}x",
            )
        console.print(lat)
    console.print(f"verified: {manifest['out_dir']}/{manifest['artifact']} (+ manifest.json)")
    image = v.get("target_report", {}).get("image")
    if image:  # the container target's build context
        out = manifest["out_dir"]
        console.print(f"build context: {out}  (docker build -t {image} {out}; see {out}/README.md)")
    return 0


def cmd_predict(args: argparse.Namespace) -> int:
    from engine_deploy.predictor import Predictor

    if args.top < 1:
        raise EngineError(f"--top must be >= 1, got {args.top}")
    predictor = Predictor(args.run, args.artifact)
    batch, names = predictor.read(args.inputs, raw=args.raw)
    members: list[list[str]] = []
    if args.ensemble:
        records, members = _ensemble(predictor, args, batch)
    else:
        records = predictor.predict(batch, args.top)
    if args.json:
        for i, (name, record) in enumerate(zip(names, records, strict=True)):
            extra = {"members": [m[i] for m in members]} if members else {}
            sys.stdout.write(json.dumps({"input": name, **record, **extra}) + "\n")
        return 0
    console = Console()
    if predictor.problem != "classification":
        table = Table("input", "prediction")
        for name, record in zip(names, records, strict=True):
            value = record["value"]
            table.add_row(name, ", ".join(f"{x:.4g}" for x in value) if isinstance(value, list) else f"{value:.4g}")
    else:
        table = Table("input", "label", "probability", "top")
        for name, record in zip(names, records, strict=True):
            top = "  ".join(f"{t['label']} {t['probability']:.3f}" for t in record["top"][1:])
            table.add_row(name, record["label"], f"{record['probability']:.4f}", top)
    console.print(table)
    if members:
        runs = [args.run, *args.ensemble]
        console.print(f"(ensemble of {len(runs)} runs: {', '.join(runs)})", style="dim")
        for run, labels in zip(runs, members, strict=True):
            console.print(f"  {run}: {' '.join(labels)}", style="dim")
    else:
        console.print(f"({predictor.backend})", style="dim")
    return 0


def _ensemble(predictor: Any, args: argparse.Namespace, batch: Any) -> tuple[list[dict[str, Any]], list[list[str]]]:
    """Average the probabilities (values) of ``args.run`` and every ``--ensemble`` run on ``batch``."""
    import torch

    from engine_deploy import common
    from engine_deploy.predictor import Predictor

    if args.artifact:
        raise EngineError("--ensemble uses the runs' own models; it does not combine with --artifact")
    others = [Predictor(run) for run in args.ensemble]
    for other in others:
        if other.class_names != predictor.class_names or other.problem != predictor.problem:
            raise EngineError(
                f"{other.run.path} cannot be ensembled with {predictor.run.path}: it predicts "
                f"{other.problem} {other.class_names or ''} instead of "
                f"{predictor.problem} {predictor.class_names or ''}",
                hint="ensemble runs trained on the same data (vary the seed)",
            )
        if other.sample_shape != predictor.sample_shape:
            raise EngineError(
                f"{other.run.path} takes inputs of shape {other.sample_shape}, "
                f"{predictor.run.path} {predictor.sample_shape}"
            )
    outputs = [common.to_probabilities(p.forward(batch), p.problem) for p in [predictor, *others]]
    members = [
        [r.get("label", str(r.get("value"))) for r in p.describe(o, 1)]
        for p, o in zip(
            [predictor, *others],
            [torch.log(o.clamp_min(1e-12)) if predictor.problem == "classification" else o for o in outputs],
            strict=True,
        )
    ]
    mean = torch.stack(outputs).mean(0)
    if predictor.problem == "classification":
        mean = torch.log(mean.clamp_min(1e-12))  # describe() applies a softmax: softmax(log p) = p
    return predictor.describe(mean, args.top), members


def cmd_serve(args: argparse.Namespace) -> int:
    import ipaddress

    from engine_deploy.guard import Limits, make_server
    from engine_deploy.predictor import Predictor
    from engine_deploy.server import create_app, free_port

    if not 0 <= args.port <= 65535:
        raise EngineError(f"--port must be between 0 and 65535, got {args.port}")
    if args.threads < 0:
        raise EngineError(f"--threads must be >= 0, got {args.threads}")
    api_key = args.api_key or os.environ.get("ENGINE_API_KEY") or None
    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
    limits = Limits(
        max_body_bytes=args.max_body_bytes,
        max_header_bytes=args.max_header_bytes,
        read_timeout_s=args.read_timeout,
        keep_alive_s=args.keep_alive,
        max_connections=args.max_connections,
        max_queue=args.max_queue,
        max_samples=args.max_samples,
        max_depth=args.max_depth,
    ).check()
    predictor = Predictor(args.run, args.artifact)
    app = create_app(
        predictor, args.max_batch_size, args.max_wait_ms, api_key, limits=limits, access_log=args.access_log
    )
    port = args.port or free_port(args.host)
    try:
        loopback = ipaddress.ip_address(args.host).is_loopback
    except ValueError:
        loopback = args.host == "localhost"
    console = Console()
    console.print(f"serving {predictor.run.path} ({predictor.backend}) on http://{args.host}:{port}")
    console.print(
        f"  POST /predict  GET /health /ready /metrics /metadata  docs /docs; adaptive batching up to "
        f"{args.max_batch_size} samples / {args.max_wait_ms:g} ms; API key {'required' if api_key else 'off'}; "
        f"limits: body {limits.max_body_bytes} B, headers {limits.max_header_bytes} B, "
        f"read {limits.read_timeout_s:g} s, {limits.max_connections} connections, queue {limits.max_queue} samples"
    )
    if not loopback and not api_key:
        console.print(f"warning: {args.host} is reachable from other machines and no API key is set", style="yellow")
    server = make_server(app, args.host, port, limits, args.log_level)
    server.run()
    return 0 if server.started else 1
