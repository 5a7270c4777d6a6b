"""Turn user inputs (files, JSON values) into a batch tensor shaped like the model's input."""

from __future__ import annotations

import csv
import json
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from engine import EngineError


class InputError(EngineError):
    """An input does not fit the model (shape, type, values)."""


def _dtype(name: str | None) -> torch.dtype:
    dtype = getattr(torch, str(name or "float32"), None)
    return dtype if isinstance(dtype, torch.dtype) else torch.float32


def _numpy_dtype(name: str | None) -> np.dtype[Any]:
    """The numpy dtype holding a model input dtype (float32 for one numpy lacks, such as bfloat16)."""
    try:
        return np.dtype(str(name or "float32"))
    except TypeError:
        return np.dtype(np.float32)


def as_array(
    value: Any, sample_shape: Sequence[int] | None, dtype: str | None = "float32", where: str = "input"
) -> np.ndarray:
    """A nested list / array that is one sample or a batch -> a ``[batch, *sample_shape]`` numpy array.

    Raises `InputError` with a message naming the expected shape when it does not fit.
    Pure numpy, so the server can check a request on its event loop without torch.
    """
    if isinstance(value, dict):
        if "inputs" not in value:
            raise InputError(f"{where}: a JSON object must have an 'inputs' key, got keys {sorted(value)[:5]}")
        value = value["inputs"]
    target = _numpy_dtype(dtype)
    try:
        array = np.asarray(value)
        if array.dtype == object or array.dtype.kind not in "biuf":
            raise ValueError("not a rectangular array of numbers")
    except (ValueError, TypeError) as exc:
        expected = f"[batch, {', '.join(map(str, sample_shape))}]" if sample_shape else "numbers"
        raise InputError(f"{where}: expected a nested list of numbers shaped {expected}: {exc}") from None
    if array.dtype.kind == "f" and target.kind != "f":
        if not np.array_equal(array, np.round(array)):
            raise InputError(f"{where}: the model takes {target} values, got fractions")
    array = array.astype(target, copy=False)
    if sample_shape is None:
        return np.ascontiguousarray(array if array.ndim > 1 else array[None])
    shape = tuple(int(s) for s in sample_shape)
    if array.shape == shape:
        array = array[None]
    elif array.shape[1:] != shape:
        if array.ndim == 1 and array.size == math.prod(shape):
            array = array.reshape(1, *shape)  # a flat sample of the right size
        else:
            dims = ", ".join(map(str, shape))
            raise InputError(
                f"{where}: expected one sample of shape {list(shape)} or a batch [batch, {dims}], "
                f"got shape {list(array.shape)}"
            )
    if array.shape[0] == 0:
        raise InputError(f"{where}: the batch is empty")
    if array.dtype.kind == "f" and not np.isfinite(array).all():
        raise InputError(f"{where}: inputs must be finite numbers (no NaN or infinity)")
    return np.ascontiguousarray(array)


def as_batch(
    value: Any, sample_shape: Sequence[int] | None, dtype: str | None = "float32", where: str = "input"
) -> torch.Tensor:
    """`as_array` as a tensor of the model's input dtype (``value`` may be a tensor)."""
    if isinstance(value, torch.Tensor):
        value = value.detach().cpu()
        value = (value.float() if value.dtype == torch.bfloat16 else value).numpy()
    tensor = torch.from_numpy(as_array(value, sample_shape, dtype, where))
    target = _dtype(dtype)
    return tensor if tensor.dtype == target else tensor.to(target)


def _read_csv(path: Path, feature_names: Sequence[str] | None) -> list[list[float]]:
    with path.open(newline="", encoding="utf-8-sig") as fh:
        rows = [row for row in csv.reader(fh) if row and any(cell.strip() for cell in row)]
    if not rows:
        raise InputError(f"{path}: no rows")

    def numeric(row: list[str]) -> bool:
        try:
            [float(c) for c in row]
        except ValueError:
            return False
        return True

    header: list[str] | None = None
    if not numeric(rows[0]):
        header, rows = [c.strip() for c in rows[0]], rows[1:]
    columns: list[int] | None = None
    if header and feature_names and all(f in header for f in feature_names):
        columns = [header.index(f) for f in feature_names]  # named columns, label and extras left out
    out: list[list[float]] = []
    for line, row in enumerate(rows, start=2 if header else 1):
        cells = [row[i] for i in columns] if columns else row
        try:
            out.append([float(c) for c in cells])
        except ValueError:
            bad = next(c for c in cells if not _is_number(c))
            raise InputError(f"{path}, line {line}: {bad!r} is not a number") from None
    return out


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def read_file(
    path: str | Path,
    sample_shape: Sequence[int] | None,
    dtype: str | None,
    feature_names: Sequence[str] | None = None,
    loader: Any = None,
    own_format: bool = False,
) -> torch.Tensor:
    """One input file -> ``[batch, *sample_shape]``; ``loader`` is the data source's ``load_input`` when it has one."""
    file = Path(path).expanduser()
    if not file.is_file():
        raise InputError(f"input file not found: {file}")
    suffix = "" if own_format else file.suffix.lower()
    if suffix == ".json":
        try:
            value = json.loads(file.read_bytes().decode("utf-8"))
        except (ValueError, RecursionError) as exc:  # not UTF-8, not JSON, nested too deep
            raise InputError(f"{file}: not valid JSON: {str(exc)[:200]}") from None
        return as_batch(value, sample_shape, dtype, where=str(file))
    if suffix == ".npy":
        try:
            value = np.load(file, allow_pickle=False)
        except Exception as exc:
            raise InputError(f"{file}: not a numpy .npy array: {exc}") from None
        return as_batch(value, sample_shape, dtype, where=str(file))
    if suffix == ".csv":
        try:
            rows = _read_csv(file, feature_names)
        except UnicodeDecodeError as exc:
            raise InputError(f"{file}: not a UTF-8 text file: {exc.reason} at byte {exc.start}") from None
        return as_batch(rows, sample_shape, dtype, where=str(file))
    if loader is not None:
        try:
            sample = loader(str(file))
        except EngineError:
            raise
        except Exception as exc:
            raise InputError(f"{file}: the run's data source cannot read it: {type(exc).__name__}: {exc}") from None
        return as_batch(torch.as_tensor(sample).unsqueeze(0), sample_shape, dtype, where=str(file))
    raise InputError(
        f"{file}: unsupported input type '{suffix or '(none)'}'",
        hint="use .json (nested list), .npy or .csv; the run's data source reads no other files",
    )


def standardize(batch: torch.Tensor, preprocessing: Any) -> torch.Tensor:
    """Apply a recorded ``{"mean": [...], "std": [...]}`` standardisation to raw feature rows."""
    if not isinstance(preprocessing, dict) or "mean" not in preprocessing or "std" not in preprocessing:
        raise InputError(
            "--raw: the run records no mean/std standardisation to apply",
            hint="give already preprocessed inputs (drop --raw)",
        )
    mean = torch.as_tensor(preprocessing["mean"], dtype=batch.dtype)
    std = torch.as_tensor(preprocessing["std"], dtype=batch.dtype)
    if batch.dim() != 2 or mean.dim() != 1 or len(mean) != batch.shape[1]:
        raise InputError(
            "--raw applies a per-feature mean/std to feature vectors; this run's inputs are not feature vectors",
            hint="give preprocessed inputs, or files the run's data source reads itself (images for vision runs)",
        )
    try:
        return (batch - mean) / std
    except RuntimeError as exc:
        raise InputError(f"--raw: the recorded standardisation does not fit the inputs: {exc}") from None
