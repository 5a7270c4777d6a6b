"""What a plugin declares (torch-free): components, recipes, config sections, shipped weights.

A declaration names a lazy target (``"package.module:attr"``, imported only when a run is built); its
parameters are read from the target's signature and docstring without importing it.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

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
        params: the model parameters they were trained with; unset ones are filled from here, and a
            config setting one to another value is refused at ``--dry-run``.
    """

    file: str
    sha256: str
    summary: str = ""
    params: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Component:
    """A named, lazily imported building block contributed by a plugin.

    Args:
        name: short name, unique within the plugin (``"resnet"``): letters, digits, ``_`` and ``-``.
        target: ``"package.module:attr"`` naming a class or factory function; imported only when a run
            is built. A callable is accepted too (handy in tests) but makes listing import your code.
        summary: one line shown by ``engine components list``.
        facts: data sources only — the facts the built source exposes in its ``facts`` mapping
            (``num_classes``, ``input_shape``, ``vocab_size`` …). Model and task parameters with these
            names are filled from the data when the user leaves them unset.
        slots: tasks only — the components the task is built from, ``{parameter name: kind}``; each
            becomes a config section (``model``, ``loss``, ``optimizer`` …).
        defaults: tasks only — a default component name per slot (``{"optimizer": "adamw"}``); ``None``
            leaves a slot empty.
        required_slots: tasks only — slots the user must fill.
        primary_slot: tasks only — the slot holding the model the run is about (named in run
            directories, exported by ``engine deploy``); default: the first ``model`` slot.
        task: data sources only — the task this data is made for: a config that names no task gets it
            (default: ``core.supervised``).
        check: ``"package.module:function"`` (torch-free) called as ``check(values, where, config)`` when a
            config uses this component, once the whole config is typed: ``values`` are its parameters
            (defaults filled in), ``where`` its config key (``data``, ``model``, ``generator``), ``config``
            the resolved config. Raise :class:`engine.ConfigError` for settings that cannot work; return a
            dict to replace ``values`` (None keeps them). It may also fill keys of other sections that the
            user left unset (``None``), such as ``checkpoint.monitor``. Checks run task first, then data, then
            the slots, before the config sections' checks.
        aliases: qualified names this component had before (``"core.distill"``): configs and run
            directories naming them still resolve, with a deprecation warning.
        adapters: models only — ``"package.module:function"`` targets mapping another library's state
            dict (a timm ResNet's, Hugging Face GPT-2's) onto this model's keys for ``model.init_from``:
            ``adapter(state, model)`` returns ``None`` for a format it does not know, else ``(state dict
            in the model's keys, notes)``.
        weights: models only — weight files the plugin ships, by name, for ``model.weights=NAME``
            (:class:`Weights`: a package file checked by its SHA-256 before loading).
    """

    name: str
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
    # Filled in by the registry:
    kind: str = ""
    plugin: str = ""
    distribution: str | None = None
    version: str | None = None

    @property
    def qualified_name(self) -> str:
        return f"{self.plugin}.{self.name}" if self.plugin else self.name

    @property
    def target_text(self) -> str:
        return _target_text(self.target)

    @property
    def main_slot(self) -> str | None:
        """The task's primary slot: ``primary_slot``, else its first ``model`` slot (None without one)."""
        if self.primary_slot is not None:
            return self.primary_slot
        return next((slot for slot, kind in self.slots.items() if kind == "model"), None)

    def bind(self, kind: str, plugin: str, distribution: str | None, version: str | None) -> Component:
        return replace(self, kind=kind, plugin=plugin, distribution=distribution, version=version)

    def load(self) -> Callable[..., Any]:
        """Import and return the target (this is where torch may get imported)."""
        return _load_target(self, self.target)

    def load_check(self) -> Callable[..., Any] | None:
        return None if self.check is None else _load_target(self, self.check)


@dataclass(frozen=True)
class Recipe:
    """A named, complete run configuration a plugin ships.

    Args:
        name: short name; the qualified name is ``plugin/name`` (``vision/digits``).
        config: the configuration as a mapping, or ``"package:relative/path.yaml"`` naming a YAML file
            inside an installed package (read lazily).
        summary: one line shown by ``engine components list --kind recipe``.
        targets: the quality it promises, one ``METRIC OP BOUND`` line each (``"test/accuracy >= 0.97"``,
            ``"test/recall@10 >= 0.9 * test/ease_recall@10"``), checked over seeds and thread counts by the
            recipe matrix and shown by ``engine components show``.
        required: config keys the user must set to run it (``"data.path"``: the user's own files); a run
            that leaves one unset is refused with the key named, and ``engine plugins info`` lists them.
        aliases: qualified names the recipe had before (``"core/old-name"``), still accepted with a warning.
    """

    name: str
    config: Mapping[str, Any] | str
    summary: str = ""
    targets: tuple[str, ...] = ()
    required: tuple[str, ...] = ()
    aliases: tuple[str, ...] = ()
    kind: str = "recipe"
    plugin: str = ""
    distribution: str | None = None
    version: str | None = None

    @property
    def qualified_name(self) -> str:
        return f"{self.plugin}/{self.name}" if self.plugin else self.name

    @property
    def target_text(self) -> str:
        return self.config if isinstance(self.config, str) else "(inline config)"

    def bind(self, kind: str, plugin: str, distribution: str | None, version: str | None) -> Recipe:
        return replace(self, plugin=plugin, distribution=distribution, version=version)

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
class Section:
    """A config section a plugin contributes, declared like a component: its keys are a dataclass's fields.

    Keys, types, defaults and docs are read from the target's source without importing it, and checked
    before any compute (unknown key: did-you-mean; wrong type: a clear message). The resolved config holds
    the section with its defaults filled in, for the plugin's hooks to read.

    Args:
        name: the config key (``privacy``). For a ``slot_kind`` section, only an identifier.
        target: ``"package.module:Dataclass"`` whose fields are the keys (annotated, with defaults,
            documented in the class docstring's ``Args:``).
        summary: one line shown by ``engine components list --kind section``.
        optional: the section is off (``null``) unless the user sets one of its keys
            (``early_stopping.patience=5``) or the whole section (``early_stopping={}``).
        slot_kind: instead of a section, add the keys to every slot of this component kind (``"model"``:
            ``model.freeze``, ``generator.freeze`` …); only keys the user sets are kept.
        check: ``"package.module:function"`` (torch-free) called as ``check(values, where, config)`` once
            types are checked, with the section's values (or the keys set in one slot), the config path and
            the resolved config; raise :class:`engine.ConfigError` for values that cannot work together. It
            may return the values normalised (a dict that replaces them); None keeps them.
        bookkeeping: the keys say where a run sits (a sweep's trial, a fold), not what it trains: run
            comparisons leave them out of config differences.
    """

    name: str
    target: str | Callable[..., Any]
    summary: str = ""
    optional: bool = False
    slot_kind: str | None = None
    check: str | Callable[..., Any] | None = None
    bookkeeping: bool = False
    kind: str = "section"
    plugin: str = ""
    distribution: str | None = None
    version: str | None = None

    @property
    def qualified_name(self) -> str:
        return self.name  # config keys are one namespace: a second plugin claiming a name is refused

    @property
    def target_text(self) -> str:
        return _target_text(self.target)

    def bind(self, kind: str, plugin: str, distribution: str | None, version: str | None) -> Section:
        return replace(self, plugin=plugin, distribution=distribution, version=version)

    def load(self) -> Callable[..., Any]:
        return _load_target(self, self.target)

    def load_check(self) -> Callable[..., Any] | None:
        return None if self.check is None else _load_target(self, self.check)


def _target_text(target: str | Callable[..., Any]) -> str:
    if isinstance(target, str):
        return target
    return f"{getattr(target, '__module__', '?')}:{getattr(target, '__qualname__', repr(target))}"


def _load_target(entry: Any, target: str | Callable[..., Any]) -> Callable[..., Any]:
    """Import ``target`` for ``entry``; a PluginError naming the entry and its plugin when it fails."""
    if not isinstance(target, str):
        return target
    from engine._contract.errors import PluginError

    try:
        return import_object(target)  # type: ignore[no-any-return]
    except Exception as exc:
        raise PluginError(
            f"{entry.kind} '{entry.qualified_name}' could not be loaded from '{target}': {type(exc).__name__}: {exc}",
            hint=f"the plugin '{entry.plugin}' ({entry.distribution or 'unknown distribution'}) is broken; "
            f"reinstall it or disable it with --disable {entry.plugin}",
        ) from exc
