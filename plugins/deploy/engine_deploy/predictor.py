"""A run's model (eager or a deployed artifact) behind one interface: batch in, labels and probabilities out."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch

from engine_deploy import common
from engine_deploy.inputs import InputError, as_array, read_file, standardize


class Predictor:
    """Predictions from run ``run_path``: its eager model, or the artifact deployed in ``artifact``.

    Args:
        run_path: a run directory with a checkpoint.
        artifact: a directory written by ``engine deploy`` (its ``manifest.json`` names the target).
    """

    def __init__(self, run_path: str | Path, artifact: str | Path | None = None) -> None:
        self.run = common.open_trained(run_path)
        self._datamodule: Any = None
        facts = dict(self.run.facts)
        self.manifest: dict[str, Any] | None = None
        if artifact is not None:
            loaded = common.load_artifact(artifact)
            self.manifest = loaded.manifest
            self.fn: Any = loaded.fn
            self.backend = loaded.target
            spec = self.manifest.get("input", {})
            self.sample_shape: list[int] | None = [int(s) for s in spec.get("shape", ["batch"])[1:]]
            self.dtype = str(spec.get("dtype", "float32"))
            self.class_names = self.manifest.get("class_names") or facts.get("class_names")
            self.problem = str(self.manifest.get("problem") or facts.get("problem") or "classification")
            self.preprocessing = self.manifest.get("preprocessing", facts.get("preprocessing"))
        else:
            self.fn = common.eager_model(self.run)
            self.backend = "eager"
            shape = facts.get("input_shape")
            self.sample_shape = [int(s) for s in shape] if isinstance(shape, (list, tuple)) else None
            self.dtype = "float32"
            if self.sample_shape is None or "vocab_size" in facts:  # learn shape and dtype from a real sample
                x, _, _ = common.split_inputs(self.datamodule, 1)
                self.sample_shape, self.dtype = list(x.shape[1:]), str(x.dtype).removeprefix("torch.")
            self.class_names = facts.get("class_names")
            self.problem = str(facts.get("problem") or "classification")
            self.preprocessing = facts.get("preprocessing")
        self.feature_names = facts.get("feature_names")

    @property
    def datamodule(self) -> Any:
        if self._datamodule is None:
            self._datamodule = self.run.datamodule()
        return self._datamodule

    def _loader(self) -> Any:
        """The data source's ``load_input(path)`` when it has one (images for vision runs …)."""
        from engine.data import SourceDataModule
        from engine.protocols import LoadsInput, implements

        dm = self.datamodule
        for obj in (dm.source if isinstance(dm, SourceDataModule) else None, dm):
            if obj is not None and implements(obj, LoadsInput):
                return obj.load_input
        return None

    def read(self, paths: list[str], raw: bool = False) -> tuple[torch.Tensor, list[str]]:
        """Input files -> one batch, and the file each sample came from."""
        batches, names = [], []
        for path in paths:
            suffix = Path(path).suffix.lower()
            if suffix in (".json", ".npy", ".csv"):
                try:
                    batch = read_file(path, self.sample_shape, self.dtype, self.feature_names)
                except InputError:
                    # not model-shaped: the data source may read its own raw format (8x8 digits in .npy …)
                    loader = self._loader() if suffix == ".npy" else None
                    if loader is None:
                        raise
                    batch = read_file(path, self.sample_shape, self.dtype, loader=loader, own_format=True)
            else:
                batch = read_file(path, self.sample_shape, self.dtype, self.feature_names, self._loader())
            if raw:
                batch = standardize(batch, self.preprocessing)
            batches.append(batch)
            names += [path if len(batch) == 1 else f"{path}[{i}]" for i in range(len(batch))]
        return torch.cat(batches), names

    def array(self, value: Any, where: str = "inputs") -> np.ndarray:
        """A JSON value (one sample or a batch) -> a batch array (raises ``InputError``); no torch involved."""
        return as_array(value, self.sample_shape, self.dtype, where=where)

    def forward(self, batch: torch.Tensor) -> torch.Tensor:
        return common.call(self.fn, batch)

    def describe(self, out: torch.Tensor, top_k: int = 3) -> list[dict[str, Any]]:
        """Model outputs -> one JSON-ready record per sample (labels and probabilities, or values)."""
        if self.problem != "classification":
            values = out.float().reshape(len(out), -1)
            return [{"value": v[0] if len(v) == 1 else v} for v in values.tolist()]
        probs = common.to_probabilities(out, self.problem)
        k = max(1, min(int(top_k), probs.shape[-1]))
        p, idx = probs.topk(k, dim=-1)
        names = self.class_names
        records = []
        for ps, ids in zip(p.tolist(), idx.tolist(), strict=True):
            top = [
                {"label": str(names[i]) if names and i < len(names) else str(i), "index": i, "probability": round(q, 6)}
                for q, i in zip(ps, ids, strict=True)
            ]
            records.append({**top[0], "top": top})
        return records

    def predict(self, batch: torch.Tensor, top_k: int = 3) -> list[dict[str, Any]]:
        return self.describe(self.forward(batch), top_k)

    def metadata(self) -> dict[str, Any]:
        return {
            "run": str(self.run.path.resolve()),
            "backend": self.backend,
            "problem": self.problem,
            "input": {"shape": ["batch", *(self.sample_shape or [])], "dtype": self.dtype},
            "class_names": self.class_names,
            "preprocessing": self.preprocessing,
            "model": self.run.config.get("model", {}),
            "versions": common.versions(),
        }
