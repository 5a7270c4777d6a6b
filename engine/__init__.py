"""engine: a plugin-based deep-learning engine on Lightning.

The public API (torch-free to import): what a plugin or a user may rely on is named in ``__all__`` here
and in the public modules (``engine.data``, ``engine.tasks`` … ``engine.testing``: docs/stability.md).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from engine._contract.commands import CommandSink
from engine._contract.declarations import Component, Recipe, Section, Weights
from engine._contract.declarations import import_object as _import_object
from engine._contract.errors import ConfigError, EngineError, PluginError, did_you_mean
from engine._contract.events import DatasetsBuilt, ModelBuilt, RunCollection, RunFinished
from engine._contract.hookspecs import hookimpl
from engine._contract.version import API_VERSION, __version__
from engine._plugins.settings import cache_dir

if TYPE_CHECKING:
    from engine._config.plan import Plan
    from engine._plugins.registry import Registry
    from engine._run.build import Built
    from engine._run.runner import RunResult
    from engine._run.runs import Run

__all__ = ["API_VERSION", "CommandSink", "Component", "Recipe", "Section", "Weights", "__version__", "hookimpl"]
__all__ += ["ConfigError", "EngineError", "PluginError", "did_you_mean"]
__all__ += ["DatasetsBuilt", "ModelBuilt", "RunCollection", "RunFinished"]
__all__ += ["Plan", "Registry", "Run", "RunResult", "build", "compose", "open_run", "plan", "train"]
__all__ += ["cache_dir", "check_arguments", "create", "get_registry", "list_components", "parse_override"]
__all__ += ["read_config_file", "run_collection"]


#: Types of the route's values, imported when first asked for (``import engine`` stays light).
_LAZY = {"Plan": "engine._config.plan:Plan", "Registry": "engine._plugins.registry:Registry"}
_LAZY |= {"Run": "engine._run.runs:Run", "RunResult": "engine._run.runner:RunResult"}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return _import_object(_LAZY[name])
    raise AttributeError(f"module 'engine' has no attribute {name!r}")


def get_registry(disable: tuple[str, ...] | None = None, *, fresh: bool = False) -> Registry:
    """The registry of every enabled plugin's components, built once per ``disable`` set (None: the command's)."""
    from engine._plugins.registry import get_registry

    return get_registry(disable, fresh=fresh)


def list_components(kind: str | None = None, pattern: str | None = None) -> list[str]:
    """Qualified names of the components of ``kind`` matching the glob ``pattern`` (timm's ``list_models``)."""
    return [c.qualified_name for c in get_registry().list(kind, pattern)]


def create(kind: str, name: str, **params: Any) -> Any:
    """Build one component by name with the given parameters (checked first); an optimizer is a factory."""
    from engine._run.build import build_component

    return build_component(get_registry(), kind, name, params)


def compose(
    recipe: str | None = None,
    files: Sequence[str | Path | Mapping[str, Any]] = (),
    overrides: Sequence[str] = (),
    *,
    base: dict[str, Any] | None = None,
    registry: Registry | None = None,
) -> dict[str, Any]:
    """A run's config from a recipe, YAML files (or mappings) and ``key=value`` overrides, later winning.

    Names come out qualified; ``base`` replaces the defaults (a run's own ``config.yaml``, to continue it).
    """
    from engine._config.compose import compose

    return compose(registry or get_registry(), recipe, files, overrides, base=base)


def plan(config: dict[str, Any], *, registry: Registry | None = None) -> Plan:
    """``config`` checked completely and resolved, torch-free: what `build` and `train` consume."""
    from engine._config.plan import make_plan

    return make_plan(config, registry or get_registry())


def build(plan: Plan) -> Built:
    """The planned run's objects, without training: ``datamodule``, ``facts``, ``slots`` and ``task``."""
    from engine._run.build import build

    return build(plan)


def train(plan: Plan, *, resume: str | Path | None = None) -> RunResult:
    """Train and test the planned run into its run directory; ``resume`` continues one from its newest checkpoint."""
    from engine._run.runner import train

    return train(plan, resume=Path(resume) if resume is not None else None)


def open_run(path: str | Path) -> Run:
    """A run directory, read: its config, facts, summary; ``.task()``, ``.model()``, ``.datamodule()`` rebuilt."""
    from engine._run.runs import open_run

    return open_run(path)


def run_collection(path: str | Path) -> RunCollection | None:
    """What ``path`` is when it holds several runs a plugin wrote (a sweep, folds, a pipeline), else None."""
    return get_registry().manager.first("engine_run_collection", path=Path(path).expanduser())  # type: ignore[no-any-return]


def parse_override(item: str) -> tuple[list[str], Any]:
    """``"model.depth=34"`` -> ``(["model", "depth"], 34)``, values read as ``engine run`` reads them."""
    from engine._config.compose import parse_override

    return parse_override(item)


def check_arguments(function: Any, values: dict[str, Any], where: str, skip: int = 0) -> dict[str, Any]:
    """``values`` checked against ``function``'s parameters (names, types, defaults filled in), as a component's are.

    The first ``skip`` parameters are the caller's own; ``where`` prefixes the keys in messages
    (``evaluate``: ``evaluate.episodes must be int``).
    """
    from engine._config.params import check_arguments

    return check_arguments(function, values, where, skip)


def read_config_file(path: str | Path) -> dict[str, Any]:
    """A YAML config file as plain data; a `ConfigError` naming the file when it cannot be read."""
    from engine._config.compose import load_file

    return load_file(path)
