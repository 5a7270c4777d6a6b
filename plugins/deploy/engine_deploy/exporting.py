"""Exporting networks that take several tensors (a task's ``network_inputs``) and sequences padded per batch.

Shared by the deploy targets (`engine_deploy.targets`): the arguments of one network call, which dimensions are
dynamic, examples widened past the sizes exporters specialise, ``nn.Transformer*`` masks without data-dependent
branches, and one-line errors for models that cannot be exported.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

import torch

from engine import EngineError

Example = torch.Tensor | tuple[torch.Tensor, ...]


def arguments(example: Example) -> tuple[torch.Tensor, ...]:
    """The network's positional arguments: one tensor, or the tuple a task's ``network_inputs`` gives."""
    return tuple(example) if isinstance(example, (tuple, list)) else (example,)


def dynamic_shapes(args: tuple[torch.Tensor, ...], batch_max: int, lengths: bool) -> tuple[dict[int, Any], ...]:
    """Dimension 0 of every argument is the (shared) batch; with ``lengths``, integer arguments (token ids) are
    dynamic in every other dimension too (sequences padded per batch), each its own length."""
    batch = torch.export.Dim("batch", min=1, max=batch_max)
    return tuple(
        {0: batch}
        | (
            {d: torch.export.Dim(f"length{i}_{d}", min=1, max=65536) for d in range(1, a.dim())}
            if lengths and not a.is_floating_point()
            else {}
        )
        for i, a in enumerate(args)
    )


def length_options(args: tuple[torch.Tensor, ...], dynamic: bool) -> tuple[bool, ...]:
    """Export with dynamic lengths first when some argument is a sequence of ids; then with fixed ones (a model
    whose layers need its training length, e.g. a flattening classifier)."""
    return (True, False) if dynamic and any(not a.is_floating_point() and a.dim() > 1 for a in args) else (False,)


def widened(args: tuple[torch.Tensor, ...]) -> tuple[torch.Tensor, ...]:
    """Examples at least 2 long in every dynamic dimension (an exporter specialises sizes 0 and 1), by repeating
    their own values: shapes are what an export records, and repeated token ids stay valid ids."""
    out = []
    for a in args:
        for d in range(a.dim() if not a.is_floating_point() else 1):
            if a.shape[d] == 1:
                a = torch.cat([a, a], d)
        out.append(a.contiguous())
    return tuple(out)


@contextlib.contextmanager
def explicit_masks() -> Iterator[None]:
    """``nn.Transformer*`` layers given a mask without ``is_causal`` compare it with a causal mask to pick a fast
    path: a data-dependent branch exporters cannot trace (``GuardOnDataDependent``). While exporting, the layers
    are told the mask is not known causal, so they apply it as given: the same outputs, no data-dependent branch."""
    from torch.nn.modules import transformer

    original = transformer._detect_is_causal_mask

    def declared(mask: Any, is_causal: bool | None = None, size: int | None = None) -> bool:
        return is_causal is True

    transformer._detect_is_causal_mask = declared
    try:
        yield
    finally:
        transformer._detect_is_causal_mask = original


def not_exportable(what: str, exc: Exception) -> EngineError:
    """One line for an export that failed: the exception's first line, and what to change in the model when the
    failure is a data-dependent branch (not the pages of FX graph the exporter prints)."""
    text = str(exc).strip()
    first = text.splitlines()[0][:300] if text else type(exc).__name__
    if "GuardOnDataDependent" in type(exc).__name__ + text or "data-dependent" in text.lower():
        return EngineError(
            f"{what} export failed: the model branches on the values of a tensor ({type(exc).__name__}: {first})",
            hint="make the branch independent of input values (e.g. pass masks explicitly, is_causal=True), "
            "or deploy with --target torchscript; --debug shows the traceback",
        )
    return EngineError(
        f"{what} export failed: {type(exc).__name__}: {first}",
        hint="try another --opset, or the torchscript/export targets; rerun with --debug for the traceback",
    )
