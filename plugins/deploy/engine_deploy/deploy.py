"""``engine deploy``: export a run's model to a target, then verify the artifact against eager PyTorch."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import torch

from engine.protocols import DeclaresBatching, DescribesArtifact, Generates, HasPrimaryMetric, implements
from engine.runs import write_text_atomic
from engine_deploy import common, space
from engine_deploy.common import SAMPLE, VerificationError, _options, _parameters, _plain
from engine_deploy.inputs import unprepare
from engine_deploy.protocols import DescribesOutputs, ScoresOutputs, UsesRun


def deploy(
    run_path: str | Path,
    target_name: str,
    out: str | Path | None = None,
    options: dict[str, Any] | None = None,
    samples: int = 1024,
    timing: bool = True,
    threads: int = 1,
) -> dict[str, Any]:
    """Export the run's model with ``target_name``, reload it, verify it; return the manifest written.

    A target implementing `engine_deploy.protocols.UsesRun` is handed the run before ``export``.

    Args:
        run_path: a run directory with a checkpoint.
        target_name: a deployment target (``onnx``, ``deploy.int8``, ``torchscript`` …).
        out: where to write (default ``RUN/deploy/<target>/``).
        options: the target's parameters (``{"opset": 17}``).
        samples: test inputs to compare and to measure the metric on.
        timing: measure latency at batch 1 and 32 (eager and artifact).
        threads: torch threads (and the target's ``threads`` option when it has one and it is not given)
            while exporting and measuring; 0 keeps the defaults.
    """
    previous = torch.get_num_threads()
    try:
        return _deploy(run_path, target_name, out, options, samples, timing, threads)
    finally:
        torch.set_num_threads(previous)  # a pipeline or a bench goes on with its own thread count


def _deploy(
    run_path: str | Path,
    target_name: str,
    out: str | Path | None = None,
    options: dict[str, Any] | None = None,
    samples: int = 1024,
    timing: bool = True,
    threads: int = 1,
) -> dict[str, Any]:
    """`deploy`, which puts the caller's thread count back afterwards."""
    import engine
    from engine.runs import inside

    component = engine.get_registry().resolve("deploy", target_name)  # unknown names: did-you-mean, before any work
    run = common.open_trained(run_path)
    options = dict(options or {})
    if threads > 0 and "threads" in _parameters(component):
        options.setdefault("threads", threads)
    target = engine.create("deploy", component.qualified_name, **options)
    if implements(target, UsesRun):  # a target packaging more than the model (the container's build context)
        target.use_run(run)
    tolerance = float(target.tolerance)

    datamodule = run.datamodule()
    facts = common.run_facts(run, datamodule)
    model = common.eager_model(run, datamodule)
    task_class = run.plan().task.load()
    problem = str(facts.get("problem") or run.config.get("task", {}).get("problem") or "classification")

    # the run's own deploy/ (never through a link leading out of it), or where the caller said
    out_dir = Path(out) if out is not None else inside(run.path, "deploy", component.name)
    weights = common.state_size(model)  # torch's writer aborts the process on a full disk: check first
    space.check(out_dir, space.needed(weights, run if implements(target, UsesRun) else None))
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / common.MANIFEST).unlink(missing_ok=True)  # a half-written deployment never looks finished
    if implements(task_class, Generates):  # the decoding loop stays in Python, over the exported network
        from engine_deploy.generation import deploy_generating

        return deploy_generating(run, component, target, model, datamodule, out_dir, samples, timing, threads)
    batches, target_batches, split = common.split_batches(datamodule, samples)
    pad = facts.get("pad_id") if isinstance(facts.get("pad_id"), int) else 0
    inputs = common.join(batches, pad)
    targets = common.join(target_batches, pad) if target_batches else None
    ragged = len({tuple(b.shape[1:]) for b in batches}) > 1  # padded per batch: verified batch by batch
    example = common.batch_of(inputs, min(len(inputs), 8) if len(inputs) > 1 else 2)

    if threads > 0:
        torch.set_num_threads(threads)
    before = space.snapshot(out_dir)
    artifact, export_s = space.export_artifact(target, component, model, example, out_dir, before)
    loaded = target.load(artifact)

    eager_out = common.outputs(model, batches if ragged else inputs)
    try:
        artifact_out = common.outputs(loaded, batches if ragged else inputs)
    except Exception as exc:
        raise VerificationError(
            f"the reloaded {component.name} artifact failed on the run's {split} inputs: {type(exc).__name__}: {exc}",
            hint="a fixed-batch export cannot take other batch sizes; keep dynamic_batch=true",
        ) from exc
    if artifact_out.shape != eager_out.shape:
        raise VerificationError(
            f"the artifact's outputs have shape {tuple(artifact_out.shape)}, eager {tuple(eager_out.shape)}"
        )
    diff = float((artifact_out.float() - eager_out.float()).abs().max())
    verification: dict[str, Any] = {
        "split": split,
        "samples": len(inputs),
        "threads": torch.get_num_threads(),
        "max_abs_diff": diff,
        "tolerance": tolerance,
        "passed": diff <= tolerance,
        "export_s": round(export_s, 3),
        "size_bytes": {"eager": weights, "artifact": common.artifact_size(artifact)},
    }
    if ragged:
        verification["batch_shapes"] = sorted({str(list(b.shape[1:])) for b in batches})
    if implements(target, DescribesArtifact) and target.report:
        verification["target_report"] = _plain(dict(target.report))
    if problem == "classification":
        same = (artifact_out.argmax(-1) == eager_out.argmax(-1)).float().mean()
        verification["top1_agreement"] = round(float(same), 6)
    if targets is not None:
        try:
            name, eager_metric = common.metric(eager_out, targets, problem, facts.get("num_classes"))
            _, artifact_metric = common.metric(artifact_out, targets, problem, facts.get("num_classes"))
            verification["metric"] = {
                "name": f"{split}/{name}",
                "eager": round(eager_metric, 6),
                "artifact": round(artifact_metric, 6),
                "change": round(artifact_metric - eager_metric, 6),
            }
        except Exception as exc:  # a metric we cannot compute is reported, not fatal
            verification["metric"] = {"error": f"{type(exc).__name__}: {exc}"}
    if implements(task_class, DescribesOutputs):  # records from the task (a detector's boxes)
        _verify_described(run, facts, datamodule, split, eager_out, artifact_out, verification)
    if timing:
        verification["latency_ms"] = {}
        for size in (1, 32):
            x = common.batch_of(inputs, size)
            verification["latency_ms"][f"batch{size}"] = {
                "eager": common.latency(model, x),
                "artifact": common.latency(loaded, x),
            }

    sample_shape = list(inputs.shape[1:])
    dynamic = bool(target.dynamic_batch) if implements(target, DeclaresBatching) else True
    manifest: dict[str, Any] = {
        "format": 1,
        "target": component.qualified_name,
        "options": _plain(_options(target, component)),
        "artifact": artifact.name,  # a file of this directory: a manifest names nothing outside it
        "checkpoint": str(run.checkpoint("best").relative_to(run.path)),  # relative to the run directory
        "model": _plain(run.config.get("model", {})),
        "problem": problem,
        "input": {
            "name": "input",
            "shape": (["batch"] if dynamic else [int(example.shape[0])]) + sample_shape,
            "dtype": str(inputs.dtype).removeprefix("torch."),
            "dynamic_batch": dynamic,
        },
        "output": {
            "shape": ["batch", *list(eager_out.shape[1:])],
            "dtype": str(eager_out.dtype).removeprefix("torch."),
        },
        "preprocessing": _plain(facts.get("preprocessing")),
        "class_names": _plain(facts.get("class_names")),
        "versions": {**common.versions(), "target_plugin": f"{component.distribution} {component.version}"},
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "verification": verification,
    }
    if "described" in verification:  # how predict and serve turn the outputs into records
        manifest["postprocessing"] = {"by": "task", "task": _plain(run.config.get("task", {}))}
    manifest["sample"] = SAMPLE
    try:  # whole or not at all: a manifest is what makes the directory a deployment
        write_text_atomic(out_dir / SAMPLE, sample_json(inputs[:1], manifest["preprocessing"]))
        write_text_atomic(out_dir / common.MANIFEST, json.dumps(manifest, indent=2) + "\n")
    except OSError as exc:
        raise space.write_failed(out_dir, before, exc) from exc
    if diff > tolerance:
        raise VerificationError(
            f"verification failed: the {component.name} artifact differs from eager PyTorch by {diff:.3g} "
            f"(tolerance {tolerance:g}) on {len(inputs)} {split} samples",
            hint=f"the artifact and its manifest (passed: false) are in {out_dir}",
        )
    manifest["out_dir"] = str(out_dir)
    return manifest


def sample_json(model_form: torch.Tensor, preprocessing: Any) -> str:
    """A valid request of one raw sample (the input rule): ``engine predict RUN sample.json``, ``curl -d @``."""
    raw = unprepare(
        model_form.detach().cpu().float().numpy() if model_form.is_floating_point() else model_form.numpy(),
        preprocessing,
    )
    return json.dumps({"inputs": raw.tolist(), "top_k": 3}) + "\n"


def _verify_described(
    run: Any,
    facts: dict[str, Any],
    datamodule: Any,
    split: str,
    eager_out: torch.Tensor,
    artifact_out: torch.Tensor,
    verification: dict[str, Any],
) -> None:
    """The task's records of eager and artifact outputs compared, and its metric on both when it scores outputs."""
    task = run.task(facts=facts)
    eager, artifact = task.describe_outputs(eager_out), task.describe_outputs(artifact_out)
    same, box_diff, boxes = 0, 0.0, False
    for e, a in zip(eager, artifact, strict=True):
        if "detections" in e and "detections" in a:
            boxes = True
            ed, ad = e["detections"], a["detections"]
            if [d["label"] for d in ed] == [d["label"] for d in ad]:
                pairs = [(x, y) for p, q in zip(ed, ad, strict=True) for x, y in zip(p["box"], q["box"], strict=True)]
                diff = max([abs(x - y) for x, y in pairs] + [0.0])
                box_diff = max(box_diff, diff)
                same += diff <= 0.5
        else:
            same += e == a
    verification["described"] = {"same_records": round(same / max(1, len(eager)), 6)}
    if boxes:  # records with boxes (a detector's): how far the artifact's boxes moved
        verification["described"]["max_box_diff"] = box_diff
    if not implements(task, ScoresOutputs):
        return
    targets = common.split_targets(datamodule, split, len(eager_out))
    if targets is None or len(targets) != len(eager_out):
        return
    try:
        scored_eager = task.score_outputs(eager_out, targets)
        scored_artifact = task.score_outputs(artifact_out, targets)
    except Exception as exc:  # a metric we cannot compute is reported, not fatal
        verification["metric"] = {"error": f"{type(exc).__name__}: {exc}"}
        return
    primary = task.primary_metric[0] if implements(task, HasPrimaryMetric) else None
    name = primary if primary in scored_eager else next(iter(scored_eager))
    verification["metric"] = {
        "name": f"{split}/{name}",
        "eager": round(scored_eager[name], 6),
        "artifact": round(scored_artifact[name], 6),
        "change": round(scored_artifact[name] - scored_eager[name], 6),
    }
    verification["metrics"] = {
        f"{split}/{k}": {"eager": round(v, 6), "artifact": round(scored_artifact[k], 6)}
        for k, v in scored_eager.items()
    }
