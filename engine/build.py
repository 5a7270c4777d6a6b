"""Turn a validated config into objects: data module, components, task.

This is where targets are imported (and so torch). Data facts flow here: a
model or task parameter named like a fact the data source exposes is filled
from it when the user did not set it.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from pathlib import Path
from typing import Any

from engine.component import Component
from engine.config import LOADER_PARAMS, check_params, split_reserved
from engine.errors import EngineError
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
    reserved: dict[str, Any] | None = None,
) -> Any:
    """Build one component: a :class:`Factory` for optimizers and schedulers, the built object otherwise.

    ``reserved`` are the engine's own keys of the slot (``optimizer.param_groups``), already split off.
    """
    component: Component = registry.resolve(kind, name)
    where = where or kind
    fn = component.load()
    sig = registry.load_signature(component)
    if facts is not None:
        params = with_facts(registry, component, params, facts, where)
    else:
        params = check_params(where, f"{kind} '{component.qualified_name}'", params, sig)
    if kind in ("optimizer", "scheduler"):
        return Factory(component, fn, params, param_groups=(reserved or {}).get("param_groups"))
    return _call(component, fn, {**params, **(extra or {})})


def build_data(registry: Registry, cfg: dict[str, Any], artifacts: Path | None = None) -> Any:
    """The run's ``LightningDataModule`` (a core adaptor unless the source is one itself).

    ``artifacts``: the directory of an existing run whose saved artifacts (its tokenizer …) the
    data source reads back with ``load_artifacts``, instead of rebuilding them from the data.
    """
    import lightning as L

    from engine.data import SourceDataModule

    section = dict(cfg["data"])
    name = section.pop("name")
    loader = {k: section.pop(k) for k in list(section) if k in LOADER_PARAMS}
    source = build_component(registry, "data", name, section)
    if isinstance(source, L.LightningDataModule):
        if not hasattr(source, "facts"):
            raise EngineError(f"data source '{name}' returned a LightningDataModule without a 'facts' attribute")
        datamodule = source
    else:
        # Look the attributes up without evaluating them: ``facts`` may be a property that does
        # work (training a tokenizer) which ``load_artifacts`` can still replace with the run's own.
        if not all(_defines(source, attr) for attr in ("datasets", "facts")):
            raise EngineError(
                f"data source '{name}' built a {type(source).__name__}, which has no datasets() and facts",
                hint="data sources subclass engine.data.DataSource",
            )
        datamodule = SourceDataModule(source, seed=cfg["seed"], **loader)
    load_artifacts = getattr(datamodule, "load_artifacts", None)
    if artifacts is not None and load_artifacts is not None:
        load_artifacts(artifacts)
    return datamodule


def _defines(obj: Any, attr: str) -> bool:
    return attr in getattr(obj, "__dict__", {}) or any(attr in vars(k) for k in type(obj).__mro__)


def build_task(registry: Registry, cfg: dict[str, Any], facts: dict[str, Any], init_weights: bool = True) -> Any:
    """The run's ``LightningModule``: each slot built by kind, then the task around them.

    Model slots get their transfer-learning keys applied (``init_from``, ``freeze``; see
    :mod:`engine.transfer`); ``init_weights=False`` skips loading ``init_from`` weights (reopening a
    finished run, whose checkpoint replaces them anyway).
    """
    task: Component = registry.resolve("task", cfg["task"]["name"])
    slots: dict[str, Any] = {}
    for slot, kind in task.slots.items():
        section = cfg.get(slot)
        if section is None:
            slots[slot] = None
            continue
        component = registry.resolve(kind, section["name"])
        params, reserved = split_reserved(
            kind, {k: v for k, v in section.items() if k != "name"}, registry.load_signature(component)
        )
        slots[slot] = build_component(
            registry,
            kind,
            section["name"],
            params,
            facts=facts if kind == "model" else None,
            where=slot,
            reserved=reserved,
        )
        if kind == "model" and reserved:
            from engine.transfer import apply_model_keys

            apply_model_keys(slots[slot], reserved, slot, load=init_weights)
    params = {k: v for k, v in cfg["task"].items() if k != "name"}
    return build_component(registry, "task", task.qualified_name, params, facts=facts, extra=slots)
