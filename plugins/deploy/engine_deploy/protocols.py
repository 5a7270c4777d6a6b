"""What engine-deploy calls on plugin objects beyond the core's protocols (`engine.protocols`).

**Deployment targets.** The core's protocol hands a target the model only
(``export(model, example_inputs, out_dir)``). A target that packages more of the run (the
``container`` target copies its records and checkpoint into a build context and pins the
libraries it was trained with) says so with `UsesRun`:
``engine deploy`` then calls ``use_run(run)`` once, after building the target and before
``export``. Other callers (the conformance kit, a plugin exporting a bare model) do not, so
``export`` must still work without it.

Checked with `engine.protocols.implements` like the core's protocols (no ``getattr`` by name)::

    from engine_deploy.protocols import UsesRun

    class MyTarget:
        tolerance = 1e-5

        def use_run(self, run):  # an engine.runs.Run: run.path, run.config, run.facts, run.summary
            self.run = run

**Tasks whose outputs are not classes or values** (a detector's boxes). ``engine predict``,
``engine serve`` and ``engine deploy`` turn a model's outputs into records themselves for
classification (labels and probabilities) and regression (values). A task implementing
`DescribesOutputs` does it instead: ``describe_outputs(outputs)`` gets the network's raw
outputs for a batch (eager or from a deployed artifact: what ``engine deploy`` exports stays the
network, its post-processing stays in Python) and returns one JSON-ready record per sample,
which predict prints and serve answers as they are. A task implementing `ScoresOutputs`
also gets its metric measured by ``engine deploy`` on eager and artifact outputs. The vision
plugin's ``vision.detection`` implements both::

    class DetectionTask(L.LightningModule):
        def describe_outputs(self, outputs):  # (N, A, 5 + C) -> [{"detections": [{label, index, score, box}]}]
            ...

        def score_outputs(self, outputs, targets):  # -> {"map": 0.71, "map_50": 0.95}
            ...

**Tasks that stream generated tokens.** A task implementing `engine.protocols.Generates` may also
implement `StreamsTokens`: ``generate_stream(network, ids, **options)`` yields the token ids of one input
as they are generated (same options as its ``generate``). ``engine generate`` prints text as it comes
and the server's streaming routes send it as it comes; without it they print/send the whole text at the end.

**Data sources that read files for predict.** A record of a sample read from a file with the
source's ``load_input(path)`` can be put back in that file's terms (`MapsOutputs`: boxes
in the original image's pixels rather than the resized input's) and drawn on it
(`DrawsOutputs`: ``engine predict RUN image.png --out boxes.png``).

The task is checked on its class (``engine.protocols.implements(task_class, DescribesOutputs)``)
before it is built, so runs of other tasks pay nothing.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, Protocol, runtime_checkable


@runtime_checkable
class UsesRun(Protocol):
    """A deployment target that needs the run being deployed, not only its model."""

    def use_run(self, run: Any) -> None:
        """Receive the `engine.runs.Run` (called by ``engine deploy`` before ``export``)."""
        ...


@runtime_checkable
class DescribesOutputs(Protocol):
    """A task that turns its model's raw outputs into records (``engine predict`` / ``serve`` answers)."""

    def describe_outputs(self, outputs: Any) -> list[dict[str, Any]]:
        """One JSON-ready record per sample of the batch ``outputs`` (the network's outputs)."""
        ...


@runtime_checkable
class ScoresOutputs(Protocol):
    """A task that measures raw outputs against its data's targets (``engine deploy``: eager vs artifact)."""

    def score_outputs(self, outputs: Any, targets: list[Any]) -> dict[str, float]:
        """Metrics of ``outputs`` (a batch of network outputs) against ``targets`` (one per sample).

        A task whose outputs are text (`engine.protocols.DeclaresIO` ``output_kind="text"``) gets the generated
        texts and the reference texts, both decoded by the data source's ``decode_tokens``.
        """
        ...


@runtime_checkable
class MapsOutputs(Protocol):
    """A data source that puts a record of a sample read from a file into that file's terms."""

    def outputs_for_file(self, path: str, record: dict[str, Any]) -> dict[str, Any]:
        """``record`` (of the sample ``load_input(path)`` read) in the file's terms (boxes in its pixels)."""
        ...


@runtime_checkable
class DrawsOutputs(Protocol):
    """A data source that draws a record on the input file it was predicted from."""

    def draw_outputs(self, path: str, record: dict[str, Any], out: str) -> None:
        """Draw ``record`` (in the file's terms, see `MapsOutputs`) on file ``path``; write ``out``."""
        ...


@runtime_checkable
class CarriesNetwork(Protocol):
    """A `UsesRun` target whose artifact is still the network alone (int8-weight reads the run's model settings to
    rebuild it), so ``engine deploy`` of a generating run verifies it like torchscript or onnx."""

    carries_network: bool


@runtime_checkable
class StreamsTokens(Protocol):
    """A generating task that yields one input's generated token ids one at a time (streaming)."""

    def generate_stream(self, network: Any, ids: list[int], **options: Any) -> Iterator[int]:
        """Token ids of the continuation of ``ids`` as they are generated, over ``network`` (like ``generate``)."""
        ...
