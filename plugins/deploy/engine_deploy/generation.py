"""``engine deploy`` of a run whose task generates (`engine.protocols.Generates`): text in, text out.

What is exported is the network, called with the task's ``network_inputs`` (every integer argument dynamic in
its batch and length dimensions where the target allows it); the decoding loop stays in Python, in the task's
``generate``, over the reloaded artifact. The artifact is verified by running that loop over it and over the eager
model on the run's test inputs, in batches of different lengths (each padded by the task): the largest logit
difference of every network call the loop made, the share of identical generations, and the task's metric
(`ScoresOutputs`: generated ids against the reference ids) for both.

Targets carrying the network: torchscript, export, onnx and container (the loop in Python over them; the container's
image runs it in ``engine serve``). int8 refuses transformer layers it cannot save (one line). A task that samples
gets the same ``seed`` over the eager model and over the artifact (when its ``generate`` takes one), so their
generations compare.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import torch

from engine import ConfigError, EngineError
from engine.protocols import DeclaresIO, DescribesArtifact, HasPrimaryMetric, SavesArtifacts, implements
from engine.runs import write_text_atomic
from engine_deploy import common, space
from engine_deploy.common import SAMPLE, VerificationError, _options, _plain
from engine_deploy.protocols import CarriesNetwork, ScoresOutputs, UsesRun
from engine_deploy.text import option_names, text_source, vocabulary

#: Samples verified at most (each is decoded twice, token by token, with full recompute over the artifact).
MAX_SAMPLES = 256
#: Inputs per verification batch: consecutive samples, so batches are padded to different lengths.
BATCH = 8
#: Data the supervised table knows: a generating task's data naming one of these is described as "generation".
_SUPERVISED = {"classification", "multilabel", "regression"}


def as_ids(value: Any, where: str) -> list[int]:
    """One sample's token ids as a list (a 1-d integer tensor or a list of ints)."""
    if isinstance(value, torch.Tensor) and value.dim() == 1 and not value.is_floating_point():
        return [int(i) for i in value.tolist()]
    if isinstance(value, (list, tuple)) and all(isinstance(i, int) for i in value):
        return list(value)
    raise EngineError(
        f"{where}: a generating task's samples must be token id sequences, got {type(value).__name__}",
        hint="the data source yields (source ids, target ids) pairs of 1-d integer tensors",
    )


def split_samples(datamodule: Any, limit: int) -> tuple[list[list[int]], list[list[int]], str]:
    """The first ``limit`` (input ids, reference ids) of the test split (else validation, else training)."""
    splits = getattr(datamodule, "splits", None)
    if not isinstance(splits, dict) and not hasattr(splits, "get"):
        raise EngineError("deploying a generating task needs the run's data as a data source (engine.data)")
    for split in ("test", "val", "train"):
        dataset = splits.get(split)
        if dataset is None or len(dataset) == 0:
            continue
        inputs, refs = [], []
        for i in range(min(limit, len(dataset))):
            sample = dataset[i]
            x, y = (sample[0], sample[1]) if isinstance(sample, (list, tuple)) and len(sample) > 1 else (sample, [])
            inputs.append(as_ids(x, f"{split} sample {i}"))
            refs.append(as_ids(y, f"{split} sample {i} (target)"))
        return inputs, refs, split
    raise EngineError("the run's data source yields no samples to verify the model on")


def problem_of(task: Any, facts: dict[str, Any]) -> str:
    """What the run does, for manifests and tables: the data's own word (``translation``), else ``generation``."""
    named = facts.get("problem")
    if isinstance(named, str) and named not in _SUPERVISED:
        return named
    return "generation"


class Compared:
    """A network callable for ``task.generate``: the artifact's outputs, each call compared with the eager model's."""

    def __init__(self, artifact: Any, eager: torch.nn.Module) -> None:
        self.artifact, self.eager = artifact, eager
        self.diff, self.calls, self.eager_s = 0.0, 0, 0.0
        self.shapes: set[tuple[tuple[int, ...], ...]] = set()

    def __call__(self, *args: Any) -> torch.Tensor:
        out = common.call(self.artifact, args)
        t0 = time.perf_counter()
        reference = common.call(self.eager, args)
        self.eager_s += time.perf_counter() - t0  # not the artifact's time
        if out.shape != reference.shape:
            raise EngineError(f"the artifact's outputs have shape {tuple(out.shape)}, eager {tuple(reference.shape)}")
        self.diff = max(self.diff, float((out.float() - reference.float()).abs().max()))
        self.calls += 1
        self.shapes.add(tuple(tuple(a.shape) for a in args if isinstance(a, torch.Tensor)))
        return out


def scored(task: Any, generated: list[Any], refs: list[Any]) -> dict[str, float] | str:
    """The task's metrics of ``generated`` against ``refs``, or the error they raised (reported, never dropped)."""
    try:
        return {k: float(v) for k, v in task.score_outputs(generated, refs).items()}
    except Exception as exc:
        return f"{type(exc).__name__}: {str(exc)[:300]}"


def refuse(component: Any, target: Any) -> None:
    """Targets that cannot carry a generating run: one line."""
    if implements(target, UsesRun) and not implements(target, CarriesNetwork):
        raise EngineError(
            f"the {component.name} target does not package generating runs yet",
            hint="deploy the network with --target torchscript, onnx or export, then `engine serve RUN --artifact DIR`",
        )


def deploy_generating(
    run: Any,
    component: Any,
    target: Any,
    model: torch.nn.Module,
    datamodule: Any,
    out_dir: Path,
    samples: int,
    timing: bool,
    threads: int,
) -> dict[str, Any]:
    """Export the network of a generating run, verify ``generate`` over it against eager; the manifest written."""
    refuse(component, target)
    facts = common.run_facts(run, datamodule)
    task = run.task(facts=facts)
    inputs, refs, split = split_samples(datamodule, min(samples, MAX_SAMPLES))
    chunks = [inputs[i : i + BATCH] for i in range(0, len(inputs), BATCH)]
    example = task.network_inputs(chunks[0])
    example = example if isinstance(example, tuple) else (example,)

    if threads > 0:
        torch.set_num_threads(threads)
    before = space.snapshot(out_dir)
    artifact, export_s = space.export_artifact(target, component, model, example, out_dir, before)
    compared = Compared(target.load(artifact), model)
    eager_out: list[list[int]] = []
    artifact_out: list[list[int]] = []
    timings = {"eager": 0.0, "artifact": 0.0}
    names, open_ = option_names(task)
    seeded = "seed" in names or open_  # a sampling loop then samples alike over the eager model and the artifact

    def eager(*args: Any) -> Any:  # the eager model as a plain callable: the same loop as over the artifact
        return model(*args)  # (a model's own shortcuts, a KV cache refilled at the context limit, left out)

    for number, chunk in enumerate(chunks):
        options = {"seed": number} if seeded else {}
        t0 = time.perf_counter()
        try:
            eager_out += task.generate(eager, chunk, **options)
        except ConfigError:
            if not options:
                raise
            seeded, options = False, {}  # a task taking **options but no seed: it decodes as it does
            eager_out += task.generate(eager, chunk)
        timings["eager"] += time.perf_counter() - t0
        t0 = time.perf_counter()
        try:
            artifact_out += task.generate(compared, chunk, **options)
        except EngineError:
            raise
        except Exception as exc:
            raise VerificationError(
                f"the reloaded {component.name} artifact failed while generating on the run's {split} inputs: "
                f"{type(exc).__name__}: {str(exc).strip().splitlines()[0][:300] if str(exc).strip() else ''}",
                hint="the network must take every batch size and length the decoding loop gives it",
            ) from exc
        timings["artifact"] += time.perf_counter() - t0
    timings["artifact"] -= compared.eager_s  # the loop over the artifact alone
    tolerance = float(target.tolerance)
    same = sum(a == b for a, b in zip(eager_out, artifact_out, strict=True)) / max(1, len(inputs))
    verification: dict[str, Any] = {
        "split": split,
        "samples": len(inputs),
        "threads": torch.get_num_threads(),
        "max_abs_diff": compared.diff,
        "tolerance": tolerance,
        "passed": compared.diff <= tolerance,
        "export_s": round(export_s, 3),
        "size_bytes": {"eager": common.state_size(model), "artifact": common.artifact_size(artifact)},
        "generation": {
            "loop": "python, over the artifact",
            "same_outputs": round(same, 6),
            "network_calls": compared.calls,
            "call_shapes": len(compared.shapes),  # distinct batch/length shapes the artifact was run on
            "batch_lengths": sorted({max(len(i) for i in chunk) for chunk in chunks}),
            "generate_s": {k: round(v, 4) for k, v in timings.items()},
        },
    }
    if implements(target, DescribesArtifact) and target.report:
        verification["target_report"] = _plain(dict(target.report))
    if implements(task, ScoresOutputs):  # text outputs are scored as text (protocols.ScoresOutputs)
        texts = text_source(datamodule)
        as_text = (lambda rows: [texts.decode_tokens(r) for r in rows]) if texts is not None else (lambda rows: rows)
        hyps, gold = as_text(eager_out), as_text(refs)
        eager_scores, artifact_scores = scored(task, hyps, gold), scored(task, as_text(artifact_out), gold)
        if isinstance(eager_scores, str) or isinstance(artifact_scores, str):
            verification["metric"] = {"error": eager_scores if isinstance(eager_scores, str) else artifact_scores}
        elif eager_scores:
            primary = task.primary_metric[0] if implements(task, HasPrimaryMetric) else None
            name = primary if primary in eager_scores else next(iter(eager_scores))
            e, a = eager_scores[name], artifact_scores.get(name, float("nan"))
            verification["metric"] = {
                "name": f"{split}/{name}",
                "eager": round(e, 6),
                "artifact": round(a, 6),
                "change": round(a - e, 6),
            }
            verification["metrics"] = {
                f"{split}/{k}": {"eager": round(v, 6), "artifact": round(artifact_scores.get(k, float("nan")), 6)}
                for k, v in eager_scores.items()
            }
    if timing:
        verification["latency_ms"] = {}
        for size in (1, 32):
            args = task.network_inputs(common_batch(inputs, size))
            args = args if isinstance(args, tuple) else (args,)
            verification["latency_ms"][f"batch{size}"] = {
                "eager": common.latency(model, args),
                "artifact": common.latency(compared.artifact, args),
            }

    source = text_source(datamodule)
    packaged = package_data(datamodule, out_dir)
    kinds = (task.input_kind, task.output_kind) if implements(task, DeclaresIO) else ("tokens", "tokens")
    manifest: dict[str, Any] = {
        "format": 1,
        "target": component.qualified_name,
        "options": _plain(_options(target, component)),
        "artifact": artifact.name,
        "checkpoint": str(run.checkpoint("best").relative_to(run.path)),
        "model": _plain(run.config.get("model", {})),
        "task": _plain(run.config.get("task", {})),
        "problem": problem_of(task, facts),
        "input": {
            "name": "input",
            "kind": kinds[0],
            "shape": ["batch"],
            "dtype": "int64",
            "arguments": [{"shape": list(a.shape), "dtype": str(a.dtype).removeprefix("torch.")} for a in example],
        },
        "output": {"kind": kinds[1], "by": "task.generate, in Python, over the artifact"},
        "vocabulary": vocabulary(facts),
        "data_artifacts": packaged,
        "preprocessing": None,
        "class_names": None,
        "versions": {**common.versions(), "target_plugin": f"{component.distribution} {component.version}"},
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "verification": verification,
    }
    sample = sample_text(source, inputs[0]) if source is not None else None
    try:
        if sample is not None:
            write_text_atomic(out_dir / SAMPLE, json.dumps({"inputs": [sample]}) + "\n")
            manifest["sample"] = SAMPLE
        write_text_atomic(out_dir / common.MANIFEST, json.dumps(manifest, indent=2) + "\n")
    except OSError as exc:
        raise space.write_failed(out_dir, before, exc) from exc
    if compared.diff > tolerance:
        raise VerificationError(
            f"verification failed: the {component.name} artifact differs from eager PyTorch by {compared.diff:.3g} "
            f"(tolerance {tolerance:g}) over {compared.calls} network calls of the decoding loop",
            hint=f"the artifact and its manifest (passed: false) are in {out_dir}",
        )
    manifest["out_dir"] = str(out_dir)
    return manifest


def common_batch(inputs: list[list[int]], size: int) -> list[list[int]]:
    """``size`` real inputs (repeated when there are fewer)."""
    return [inputs[i % len(inputs)] for i in range(size)]


def package_data(datamodule: Any, out_dir: Path) -> str | None:
    """The data source's artifacts (its tokenizers, vocabulary) written beside the artifact, in ``data/``."""
    source = getattr(datamodule, "source", None)
    if source is None or not implements(source, SavesArtifacts):
        return None
    (out_dir / "data").mkdir(exist_ok=True)
    source.save_artifacts(out_dir / "data")
    return "data"


def sample_text(source: Any, ids: list[int]) -> str | None:
    """A valid text request (``sample.json``) when the source's decoding of an input reads back as that input."""
    try:
        text = source.decode_tokens(ids)
        return text if text and source.encode_text(text) == ids else None
    except Exception:
        return None
