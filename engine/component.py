"""What a plugin declares: components and recipes.

A :class:`Component` is a *declaration*: a short name, a lazy target
(``"package.module:attr"``, imported only when the run is built), a one-line
summary and, for some kinds, a little metadata.  Parameters are read from the
target's signature and docstring (see :mod:`engine.signature`), so a component
is documented where its code is.

This module must stay importable without torch.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

#: The kinds of component the core composes, in the order the CLI lists them.
KINDS = ("task", "model", "loss", "optimizer", "scheduler", "data", "deploy", "recipe")

#: Parameters the core supplies itself, per kind: never set from the config.
INJECTED: dict[str, tuple[str, ...]] = {
    "optimizer": ("params",),
    "scheduler": ("optimizer", "total_steps", "max_epochs"),
}


@dataclass(frozen=True)
class Component:
    """A named, lazily imported building block contributed by a plugin.

    Args:
        name: short name, unique within the plugin (``"resnet"``). Letters,
            digits, ``_`` and ``-``.
        target: ``"package.module:attr"`` naming a class or factory function;
            imported only when a run is built. A callable is accepted too
            (handy in tests) but makes listing import your code.
        summary: one line shown by ``engine components list``.
        facts: data sources only — names of the facts the built source exposes
            in its ``facts`` mapping (``num_classes``, ``in_features``,
            ``input_shape``, ``vocab_size`` …). Model and task parameters with
            these names are filled from the data when the user leaves them unset.
        slots: tasks only — the components the task is built from, as
            ``{parameter name: kind}``; each becomes a config section
            (``model``, ``loss``, ``optimizer``, …).
        defaults: tasks only — a default component name per slot
            (``{"optimizer": "adamw"}``); ``None`` leaves a slot empty.
        required_slots: tasks only — slots the user must fill.
    """

    name: str
    target: str | Callable[..., Any]
    summary: str = ""
    facts: tuple[str, ...] = ()
    slots: Mapping[str, str] = field(default_factory=dict)
    defaults: Mapping[str, str | None] = field(default_factory=dict)
    required_slots: tuple[str, ...] = ()
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
        if isinstance(self.target, str):
            return self.target
        return f"{getattr(self.target, '__module__', '?')}:{getattr(self.target, '__qualname__', repr(self.target))}"

    def bind(self, kind: str, plugin: str, distribution: str | None, version: str | None) -> Component:
        return replace(self, kind=kind, plugin=plugin, distribution=distribution, version=version)

    def load(self) -> Callable[..., Any]:
        """Import and return the target (this is where torch may get imported)."""
        if not isinstance(self.target, str):
            return self.target
        from importlib import import_module

        from engine.errors import PluginError

        module, _, attr = self.target.partition(":")
        try:
            obj: Any = import_module(module)
            for part in attr.split("."):
                obj = getattr(obj, part)
        except Exception as exc:
            raise PluginError(
                f"{self.kind} '{self.qualified_name}' could not be loaded from '{self.target}': "
                f"{type(exc).__name__}: {exc}",
                hint=f"the plugin '{self.plugin}' ({self.distribution or 'unknown distribution'}) is broken; "
                f"reinstall it or disable it with --disable {self.plugin}",
            ) from exc
        return obj


@dataclass(frozen=True)
class Recipe:
    """A named, complete run configuration a plugin ships.

    Args:
        name: short name; the qualified name is ``plugin/name`` (``vision/digits``).
        config: the configuration as a mapping, or ``"package:relative/path.yaml"``
            naming a YAML file inside an installed package (read lazily).
        summary: one line shown by ``engine components list --kind recipe``.
    """

    name: str
    config: Mapping[str, Any] | str
    summary: str = ""
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

        from engine.errors import PluginError

        package, _, resource = self.config.partition(":")
        try:
            text = files(package).joinpath(resource).read_text(encoding="utf-8")
            data = yaml.safe_load(text) or {}
        except Exception as exc:
            raise PluginError(
                f"recipe '{self.qualified_name}' could not be read from '{self.config}': {exc}",
                hint=f"the plugin '{self.plugin}' is broken; reinstall it",
            ) from exc
        if not isinstance(data, dict):
            raise PluginError(f"recipe '{self.qualified_name}' is not a mapping of config sections")
        return data
