"""Handlers of ``engine deploy``, ``engine predict`` and ``engine serve`` (imported only when they run)."""

from __future__ import annotations

import argparse
import json
import os
import sys
from typing import Any

from engine import EngineError
from engine.console import Console, Table


def _options(args: argparse.Namespace) -> dict[str, Any]:
    from engine import parse_override

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
    generated = v.get("generation")
    if generated:  # a generating run: the network exported, the decoding loop in Python over it
        from engine_deploy.text_cli import deploy_rows

        deploy_rows(table, manifest)
    else:
        table.add_row("input", f"{manifest['input']['shape']} {manifest['input']['dtype']}")
        shapes = f", batches {', '.join(v['batch_shapes'])}" if v.get("batch_shapes") else ""
        table.add_row(
            "max abs diff",
            f"{v['max_abs_diff']:.3g} (tolerance {v['tolerance']:g}, {v['samples']} {v['split']} samples{shapes})",
        )
    if "top1_agreement" in v:
        table.add_row("top-1 agreement", f"{v['top1_agreement']:.4f}")
    if "described" in v:  # records made by the task (a detector's boxes) from eager and artifact outputs
        d = v["described"]
        boxes = f" (max box diff {d['max_box_diff']:.3g} px)" if "max_box_diff" in d else ""
        table.add_row("same records", f"{d['same_records']:.4f}{boxes}")
    for name, pair in v.get("metrics", {}).items():
        if name != v.get("metric", {}).get("name"):
            table.add_row(name, f"eager {pair['eager']:.4f}  artifact {pair['artifact']:.4f}")
    metric = v.get("metric", {})
    if "error" in metric:  # reported, never dropped
        table.add_row("metric", f"could not be computed: {metric['error']}")
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


def check_inputs(args: argparse.Namespace) -> None:
    """What predict and explain can refuse before importing torch: a run without checkpoint, missing input
    files, contradicting flags (each in one line, in seconds rather than after Lightning's import)."""
    from pathlib import Path

    from engine.runs import open_run

    open_run(args.run).checkpoint("best")
    for path in args.inputs:
        if not Path(path).expanduser().is_file():
            raise EngineError(f"input file not found: {path}")
    if args.raw and args.preprocessed:
        raise EngineError("--raw and --preprocessed contradict each other", hint="inputs are raw unless --preprocessed")


def warn(warnings: list[str]) -> None:
    """Inputs far outside the training data (`engine_deploy.inputs.prepare`), on stderr."""
    console = Console(sys.stderr)
    for text in warnings:
        console.print(f"warning: {text}", style="yellow")


def cmd_predict(args: argparse.Namespace) -> int:
    if args.top < 1:
        raise EngineError(f"--top must be >= 1, got {args.top}")
    check_inputs(args)
    from engine_deploy.predictor import Predictor

    predictor = Predictor(args.run, args.artifact)
    if predictor.text is not None:
        from engine_deploy.text_cli import predict_text

        return predict_text(predictor, args)
    if predictor.describer is not None:
        return _predict_described(predictor, args)
    if args.out or args.min_score is not None:
        flag = "--out" if args.out else "--min-score"
        raise EngineError(f"{flag} is for detection runs; this run predicts {predictor.problem}", hint=f"drop {flag}")
    batch, names = predictor.read(args.inputs, preprocessed=args.preprocessed)
    warn(predictor.warnings)
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
    if predictor.problem == "multilabel":
        table = Table("input", "labels", "probabilities")
        for name, record in zip(names, records, strict=True):
            shown = "  ".join(f"{t['label']} {t['probability']:.3f}" for t in record["top"][: args.top])
            table.add_row(name, ", ".join(record["labels"]) or "(none)", shown)
    elif predictor.problem != "classification":
        table = Table("input", "prediction")
        for name, record in zip(names, records, strict=True):
            table.add_row(name, _values(record["value"]))
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


def _predict_described(predictor: Any, args: argparse.Namespace) -> int:
    """``engine predict`` for a task describing its own outputs (detections): print, ``--json``, ``--out``."""
    from pathlib import Path

    if args.ensemble:
        raise EngineError("--ensemble averages class probabilities; this run's task describes its own outputs")
    batch, names, files = predictor.read_files(args.inputs, preprocessed=args.preprocessed)
    warn(predictor.warnings)
    records = [predictor.for_file(r, f) for r, f in zip(predictor.predict(batch, args.top), files, strict=True)]
    if args.min_score is not None:
        records = [
            {**r, "detections": [d for d in r["detections"] if d["score"] >= args.min_score]}
            if "detections" in r
            else r
            for r in records
        ]
    if args.out:
        drawable = [(n, f, r) for n, f, r in zip(names, files, records, strict=True) if f is not None]
        if len(drawable) != len(records):
            bad = next(n for n, f in zip(names, files, strict=True) if f is None)
            raise EngineError(f"--out draws on image files; {bad} is not one the run's data source reads")
        out = Path(args.out).expanduser()
        several = len(drawable) > 1 or out.is_dir() or args.out.endswith(("/", "\\"))
        for _, file, record in drawable:
            target = out / (Path(file).stem + ".png") if several else out
            predictor.draw(file, record, str(target))
            record["drawn"] = str(target)
    if args.json:
        for name, record in zip(names, records, strict=True):
            sys.stdout.write(json.dumps({"input": name, **record}) + "\n")
        return 0
    console = Console()
    table = Table("input", "label", "score", "box (x1, y1, x2, y2)")
    for name, record in zip(names, records, strict=True):
        found = record.get("detections")
        if found is None:
            table.add_row(name, json.dumps(record)[:80], "", "")
            continue
        if not found:
            table.add_row(name, "(none)", "", "")
        for d in found:
            table.add_row(name, str(d["label"]), f"{d['score']:.3f}", ", ".join(f"{v:.1f}" for v in d["box"]))
    console.print(table)
    drawn = [r["drawn"] for r in records if "drawn" in r]
    console.print(f"({predictor.backend}{'; drawn: ' + ', '.join(drawn) if drawn else ''})", style="dim")
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
    problem = predictor.problem
    outputs = [common.to_probabilities(p.forward(batch), problem) for p in [predictor, *others]]

    def logits(probs: torch.Tensor) -> torch.Tensor:  # what describe() turns back into ``probs``
        if problem == "classification":
            return torch.log(probs.clamp_min(1e-12))  # softmax(log p) = p
        return torch.logit(probs, eps=1e-6) if problem == "multilabel" else probs

    members = [
        [r.get("label") or ", ".join(r.get("labels") or []) or str(r.get("value")) for r in p.describe(logits(o), 1)]
        for p, o in zip([predictor, *others], outputs, strict=True)
    ]
    return predictor.describe(logits(torch.stack(outputs).mean(0)), args.top), members


def _values(value: Any) -> str:
    """A prediction as text, nesting kept: ``0.5``, ``[1, 2]``, ``[[1, 2], [3, 4]]`` (4 significant digits)."""
    if isinstance(value, list):
        return "[" + ", ".join(_values(v) for v in value) + "]"
    return f"{value:.4g}"


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
        max_pending=args.max_pending,
        max_pending_per_client=args.max_pending_per_client,
        max_queue=args.max_queue,
        max_samples=args.max_samples,
        max_depth=args.max_depth,
        max_text_chars=args.max_text_chars,
        max_new_tokens=args.max_new_tokens,
    ).check()
    predictor = Predictor(args.run, args.artifact, max_text_chars=args.max_text_chars)
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
        f"read {limits.read_timeout_s:g} s, {limits.max_connections} connections (pending {limits.pending[0]}, "
        f"{limits.pending[1]} per client), queue {limits.max_queue} samples"
    )
    if not loopback and not api_key:
        console.print(f"warning: {args.host} is reachable from other machines and no API key is set", style="yellow")
    server = make_server(app, args.host, port, limits, args.log_level)
    server.run()
    return 0 if server.started else 1
