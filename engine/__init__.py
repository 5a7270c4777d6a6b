"""engine: a plugin-based deep-learning engine on Lightning.

Public API for users and plugin authors (importing it does not import torch)::

    from engine import Component, Recipe, hookimpl   # write a plugin
    import engine
    engine.list_components("model", "*res*")          # query the registry
    model = engine.create("model", "mlp", in_features=8, out_features=3)
"""

from __future__ import annotations

from typing import Any

from engine.component import Component, Recipe
from engine.errors import ConfigError, EngineError, PluginError
from engine.plugins import hookimpl

__version__ = "0.1.0"
#: Version of the plugin API (the hookspecs); plugins may state the range they support.
API_VERSION = 1

__all__ = [
    "API_VERSION",
    "Component",
    "ConfigError",
    "EngineError",
    "PluginError",
    "Recipe",
    "__version__",
    "create",
    "get_registry",
    "hookimpl",
    "list_components",
]

_REGISTRIES: dict[tuple[str, ...], Any] = {}


def get_registry(disable: tuple[str, ...] = (), *, fresh: bool = False) -> Any:
    """The registry of every enabled plugin's components (built once per ``disable`` set)."""
    key = tuple(sorted(disable))
    if fresh or key not in _REGISTRIES:
        from engine.plugins import PluginManager
        from engine.registry import Registry

        _REGISTRIES[key] = Registry(PluginManager(disable=key))
    return _REGISTRIES[key]


def list_components(kind: str | None = None, pattern: str | None = None) -> list[str]:
    """Qualified names of the components of ``kind`` matching the glob ``pattern``."""
    return [c.qualified_name for c in get_registry().list(kind, pattern)]


def create(kind: str, name: str, **params: Any) -> Any:
    """Build one component by name with the given parameters (validated first)."""
    from engine.build import build_component

    return build_component(get_registry(), kind, name, params)
