"""A run's model (eager or a deployed artifact) behind one interface: batch in, records out.

Records are labels and probabilities (classification) or values (regression); a run whose task
describes its own outputs (`engine_deploy.protocols.DescribesOutputs`, a detector's boxes)
gets the task's records instead, from the same raw outputs.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch

from engine import EngineError
from engine.protocols import implements
from engine_deploy import common, generation
from engine_deploy.inputs import InputError, as_array, check_ids, prepare, read_file
from engine_deploy.protocols import DescribesOutputs, DrawsOutputs, MapsOutputs
from engine_deploy.text import TextPath, generates, text_source, vocabulary


class Predictor:
    """Predictions from run ``run_path``: its eager model, or the artifact deployed in ``artifact``.

    Args:
        run_path: a run directory with a checkpoint.
        artifact: a directory written by ``engine deploy`` (its ``manifest.json`` names the target).
    """

    def __init__(self, run_path: str | Path, artifact: str | Path | None = None, max_text_chars: int = 4096) -> None:
        self.run = common.open_trained(run_path)
        self._datamodule: Any = None
        facts = dict(self.run.facts)
        self.manifest: dict[str, Any] | None = None
        self.text: TextPath | None = None  # a generating run: text in, text out (`engine_deploy.text`)
        self.vocab_size = facts.get("vocab_size") if isinstance(facts.get("vocab_size"), int) else None
        task_class = self.run.plan().task.load()
        if generates(task_class):
            self._text(artifact, facts, max_text_chars)
            return
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
        self.warnings: list[str] = []  # inputs far outside the training data (`prepare`), as read
        self.describer = self._describer(facts)

    def _text(self, artifact: str | Path | None, facts: dict[str, Any], max_text_chars: int) -> None:
        """The text path: the task's ``generate`` over the model (or artifact), the data source's tokenizers.

        Only the source's text codec is used (its tokenizer, read back from the run): the run's data are not read,
        so a run sent from another machine, or packaged in a container, is served without them."""
        # built once: its model is the network (/predict and /v1 share it)
        task, facts = common.with_facts(self.run, lambda recorded: self.run.task(facts=recorded))
        if artifact is not None:
            loaded = common.load_artifact(artifact)
            self.manifest, self.fn, self.backend = loaded.manifest, loaded.fn, loaded.target
        else:
            self.fn, self.backend = common.task_network(self.run, task), "eager"
        self.text = TextPath(task, text_source(self.datamodule), self.fn, max_text_chars)
        self.sample_shape, self.dtype, self.class_names, self.preprocessing = None, "int64", None, None
        self.problem = generation.problem_of(self.text.task, facts)
        self.feature_names, self.warnings, self.describer = None, [], None
        self.vocabulary = vocabulary(facts)

    def warmup(self) -> Any:
        """A first request for the server's warm-up: one real input (text runs: one token of generation), or zeros;
        None if none (a text run whose data are not on this machine)."""
        import math

        if self.text is not None:
            try:
                ids, _, _ = generation.split_samples(self.datamodule, 1)
            except EngineError:  # the run's data are not here (a run sent from elsewhere): no warm-up
                return None
            options = {"max_new_tokens": 1} if "max_new_tokens" in self.text.defaults or self.text.open else {}
            return self.text_batch(ids), tuple(options.items())
        if self.sample_shape:
            return self.array([0] * math.prod(self.sample_shape)), None
        return None

    @staticmethod
    def text_batch(ids: list[list[int]]) -> np.ndarray:
        """Token id lists as one object array (what the server's batcher queues and joins)."""
        batch = np.empty(len(ids), dtype=object)
        batch[:] = [list(i) for i in ids]
        return batch

    def _describer(self, facts: dict[str, Any]) -> Any:
        """The run's task when it describes its own outputs (built with the checkpoint), else None."""
        if not implements(self.run.plan().task.load(), DescribesOutputs):
            return None  # checked on the class: other runs build nothing more
        return self.run.task(facts=facts)

    @property
    def datamodule(self) -> Any:
        if self._datamodule is None:
            self._datamodule = self.run.datamodule()
        return self._datamodule

    def _source(self, protocol: type) -> Any:
        """The run's data source (or datamodule) when it implements ``protocol``, else None."""
        from engine.data import SourceDataModule

        dm = self.datamodule
        for obj in (dm.source if isinstance(dm, SourceDataModule) else None, dm):
            if obj is not None and implements(obj, protocol):
                return obj
        return None

    def _loader(self) -> Any:
        """The data source's ``load_input(path)`` when it has one (images for vision runs …)."""
        from engine.protocols import LoadsInput

        source = self._source(LoadsInput)
        return source.load_input if source is not None else None

    def read(self, paths: list[str], preprocessed: bool = False) -> tuple[torch.Tensor, list[str]]:
        """Input files -> one model-form batch, and the file each sample came from (see `read_files`)."""
        batch, names, _ = self.read_files(paths, preprocessed)
        return batch, names

    def read_files(
        self, paths: list[str], preprocessed: bool = False
    ) -> tuple[torch.Tensor, list[str], list[str | None]]:
        """`read`, and per sample the file the data source read it from (None: a .json/.npy/.csv sample).

        Arrays (.json, .npy, .csv) are raw unless ``preprocessed`` (the rule of `prepare`, warnings
        in ``self.warnings``); other files are read by the data source itself (images: as the model sees them).
        """
        batches, names, files = [], [], []
        for path in paths:
            suffix = Path(path).suffix.lower()
            if suffix in (".json", ".npy", ".csv"):
                try:
                    batch = read_file(path, self.sample_shape, self.dtype, self.feature_names)
                    array, warning = prepare(batch.numpy(), self.preprocessing, preprocessed, where=path)
                    batch = torch.from_numpy(array)
                    self.warnings += [warning] if warning else []
                except InputError:
                    # not model-shaped: the data source may read its own raw format
                    loader = self._loader() if suffix == ".npy" else None
                    if loader is None:
                        raise
                    batch = read_file(path, self.sample_shape, self.dtype, loader=loader, own_format=True)
            else:
                batch = read_file(path, self.sample_shape, self.dtype, self.feature_names, self._loader())
                files += [path] * len(batch)
            batches.append(batch)
            names += [path if len(batch) == 1 else f"{path}[{i}]" for i in range(len(batch))]
            files += [None] * (len(names) - len(files))
        batch = torch.cat(batches)
        check_ids(batch.numpy(), self.vocab_size, ", ".join(paths))
        return batch, names, files

    def inputs(self, value: Any, where: str = "inputs", preprocessed: bool = False) -> tuple[np.ndarray, str | None]:
        """A JSON value (one raw sample or a batch, see `prepare`) -> a model-form batch array and a warning.

        Raises ``InputError``; no torch involved (the server calls it on its event loop).
        """
        array = as_array(value, self.sample_shape, self.dtype, where=where)
        check_ids(array, self.vocab_size, where)
        return prepare(array, self.preprocessing, preprocessed, where=where)

    def array(self, value: Any, where: str = "inputs", preprocessed: bool = False) -> np.ndarray:
        """`inputs` without its warning."""
        return self.inputs(value, where, preprocessed)[0]

    def forward(self, batch: torch.Tensor) -> torch.Tensor:
        return common.call(self.fn, batch)

    def describe(self, out: torch.Tensor, top_k: int = 3) -> list[dict[str, Any]]:
        """Model outputs -> one JSON-ready record per sample (labels and probabilities, or values).

        A task describing its own outputs (``describer``) gives its records instead (``top_k`` unused).
        """
        if self.describer is not None:
            return list(self.describer.describe_outputs(out))
        if self.problem == "multilabel":
            return self._labels(common.to_probabilities(out, self.problem))
        if self.problem != "classification":  # each sample's output keeps its shape ([12, 2] stays [12, 2])
            values = out.float()
            if values.dim() == 2 and values.shape[1] == 1:
                values = values[:, 0]  # one target per sample: a number, not a list of one
            return [{"value": v} for v in values.tolist()]
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

    def _labels(self, probs: torch.Tensor, threshold: float = 0.5) -> list[dict[str, Any]]:
        """Multi-label records: the labels at or above ``threshold``, and every label's probability."""
        names = self.class_names or [str(i) for i in range(probs.shape[-1])]
        records = []
        for ps in probs.tolist():
            ranked = sorted(range(len(ps)), key=lambda i: -ps[i])
            scores = [{"label": str(names[i]), "index": i, "probability": round(ps[i], 6)} for i in ranked]
            records.append({"labels": [t["label"] for t in scores if t["probability"] >= threshold], "top": scores})
        return records

    def predict(self, batch: Any, top_k: int = 3, options: dict[str, Any] | None = None) -> list[dict[str, Any]]:
        """Records of a batch: a tensor, or token id lists of a text run (``options``: its decoding options)."""
        if self.text is not None:
            return self.text.generate(list(batch), **(options or {}))
        return self.describe(self.forward(batch), top_k)

    def for_file(self, record: dict[str, Any], path: str | None) -> dict[str, Any]:
        """``record`` in the terms of the file it was read from, when the data source can say (boxes in its pixels)."""
        source = self._source(MapsOutputs) if path is not None else None
        return source.outputs_for_file(path, record) if source is not None else record

    def draw(self, path: str, record: dict[str, Any], out: str) -> None:
        """Draw ``record`` on input file ``path`` into ``out`` with the data source (``engine predict --out``)."""
        source = self._source(DrawsOutputs)
        if source is None:
            raise EngineError(
                "--out draws predictions on the input images; this run's data source cannot draw them",
                hint="drop --out (detection runs of the vision plugin draw their boxes)",
            )
        source.draw_outputs(path, record, out)

    def metadata(self) -> dict[str, Any]:
        info = {
            "run": str(self.run.path.resolve()),
            "backend": self.backend,
            "problem": self.problem,
            "input": {"shape": ["batch", *(self.sample_shape or [])], "dtype": self.dtype},
            "class_names": self.class_names,
            "preprocessing": self.preprocessing,
            "model": self.run.config.get("model", {}),
            "versions": common.versions(),
        }
        if self.describer is not None:  # records come from the task: say which, and its settings
            info["outputs"] = {"described_by": self.run.config.get("task", {})}
        if self.text is not None:
            info.update(self.text.metadata(), vocabulary=self.vocabulary, task=self.run.config.get("task", {}))
        elif self.vocab_size is not None:
            info["vocabulary"] = {"vocab_size": self.vocab_size}
        return info
