"""What deploy, predict and serve share: a run's model, its data, deployed artifacts and their manifests."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from engine import EngineError
from engine.protocols import MergesAdapters, implements
from engine.runs import Run, open_run

MANIFEST = "manifest.json"
SAMPLE = "sample.json"


class VerificationError(EngineError):
    """The exported artifact does not reproduce the eager model within the target's tolerance."""

    exit_code = 1


def plugin_version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("engine-deploy")
    except PackageNotFoundError:  # pragma: no cover - running from a source tree
        from engine_deploy import __version__

        return __version__


def versions() -> dict[str, str]:
    """Versions of the engine, this plugin and the libraries an artifact depends on."""
    from importlib.metadata import PackageNotFoundError, version

    out: dict[str, str] = {}
    for dist in ("engine", "engine-deploy", "torch", "onnx", "onnxruntime"):
        try:
            out[dist] = version(dist)
        except PackageNotFoundError:
            continue
    return out


def open_trained(path: str | Path) -> Run:
    """Open a run directory and fail early, with one message, when it has no checkpoint."""
    run = open_run(path)
    run.checkpoint("best")
    return run


def run_facts(run: Run, datamodule: Any = None) -> dict[str, Any]:
    """The run's facts: the recorded ``facts.json``, completed by the live datamodule's when given."""
    facts = dict(run.facts)
    if datamodule is not None:
        facts.update(dict(datamodule.facts))
    return facts


def with_facts(run: Run, build: Callable[[dict[str, Any]], Any], datamodule: Any = None) -> tuple[Any, dict[str, Any]]:
    """``build(facts)`` and the facts it was given: the live ``datamodule``'s when given; else the recorded ones,
    and the rebuilt data's only when ``build`` failed on them (a fact that did not survive JSON)."""
    if datamodule is not None:
        facts = run_facts(run, datamodule)
        return build(facts), facts
    try:
        return build(dict(run.facts)), dict(run.facts)
    except EngineError:
        raise
    except Exception:
        facts = run_facts(run, run.datamodule())
        return build(facts), facts


def eager_model(run: Run, datamodule: Any = None) -> torch.nn.Module:
    """The run's trained model: its task's primary slot (best checkpoint, eval mode, CPU).

    A model trained through adapters (LoRA: `engine.protocols.MergesAdapters`) is handed out merged: a plain network.
    """
    model, _ = with_facts(run, lambda facts: run.model(facts=facts), datamodule)
    if not isinstance(model, torch.nn.Module):
        raise EngineError(
            f"the run's model ({type(model).__name__}) is not a torch.nn.Module, so it cannot be exported",
            hint="deploy works on runs whose task's primary slot holds a network (the supervised task's model)",
        )
    if implements(model, MergesAdapters):
        model = model.merged().eval()
    return model


def task_network(run: Run, task: Any, datamodule: Any = None) -> torch.nn.Module:
    """The network of ``task`` (built from ``run``'s checkpoint): its primary slot, merged when trained through
    adapters (then put back in the task, so that the task and the network share one copy of the weights); a task
    that does not keep its slot under the slot's name gets `eager_model` (a second build)."""
    slot = run.plan().task.main_slot
    model = getattr(task, slot, None) if slot else None
    if not isinstance(model, torch.nn.Module):
        return eager_model(run, datamodule)
    if implements(model, MergesAdapters):
        model = model.merged().eval()
        setattr(task, slot, model)  # the adapted copy is released: one model in memory
    return model.eval()


def split_batches(datamodule: Any, limit: int = 1024) -> tuple[list[torch.Tensor], list[torch.Tensor], str]:
    """Up to ``limit`` real inputs (and targets) of the test split (else validation, else training), in the
    loader's batches: a source padding per batch gives batches of different lengths, kept as they are."""
    datamodule.setup("test")
    loaders = [("test", datamodule.test_dataloader), ("val", datamodule.val_dataloader)]
    loaders.append(("train", datamodule.train_dataloader))
    for split, make in loaders:
        try:
            loader = make()
        except Exception:
            continue
        if isinstance(loader, (list, tuple)):
            if not loader:
                continue
            loader = loader[0]
        xs: list[torch.Tensor] = []
        ys: list[torch.Tensor] = []
        seen = 0
        for batch in loader:
            x, y = (batch[0], batch[1]) if isinstance(batch, (list, tuple)) and len(batch) > 1 else (batch, None)
            if not isinstance(x, torch.Tensor):
                raise EngineError(
                    f"the run's data yields {type(x).__name__} inputs; deployment needs models taking one tensor",
                    hint="a task taking several tensors implements engine.protocols.Generates (network_inputs)",
                )
            xs.append(x[: limit - seen])
            if isinstance(y, torch.Tensor):
                ys.append(y[: limit - seen])
            seen += len(xs[-1])
            if seen >= limit:
                break
        if xs:
            return xs, (ys if len(ys) == len(xs) else []), split
    raise EngineError("the run's data source yields no samples to verify the model on")


def join(parts: list[torch.Tensor], pad: float = 0) -> torch.Tensor:
    """Batches concatenated; those of other sizes beyond the batch dim (padded per batch) first padded with ``pad``
    to the largest (never ``torch.cat`` of unequal lengths)."""
    widest = [max(p.shape[d] for p in parts) for d in range(1, parts[0].dim())]
    padded = []
    for p in parts:
        if list(p.shape[1:]) != widest:
            grow = [n for d in reversed(range(1, p.dim())) for n in (0, widest[d - 1] - p.shape[d])]
            p = torch.nn.functional.pad(p, grow, value=pad)
        padded.append(p)
    return torch.cat(padded)


def split_inputs(datamodule: Any, limit: int = 1024, pad: float = 0) -> tuple[torch.Tensor, torch.Tensor | None, str]:
    """`split_batches` as one batch: batches of other lengths padded with ``pad`` (the data's ``pad_id``)."""
    xs, ys, split = split_batches(datamodule, limit)
    return join(xs, pad), (join(ys, pad) if ys else None), split


def split_targets(datamodule: Any, split: str, limit: int) -> list[Any] | None:
    """The first ``limit`` targets of ``split`` when a batch holds them as a list (one per sample: a detector's
    boxes), in the order `split_inputs` read the inputs; None for tensor targets or none at all."""
    make = {"test": datamodule.test_dataloader, "val": datamodule.val_dataloader, "train": datamodule.train_dataloader}
    loader = make[split]()
    if isinstance(loader, (list, tuple)):
        if not loader:
            return None
        loader = loader[0]
    found: list[Any] = []
    for batch in loader:
        if not (isinstance(batch, (list, tuple)) and len(batch) > 1 and isinstance(batch[1], (list, tuple))):
            return None
        found += list(batch[1])
        if len(found) >= limit:
            break
    return found[:limit] or None


# --------------------------------------------------------------------------- artifacts


@dataclass
class Artifact:
    """A deployed artifact reloaded from its directory (``manifest.json`` + the file it names)."""

    path: Path
    manifest: dict[str, Any]
    fn: Any = field(repr=False)

    @property
    def target(self) -> str:
        return str(self.manifest["target"])


def read_manifest(directory: str | Path) -> dict[str, Any]:
    root = Path(directory).expanduser()
    file = root / MANIFEST if root.is_dir() else root
    if not file.is_file():
        raise EngineError(
            f"no deployed artifact in {root} (no {MANIFEST})",
            hint="deploy first: `engine deploy RUN --target onnx`; --artifact takes the directory it wrote",
        )
    try:
        data = json.loads(file.read_bytes().decode("utf-8"))
    except (ValueError, RecursionError) as exc:  # not UTF-8, not JSON, nested too deep
        raise EngineError(f"cannot read {file}: {str(exc)[:200]}", hint="deploy again") from None
    if not isinstance(data, dict) or "target" not in data or "artifact" not in data:
        raise EngineError(f"{file} is not a deployment manifest (no target/artifact)")
    _check_manifest(data, file)
    return data


def _check_manifest(data: dict[str, Any], file: Path) -> None:
    """The manifest's fields predict and serve use have the types ``engine deploy`` writes (it is data)."""
    spec = data.get("input", {})
    shape = spec.get("shape", ["batch"]) if isinstance(spec, dict) else None
    dtype = spec.get("dtype", "float32") if isinstance(spec, dict) else None
    names = data.get("class_names")
    problems = {
        "target": not isinstance(data["target"], str),
        "options": not isinstance(data.get("options") or {}, dict),
        "input": not isinstance(spec, dict),
        "input.shape": not isinstance(shape, list)
        or not shape
        or not all(isinstance(s, int) and not isinstance(s, bool) and s > 0 for s in shape[1:]),
        "input.dtype": not isinstance(dtype, str) or not isinstance(getattr(torch, dtype, None), torch.dtype),
        "class_names": names is not None and not (isinstance(names, list) and all(isinstance(n, str) for n in names)),
        "problem": not isinstance(data.get("problem") or "", str),
    }
    bad = next((key for key, wrong in problems.items() if wrong), None)
    if bad is not None:
        shown = json.dumps(data.get(bad.split(".")[0]))[:80]
        raise EngineError(f"{file}: '{bad}' is not what engine deploy writes (got {shown})", hint="deploy again")


def load_artifact(directory: str | Path) -> Artifact:
    """Rebuild the target named in the manifest with its options and load the artifact."""
    import engine

    manifest = read_manifest(directory)
    root = Path(directory).expanduser()
    root = root if root.is_dir() else root.parent
    name = manifest["artifact"]
    if not isinstance(name, str) or not name or Path(name).name != name or name in (".", ".."):
        raise EngineError(
            f"{root / MANIFEST} names the artifact {name!r}, which is not a file of that directory",
            hint="a manifest names its artifact by file name only; this one was altered, deploy again",
        )
    file = root / name
    if not file.exists():
        raise EngineError(f"the manifest names {file.name}, which is missing from {root}", hint="deploy again")
    target = engine.create("deploy", manifest["target"], **dict(manifest.get("options") or {}))
    fn = target.load(file)
    return Artifact(root, manifest, fn)


# --------------------------------------------------------------------------- measuring


def call(fn: Any, x: torch.Tensor | tuple[torch.Tensor, ...]) -> torch.Tensor:
    """``fn`` on one input tensor, or on the arguments of one network call (a tuple)."""
    with torch.inference_mode():
        out = fn(*x) if isinstance(x, tuple) else fn(x)
    if isinstance(out, (list, tuple)):
        out = out[0]
    return torch.as_tensor(out)


def outputs(fn: Any, inputs: torch.Tensor | list[torch.Tensor], batch_size: int = 32) -> torch.Tensor:
    """``fn`` over ``inputs`` in batches (the last one smaller: it exercises a dynamic batch); a list of batches
    (padded per batch, of different lengths) is run batch by batch, the outputs joined (`join`)."""
    if isinstance(inputs, list):
        return join([call(fn, x) for x in inputs])
    return torch.cat([call(fn, inputs[i : i + batch_size]) for i in range(0, len(inputs), batch_size)])


def batch_of(inputs: torch.Tensor, size: int) -> torch.Tensor:
    """A batch of exactly ``size`` real samples (repeated when the split is smaller)."""
    reps = -(-size // len(inputs))
    return inputs.repeat(reps, *([1] * (inputs.dim() - 1)))[:size].contiguous()


def latency(
    fn: Any, x: torch.Tensor, iterations: int = 200, budget_s: float = 2.0, warmup: int = 10
) -> dict[str, float]:
    """p50 / p95 latency of ``fn(x)`` in milliseconds (at most ``iterations`` calls or ``budget_s`` seconds)."""
    for _ in range(warmup):
        call(fn, x)
    times: list[float] = []
    start = time.perf_counter()
    while len(times) < iterations and (time.perf_counter() - start < budget_s or len(times) < 10):
        t0 = time.perf_counter()
        call(fn, x)
        times.append((time.perf_counter() - t0) * 1000)
    ordered = torch.tensor(times, dtype=torch.float64)
    return {
        "p50_ms": round(float(ordered.quantile(0.5)), 4),
        "p95_ms": round(float(ordered.quantile(0.95)), 4),
        "calls": len(times),
    }


def state_size(model: torch.nn.Module) -> int:
    """Bytes of the model's serialized weights (what the eager checkpoint of the model costs)."""
    import io

    buffer = io.BytesIO()
    torch.save(model.state_dict(), buffer)
    return buffer.getbuffer().nbytes


def artifact_size(path: Path) -> int:
    path = Path(path)
    if path.is_dir():
        return sum(f.stat().st_size for f in path.rglob("*") if f.is_file())
    extra = [p for p in path.parent.glob(path.name + ".data") if p.is_file()]  # ONNX external data
    return path.stat().st_size + sum(p.stat().st_size for p in extra)


def metric(outputs_: torch.Tensor, targets: torch.Tensor, problem: str, num_classes: int | None) -> tuple[str, float]:
    """The problem's primary metric (accuracy, macro F1 for multi-label, mean absolute error): the core's table."""
    from engine.tasks import PRIMARY, score

    kind = problem if problem in PRIMARY else "regression"
    name = PRIMARY[kind][0]
    return name, score(outputs_, targets, kind, num_classes, names=(name,))[name]


def to_probabilities(out: torch.Tensor, problem: str) -> torch.Tensor:
    """Class probabilities (softmax), label probabilities (sigmoid, multi-label), else the outputs (the core's rule)."""
    from engine.tasks import to_probabilities

    return to_probabilities(out, problem)


# --------------------------------------------------------------------------- manifests


def _parameters(component: Any) -> list[str]:
    """The names of a component's parameters, in order (its target's signature; none when it has none readable)."""
    import inspect

    try:
        params = inspect.signature(component.load()).parameters.values()
    except (TypeError, ValueError):
        return []
    named = (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)
    return [p.name for p in params if p.kind in named]


def _options(target: Any, component: Any) -> dict[str, Any]:
    """The target's parameters as built (defaults included), read back from the instance."""
    return {name: getattr(target, name) for name in _parameters(component) if hasattr(target, name)}


def _plain(value: Any) -> Any:
    """JSON-safe copy (tuples to lists, tensors to lists, other objects to strings)."""
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, torch.Tensor):
        return value.tolist()
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    return str(value)
