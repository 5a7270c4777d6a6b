"""A plan turned into objects: the data module, each slot's component, the task (targets imported here).

A model or task parameter named like one of the data's facts is filled from it when the user left it unset.
"""

from __future__ import annotations

import contextlib
import fnmatch
import inspect
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from engine._config.params import check_params, load_signature
from engine._config.plan import Plan
from engine._contract.declarations import Component
from engine._contract.errors import ConfigError, EngineError
from engine._contract.events import DatasetsBuilt, ModelBuilt
from engine._contract.protocols import DataSource, HasFacts, LoadsArtifacts, implements
from engine._plugins.registry import Registry, get_registry


class Factory:
    """An optimizer or scheduler with its config parameters bound; of the task's runtime keywords, those it accepts."""

    def __init__(
        self,
        component: Component,
        fn: Callable[..., Any],
        params: dict[str, Any],
        param_groups: list[dict[str, Any]] | None = None,
    ) -> None:
        self.component, self.fn, self.params = component, fn, params
        self.param_groups = list(param_groups or [])  # ``optimizer.param_groups``, applied by with_names
        sig = inspect.signature(fn).parameters
        self._accepts_any = any(p.kind is p.VAR_KEYWORD for p in sig.values())
        self._accepts = set(sig)

    def __call__(self, *args: Any, **context: Any) -> Any:
        if self.param_groups:
            raise EngineError(
                "optimizer.param_groups needs parameter names, but this task builds its optimizer from bare parameters",
                hint="the task should call engine.tasks.configure_optimizers (or factory.with_names(named_parameters))",
            )
        return self._call(*args, **context)

    def _call(self, *args: Any, **context: Any) -> Any:
        extra = {k: v for k, v in context.items() if self._accepts_any or k in self._accepts}
        return self.fn(*args, **extra, **self.params)

    def with_names(self, named_parameters: Any, **context: Any) -> Any:
        """Build the optimizer from ``(name, parameter)`` pairs, applying ``param_groups`` by name."""
        named = list(named_parameters)
        groups = param_groups(named, self.param_groups) if self.param_groups else [p for _, p in named]
        return self._call(groups, **context)

    def __repr__(self) -> str:
        return f"Factory({self.component.qualified_name}, {self.params})"


def matches(name: str, patterns: Iterable[str]) -> bool:
    """Whether parameter ``name`` matches one of the glob ``patterns`` (a bare prefix also matches: ``head``)."""
    return any(fnmatch.fnmatchcase(name, p) or name.startswith(p + ".") for p in patterns)


def param_groups(named: Iterable[tuple[str, Any]], groups: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Torch parameter groups from ``optimizer.param_groups``: each parameter joins the first group matching it.

    Names match with or without the task's slot attribute (``model.features.0.weight`` matches ``features.*``);
    the rest form the default group. Frozen parameters stay in their group, for a later unfreezing.
    """
    named = list(named)
    buckets: list[list[Any]] = [[] for _ in groups]
    rest: list[Any] = []
    for name, param in named:
        short = name.split(".", 1)[1] if "." in name else name
        for i, group in enumerate(groups):
            patterns = [group["params"]] if isinstance(group["params"], str) else list(group["params"])
            if matches(name, patterns) or matches(short, patterns):
                buckets[i].append(param)
                break
        else:
            rest.append(param)
    out = []
    for i, (group, params) in enumerate(zip(groups, buckets, strict=True)):
        if not params:
            raise ConfigError(
                f"optimizer.param_groups[{i}]: params {group['params']!r} match no parameter",
                hint=f"parameter names look like: {', '.join(n for n, _ in named[:4])}, …",
            )
        settings = {k: tuple(v) if isinstance(v, list) else v for k, v in group.items() if k != "params"}
        out.append({"params": params, **settings})
    if rest:
        out.append({"params": rest})
    return out


def construct(
    component: Component,
    params: dict[str, Any],
    facts: dict[str, Any] | None = None,
    where: str | None = None,
    extra: dict[str, Any] | None = None,
    keys: dict[str, Any] | None = None,
    copies: int = 0,
) -> Any:
    """Build ``component``: a `Factory` for optimizers and schedulers, the built object otherwise.

    ``facts`` fill the parameters named like them the user left unset; ``extra`` are passed as they
    are (a task's built slots); ``keys`` are the engine's keys of the slot (``optimizer.param_groups``);
    ``copies``: of a model's weights that must fit in memory (`check_size`), 0 for no check.
    """
    fn = component.load()
    sig = load_signature(component)
    facts = facts or {}
    filled = {p.name: facts[p.name] for p in sig.params if p.name in facts and p.name not in params}
    # Checked again: facts must fit the parameter types too, and nothing required may be missing.
    label = f"{component.kind} '{component.qualified_name}'"
    params = check_params(where or component.kind, label, {**params, **filled}, sig)
    if component.kind in ("optimizer", "scheduler"):
        return Factory(component, fn, params, param_groups=(keys or {}).get("param_groups"))
    if copies:
        check_size(fn, params, label, copies)
    try:
        return fn(**params, **(extra or {}))
    except EngineError:
        raise
    except Exception as exc:
        raise EngineError(
            f"building {label} failed: {type(exc).__name__}: {exc}",
            hint=f"check its parameters (`engine components show {component.qualified_name}`); "
            "rerun with --debug for the traceback",
        ) from exc


def check_size(fn: Callable[..., Any], params: dict[str, Any], label: str, copies: int) -> None:
    """Refuse a model whose weights, ``copies`` times, exceed the available memory: built first on the meta
    device (shapes without storage, nothing allocated); a model that cannot be built there is not estimated."""
    import random

    import torch

    state = random.getstate()
    try:
        with torch.random.fork_rng(devices=[]), torch.device("meta"):
            probe = fn(**params)
        size = sum(t.numel() * t.element_size() for t in (*probe.parameters(), *probe.buffers()))
    except Exception:
        return
    finally:
        random.setstate(state)
    free = available_memory()
    if free is not None and size * copies > free:
        what = "its weights" if copies == 1 else "weights, gradients and optimizer state"
        raise ConfigError(
            f"{label} needs about {size * copies / 1e9:.1f} GB ({what}; {size / 1e9:.1f} GB of weights) "
            f"but {free / 1e9:.1f} GB of memory is available",
            hint="choose a smaller model (its sizes: `engine components show NAME`)",
        )


def available_memory() -> int | None:
    """Bytes of memory this process may still use: psutil's figure when installed, else Linux's (and its cgroup's)."""
    try:
        import psutil  # type: ignore[import-untyped]

        return int(psutil.virtual_memory().available)
    except ImportError:
        pass
    found = []
    with contextlib.suppress(OSError, ValueError, IndexError):
        meminfo = Path("/proc/meminfo").read_text().splitlines()
        found += [int(line.split()[1]) * 1024 for line in meminfo if line.startswith("MemAvailable:")]
    with contextlib.suppress(OSError, ValueError):  # a container's limit (cgroup v2; "max": none)
        cgroup = Path("/sys/fs/cgroup")
        found.append(int((cgroup / "memory.max").read_text()) - int((cgroup / "memory.current").read_text()))
    return min(found) if found else None


def build_component(registry: Registry, kind: str, name: str, params: dict[str, Any], **kwargs: Any) -> Any:
    """Build one component by name (``engine.create``, the conformance kit); see `construct`."""
    return construct(registry.resolve(kind, name), params, **kwargs)


def build_data(plan: Plan, artifacts: Path | None = None) -> Any:
    """The run's ``LightningDataModule`` (see `data_module`), its splits seen by ``engine_datasets_built``.

    ``artifacts``: a run whose saved artifacts (its tokenizer …) the source reads back instead of rebuilding them.
    """
    hook = SplitsHook(plan.registry, plan.config)
    built = data_module(plan.data, plan.data_params, plan.loader, plan.config["seed"], on_splits=hook)
    if artifacts is not None and implements(built, LoadsArtifacts):
        built.load_artifacts(artifacts)
    return built


def data_module(
    component: Component,
    params: dict[str, Any],
    loader: dict[str, Any] | None = None,
    seed: int = 0,
    on_splits: Callable[..., Any] | None = None,
) -> Any:
    """Data source ``component`` built as a ``LightningDataModule``: the core's adaptor unless it is one."""
    import lightning as L

    from engine._run.data import SourceDataModule

    name = component.qualified_name
    source = construct(component, params, where="data")
    if isinstance(source, L.LightningDataModule):
        if not implements(source, HasFacts):
            raise EngineError(f"data source '{name}' returned a LightningDataModule without a 'facts' attribute")
        return source
    # Checked without evaluating ``facts``: a property that does work (training a tokenizer) load_artifacts may replace.
    if not implements(source, DataSource):
        raise EngineError(
            f"data source '{name}' built a {type(source).__name__}, which has no datasets() and facts",
            hint="data sources subclass engine.data.DataSource",
        )
    return SourceDataModule(source, seed=seed, on_splits=on_splits, **(loader or {}))


class SplitsHook:
    """Calls ``engine_datasets_built`` when a `SourceDataModule` first builds its splits."""

    def __init__(self, registry: Registry, config: dict[str, Any]) -> None:
        self.registry, self.config = registry, config

    def __call__(self, splits: dict[str, Any], source: Any, seed: int) -> dict[str, Any]:
        built = DatasetsBuilt(dict(splits), source, self.config, seed)
        self.registry.manager.hook.engine_datasets_built(built=built)
        return built.splits

    def __getstate__(self) -> dict[str, Any]:  # a spawned worker rebuilds the registry of its own process
        return {"config": self.config}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.registry, self.config = get_registry(), state["config"]


def build_slots(plan: Plan, facts: dict[str, Any], restoring: bool = False) -> dict[str, Any]:
    """The task's slots built (None if empty), each model seen by ``engine_model_built`` (restoring: a run reopened)."""
    built: dict[str, Any] = {}
    for slot, planned in plan.slots.items():
        if planned is None:
            built[slot] = None
        elif planned.kind != "model":
            built[slot] = construct(planned.component, planned.params, None, slot, keys=planned.keys)
        else:
            copies = 1 if restoring else 4  # training: weights, gradients and two moments (Adam)
            model = construct(planned.component, planned.params, facts, slot, keys=planned.keys, copies=copies)
            event = ModelBuilt(slot, model, planned.component, plan.config, dict(planned.keys), restoring)
            plan.registry.manager.hook.engine_model_built(built=event)
            built[slot] = event.model
    return built


def build_task(plan: Plan, facts: dict[str, Any], slots: dict[str, Any]) -> Any:
    """The run's ``LightningModule``: the task built around its slots (`build_slots`)."""
    return construct(plan.task, plan.task_params, facts=facts, where="task", extra=slots)


@dataclass
class Built:
    """What `build` made of a plan: the data module, its facts, the task's slots and the task."""

    datamodule: Any
    facts: dict[str, Any]
    slots: dict[str, Any]
    task: Any


def build(plan: Plan, artifacts: Path | None = None, restoring: bool = False) -> Built:
    """Every object of the planned run: data first (its facts fill the models' parameters), then the task."""
    datamodule = build_data(plan, artifacts)
    facts = dict(datamodule.facts)
    slots = build_slots(plan, facts, restoring)
    return Built(datamodule, facts, slots, build_task(plan, facts, slots))
