"""What a plugin declares (torch-free): components, recipes, config sections, shipped weights.

A declaration names a lazy target (``"package.module:attr"``), imported only when a run is built.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any, ClassVar, TypeVar

#: The kinds of component the core composes, in the order the CLI lists them (``section``: config
#: sections; ``step``: the kinds of step of a pipeline, besides runs).
KINDS = ("task", "model", "loss", "optimizer", "scheduler", "data", "deploy", "recipe", "section", "step")
#: The registration hook of each kind.
HOOKS = {k: f"engine_{k}s" for k in ("task", "model", "optimizer", "scheduler", "recipe")} | {
    "loss": "engine_losses",
    "data": "engine_data_sources",
    "deploy": "engine_deploy_targets",
    "section": "engine_config_sections",
    "step": "engine_pipeline_steps",
}

#: Parameters the core (or the feature calling the target) supplies itself, per kind: never set from the config.
INJECTED: dict[str, tuple[str, ...]] = {
    "optimizer": ("params",),
    "scheduler": ("optimizer", "total_steps", "max_epochs"),
    "step": ("out",),
}

#: The one rule for plugin, component and recipe names: letters, digits, ``_`` and ``-``.
NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_\-]*$")


def import_object(spec: str) -> Any:
    """Import ``"package.module:attr.attr"`` (or a bare module); the one loader of lazy targets and entry points."""
    from importlib import import_module

    module, _, attr = spec.split("[", 1)[0].partition(":")
    obj: Any = import_module(module.strip())
    for part in filter(None, attr.strip().split(".")):
        obj = getattr(obj, part)
    return obj


@dataclass(frozen=True)
class Weights:
    """Weights a plugin ships for one of its models (``model.weights=NAME``).

    Args:
        file: ``"package:relative/path.safetensors"``, a file inside the installed package.
        sha256: the file's SHA-256 (hex); a file that does not match is refused, never loaded.
        summary: what they are: the data and recipe they were trained with, and the figure measured.
        params: the model parameters they were trained with (filled in; a config setting another is refused).
    """

    file: str
    sha256: str
    summary: str = ""
    params: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class _Declaration:
    """What every declaration shares: the registry binds it to its plugin, which names it and loads its targets."""

    #: Between the plugin and the name in the qualified name; None: the name alone.
    _separator: ClassVar[str | None] = "."
    name: str
    # Filled in by the registry (keyword-only, so each declaration's own fields stay positional):
    kind: str = field(default="", kw_only=True)
    plugin: str = field(default="", kw_only=True)
    distribution: str | None = field(default=None, kw_only=True)
    version: str | None = field(default=None, kw_only=True)

    @property
    def qualified_name(self) -> str:
        return f"{self.plugin}{self._separator}{self.name}" if self.plugin and self._separator else self.name

    @property
    def target_text(self) -> str:
        target = self.target  # Component and Section (a Recipe's is its config)
        if isinstance(target, str):
            return target
        return f"{getattr(target, '__module__', '?')}:{getattr(target, '__qualname__', repr(target))}"

    def bind(self: _D, kind: str, plugin: str, distribution: str | None, version: str | None) -> _D:
        return replace(self, kind=kind, plugin=plugin, distribution=distribution, version=version)

    def load(self) -> Callable[..., Any]:
        """Import and return the target (this is where torch may get imported)."""
        return self._load(self.target)

    def load_check(self) -> Callable[..., Any] | None:
        return None if self.check is None else self._load(self.check)

    def _load(self, target: str | Callable[..., Any]) -> Callable[..., Any]:
        """Import ``target``; a PluginError naming the declaration and its plugin when it fails."""
        if not isinstance(target, str):
            return target
        from engine._contract.errors import PluginError

        try:
            return import_object(target)  # type: ignore[no-any-return]
        except Exception as exc:
            raise PluginError(
                f"{self.kind} '{self.qualified_name}' could not be loaded from '{target}': {type(exc).__name__}: {exc}",
                hint=f"the plugin '{self.plugin}' ({self.distribution or 'unknown distribution'}) is broken; "
                f"reinstall it or disable it with --disable {self.plugin}",
            ) from exc


_D = TypeVar("_D", bound=_Declaration)


@dataclass(frozen=True)
class Component(_Declaration):
    """A named, lazily imported building block contributed by a plugin.

    Args:
        name: short name, unique within the plugin (``"resnet"``): letters, digits, ``_`` and ``-``.
        target: ``"package.module:attr"`` naming a class or factory function, imported only when a run is
            built (a callable works too, but makes listing import your code).
        summary: one line shown by ``engine components list``.
        facts: data sources only — the facts the built source exposes in its ``facts`` mapping
            (``num_classes``, ``input_shape`` …); model and task parameters so named are filled from them.
        slots: tasks only — the components the task is built from, ``{parameter name: kind}``, each a config section.
        defaults: tasks only — a default component name per slot (``{"optimizer": "adamw"}``; ``None``: empty).
        required_slots: tasks only — slots the user must fill.
        primary_slot: tasks only — the slot holding the model the run is about (named in run
            directories, exported by ``engine deploy``); default: the first ``model`` slot.
        task: data sources only — the task of a config that names none (default: ``core.supervised``).
        check: ``"package.module:function"`` (torch-free), ``check(values, where, config)``, called once a config
            using this component is typed (task, data, then slots): raise `engine.ConfigError`, or return
            a dict replacing ``values``; it may fill keys of other sections the user left unset.
        aliases: qualified names it had before (``"core.distill"``), still resolved with a deprecation warning.
        adapters: models only — ``"package.module:function"`` targets, ``adapter(state, model)``, mapping another
            library's state dict onto this model's keys for ``model.init_from`` (``None``: not its format).
        weights: models only — `Weights` the plugin ships, by name, for ``model.weights=NAME``.
    """

    target: str | Callable[..., Any]
    summary: str = ""
    facts: tuple[str, ...] = ()
    slots: Mapping[str, str] = field(default_factory=dict)
    defaults: Mapping[str, str | None] = field(default_factory=dict)
    required_slots: tuple[str, ...] = ()
    primary_slot: str | None = None
    task: str | None = None
    check: str | Callable[..., Any] | None = None
    aliases: tuple[str, ...] = ()
    adapters: tuple[str, ...] = ()
    weights: Mapping[str, Weights] = field(default_factory=dict)

    @property
    def main_slot(self) -> str | None:
        """The task's primary slot: ``primary_slot``, else its first ``model`` slot (None without one)."""
        if self.primary_slot is not None:
            return self.primary_slot
        return next((slot for slot, kind in self.slots.items() if kind == "model"), None)

    def load_adapters(self) -> list[tuple[str, Callable[..., Any]]]:
        """The ``adapters``, imported: ``(spec, function)`` pairs (a PluginError naming one that fails)."""
        return [(spec, self._load(spec)) for spec in self.adapters]


@dataclass(frozen=True)
class Recipe(_Declaration):
    """A named, complete run configuration a plugin ships.

    Args:
        name: short name; the qualified name is ``plugin/name`` (``vision/digits``).
        config: the configuration as a mapping, or ``"package:relative/path.yaml"`` naming a YAML file
            inside an installed package (read lazily).
        summary: one line shown by ``engine components list --kind recipe``.
        targets: the quality it promises, one ``METRIC OP BOUND`` line each (``"test/accuracy >= 0.97"``),
            checked by the recipe matrix and shown by ``engine components show``.
        required: config keys the user must set to run it (``"data.path"``: the user's own files).
        aliases: qualified names the recipe had before (``"core/old-name"``), still accepted with a warning.
    """

    _separator: ClassVar[str | None] = "/"
    config: Mapping[str, Any] | str
    summary: str = ""
    targets: tuple[str, ...] = ()
    required: tuple[str, ...] = ()
    aliases: tuple[str, ...] = ()
    kind: str = field(default="recipe", kw_only=True)

    @property
    def target_text(self) -> str:
        return self.config if isinstance(self.config, str) else "(inline config)"

    def load_config(self) -> dict[str, Any]:
        """The recipe's configuration as plain data."""
        if not isinstance(self.config, str):
            return dict(self.config)
        from importlib.resources import files

        import yaml

        from engine._contract.errors import PluginError

        package, _, resource = self.config.partition(":")
        try:
            data = yaml.safe_load(files(package).joinpath(resource).read_text(encoding="utf-8")) or {}
        except Exception as exc:
            raise PluginError(
                f"recipe '{self.qualified_name}' could not be read from '{self.config}': {exc}",
                hint=f"the plugin '{self.plugin}' is broken; reinstall it",
            ) from exc
        if not isinstance(data, dict):
            raise PluginError(f"recipe '{self.qualified_name}' is not a mapping of config sections")
        return data


@dataclass(frozen=True)
class Section(_Declaration):
    """A config section a plugin contributes, declared like a component: its keys are a dataclass's fields.

    Args:
        name: the config key (``privacy``). For a ``slot_kind`` section, only an identifier.
        target: ``"package.module:Dataclass"`` whose fields are the keys (annotated, with defaults,
            documented in the class docstring's ``Args:``).
        summary: one line shown by ``engine components list --kind section``.
        optional: the section is off (``null``) unless the user sets one of its keys
            (``early_stopping.patience=5``) or the whole section (``early_stopping={}``).
        slot_kind: instead of a section, add the keys to every slot of this component kind (``"model"``:
            ``model.freeze``, ``generator.freeze`` …); only keys the user sets are kept.
        check: ``"package.module:function"`` (torch-free), ``check(values, where, config)``, called once types
            are checked: raise `engine.ConfigError`, or return a dict replacing ``values``.
        bookkeeping: the keys say where a run sits (a sweep's trial, a fold): comparisons leave them out.
    """

    _separator: ClassVar[str | None] = None  # config keys are one namespace: a second plugin claiming one is refused
    target: str | Callable[..., Any]
    summary: str = ""
    optional: bool = False
    slot_kind: str | None = None
    check: str | Callable[..., Any] | None = None
    bookkeeping: bool = False
    kind: str = field(default="section", kw_only=True)
