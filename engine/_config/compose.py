"""Composition: the defaults, a recipe, YAML files and ``key=value`` overrides (later wins) -> one plain config.

Names come out qualified and ``engine_adjust_config`` has run; `engine._config.plan` checks the rest.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Callable, Collection, Mapping, Sequence
from functools import lru_cache
from pathlib import Path
from typing import Any

from engine._config.params import clip, describe, section_values
from engine._contract.errors import ConfigError
from engine._plugins.registry import Registry

#: The core's keys of every config; config sections (``checkpoint``, ``run`` …) add theirs.
DEFAULTS: dict[str, Any] = {"seed": 0, "trainer": {"max_epochs": 10}}
#: The task of a config that names none, when its data source does not name one either.
DEFAULT_TASK = "core.supervised"


def defaults(registry: Registry) -> dict[str, Any]:
    """The config before any recipe: the core's keys and every section's defaults (off ones as null)."""
    cfg = copy.deepcopy(DEFAULTS)
    for section in registry.sections():
        cfg[section.name] = None if section.optional else section_values(section, {})
    return cfg


def section_kinds(registry: Registry) -> dict[str, str]:
    """Config sections that name a component, with the kind they name: task, data, every task's slots."""
    kinds = {"task": "task", "data": "data"}
    for task in registry.list("task"):
        for slot, kind in task.slots.items():  # type: ignore[union-attr]
            kinds.setdefault(slot, kind)
    return kinds


def merge(
    base: dict[str, Any],
    other: dict[str, Any],
    sections: dict[str, str] | None = None,
    same: Callable[[str, Any, Any], bool] | None = None,
) -> dict[str, Any]:
    """Deep-merge ``other`` into a copy of ``base``; choosing another component (not ``same``) replaces its section."""
    sections = sections or {}
    same = same or (lambda _, a, b: a == b)
    out = copy.deepcopy(base)
    for key, value in other.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            old_name = out[key].get("name")
            if key in sections and "name" in value and old_name is not None and not same(key, old_name, value["name"]):
                out[key] = copy.deepcopy(value)
            else:
                out[key] = merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def normalize(cfg: dict[str, Any], sections: Collection[str]) -> dict[str, Any]:
    """Expand the shorthand ``section: NAME`` into ``section: {name: NAME}``."""
    return {k: {"name": v} if k in sections and isinstance(v, str) else v for k, v in cfg.items()}


def parse_override(item: str) -> tuple[list[str], Any]:
    """``"model.depth=34"`` -> ``(["model", "depth"], 34)`` with OmegaConf's value grammar."""
    path, value = _parse_override(item)
    return list(path), copy.deepcopy(value)


@lru_cache(maxsize=4096)
def _parse_override(item: str) -> tuple[tuple[str, ...], Any]:
    """`parse_override`, cached: a sweep composes the same overrides for every trial (~1 ms each)."""
    from omegaconf import OmegaConf

    key, sep, _ = item.partition("=")
    if not sep or not key or any(not part for part in key.split(".")):
        raise ConfigError(
            f"cannot read override '{clip(item)}': expected key=value",
            hint="for example model=mlp, optimizer.lr=3e-4, trainer.max_epochs=5",
        )
    try:
        value: Any = OmegaConf.to_container(OmegaConf.from_dotlist([item]))
    except Exception as exc:
        raise ConfigError(f"cannot read override '{clip(item)}': {omegaconf_message(exc)}") from None
    for part in key.split("."):
        value = value[part]  # type: ignore[index]
    return tuple(key.split(".")), value


_INDEXED = re.compile(r"^([^\[\]]+)\[(-?\d{1,9})\]$")


def set_index(cfg: dict[str, Any], item: str) -> None:
    """Apply ``a.b[i]=value`` to the list ``a.b`` of ``cfg``; a ConfigError with a hint otherwise."""
    key, _, text = item.partition("=")
    path: list[Any] = []
    for part in key.split("."):
        m = _INDEXED.match(part)
        if m is None and ("[" in part or "]" in part):
            raise ConfigError(
                f"cannot read override '{clip(item)}': bad index in '{clip(part)}'", hint="e.g. model.hidden[0]=64"
            )
        path += [m.group(1), int(m.group(2))] if m else [part]
    _, value = parse_override(f"value={text}")
    node: Any = cfg
    last, parent = path[-1], _dotted(path[:-1])
    for i, part in enumerate(path[:-1]):
        if not _has(node, part):
            raise ConfigError(
                f"cannot apply '{clip(item)}': {clip(_dotted(path[: i + 1]))} is not set in this config",
                hint=f"a list's default comes from its component: set the whole list, e.g. {parent}=[...]",
            )
        node = node[part]
    if isinstance(last, int) and not _has(node, last):
        raise ConfigError(
            f"cannot apply '{clip(item)}': {clip(parent)} has no element {last}",
            hint=f"set the whole list, e.g. {clip(parent)}=[...]",
        )
    if not isinstance(last, int) and not isinstance(node, dict):
        raise ConfigError(f"cannot apply '{clip(item)}': {clip(parent)} is not a mapping")
    node[last] = value


def _has(node: Any, part: str | int) -> bool:
    if isinstance(part, int):
        return isinstance(node, list) and -len(node) <= part < len(node)
    return isinstance(node, dict) and part in node


def _dotted(path: list[Any]) -> str:
    return "".join(f"[{p}]" if isinstance(p, int) else (f".{p}" if i else p) for i, p in enumerate(path))


def load_file(path: str | Path) -> dict[str, Any]:
    """A YAML config file as plain data; a ConfigError naming the file when it cannot be read."""
    from omegaconf import OmegaConf

    file = Path(path).expanduser()
    if not file.is_file():
        raise ConfigError(f"config file not found: {file}")
    try:
        data = OmegaConf.to_container(OmegaConf.load(file))
    except Exception as exc:
        raise ConfigError(f"cannot read config file {file}: {omegaconf_message(exc)}") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"config file {file} must hold a mapping of sections, not {type(data).__name__}")
    return data  # type: ignore[return-value]


def compose(
    registry: Registry,
    recipe: str | None = None,
    files: Sequence[str | Path | Mapping[str, Any]] = (),
    overrides: Sequence[str] = (),
    base: dict[str, Any] | None = None,
    notes: list[str] | None = None,
) -> dict[str, Any]:
    """Compose the defaults (or ``base``), a recipe, files (paths or mappings) and overrides into one plain config;
    ``notes`` receives a line per recipe key a swapped component dropped (``--dry-run`` prints them)."""
    kinds = section_kinds(registry)

    def same(section: str, a: Any, b: Any) -> bool:
        return a == b or _qualified(registry, kinds[section], a) == _qualified(registry, kinds[section], b)

    cfg = copy.deepcopy(base) if base is not None else defaults(registry)
    chosen = registry.resolve("recipe", recipe) if recipe else None
    layers = [chosen.load_config()] if chosen is not None else []
    layers += [dict(file) if isinstance(file, Mapping) else load_file(file) for file in files]
    for layer in layers:
        cfg = merge(cfg, normalize(layer, kinds), kinds, same)
    for item in overrides:
        if "[" in item.partition("=")[0]:
            set_index(cfg, item)  # model.hidden[0]=5: one element of a list the config holds
            continue
        keys, nested = parse_override(item)
        for k in reversed(keys):
            nested = {k: nested}
        cfg = merge(cfg, normalize(nested, kinds), kinds, same)
    cfg = resolve_interpolations(cfg)
    if chosen is not None:
        _check_required(chosen, cfg)
        if notes is not None:
            notes += _dropped(chosen.qualified_name, normalize(layers[0], kinds), cfg, kinds, same, registry)
    qualify(cfg, registry)
    registry.manager.hook.engine_adjust_config(config=cfg)
    return cfg


def _dropped(name: str, recipe: dict[str, Any], cfg: dict[str, Any], kinds: Any, same: Callable, reg: Any) -> list[str]:
    """A section whose component replaced the recipe's (``data=x``) starts afresh: each recipe key dropped, a line
    (not for an unknown name: its error says more)."""
    out = []
    for section, values in recipe.items():
        now = cfg.get(section)
        if section in kinds and isinstance(values, dict) and isinstance(now, dict) and "name" in values:
            if _qualified(reg, kinds[section], now.get("name")) not in reg.names(kinds[section]):
                continue
            for key in [] if same(section, values["name"], now.get("name")) else sorted(values.keys() - now.keys()):
                out.append(f"recipe {name}'s {section}.{key}={values[key]} dropped: {section} is now {now.get('name')}")
    return out


def _check_required(recipe: Any, cfg: dict[str, Any]) -> None:
    """Every key the recipe declares ``required`` is set (``data.path``: the user's own files)."""
    name = recipe.qualified_name
    for key in recipe.required:
        node: Any = cfg
        for part in key.split("."):
            node = node.get(part) if isinstance(node, dict) else None
        if node is None:
            hint = f"engine run {name} {key}=... (see `engine components show {name}`)"
            raise ConfigError(f"recipe '{name}' needs {key}: it runs on your own files or settings", hint=hint)


def qualify(cfg: dict[str, Any], registry: Registry) -> None:
    """Qualify the names of the task, the data source and the task's slots in place (``cfg["task"]`` is set)."""
    data = cfg.get("data")
    if data is not None:
        data["name"] = _resolve(registry, "data", data).qualified_name
    task = cfg.get("task")
    if task is None or (isinstance(task, dict) and "name" not in task):
        default = registry.resolve("data", data["name"]).task if data is not None else None
        cfg["task"] = task = {"name": default or DEFAULT_TASK, **(task or {})}
    component = _resolve(registry, "task", task)
    task["name"] = component.qualified_name
    for slot, kind in component.slots.items():
        section = cfg.get(slot)
        if isinstance(section, dict) and isinstance(section.get("name"), str):
            section["name"] = registry.resolve(kind, section["name"]).qualified_name


def _resolve(registry: Registry, kind: str, section: Any) -> Any:
    """The component a ``task`` or ``data`` section names."""
    if not (isinstance(section, dict) and isinstance(section.get("name"), str)):
        raise ConfigError(
            f"'{kind}' must be a component name or a mapping with a name, got {describe(section)}",
            hint=f"set {kind}=NAME (see `engine components list --kind {kind}`)",
        )
    return registry.resolve(kind, section["name"])


def _qualified(registry: Registry, kind: str, name: Any) -> Any:
    try:
        return registry.resolve(kind, name).qualified_name if isinstance(name, str) else name
    except ConfigError:
        return name


#: The resolvers a config may use: each reads the config alone. ``oc.env`` reads the environment (and config.yaml
#: would keep the value: a secret in a shared run directory); ``oc.decode`` and ``oc.create`` evaluate text, so they
#: could assemble ``oc.env``; a plugin's resolver may read anything.
RESOLVERS = ("oc.select", "oc.dict.keys", "oc.dict.values", "oc.deprecated")
_RESOLVER = re.compile(r"\$\{\s*([\w.\-]*)\s*([:$]?)")


def resolve_interpolations(cfg: dict[str, Any]) -> dict[str, Any]:
    """``${...}`` references resolved (OmegaConf); a ConfigError when one cannot be, or uses a refused resolver."""
    if "${" not in repr(cfg):
        return cfg
    from omegaconf import OmegaConf

    _check_resolvers(cfg, "")
    try:
        return OmegaConf.to_container(OmegaConf.create(cfg), resolve=True)  # type: ignore[return-value]
    except Exception as exc:
        where = getattr(exc, "full_key", None)
        raise ConfigError(f"cannot resolve {clip(where) + ': ' if where else ''}{omegaconf_message(exc)}") from None


def _check_resolvers(node: Any, where: str) -> None:
    """No interpolation in ``node`` calls a resolver outside `RESOLVERS` (or one whose name is interpolated)."""
    items = node.items() if isinstance(node, dict) else enumerate(node) if isinstance(node, list) else ()
    for key, value in items:
        _check_resolvers(value, f"{where}[{key}]" if isinstance(key, int) else f"{where}.{key}".lstrip("."))
    for name, sep in _RESOLVER.findall(node) if isinstance(node, str) else ():
        if (sep == ":" and name in RESOLVERS) or not sep:
            continue
        var = re.search(r"oc\.env\s*:\s*([^,}\s]*)", node)
        if name == "oc.env":
            raise ConfigError(
                f"{clip(where)} reads an environment variable (oc.env): a config may not, config.yaml would keep it",
                hint=f'pass the value on the command line: {clip(where)}="${clip(var.group(1) if var else "VAR")}"',
            )
        what = f"the resolver '{clip(name)}'" if sep == ":" else "an interpolated resolver or key name"
        raise ConfigError(
            f"{clip(where)} uses {what}: a config may use ${{key}} references and {', '.join(RESOLVERS)}",
            hint="set the value itself (on the command line: KEY=VALUE), or reference another key: ${section.key}",
        )


def omegaconf_message(exc: BaseException) -> str:
    """An OmegaConf (or YAML) error as one short line: no ``full_key``/``object_type`` lines, no grammar jargon."""
    lines = [line.strip() for line in str(exc).splitlines()]
    noise = ("full_key:", "object_type=", "reference_type=", 'in "<unicode string>"')
    text = "; ".join(re.sub(r'^in "[^"]*", ', "", line) for line in lines if line and not line.startswith(noise))
    text = re.sub(r"token recognition error at: ('.*?')", r"unexpected character \1", text)
    text = re.sub(
        r"(no viable alternative at|extraneous|mismatched) input ('.*?')( expecting .*)?", r"cannot parse \2", text
    )
    text = re.sub(r"^\w+Error raised while resolving interpolation: ", "", text)
    return clip(text, 160) or type(exc).__name__
