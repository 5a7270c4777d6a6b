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
    one_channel = len(shape) == 3 and shape[0] == 1  # a 1-channel image: its channel dim may be left out
    if array.shape == shape or (one_channel and array.shape == shape[1:]):
        array = array.reshape(1, *shape)
    elif one_channel and array.ndim == 3 and array.shape[1:] == shape[1:]:
        array = array[:, None]  # [batch, H, W]
    elif array.shape[1:] != shape:
        if array.ndim == 1 and array.size == math.prod(shape):
            array = array.reshape(1, *shape)  # a flat sample of the right size
        else:
            dims = ", ".join(map(str, shape))
            hw = ", ".join(map(str, shape[1:]))
            bare = f", or [{hw}] / [batch, {hw}] without the channel dim" if one_channel else ""
            raise InputError(
                f"{where}: expected one sample of shape {list(shape)} or a batch [batch, {dims}]{bare}, "
                f"got shape {list(array.shape)}"
            )
    if array.shape[0] == 0:
        raise InputError(f"{where}: the batch is empty")
    if array.dtype.kind == "f" and not np.isfinite(array).all():
        raise InputError(f"{where}: inputs must be finite numbers (no NaN or infinity)")
    return np.ascontiguousarray(array)


def check_ids(array: np.ndarray, vocab_size: int | None, where: str = "inputs") -> None:
    """Integer inputs of a model taking token ids lie in ``[0, vocab_size)``: else `InputError` (not an IndexError)."""
    if vocab_size is None or array.dtype.kind not in "iu" or array.size == 0:
        return
    low, high = int(array.min()), int(array.max())
    if low < 0 or high >= vocab_size:
        bad = low if low < 0 else high
        raise InputError(f"{where}: token id {bad} is outside the vocabulary (ids 0..{vocab_size - 1})")


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


#: Model-form values further than this many standard deviations from the training mean draw a warning.
FAR = 8.0


def _per_sample(values: Any, shape: Sequence[int], name: str) -> np.ndarray:
    """A recorded per-channel (images ``[C, H, W]``) or per-feature statistic shaped to broadcast over a batch."""
    v = np.asarray(values, dtype=np.float64).reshape(-1)
    if v.size == 1:
        return v.reshape(())
    if len(shape) == 3 and v.size == shape[0]:
        return v.reshape(1, -1, 1, 1)
    if v.size == math.prod(shape):
        return v.reshape(1, *shape)
    raise InputError(
        f"the run's recorded preprocessing has {v.size} {name} values, which fit no dimension of inputs "
        f"shaped {list(shape)}",
        hint="give inputs as the model sees them with --preprocessed",
    )


def prepare(
    array: np.ndarray, preprocessing: Any, preprocessed: bool = False, where: str = "inputs"
) -> tuple[np.ndarray, str | None]:
    """THE input rule's second half, shared by predict, serve and explain (pure numpy).

    ``array`` is a batch of *raw* samples (as the data source produced them before its
    recorded ``preprocessing``: digit pixels 0..16, image pixels 0..255, table features in
    their own units); the recorded ``scale`` then per-channel / per-feature ``mean``/``std``
    are applied. ``preprocessed=True``: the inputs are already as the model sees them (kept).
    Integer inputs (token ids) and runs recording no preprocessing are kept as given.

    Returns the model-form batch and a warning (None when none) when inputs lie far outside
    the training data: beyond the recorded ``value_range``, or more than `FAR` standard
    deviations from the training mean.
    """
    if preprocessed or not isinstance(preprocessing, dict) or array.dtype.kind != "f":
        return array, None
    x = array.astype(np.float64)
    shape = array.shape[1:]
    low, high = (preprocessing.get("value_range") or [None, None])[:2]
    warning = None
    if low is not None and high is not None:
        slack = 0.01 * (float(high) - float(low))
        if x.min() < float(low) - slack or x.max() > float(high) + slack:
            warning = (
                f"{where}: values {x.min():.4g}..{x.max():.4g} lie outside the training data's range "
                f"{low}..{high}; inputs are read raw (give --preprocessed if they are already normalised)"
            )
    if preprocessing.get("scale") is not None:
        x = x * float(preprocessing["scale"])
    if "mean" in preprocessing and "std" in preprocessing:
        mean, std = _per_sample(preprocessing["mean"], shape, "mean"), _per_sample(preprocessing["std"], shape, "std")
        x = (x - mean) / std
        identity = not mean.any() and (std == 1).all()  # `data.standardize=false`: no statistics to compare with
        far = float(np.abs(x).max()) if x.size and not identity else 0.0
        if warning is None and far > FAR:
            warning = (
                f"{where}: inputs lie up to {far:.3g} standard deviations from the training data's mean; "
                "inputs are read raw (give --preprocessed if they are already normalised)"
            )
    return np.ascontiguousarray(x.astype(array.dtype)), warning


def unprepare(array: np.ndarray, preprocessing: Any) -> np.ndarray:
    """`prepare` undone: model-form samples back to raw ones (``engine deploy``'s ``sample.json``).

    Raw values within 1e-3 of whole numbers (digit pixels, image bytes) are rounded to them.
    """
    if not isinstance(preprocessing, dict) or array.dtype.kind != "f":
        return array
    x = array.astype(np.float64)
    if "mean" in preprocessing and "std" in preprocessing:
        shape = array.shape[1:]
        x = x * _per_sample(preprocessing["std"], shape, "std") + _per_sample(preprocessing["mean"], shape, "mean")
    if preprocessing.get("scale"):
        x = x / float(preprocessing["scale"])
    whole = np.round(x)
    return whole if np.allclose(x, whole, rtol=0, atol=1e-3) else np.round(x, 6)
