"""Turn a plan (:class:`engine.plan.Plan`) into objects: data module, components, task.

This is where targets are imported (and so torch). Data facts flow here: a
model or task parameter named like a fact the data source exposes is filled
from it when the user did not set it. Nothing here resolves a name or splits a
slot's settings again: the plan did.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from pathlib import Path
from typing import Any

from engine.component import Component
from engine.errors import EngineError
from engine.params import check_params
from engine.plan import Plan
from engine.protocols import DataSource, HasFacts, LoadsArtifacts, implements
from engine.registry import Registry


class Factory:
    """A component with its config parameters bound, called later with runtime arguments.

    Optimizers and schedulers are built this way: the task calls
    ``optimizer(params)`` and ``scheduler(optimizer, total_steps=..., max_epochs=...)``;
    keyword arguments the target does not accept are dropped.
    """

    def __init__(
        self,
        component: Component,
        fn: Callable[..., Any],
        params: dict[str, Any],
        param_groups: list[dict[str, Any]] | None = None,
    ) -> None:
        self.component, self.fn, self.params = component, fn, params
        #: ``optimizer.param_groups`` from the config; applied by :meth:`with_names`.
        self.param_groups = list(param_groups or [])
        sig = inspect.signature(fn)
        self._accepts_any = any(p.kind is p.VAR_KEYWORD for p in sig.parameters.values())
        self._accepts = set(sig.parameters)

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
        if not self.param_groups:
            return self._call([p for _, p in named], **context)
        from engine.transfer import param_groups

        return self._call(param_groups(named, self.param_groups), **context)

    def __repr__(self) -> str:
        return f"Factory({self.component.qualified_name}, {self.params})"


def _call(component: Component, fn: Callable[..., Any], kwargs: dict[str, Any]) -> Any:
    try:
        return fn(**kwargs)
    except EngineError:
        raise
    except Exception as exc:
        raise EngineError(
            f"building {component.kind} '{component.qualified_name}' failed: {type(exc).__name__}: {exc}",
            hint="check its parameters (`engine components show "
            f"{component.qualified_name}`); rerun with --debug for the traceback",
        ) from exc


def with_facts(
    registry: Registry, component: Component, params: dict[str, Any], facts: dict[str, Any], where: str
) -> dict[str, Any]:
    """``params`` plus every fact the component's signature asks for and the user left unset."""
    sig = registry.load_signature(component)
    filled = dict(params)
    for p in sig.params:
        if p.name in facts and p.name not in params:
            filled[p.name] = facts[p.name]
    # Re-check: facts must fit the parameter types too, and nothing required may be missing.
    return check_params(where, f"{component.kind} '{component.qualified_name}'", filled, sig)


def build_component(
    registry: Registry,
    kind: str,
    name: str,
    params: dict[str, Any],
    facts: dict[str, Any] | None = None,
    where: str | None = None,
    extra: dict[str, Any] | None = None,
    keys: dict[str, Any] | None = None,
) -> Any:
    """Build one component by name (``engine.create``, the conformance kit); see :func:`construct`."""
    return construct(registry, registry.resolve(kind, name), params, facts, where, extra, keys)


def construct(
    registry: Registry,
    component: Component,
    params: dict[str, Any],
    facts: dict[str, Any] | None = None,
    where: str | None = None,
    extra: dict[str, Any] | None = None,
    keys: dict[str, Any] | None = None,
) -> Any:
    """Build ``component``: a :class:`Factory` for optimizers and schedulers, the built object otherwise.

    ``facts`` fill the parameters named like them; ``extra`` are passed as they are (a task's built
    slots); ``keys`` are the engine's keys of the slot (``optimizer.param_groups``).
    """
    kind = component.kind
    fn = component.load()
    params = with_facts(registry, component, params, facts or {}, where or kind)
    if kind in ("optimizer", "scheduler"):
        return Factory(component, fn, params, param_groups=(keys or {}).get("param_groups"))
    return _call(component, fn, {**params, **(extra or {})})


def build_data(plan: Plan, artifacts: Path | None = None) -> Any:
    """The run's ``LightningDataModule`` (see :func:`datamodule`)."""
    cfg = plan.config
    return datamodule(plan.registry, plan.data, plan.data_params, plan.loader, cfg["seed"], artifacts, cfg.get("cv"))


def datamodule(
    registry: Registry,
    component: Component,
    params: dict[str, Any],
    loader: dict[str, Any] | None = None,
    seed: int = 0,
    artifacts: Path | None = None,
    cv: dict[str, Any] | None = None,
) -> Any:
    """Data source ``component`` built as a ``LightningDataModule`` (a core adaptor unless it is one).

    ``loader`` are the loader settings (``batch_size`` …); ``artifacts``: the directory of an
    existing run whose saved artifacts (its tokenizer …) the data source reads back with
    ``load_artifacts``, instead of rebuilding them from the data. ``cv`` makes it one fold of a
    cross-validation (see :mod:`engine.folds`).
    """
    import lightning as L

    from engine.data import SourceDataModule

    name = component.qualified_name
    source = construct(registry, component, params, where="data")
    if isinstance(source, L.LightningDataModule):
        if not implements(source, HasFacts):
            raise EngineError(f"data source '{name}' returned a LightningDataModule without a 'facts' attribute")
        if cv is not None:
            raise EngineError(
                f"cross-validation needs a data source of labelled samples; '{name}' builds its own datamodule",
                hint="drop --folds for this data",
            )
        built = source
    else:
        # Checked without evaluating ``facts``: it may be a property that does work (training a
        # tokenizer) which ``load_artifacts`` can still replace with the run's own.
        if not implements(source, DataSource):
            raise EngineError(
                f"data source '{name}' built a {type(source).__name__}, which has no datasets() and facts",
                hint="data sources subclass engine.data.DataSource",
            )
        built = SourceDataModule(source, seed=seed, cv=cv, **(loader or {}))
    if artifacts is not None and implements(built, LoadsArtifacts):
        built.load_artifacts(artifacts)
    return built


def build_slots(plan: Plan, facts: dict[str, Any], init_weights: bool = True) -> dict[str, Any]:
    """Every slot of the run's task built by kind (None for an empty slot).

    Model slots get their keys applied (``init_from``, ``freeze``; see :mod:`engine.transfer`);
    ``init_weights=False`` skips loading ``init_from`` weights (reopening a finished run, whose
    checkpoint replaces them anyway).
    """
    built: dict[str, Any] = {}
    for slot, planned in plan.slots.items():
        if planned is None:
            built[slot] = None
            continue
        model = planned.kind == "model"
        built[slot] = construct(
            plan.registry,
            planned.component,
            planned.params,
            facts=facts if model else None,
            where=slot,
            keys=planned.keys,
        )
        if model and planned.keys:
            from engine.transfer import apply_model_keys

            apply_model_keys(built[slot], planned.keys, slot, load=init_weights, component=planned.component)
    return built


def build_task(
    plan: Plan, facts: dict[str, Any], init_weights: bool = True, slots: dict[str, Any] | None = None
) -> Any:
    """The run's ``LightningModule``: the task built around its slots (:func:`build_slots` unless given)."""
    built = slots if slots is not None else build_slots(plan, facts, init_weights)
    return construct(plan.registry, plan.task, plan.task_params, facts=facts, where="task", extra=built)
