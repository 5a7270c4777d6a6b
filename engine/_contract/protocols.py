"""Every optional method the core may call on a plugin's object, as a ``typing.Protocol``.

The core never looks a method up by name: it asks `implements(obj, Protocol)` and
calls what the protocol documents; `problems` is what the conformance kit reports (docs/hooks.md).
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, Protocol, runtime_checkable


@runtime_checkable
class HasFacts(Protocol):
    """What a data source's object knows about its data (a ``LightningDataModule`` source needs only this)."""

    @property
    def facts(self) -> Mapping[str, Any]:
        """What the data knows about itself: ``num_classes``, ``input_shape``, ``vocab_size`` …"""


@runtime_checkable
class DataSource(HasFacts, Protocol):
    """What every data source provides (subclass `engine.data.DataSource` for a base)."""

    def datasets(self) -> Mapping[str, Any]:
        """``{"train": Dataset, "val": Dataset, "test": Dataset}``; ``val`` and ``test`` optional."""


@runtime_checkable
class Collates(Protocol):
    """A data source whose samples need their own batching (padding variable-length text)."""

    collate_fn: Callable[[list[Any]], Any] | None


@runtime_checkable
class GroupsSamples(Protocol):
    """A data source that can say which group each sample belongs to (cross-validation ``--group-by``)."""

    def groups(self, column: str) -> Mapping[str, Any]:
        """``{split: [group of each sample, in the order of datasets()[split]]}``; ConfigError for an unknown column."""


@runtime_checkable
class SavesArtifacts(Protocol):
    """A data source that writes what later use of the run needs (a trained tokenizer), on rank zero."""

    def save_artifacts(self, run_dir: Path) -> None: ...


@runtime_checkable
class LoadsArtifacts(Protocol):
    """A data source that reads its artifacts back when a finished run is reopened, instead of rebuilding them."""

    def load_artifacts(self, run_dir: Path) -> None: ...


@runtime_checkable
class LoadsInput(Protocol):
    """A data source that reads one input file (an image, a WAV, a text), preprocessed as in training."""

    def load_input(self, path: str) -> Any:
        """One sample as the model takes it (a tensor without the batch dimension)."""


@runtime_checkable
class HasSplits(Protocol):
    """A datamodule that says whether a split (``train``, ``val``, ``test``) exists and is not empty."""

    def has_split(self, name: str) -> bool: ...


@runtime_checkable
class ChecksData(Protocol):
    """A task that checks, before training, that its models fit the data (one forward pass; ConfigError if not)."""

    def check_data(self, datamodule: Any) -> None: ...


@runtime_checkable
class ChecksRun(Protocol):
    """A callback that checks the built run before its directory exists (a ``ConfigError`` leaves nothing behind)."""

    def check_run(self, trainer: Any, task: Any, datamodule: Any) -> None: ...


@runtime_checkable
class EvaluatesRun(Protocol):
    """A task evaluated its own way by ``engine evaluate`` (an RL task plays episodes).

    Parameters after ``datamodule`` are the options of ``engine evaluate RUN KEY=VALUE``: give each a
    default and a type annotation (they are checked like component parameters)::

        def evaluate_run(self, datamodule, episodes: int = 100, seed: int = 12345) -> dict[str, float]:
    """

    def evaluate_run(self, datamodule: Any) -> Mapping[str, float]:
        """Metrics of the trained task, e.g. ``{"eval/return": 500.0}``."""


@runtime_checkable
class HasPrimaryMetric(Protocol):
    """A task naming the metric a run of it is judged by: ``("accuracy", "max")``, ``("wer", "min")``.

    The name is without its split (the core shows ``test/NAME``, else ``val/NAME``); tasks
    without it are judged by ``loss`` (``min``).
    """

    @property
    def primary_metric(self) -> tuple[str, str]: ...


@runtime_checkable
class ReportsSummary(Protocol):
    """A Lightning callback that adds what it did to ``summary.json`` (pruning: the sparsity reached)."""

    def summary_info(self) -> Mapping[str, Any]: ...


@runtime_checkable
class ChoosesBest(Protocol):
    """A callback keeping the run's best checkpoint (the core's): a technique that changes the model so
    much that earlier checkpoints no longer compare (pruning to its final sparsity) makes it forget them."""

    def reset_best(self) -> None: ...


@runtime_checkable
class DeployTarget(Protocol):
    """What a deployment target's object provides (see the ``engine_deploy_targets`` hook).

    Optional extras the ``deploy`` command uses: `DescribesArtifact` and `DeclaresBatching`.
    """

    tolerance: float

    def export(self, model: Any, example_inputs: Any, out_dir: Path) -> Path: ...

    def load(self, path: Path) -> Callable[..., Any]: ...


@runtime_checkable
class DescribesArtifact(Protocol):
    """A deployment target that says what it did (set by ``export``), recorded in the deploy manifest."""

    report: Mapping[str, Any]


@runtime_checkable
class DeclaresBatching(Protocol):
    """A deployment target whose artifact may take only the batch size it was exported with."""

    dynamic_batch: bool


@runtime_checkable
class DeclaresIO(Protocol):
    """A task saying what its model takes and gives: ``predict``, ``serve``, ``deploy``, ``explain`` pick a path by it.

    ``input_kind``: ``"tensor"`` (one fixed-shape tensor per sample: what a task without this protocol takes) or
    ``"text"`` (strings, turned into ids by the data source's `EncodesText`). ``output_kind``: ``"scores"`` or
    ``"values"`` (classes or values, as without this protocol), ``"records"`` (the task describes them) or
    ``"text"`` (ids from the task's `Generates`, turned into text by `EncodesText`).
    """

    input_kind: str
    output_kind: str


@runtime_checkable
class EncodesText(Protocol):
    """A data source turning text into its model's token ids and generated ids back into text (its tokenizers).

    With two vocabularies (translation) ``encode_text`` uses the source side and ``decode_tokens`` the target side.
    """

    def encode_text(self, text: str) -> list[int]:
        """One input's ids; ConfigError (one line) for text the model cannot take (empty, too long, unknown chars)."""

    def decode_tokens(self, ids: Sequence[int]) -> str:
        """The text of generated ids, special tokens dropped."""


@runtime_checkable
class Generates(Protocol):
    """A task whose outputs are generated token by token: its decoding loop runs over any network callable."""

    def generate(self, network: Callable[..., Any], inputs: list[list[int]], **options: Any) -> list[list[int]]:
        """Generated ids per input. ``network`` is the model or a loaded deployed artifact, called like the model
        (with the tensors the task pads and builds itself); ``options`` are decoding settings with defaults
        (``max_new_tokens``, ``beam`` …); ConfigError for a setting out of range."""

    def network_inputs(self, inputs: list[list[int]]) -> tuple[Any, ...]:
        """The arguments of one network call for these inputs (what ``engine deploy`` exports and verifies with)."""


@runtime_checkable
class MergesAdapters(Protocol):
    """A model trained through adapters (LoRA): ``merged()`` is the plain network with them merged, to export."""

    def merged(self) -> Any: ...


_MISSING = object()

#: The protocols to check, per kind of object the conformance kit builds.
BY_KIND: dict[str, tuple[type, ...]] = {
    "data": (SavesArtifacts, LoadsArtifacts, LoadsInput, HasSplits, GroupsSamples, EncodesText),
    "task": (ChecksData, EvaluatesRun, HasPrimaryMetric, Generates),
    "callback": (ReportsSummary, ChecksRun),
    "deploy": (DeployTarget,),
}


def members(proto: type) -> list[str]:
    """The attributes and methods a protocol names (its own and its base protocols')."""
    names: set[str] = set()
    for klass in proto.__mro__:
        if klass in (object, Protocol) or not getattr(klass, "_is_protocol", False):
            continue
        names |= {n for n in vars(klass) if not n.startswith("_")} | set(vars(klass).get("__annotations__", {}))
    return sorted(names)


def implements(obj: Any, proto: type) -> bool:
    """Whether ``obj`` has every member of ``proto``, looked up without running any of them.

    Like ``isinstance(obj, proto)`` on Python 3.12, on every version: a property (a data source's
    ``facts``, which may train a tokenizer) is not evaluated to answer.
    """
    return all(inspect.getattr_static(obj, name, _MISSING) is not _MISSING for name in members(proto))


def problems(obj: Any, kind: str) -> list[str]:
    """Why ``obj`` (an instance, or a task's class) does not implement ``kind``'s protocols as the core calls them.

    A method present must take the protocol method's positional arguments (any further ones need defaults);
    ``primary_metric`` must be ``(name, "max" | "min")``; a deploy target needs ``export``, ``load`` and ``tolerance``.
    """
    out: list[str] = []
    unbound = isinstance(obj, type)
    for proto in BY_KIND[kind]:
        if proto is DeployTarget:
            missing = [n for n in members(proto) if inspect.getattr_static(obj, n, _MISSING) is _MISSING]
            if missing:
                out.append(f"deploy targets need {', '.join(missing)} ({proto.__name__} protocol)")
        for name, method in vars(proto).items():
            if name.startswith("_") or not inspect.isfunction(method):
                continue
            if inspect.getattr_static(obj, name, _MISSING) is not _MISSING:
                params = inspect.signature(method).parameters.values()  # **options of Generates are not positional
                positional = sum(p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD) for p in params) - 1
                why = _call_problem(getattr(obj, name), positional, unbound)
                if why:
                    out.append(f"{name}(): {why} ({proto.__name__} protocol)")
    if kind == "task" and not unbound and implements(obj, HasPrimaryMetric):
        metric = obj.primary_metric
        if not (isinstance(metric, tuple) and len(metric) == 2 and isinstance(metric[0], str)) or metric[1] not in (
            "max",
            "min",
        ):
            out.append(f"primary_metric must be (name, 'max' | 'min'), got {metric!r} (HasPrimaryMetric protocol)")
    return out


def _call_problem(method: Any, positional: int, skip_self: bool) -> str | None:
    """Why the core cannot call ``method`` with ``positional`` arguments (after ``self`` when unbound)."""
    try:
        sig = inspect.signature(method)
    except (TypeError, ValueError):
        return None
    params = list(sig.parameters.values())[1 if skip_self else 0 :]
    if any(p.kind is p.VAR_POSITIONAL for p in params):
        return None
    takes = [p for p in params if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    if len(takes) < positional:
        return f"takes {len(takes)} positional argument(s), the core passes {positional}"
    required = [p.name for p in params[positional:] if p.default is p.empty and p.kind is not p.VAR_KEYWORD]
    if required:
        return f"parameters {required} need defaults (the core passes {positional} argument(s))"
    return None
