"""Composition: recipe + YAML files + CLI overrides -> one validated config.

Sources are applied in order, later wins: the core defaults, the recipe, each
``-c FILE``, each ``key=value`` override. ``model=NAME`` is shorthand for
``model: {name: NAME}`` (switching to another name drops the old section's
parameters, as choosing a different Hydra group option does); ``model.depth=34``
sets a parameter. Values are parsed by OmegaConf (``lr=3e-4`` is a float,
``hidden=[64,64]`` a list) and ``${...}`` interpolations are resolved.

:func:`validate` checks everything before any compute, without importing torch:
names resolve in the registry, parameters exist on the target's signature (with
a did-you-mean), values fit their annotations, required parameters are either
set or provided as facts by the data source. It returns the resolved config:
qualified names, every component parameter's default written out.
"""

from __future__ import annotations

import copy
from collections.abc import Collection, Sequence
from pathlib import Path
from typing import Any

from engine.component import Component
from engine.errors import ConfigError, did_you_mean
from engine.registry import Registry
from engine.signature import REQUIRED, Param, Signature, _Unevaluated, check_type, read_signature

DEFAULTS: dict[str, Any] = {
    "task": {"name": "supervised"},
    "seed": 0,
    "trainer": {"max_epochs": 10},
    "checkpoint": {
        "monitor": None,
        "mode": "min",
        "save_top_k": 1,
        "save_last": True,
        "every_n_epochs": 1,
        "every_n_train_steps": None,
    },
    "early_stopping": None,
    "prune": None,
    "run": {"dir": "runs", "name": None},
}

#: Sections with a fixed schema: key -> (annotation, doc).
SCHEMAS: dict[str, dict[str, tuple[str, str]]] = {
    "checkpoint": {
        "monitor": ("str | None", "metric deciding the best checkpoint (default: val/loss, or train/loss)"),
        "mode": ("Literal['min', 'max']", "whether lower or higher is better"),
        "save_top_k": ("int", "how many best checkpoints to keep"),
        "save_last": ("bool", "also keep last.ckpt (needed by --resume)"),
        "every_n_epochs": ("int", "checkpoint every N epochs"),
        "every_n_train_steps": ("int | None", "checkpoint every N optimizer steps instead"),
    },
    "early_stopping": {
        "monitor": ("str | None", "metric to watch (default: the checkpoint monitor)"),
        "patience": ("int", "evaluations without improvement before stopping"),
        "mode": ("Literal['min', 'max'] | None", "whether lower or higher is better (default: checkpoint mode)"),
        "min_delta": ("float", "smallest change that counts as improvement"),
    },
    "prune": {
        "amount": ("float", "final fraction of pruned weights (unstructured) or channels (structured), in (0, 1)"),
        "method": (
            "Literal['l1_unstructured', 'random_unstructured', 'ln_structured']",
            "l1_unstructured: smallest |w|; random_unstructured; ln_structured: whole output channels by L2 norm",
        ),
        "scope": ("Literal['global', 'layer']", "unstructured: rank weights across all layers (global) or per layer"),
        "start_epoch": ("int | None", "first epoch that prunes, at its end (default: half of trainer.max_epochs)"),
        "end_epoch": (
            "int | None",
            "epoch reaching the final amount (default: three quarters of trainer.max_epochs); later ones fine-tune",
        ),
        "schedule": (
            "Literal['cubic', 'linear']",
            "how the sparsity grows from start to end epoch (cubic: fast first)",
        ),
    },
    "run": {
        "dir": ("str", "directory holding run directories"),
        "name": ("str | None", "run directory name (default: <model>-<data>-<timestamp>)"),
    },
}

#: Defaults of the early_stopping section once it is switched on (e.g. ``early_stopping.patience=5``).
EARLY_STOPPING = {"monitor": None, "patience": 3, "mode": None, "min_delta": 0.0}

#: Defaults of the prune section once it is switched on (e.g. ``prune.amount=0.5``).
PRUNE = {
    "amount": 0.5,
    "method": "l1_unstructured",
    "scope": "global",
    "start_epoch": None,
    "end_epoch": None,
    "schedule": "cubic",
}

#: Sections that are off (``null``) unless one of their keys is set, with their defaults once on.
SWITCHED = {"early_stopping": EARLY_STOPPING, "prune": PRUNE}

#: Keys every model slot accepts besides the model's own parameters (transfer learning); kept only when set.
MODEL_KEYS = {
    "init_from": Param(
        "init_from", "str | None", None, "run directory (its best checkpoint) or .ckpt file to load weights from"
    ),
    "init_skip": Param(
        "init_skip",
        "list[str]",
        [],
        "glob patterns of parameters not to load (kept freshly initialised), e.g. [head.*]",
    ),
    "init_strict": Param("init_strict", "bool", False, "fail on missing or unexpected keys instead of reporting them"),
    "init_mismatch": Param(
        "init_mismatch",
        "Literal['error', 'reinit']",
        "error",
        "parameters whose shape differs (a head for other classes): fail, or keep them freshly initialised",
    ),
    "freeze": Param("freeze", "list[str] | str", [], "glob patterns of parameters to freeze, e.g. [features.*]"),
    "unfreeze_at_epoch": Param(
        "unfreeze_at_epoch", "int | None", None, "unfreeze the frozen parameters when this epoch starts"
    ),
}

#: Keys every optimizer slot accepts besides the optimizer's own parameters; kept only when set.
OPTIMIZER_KEYS = {
    "param_groups": Param(
        "param_groups",
        "list[dict[str, Any]]",
        [],
        "per-group settings: [{params: 'features.*', lr: 1e-4}, ...] (globs on parameter names; the rest: defaults)",
    ),
}

#: Loader parameters every ``data`` section accepts besides the source's own.
LOADER_PARAMS = {
    "batch_size": Param("batch_size", "int", 64, "samples per batch"),
    "num_workers": Param("num_workers", "int", 0, "DataLoader worker processes"),
    "pin_memory": Param("pin_memory", "bool", False, "pin host memory (for GPU runs)"),
}

#: Trainer arguments the engine sets itself.
RESERVED_TRAINER = {
    "callbacks": "add callbacks from a plugin's engine_callbacks hook",
    "logger": "the engine logs CSV (and TensorBoard when installed) into the run directory",
    "default_root_dir": "set run.dir instead",
    "enable_checkpointing": "configure the checkpoint section instead",
}

TRAINER_TARGET = "lightning.pytorch.trainer.trainer:Trainer"


# --------------------------------------------------------------------------- composing


def merge(base: dict[str, Any], other: dict[str, Any], sections: Collection[str] = frozenset()) -> dict[str, Any]:
    """Deep-merge ``other`` into a copy of ``base`` (mappings merge, everything else replaces).

    In the component ``sections``, choosing another name replaces the whole section:
    the old component's parameters do not apply to the new one.
    """
    out = copy.deepcopy(base)
    for key, value in other.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            old_name = out[key].get("name")
            if key in sections and "name" in value and old_name is not None and value["name"] != old_name:
                out[key] = copy.deepcopy(value)
            else:
                out[key] = merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def component_sections(registry: Registry) -> set[str]:
    """Config sections that name a component: task, data, and every task's slots."""
    sections = {"task", "data"}
    for task in registry.list("task"):
        sections.update(task.slots)  # type: ignore[union-attr]
    return sections


def normalize(cfg: dict[str, Any], sections: set[str]) -> dict[str, Any]:
    """Expand the shorthand ``section: NAME`` into ``section: {name: NAME}``."""
    out = dict(cfg)
    for key in sections & set(out):
        if isinstance(out[key], str):
            out[key] = {"name": out[key]}
    return out


def parse_override(item: str) -> tuple[list[str], Any]:
    """``"model.depth=34"`` -> ``(["model", "depth"], 34)`` with OmegaConf's value grammar."""
    from omegaconf import OmegaConf

    key, sep, _ = item.partition("=")
    if not sep or not key or any(not part for part in key.split(".")):
        raise ConfigError(
            f"cannot read override '{item}': expected key=value",
            hint="for example model=mlp, optimizer.lr=3e-4, trainer.max_epochs=5",
        )
    try:
        parsed = OmegaConf.to_container(OmegaConf.from_dotlist([item]))
    except Exception as exc:
        raise ConfigError(f"cannot read override '{item}': {exc}") from None
    value: Any = parsed
    for part in key.split("."):
        value = value[part]  # type: ignore[index]
    return key.split("."), value


def load_file(path: str) -> dict[str, Any]:
    from omegaconf import OmegaConf

    file = Path(path).expanduser()
    if not file.is_file():
        raise ConfigError(f"config file not found: {file}")
    try:
        data = OmegaConf.to_container(OmegaConf.load(file))
    except Exception as exc:
        raise ConfigError(f"cannot read config file {file}: {exc}") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"config file {file} must hold a mapping of sections, not {type(data).__name__}")
    return data  # type: ignore[return-value]


def compose(
    registry: Registry,
    recipe: str | None = None,
    files: Sequence[str] = (),
    overrides: Sequence[str] = (),
    base: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Compose defaults (or ``base``), a recipe, files and overrides into one plain config."""
    sections = component_sections(registry)
    cfg = copy.deepcopy(base if base is not None else DEFAULTS)
    if recipe:
        cfg = merge(cfg, normalize(registry.resolve("recipe", recipe).load_config(), sections), sections)
    for file in files:
        cfg = merge(cfg, normalize(load_file(file), sections), sections)
    for item in overrides:
        keys, value = parse_override(item)
        if len(keys) == 1 and keys[0] in sections and isinstance(value, str):
            value = {"name": value}
        nested: Any = value
        for k in reversed(keys):
            nested = {k: nested}
        cfg = merge(cfg, nested, sections)
    registry.manager.call_each("engine_adjust_config", config=cfg)
    return resolve_interpolations(cfg)


def resolve_interpolations(cfg: dict[str, Any]) -> dict[str, Any]:
    if "${" not in repr(cfg):
        return cfg
    from omegaconf import OmegaConf

    try:
        return OmegaConf.to_container(OmegaConf.create(cfg), resolve=True)  # type: ignore[return-value]
    except Exception as exc:
        raise ConfigError(f"cannot resolve an interpolation: {exc}") from None


# --------------------------------------------------------------------------- validating


def _describe(value: Any) -> str:
    return f"{value!r} ({type(value).__name__})"


def check_params(
    where: str,
    label: str,
    values: dict[str, Any],
    sig: Signature | None,
    extra: dict[str, Param] | None = None,
    provided: Collection[str] = frozenset(),
) -> dict[str, Any]:
    """Validate ``values`` against ``sig``; return them with defaults filled in.

    ``where`` is the config path (``model``); ``label`` names the component for
    messages; ``extra`` are parameters accepted besides the signature's;
    ``provided`` names parameters the data will supply.
    """
    params = {p.name: p for p in (sig.params if sig else ())}
    params.update(extra or {})
    out: dict[str, Any] = {}
    for key, value in values.items():
        p = params.get(key)
        if p is None:
            if sig is None or sig.open:
                out[key] = value
                continue
            names = list(params)
            takes = ", ".join(names) if len(names) <= 12 else ", ".join(names[:12]) + ", …"
            raise ConfigError(
                f"unknown parameter '{where}.{key}' for {label}{did_you_mean(key, params)}",
                hint=f"{label} takes: {takes or 'no parameters'}",
            )
        if not check_type(value, p.annotation):
            raise ConfigError(f"{where}.{key} must be {p.annotation}, got {_describe(value)}")
        out[key] = value
    if sig is not None:
        for name, p in params.items():
            if name in out:
                continue
            if p.default is REQUIRED:
                if name not in provided:
                    raise ConfigError(
                        f"{label} needs parameter '{name}'" + (f" ({p.annotation})" if p.annotation else ""),
                        hint=f"set {where}.{name}=...",
                    )
            elif not isinstance(p.default, _Unevaluated) and name not in provided:
                out[name] = _plain(p.default)
    return out


def _plain(value: Any) -> Any:
    """Defaults as config data: tuples become lists (YAML and OmegaConf have no tuples)."""
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    return value


def _section(cfg: dict[str, Any], key: str) -> dict[str, Any]:
    value = cfg.get(key)
    if not isinstance(value, dict):
        raise ConfigError(f"'{key}' must be a mapping or a component name, got {_describe(value)}")
    if "name" not in value or not isinstance(value["name"], str):
        raise ConfigError(f"'{key}' needs a name", hint=f"set {key}=NAME (see `engine components list`)")
    return value


def validate(cfg: dict[str, Any], registry: Registry) -> dict[str, Any]:
    """Check ``cfg`` completely and return it resolved (qualified names, defaults)."""
    cfg = copy.deepcopy(cfg)
    out: dict[str, Any] = {}

    task_cfg = _section(cfg, "task")
    task: Component = registry.resolve("task", task_cfg["name"])
    slots = dict(task.slots)

    data_cfg = _section(cfg, "data") if cfg.get("data") is not None else None
    if data_cfg is None:
        raise ConfigError("no data source chosen", hint="set data=NAME (see `engine components list --kind data`)")
    data: Component = registry.resolve("data", data_cfg["name"])
    facts = set(data.facts)

    known = set(DEFAULTS) | {"data"} | set(slots)
    for key in cfg:
        if key not in known:
            raise ConfigError(
                f"unknown config section '{key}'{did_you_mean(key, known)}",
                hint=f"sections: {', '.join(sorted(known))}",
            )

    out["task"] = {
        "name": task.qualified_name,
        **check_params(
            "task", f"task '{task.qualified_name}'", _params(task_cfg), registry.signature(task), provided=facts
        ),
    }
    out["data"] = {
        "name": data.qualified_name,
        **check_params(
            "data",
            f"data source '{data.qualified_name}'",
            _params(data_cfg),
            registry.signature(data),
            extra=LOADER_PARAMS,
        ),
    }

    for slot, kind in slots.items():
        if slot not in cfg:
            default = task.defaults.get(slot)
            cfg[slot] = {"name": default} if default else None
        if cfg[slot] is None:
            if slot in task.required_slots:
                raise ConfigError(
                    f"task '{task.qualified_name}' needs a {kind} in '{slot}'",
                    hint=f"set {slot}=NAME (see `engine components list --kind {kind}`)",
                )
            out[slot] = None
            continue
        if isinstance(cfg[slot], dict) and "name" not in cfg[slot] and task.defaults.get(slot):
            cfg[slot] = {"name": task.defaults[slot], **cfg[slot]}  # optimizer.lr=… tunes the default
        section = _section(cfg, slot)
        comp: Component = registry.resolve(kind, section["name"])
        sig = registry.signature(comp)
        params, reserved = split_reserved(kind, _params(section), sig)
        out[slot] = {
            "name": comp.qualified_name,
            **check_params(
                slot,
                f"{kind} '{comp.qualified_name}'",
                params,
                sig,
                provided=facts if kind == "model" else set(),
            ),
            **check_reserved(slot, kind, reserved, sig),
        }

    seed = cfg.get("seed")
    if not isinstance(seed, int) or isinstance(seed, bool):
        raise ConfigError(f"seed must be an integer, got {_describe(seed)}")
    out["seed"] = seed

    trainer = cfg.get("trainer") or {}
    if not isinstance(trainer, dict):
        raise ConfigError(f"'trainer' must be a mapping of lightning.Trainer arguments, got {_describe(trainer)}")
    for key, why in RESERVED_TRAINER.items():
        if key in trainer:
            raise ConfigError(f"trainer.{key} is set by the engine", hint=why)
    out["trainer"] = check_params("trainer", "lightning.Trainer", trainer, read_signature(TRAINER_TARGET))
    out["trainer"] = {k: v for k, v in out["trainer"].items() if k in trainer}  # keep Lightning's own defaults

    for name, schema in SCHEMAS.items():
        value = cfg.get(name)
        if value is None and name in SWITCHED:
            out[name] = None
            continue
        if not isinstance(value, dict):
            raise ConfigError(f"'{name}' must be a mapping, got {_describe(value)}")
        defaults = SWITCHED.get(name) or DEFAULTS[name]
        sig = Signature(tuple(Param(k, ann, defaults.get(k), doc) for k, (ann, doc) in schema.items()))
        out[name] = check_params(name, f"the {name} section", value, sig)
    if out.get("prune") is not None:
        check_prune(out["prune"], out["trainer"])
    return out


# --------------------------------------------------------------------------- technique keys


def reserved_keys(kind: str, sig: Signature | None) -> dict[str, Param]:
    """The engine's own keys a ``kind`` slot accepts (``model.freeze``, ``optimizer.param_groups``).

    A component parameter of the same name wins: its own meaning is kept.
    """
    keys = MODEL_KEYS if kind == "model" else OPTIMIZER_KEYS if kind == "optimizer" else {}
    own = {p.name for p in sig.params} if sig is not None else set()
    return {k: p for k, p in keys.items() if k not in own}


def split_reserved(kind: str, params: dict[str, Any], sig: Signature | None) -> tuple[dict[str, Any], dict[str, Any]]:
    """``params`` split into the component's own and the engine's reserved keys."""
    keys = reserved_keys(kind, sig)
    return {k: v for k, v in params.items() if k not in keys}, {k: v for k, v in params.items() if k in keys}


def check_reserved(slot: str, kind: str, values: dict[str, Any], sig: Signature | None) -> dict[str, Any]:
    """Validate the reserved keys set in a slot (torch-free); only the keys that were set are returned."""
    if not values:
        return {}
    keys = reserved_keys(kind, sig)
    checked = check_params(slot, f"the {slot} section", values, Signature(tuple(keys.values())))
    out = {k: checked[k] for k in values}
    for key in ("freeze", "init_skip"):
        if isinstance(out.get(key), str):
            out[key] = [out[key]]  # one pattern
    if kind == "model":
        _check_model_keys(slot, out)
    elif kind == "optimizer":
        _check_param_groups(slot, out.get("param_groups") or [], sig)
    return out


def _check_model_keys(slot: str, keys: dict[str, Any]) -> None:
    source = keys.get("init_from")
    for key in ("init_skip", "init_strict", "init_mismatch"):
        if key in keys and source is None:
            raise ConfigError(f"{slot}.{key} needs {slot}.init_from", hint=f"set {slot}.init_from=RUN_DIR")
    if source is not None:
        check_run_dir(source, f"{slot}.init_from", checkpoint_ok=True)
    epoch = keys.get("unfreeze_at_epoch")
    if epoch is not None:
        if not keys.get("freeze"):
            raise ConfigError(f"{slot}.unfreeze_at_epoch needs {slot}.freeze", hint=f"e.g. {slot}.freeze=[features.*]")
        if epoch < 1:
            raise ConfigError(f"{slot}.unfreeze_at_epoch must be >= 1, got {epoch}", hint="or drop freeze altogether")
    for pattern in keys.get("freeze") or []:
        if not pattern:
            raise ConfigError(f"{slot}.freeze holds an empty pattern")


def check_run_dir(path: str, where: str, checkpoint_ok: bool = False) -> Path:
    """``path`` is a run directory (or, with ``checkpoint_ok``, a checkpoint file); a ConfigError otherwise."""
    run = Path(path).expanduser()
    what = "a run directory (see `engine runs list`)" + (" or a .ckpt file" if checkpoint_ok else "")
    if not run.exists():
        raise ConfigError(f"{where}: {run} does not exist", hint=f"give {what}")
    if run.is_file() and checkpoint_ok:
        return run
    if not run.is_dir() or not (run / "config.yaml").is_file():
        raise ConfigError(f"{where}: {run} is not a run directory (no config.yaml)", hint=f"give {what}")
    return run


def _check_param_groups(slot: str, groups: list[dict[str, Any]], sig: Signature | None) -> None:
    params = {p.name: p for p in (sig.params if sig else ()) if p.name != "params"}
    for i, group in enumerate(groups):
        where = f"{slot}.param_groups[{i}]"
        patterns = group.get("params")
        if isinstance(patterns, str):
            patterns = [patterns]
        if not patterns or not all(isinstance(p, str) and p for p in patterns):
            raise ConfigError(
                f"{where} needs 'params': a glob pattern or a list of them on parameter names",
                hint=f"for example {slot}.param_groups=[{{params: 'features.*', lr: 1e-4}}]",
            )
        for key, value in group.items():
            if key == "params":
                continue
            p = params.get(key)
            if p is None:
                if sig is not None and not sig.open:
                    raise ConfigError(
                        f"unknown setting '{key}' in {where}{did_you_mean(key, params)}",
                        hint=f"a group may set: {', '.join(params) or 'nothing'}",
                    )
                continue
            if not check_type(value, p.annotation):
                raise ConfigError(f"{where}.{key} must be {p.annotation}, got {_describe(value)}")


def check_prune(prune: dict[str, Any], trainer: dict[str, Any]) -> None:
    """The prune section makes sense: amount in (0, 1), epochs in order, time left to fine-tune."""
    amount = prune["amount"]
    if not 0.0 < amount < 1.0:
        raise ConfigError(
            f"prune.amount must be between 0 and 1 (exclusive), got {amount}", hint="e.g. prune.amount=0.5"
        )
    start, end = prune["start_epoch"], prune["end_epoch"]
    if start is not None and start < 0:
        raise ConfigError(f"prune.start_epoch must be >= 0, got {start}")
    if start is not None and end is not None and end < start:
        raise ConfigError(f"prune.end_epoch ({end}) comes before prune.start_epoch ({start})")
    epochs = trainer.get("max_epochs", DEFAULTS["trainer"]["max_epochs"])
    if isinstance(epochs, int) and epochs > 0 and "max_steps" not in trainer:
        last = max(start or 0, end if end is not None else 0)
        if last >= epochs - 1:
            raise ConfigError(
                f"prune: the last pruning epoch ({last}) leaves no epoch of fine-tuning within "
                f"trainer.max_epochs={epochs}",
                hint="lower prune.end_epoch or raise trainer.max_epochs (the best checkpoint is chosen among "
                "epochs after the final prune)",
            )


def _params(section: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in section.items() if k != "name"}
