"""engine: a plugin-based deep-learning engine on Lightning.

Public API for users and plugin authors (importing it does not import torch)::

    from engine import Component, Recipe, Section, hookimpl   # write a plugin
    import engine
    engine.list_components("model", "*res*")                  # query the registry
    model = engine.create("model", "mlp", in_features=8, out_features=3)
"""

from __future__ import annotations

from typing import Any

from engine.component import Component, Recipe, Section, Weights
from engine.errors import ConfigError, EngineError, PluginError
from engine.hookspecs import hookimpl
from engine.version import API_VERSION, __version__

__all__ = [
    "API_VERSION",
    "Component",
    "ConfigError",
    "EngineError",
    "PluginError",
    "Recipe",
    "Section",
    "Weights",
    "__version__",
    "create",
    "get_registry",
    "hookimpl",
    "list_components",
]


def get_registry(disable: tuple[str, ...] | None = None, *, fresh: bool = False) -> Any:
    """The registry of every enabled plugin's components (see :func:`engine.registry.get_registry`)."""
    from engine.registry import get_registry

    return get_registry(disable, fresh=fresh)


def list_components(kind: str | None = None, pattern: str | None = None) -> list[str]:
    """Qualified names of the components of ``kind`` matching the glob ``pattern``."""
    return [c.qualified_name for c in get_registry().list(kind, pattern)]


def create(kind: str, name: str, **params: Any) -> Any:
    """Build one component by name with the given parameters (validated first)."""
    from engine.build import build_component

    return build_component(get_registry(), kind, name, params)
