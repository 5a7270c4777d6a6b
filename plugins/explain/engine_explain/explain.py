"""``engine explain``: read inputs as ``engine predict`` does, attribute them with Captum, draw what was found.

`explain` is the whole command as a function (the CLI prints what it returns)::

    from engine_explain.explain import explain

    report = explain("runs/digits", ["seven.npy"], method="occlusion")
    report.items[0].attribution      # numpy, shaped like the input (text: one score per token)
"""

from __future__ import annotations

import os
import re
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from engine import EngineError, did_you_mean
from engine.runs import inside
from engine_explain import methods, sequence
from engine_explain import outputs as written

KINDS = ("image", "spectrogram", "matrix", "features", "text", "tensor", "sequence")


@dataclass
class Item:
    """One input explained: what the model said, which output was explained, and the attributions."""

    name: str
    prediction: dict[str, Any]
    target: int
    target_label: str
    attribution: np.ndarray
    values: np.ndarray
    tokens: list[str] | None = None
    files: list[Path] = field(default_factory=list)


@dataclass
class Report:
    """Everything one ``engine explain`` call found and wrote."""

    run: Path
    method: str
    kind: str
    out: Path
    items: list[Item]
    feature_names: list[str] | None = None
    attention_layers: int = 0
    files: list[Path] = field(default_factory=list)


def check_method(method: str) -> str:
    """``method`` when Captum's attribution is known here, else a one-line error with the closest name."""
    if method not in methods.METHODS:
        raise EngineError(
            f"unknown attribution method '{method}'{did_you_mean(method, methods.METHODS)}",
            hint=f"choose from {', '.join(methods.METHODS)}",
        )
    return method


def input_kind(facts: dict[str, Any], x: torch.Tensor) -> str:
    """What the inputs are, from the run's facts and the batch: image, spectrogram, matrix, features, text, tensor."""
    if not x.is_floating_point():
        return "text"
    dims = x.dim() - 1
    if dims == 1:
        return "features"
    if dims in (2, 3) and ("n_mels" in facts or isinstance(facts.get("features"), dict)):
        return "spectrogram"
    if dims == 3:
        return "image"
    return "matrix" if dims == 2 else "tensor"


def resolve_target(target: str | None, names: list[str] | None, outputs: torch.Tensor, problem: str) -> torch.Tensor:
    """The output to explain per sample: ``--target`` (a class name or an index), else the predicted class."""
    width = outputs.shape[-1]
    if target is None:
        if problem == "classification":
            return outputs.argmax(-1)
        if width > 1:
            raise EngineError(
                f"the model predicts {width} values; say which to explain with --target INDEX (0-{width - 1})"
            )
        return torch.zeros(len(outputs), dtype=torch.long)
    if names and target in names:
        index = names.index(target)
    elif re.fullmatch(r"\d+", target):
        index = int(target)
    else:
        known = f"{did_you_mean(target, names)}" if names else ""
        raise EngineError(
            f"--target {target!r} is neither a class of the run nor an output index{known}",
            hint=f"classes: {', '.join(names[:20])}" if names else f"an index 0-{width - 1}",
        )
    if not 0 <= index < width:
        raise EngineError(f"--target {index} is out of range: the model has {width} outputs (0-{width - 1})")
    return torch.full((len(outputs),), index, dtype=torch.long)


def token_strings(run_path: Path, ids: list[int]) -> list[str]:
    """Each token id as text, with the run's ``tokenizer.json`` (``#id`` when there is none)."""
    file = inside(run_path, "tokenizer.json")  # a link leading out of the run is refused, not read
    try:
        from tokenizers import Tokenizer

        tok = Tokenizer.from_file(str(file))
    except Exception:
        return [f"#{i}" for i in ids]
    out = []
    for i in ids:
        text = tok.decode([i], skip_special_tokens=False)
        out.append(text if text else (tok.id_to_token(i) or f"#{i}"))
    return out


def _background(predictor: Any, x: torch.Tensor, limit: int) -> torch.Tensor | None:
    """Up to ``limit`` real inputs of the run's data (GradientShap's reference distribution)."""
    from engine_deploy import common

    try:
        inputs, _, _ = common.split_inputs(predictor.datamodule, limit)
    except Exception:
        return None
    if inputs.shape[1:] != x.shape[1:] or inputs.dtype != x.dtype:
        return None
    return inputs[:limit]


def explain(
    run: str | Path,
    inputs: list[str],
    method: str = "integrated_gradients",
    target: str | None = None,
    out: str | Path | None = None,
    batch_size: int = 16,
    steps: int = 50,
    samples: int = 16,
    top: int = 10,
    attention: bool = True,
    progress: bool = True,
    preprocessed: bool = False,
    warnings: list[str] | None = None,
    generation: dict[str, Any] | None = None,
) -> Report:
    """Explain the run's model on ``inputs`` (files read like ``engine predict`` reads them); write into ``out``.

    Array inputs are raw unless ``preprocessed`` (`engine_deploy.inputs.prepare`); warnings about inputs far
    outside the training data are appended to ``warnings``. A run whose task generates text
    (`engine_explain.sequence`) reads text files (one input a line) and explains every generated token;
    ``generation`` holds options of its task's ``generate`` (``max_new_tokens`` …).
    """
    from engine_deploy import common
    from engine_deploy.predictor import Predictor

    check_method(method)
    for name, value, low in (("--batch-size", batch_size, 1), ("--steps", steps, 2), ("--samples", samples, 1)):
        if value < low:
            raise EngineError(f"{name} must be >= {low}, got {value}")
    opened = common.open_trained(run)
    if sequence.generates_text(opened.plan().task.load()):  # by protocol: Generates + output_kind "text"
        if target is not None:
            raise EngineError("--target is for classes; a model generating text has each output token explained")
        items, _ = sequence.explain_sequences(opened, list(inputs), method, steps, samples, generation or {}, progress)
        out_dir = Path(out) if out is not None else inside(opened.path, "explain", method)
        report = Report(opened.path, method, "sequence", out_dir, items)  # type: ignore[arg-type]
        _write(report, [], top, out_dir)
        return report
    predictor = Predictor(run)
    model = predictor.fn
    if not isinstance(model, nn.Module):
        raise EngineError(
            f"the run's model is a {type(model).__name__}, not a torch.nn.Module: Captum cannot explain it"
        )
    x, names = predictor.read(list(inputs), preprocessed=preprocessed)
    if warnings is not None:
        warnings += predictor.warnings
    facts = dict(predictor.run.facts)
    kind = input_kind(facts, x)
    embedding = methods.check_differentiable(model, x, method)
    forward = methods.logits(model)
    with torch.no_grad():
        raw = torch.cat([forward(x[i : i + batch_size]) for i in range(0, len(x), batch_size)])
    class_names = list(predictor.class_names) if predictor.class_names else None
    if class_names is None and kind == "text" and facts.get("vocab_size") == raw.shape[-1]:
        class_names = token_strings(predictor.run.path, list(range(raw.shape[-1])))  # a language model: next tokens
        predictor.class_names = class_names
    targets = resolve_target(target, class_names, raw, predictor.problem)
    options = methods.Options(method=method, steps=steps, samples=samples, pad_id=int(facts.get("pad_id", 0)))
    if method == "gradient_shap" and x.is_floating_point():
        options.background = _background(predictor, x, 32)
    chunks = list(range(0, len(x), batch_size))
    scores, maps = [], []
    for start in _progress(chunks, progress and len(chunks) > 1, method):
        chunk, wanted = x[start : start + batch_size], targets[start : start + batch_size]
        scores.append(methods.attribute(model, chunk, wanted, options, embedding).float().cpu())
        if attention:
            from engine_explain.attention import attention_maps

            found = attention_maps(model, chunk)
            maps.append(found)
    attribution = torch.cat(scores).numpy()
    records = predictor.describe(raw, 3)
    layers = [torch.cat([m[i] for m in maps]).numpy() for i in range(len(maps[0]))] if maps and maps[0] else []
    out_dir = Path(out) if out is not None else inside(predictor.run.path, "explain", method)
    items = []
    for i, name in enumerate(names):
        index = int(targets[i])
        label = class_names[index] if class_names and index < len(class_names) else str(index)
        items.append(Item(name, records[i], index, label, attribution[i], x[i].float().numpy()))
    feature_names = [str(f) for f in facts.get("feature_names") or []] or None
    report = Report(predictor.run.path, method, kind, out_dir, items, feature_names, len(layers))
    if kind == "text":
        pad = options.pad_id
        for item, ids in zip(items, x.tolist(), strict=True):
            length = max((j + 1 for j, t in enumerate(ids) if t != pad), default=0)
            item.tokens = token_strings(predictor.run.path, ids[:length])
            item.attribution = item.attribution[:length]
    _write(report, layers, top, out_dir)
    return report


def _write(report: Report, layers: list[np.ndarray], top: int, out_dir: Path) -> None:
    """Write every file beside ``out_dir`` first, then move each in: a failure (a full disk) keeps what was there."""
    staging = out_dir.parent / f".{out_dir.name}.{os.getpid()}.tmp"
    report.out = staging
    try:
        staging.mkdir(parents=True, exist_ok=True)
        if report.kind == "sequence":
            report.files = written.write_sequences(staging, report.run, report.method, report.items)
        else:
            written.write(report, layers, top)
        out_dir.mkdir(parents=True, exist_ok=True)
        for file in staging.iterdir():
            os.replace(file, out_dir / file.name)
    except OSError as exc:
        raise EngineError(
            f"cannot write the explanation into {out_dir}: {exc.strerror or exc}",
            hint=f"free some space or choose another --out; what {out_dir} held is kept",
        ) from None
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    report.out = out_dir
    report.files = [out_dir / f.name for f in report.files]
    for item in report.items:
        item.files = [out_dir / f.name for f in item.files]


def _progress(chunks: list[int], show: bool, method: str) -> Any:
    if not show:
        return chunks
    from tqdm import tqdm

    return tqdm(chunks, desc=f"explain ({method})", unit="batch", leave=False, disable=None)  # None: terminals only
