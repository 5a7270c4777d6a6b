"""Deployed artifacts are data: check a file before the library that loads it runs anything from it.

``torch.export.load`` unpickles (``weights_only=False``) every weight or constant its archive marks
``use_pickle``, opaque constants and legacy ``.pt`` payloads; it retries sample inputs that fail the safe
unpickler with the unsafe one; and it loads AOTInductor's compiled libraries. `check_pt2` reads the
archive (a zip) first and refuses any of these: an archive ``torch.export.save`` wrote for an engine model
holds raw tensor bytes, JSON and sample inputs plain enough for ``weights_only=True``. TorchScript
(``torch.jit.load``) and ONNX Runtime read their files without Python's unpickler; a file that is not
what its manifest promises is one line (`load_failed`) instead of a raw library error.
"""

from __future__ import annotations

import io
import json
import re
import zipfile
from pathlib import Path
from typing import Any

from engine import EngineError

REDEPLOY = "deploy the run again with `engine deploy` and use the directory it writes"

#: What ``torch.export.save`` writes for an engine model (names inside the archive's root folder).
_ALLOWED = re.compile(
    r"archive_format|archive_version|byteorder|\.data/[A-Za-z0-9_.]+|models/[A-Za-z0-9_]+\.json|"
    r"data/(weights|constants)/[A-Za-z0-9_.]+|data/sample_inputs/[A-Za-z0-9_]+\.pt|extra/[^/]+"
)


def refused(path: Path, why: str) -> EngineError:
    return EngineError(f"{path} {why}: refused, it is not loaded; {REDEPLOY}")


def load_failed(path: Path, kind: str, exc: BaseException) -> EngineError:
    """A file that its loader could not read as ``kind``: one line naming it, exit 2."""
    detail = (str(exc).strip().splitlines() or [type(exc).__name__])[0].split(". ")[0][:160]  # torch's first sentence
    return EngineError(f"{path} is not a loadable {kind} artifact ({detail}); {REDEPLOY}")


def check_pt2(path: Path) -> None:
    """Refuse a ``.pt2`` archive from which ``torch.export.load`` would unpickle objects or load native code."""
    import torch

    path = Path(path)
    try:
        with zipfile.ZipFile(path) as archive:
            names = archive.namelist()
            roots = {name.split("/", 1)[0] for name in names}
            if len(roots) != 1 or len(set(names)) != len(names) or any("/" not in n for n in names):
                raise refused(path, "is not a torch.export archive (one root folder, each entry once)")
            root = roots.pop() + "/"
            entries = {name[len(root) :]: name for name in names}
            for entry in entries:
                if entry.startswith("data/aotinductor/"):
                    raise refused(path, f"holds compiled native code ({entry})")
                if not _ALLOWED.fullmatch(entry):
                    raise refused(path, f"holds {entry}, which torch.export.save does not write for a model")

            def read(entry: str) -> bytes:
                return archive.read(entries[entry])

            models = [e[len("models/") : -len(".json")] for e in entries if e.startswith("models/")]
            if not models:
                raise refused(path, "holds no exported program (models/*.json)")
            for model in models:
                for kind in ("weights", "constants"):
                    if f"data/{kind}/{model}.pt" in entries:  # the legacy format: one pickle of them all
                        raise refused(path, f"holds pickled {kind} (data/{kind}/{model}.pt)")
                    config = f"data/{kind}/{model}_{kind}_config.json"
                    if config not in entries:
                        raise refused(path, f"has no {config}")
                    _check_payloads(path, config, read(config), kind)
                sample = f"data/sample_inputs/{model}.pt"
                if sample in entries:  # torch retries a failed safe load with the unsafe one: fail here instead
                    try:
                        torch.load(io.BytesIO(read(sample)), weights_only=True)
                    except Exception:
                        raise refused(path, f"holds sample inputs ({sample}) that are not plain tensors") from None
    except (zipfile.BadZipFile, OSError, ValueError) as exc:
        raise load_failed(path, "torch.export", exc) from None


def _check_payloads(path: Path, config: str, raw: bytes, kind: str) -> None:
    """Every payload of a weights/constants config must be raw tensor bytes (``use_pickle: false``)."""
    try:
        payloads: Any = json.loads(raw)["config"]
    except (ValueError, KeyError, TypeError):
        raise refused(path, f"has an unreadable {config}") from None
    if not isinstance(payloads, dict):
        raise refused(path, f"has an unreadable {config}")
    for name, meta in payloads.items():
        if not isinstance(meta, dict) or meta.get("use_pickle") is not False:
            raise refused(path, f"holds a pickled payload ({config}: {str(name)[:80]} has use_pickle)")
        file = meta.get("path_name")
        if kind == "constants" and not (isinstance(file, str) and file.startswith("tensor_")):
            raise refused(path, f"holds a constant that is not a tensor ({config}: {str(name)[:80]})")


def load_pt2(path: Path) -> Any:
    """``torch.export.load(path).module()`` once `check_pt2` found nothing to unpickle."""
    import torch

    check_pt2(path)
    try:
        return torch.export.load(str(path)).module()
    except Exception as exc:
        raise load_failed(path, "torch.export", exc) from exc


def load_torchscript(path: Path) -> Any:
    """``torch.jit.load`` (C++; no Python unpickler), its failures as one line."""
    import torch

    try:
        return torch.jit.load(str(path), map_location="cpu").eval()
    except Exception as exc:
        raise load_failed(path, "TorchScript", exc) from exc
