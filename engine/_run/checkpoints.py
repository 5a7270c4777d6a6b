"""Checkpoints and weights as data: read without running code, written so that a kill never truncates them.

Reading is ``torch.load(weights_only=True)``: a file that needs more to unpickle is refused with one
line naming it. Writing goes to a temporary file in the same directory, fsynced and renamed.
"""

from __future__ import annotations

import json
import pickle
import re
import sys
from pathlib import Path
from typing import Any

import torch
from lightning.fabric.plugins.io.torch_io import TorchCheckpointIO

from engine._contract.errors import EngineError
from engine._plugins.files import fsync_replace, temp_path


class UnsafeCheckpointError(EngineError):
    """A checkpoint that could only be read by running code from it."""


def load_checkpoint(path: str | Path, mmap: bool = False) -> dict[str, Any]:
    """The checkpoint at ``path`` as plain data (``weights_only=True``); an EngineError naming the file otherwise.
    ``mmap``: tensors mapped from the file, read only when used (the weights without the optimizer's state)."""
    path = Path(path)
    try:
        data = torch.load(path, map_location="cpu", weights_only=True, mmap=mmap)
    except FileNotFoundError:
        raise EngineError(f"checkpoint not found: {path}") from None
    except Exception as exc:  # the unpickler fails in many ways on a truncated or foreign file
        if isinstance(exc, pickle.UnpicklingError) and "Weights only load failed" in str(exc):
            named = re.search(r"GLOBAL (\S+)", str(exc))
            why = f" (it names {named.group(1)})" if named else ""
            raise UnsafeCheckpointError(
                f"refusing to load {path}: it holds more than tensors and numbers, "
                f"and unpickling it could run code{why}",
                hint="the engine never unpickles objects from a file; use a checkpoint the engine wrote, or weights "
                "saved as .safetensors",
            ) from None
        what = f"cannot read checkpoint {path}: it is truncated or not a checkpoint ({type(exc).__name__}: {exc})"
        raise EngineError(
            what[:300],
            hint="a run killed while writing one keeps its previous checkpoint; `engine run --resume RUN` picks "
            "the newest that loads",
        ) from None
    if not isinstance(data, dict):
        raise EngineError(f"{path} holds a {type(data).__name__}, not a checkpoint (a mapping)")
    return data


class AtomicCheckpointIO(TorchCheckpointIO):
    """Lightning's torch checkpoint writer, made crash-safe (temp file, fsync, rename in the same directory)."""

    def save_checkpoint(self, checkpoint: dict[str, Any], path: Any, storage_options: Any = None) -> None:
        target = Path(path)
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = temp_path(target)
        try:  # streamed to the file: a checkpoint (weights and optimizer state) is never held twice in memory
            with tmp.open("wb") as fh:
                torch.save(checkpoint, fh)
            fsync_replace(tmp, target)
        except (OSError, RuntimeError) as exc:  # a full disk's write error names no file (torch wraps it)
            cause = exc if isinstance(exc, OSError) else exc.__context__
            if not isinstance(cause, OSError):
                raise
            raise OSError(cause.errno, cause.strerror or str(cause), str(target)) from exc
        finally:
            tmp.unlink(missing_ok=True)

    def load_checkpoint(self, path: Any, map_location: Any = None, weights_only: bool | None = None) -> dict[str, Any]:
        return load_checkpoint(path)  # resume and test read checkpoints the same safe way


def save_weights(state_dict: dict[str, Any], path: Path) -> Path:
    """Write ``state_dict``'s tensors as safetensors, atomically; a tensor tied under several names is stored once."""
    from safetensors import SafetensorError
    from safetensors.torch import save_file

    tensors, seen, tied, storages = {}, {}, {}, set()
    for k, v in state_dict.items():  # a tied parameter (one tensor under two names) is written once
        if isinstance(v, torch.Tensor):
            view = (v.untyped_storage().data_ptr(), v.storage_offset(), v.shape, v.stride(), v.dtype, v.device)
            if v.numel() and view in seen:
                tied[k] = seen[view]
            else:  # copied only when another view of its storage is written (safetensors refuses shared memory)
                shared = v.numel() and view[0] in storages
                seen[view], tensors[k] = k, (v.detach().cpu().clone() if shared else v.detach().cpu()).contiguous()
                storages.add(view[0])
    tmp = temp_path(path)
    try:
        save_file(tensors, str(tmp), metadata={"tied": json.dumps(tied)} if tied else None)
        fsync_replace(tmp, path)
    except (OSError, SafetensorError) as exc:  # the file system refused: one line naming the file
        raise OSError(getattr(exc, "errno", None), getattr(exc, "strerror", None) or str(exc), str(path)) from exc
    finally:
        tmp.unlink(missing_ok=True)
    return path


def load_weights_file(path: Path) -> dict[str, torch.Tensor]:
    """Tensors of a ``.safetensors`` file; an EngineError naming the file when it is not one."""
    from safetensors import SafetensorError, safe_open
    from safetensors.torch import load_file

    try:
        state = load_file(str(path), device="cpu")
        with safe_open(str(path), framework="pt") as f:
            tied = json.loads((f.metadata() or {}).get("tied", "{}"))
        return {**state, **{k: state[v] for k, v in tied.items() if v in state}}
    except (SafetensorError, OSError, ValueError) as exc:
        raise EngineError(f"cannot read weights file {path}: {exc}") from None


def resume_point(run_dir: Path) -> Path | None:
    """The newest checkpoint of ``run_dir`` that loads (None: train again from the start), said on stderr."""
    skipped = False
    for path in sorted((run_dir / "checkpoints").glob("*.ckpt"), key=lambda p: p.stat().st_mtime, reverse=True):
        try:
            load_checkpoint(path)
        except UnsafeCheckpointError:
            raise
        except EngineError as exc:
            print(f"resume: passing over {path.relative_to(run_dir)}: {exc.message}", file=sys.stderr)
            skipped = True
            continue
        print(f"resume: continuing {run_dir} from {path.relative_to(run_dir)}", file=sys.stderr)
        return path
    what = "no checkpoint that loads" if skipped else "no checkpoint yet"
    print(f"resume: {run_dir} has {what}; training it again from the start", file=sys.stderr)
    return None
