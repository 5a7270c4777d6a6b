"""The plan of a run: a composed config checked completely and resolved, torch-free, before any compute.

``plan.config`` is the resolved config (qualified names, every default written out): what ``config.yaml``
holds, and what re-plans to the same plan.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from engine._config.compose import normalize
from engine._config.params import (
    check_params,
    check_paths,
    clip,
    describe,
    load_signature,
    section_values,
    signature_of,
    slot_keys,
)
from engine._config.signature import Param, Signature
from engine._config.trainer import check_trainer
from engine._config.types import check_type
from engine._contract.declarations import Component, Section
from engine._contract.errors import ConfigError, did_you_mean
from engine._plugins.registry import CORE_KEYS, Registry

#: Loader parameters every ``data`` section accepts besides the source's own.
LOADER_PARAMS = {
    "batch_size": Param("batch_size", "Annotated[int, Ge(1)]", 64, "samples per batch"),
    "num_workers": Param("num_workers", "Annotated[int, Ge(0)]", 0, "DataLoader worker processes"),
    "pin_memory": Param("pin_memory", "bool", False, "pin host memory (for GPU runs)"),
}


SEED = "Annotated[int, Ge(0), Le(4294967295)]"


@dataclass(frozen=True)
class SlotPlan:
    """One filled slot of the task: its component, own parameters and the engine's keys set in it."""

    slot: str
    kind: str
    component: Component
    params: dict[str, Any]
    keys: dict[str, Any]


@dataclass(frozen=True)
class Plan:
    """A run, resolved: what `engine._run.build` builds and `engine._run.runner` trains."""

    config: dict[str, Any]
    task: Component
    task_params: dict[str, Any]
    data: Component
    data_params: dict[str, Any]
    loader: dict[str, Any]
    slots: dict[str, SlotPlan | None]
    registry: Registry = field(repr=False, compare=False)
    #: What validation had to do or could not do (a target imported to read its parameters).
    notes: tuple[str, ...] = ()
    #: Parameters not set in the config and named like a fact of the data source, which fills them.
    from_facts: tuple[str, ...] = ()

    @property
    def primary(self) -> SlotPlan | None:
        """The slot the run is about (the task's ``primary_slot``, else its first model slot)."""
        slot = self.task.main_slot
        return self.slots.get(slot) if slot else None

    def default_run_name(self) -> str:
        """The run directory's name when ``run.name`` is unset: ``<model>-<data>-<date>-<time>``."""
        parts = [self.primary.component.name if self.primary else None, self.data.name]
        return "-".join([*(p for p in parts if p), datetime.now().strftime("%Y%m%d-%H%M%S")])

    def facts_note(self) -> str:
        """What the data source will tell the run, and which parameters that fills (``--dry-run`` says it)."""
        name = self.data.qualified_name
        if not self.data.facts:
            return f"# data facts: {name} declares none (its facts are known once it is loaded)"
        filled = ", ".join(self.from_facts) or "nothing (every parameter named like a fact is set)"
        return f"# data facts of {name} (values known once it is loaded): {', '.join(self.data.facts)}\n" + (
            f"# filled from them: {filled}"
        )


def _params(section: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in section.items() if k != "name"}


def _section(cfg: dict[str, Any], key: str) -> dict[str, Any]:
    value = cfg.get(key)
    if not isinstance(value, dict):
        raise ConfigError(f"'{key}' must be a mapping or a component name, got {describe(value)}")
    if "name" not in value or not isinstance(value["name"], str):
        raise ConfigError(f"'{key}' needs a name", hint=f"set {key}=NAME (see `engine components list`)")
    return value


def _nested(key: str, cfg: dict[str, Any], sections: dict[str, Section]) -> str:
    """`` — did you mean 'trainer.max_epochs'?`` for ``max_epochs``: a section's setting given at the top."""
    from engine._config.signature import read_signature
    from engine._config.trainer import TRAINER_TARGET

    keys = {f"{s}.{k}" for s, v in cfg.items() if isinstance(v, dict) for k in v}
    keys |= {f"trainer.{p.name}" for p in getattr(read_signature(TRAINER_TARGET), "params", ())}
    keys |= {
        f"{n}.{p.name}" for n, s in sections.items() if not s.slot_kind for p in getattr(signature_of(s), "params", ())
    }
    hits = sorted(k for k in keys if k.endswith("." + key))[:3]
    return " — did you mean " + " or ".join(f"'{h}'" for h in hits) + "?" if hits else ""


def _signature(entry: Component | Section, notes: list[str]) -> Signature | None:
    """Read statically, else by importing the target (said in ``notes``); None when not introspectable."""
    sig = signature_of(entry)
    if sig is not None:
        return sig
    what = f"parameters of {entry.kind} '{entry.qualified_name}'"
    try:
        sig = load_signature(entry)  # a PluginError if the target does not import
    except (TypeError, ValueError) as exc:  # no introspectable signature (a builtin)
        notes.append(f"{what} not checked: {exc}")
        return None
    notes.append(f"{what} read by importing {entry.target_text} (its source could not be read statically)")
    return sig


def _run_check(entry: Component | Section, values: dict[str, Any], where: str, cfg: dict[str, Any]) -> dict[str, Any]:
    check = entry.load_check()
    result = None if check is None else check(values, where, cfg)
    return values if result is None else dict(result)


def _slot_keys(
    registry: Registry, kind: str, section: dict[str, Any], sig: Signature | None
) -> tuple[dict[str, Any], list[tuple[Section, dict[str, Any]]]]:
    """A slot's settings split into the component's own and the engine's keys (a parameter of the same name wins)."""
    own = set(sig.names) if sig is not None else set()
    params = _params(section)
    claimed: dict[str, tuple[Section, dict[str, Any]]] = {}
    for key, keys_section in slot_keys(registry.sections(kind)).items():
        if key in params and key not in own:
            claimed.setdefault(keys_section.name, (keys_section, {}))[1][key] = params.pop(key)
    return params, list(claimed.values())


def slot_key_params(registry: Registry, kind: str, sig: Signature | None) -> list[Param]:
    """The engine's keys a ``kind`` slot accepts (``model.freeze``), for ``engine components show``."""
    own = set(sig.names) if sig is not None else set()
    return [p for section in registry.sections(kind) for p in load_signature(section).params if p.name not in own]


def make_plan(cfg: dict[str, Any], registry: Registry, checks: bool = True) -> Plan:
    """Check a composed ``cfg`` completely and resolve it; ``checks=False`` skips ``check`` functions (old runs)."""
    cfg = normalize(copy.deepcopy(cfg), ("task", "data"))  # ``model: core.mlp``, in a config written by hand
    notes: list[str] = []
    out: dict[str, Any] = {}
    task: Component = registry.resolve("task", _section(cfg, "task")["name"])
    cfg = normalize(cfg, task.slots)
    if cfg.get("data") is None:
        raise ConfigError("no data source chosen", hint="set data=NAME (see `engine components list --kind data`)")
    data: Component = registry.resolve("data", _section(cfg, "data")["name"])
    facts = set(data.facts)
    sections = {s.name: s for s in registry.sections()}
    known = set(CORE_KEYS) | set(sections) | set(task.slots)
    for key in cfg:
        if key not in known:
            raise ConfigError(
                f"unknown config section '{clip(key)}'{_nested(key, cfg, sections) or did_you_mean(key, known)}",
                hint=f"sections: {', '.join(sorted(known))}",
            )
    task_sig = _signature(task, notes)
    task_params = check_params("task", f"task '{task.qualified_name}'", _params(cfg["task"]), task_sig, provided=facts)
    out["task"] = {"name": task.qualified_name, **task_params}
    from_facts = _left_to_facts("task", task_sig, task_params, facts)
    data_sig = _signature(data, notes)
    sigs = {"task": task_sig, "data": data_sig}
    data_values = check_params(
        "data", f"data source '{data.qualified_name}'", _params(cfg["data"]), data_sig, extra=LOADER_PARAMS
    )
    out["data"] = {"name": data.qualified_name, **data_values}
    slots: dict[str, SlotPlan | None] = {}
    pending_checks: list[tuple[Section, dict[str, Any], str]] = []
    for slot, kind in task.slots.items():
        default = task.defaults.get(slot)
        value = cfg.get(slot, {"name": default} if default else None)
        if isinstance(value, dict) and "name" not in value and default:
            value = {"name": default, **value}  # optimizer.lr=… tunes the default
        if value is None:
            if slot in task.required_slots:
                raise ConfigError(
                    f"task '{task.qualified_name}' needs a {kind} in '{slot}'",
                    hint=f"set {slot}=NAME (see `engine components list --kind {kind}`)",
                )
            slots[slot] = out[slot] = None
            continue
        cfg[slot] = value
        comp: Component = registry.resolve(kind, _section(cfg, slot)["name"])
        sig = sigs[slot] = _signature(comp, notes)
        own, claimed = _slot_keys(registry, kind, value, sig)
        params = check_params(
            slot, f"{kind} '{comp.qualified_name}'", own, sig, provided=facts if kind == "model" else set()
        )
        keys: dict[str, Any] = {}
        for keys_section, values in claimed:
            checked = section_values(keys_section, values, where=slot)
            set_keys = {k: checked[k] for k in values}  # only the keys that were set
            keys.update(set_keys)
            pending_checks.append((keys_section, set_keys, slot))
        if "param_groups" in keys and kind == "optimizer":
            _check_group_settings(slot, keys["param_groups"], sig)
        slots[slot] = SlotPlan(slot, kind, comp, params, keys)
        if kind == "model":
            from_facts += _left_to_facts(slot, sig, params, facts)
        out[slot] = {"name": comp.qualified_name, **params, **keys}
    seed = cfg.get("seed")
    if not check_type(seed, SEED):  # what Lightning's seed_everything (and numpy) accept
        raise ConfigError(f"seed must be an integer in [0, 4294967295], got {describe(seed)}")
    out["seed"] = seed
    out["trainer"] = check_trainer(cfg.get("trainer") or {})
    for name, section in sections.items():
        value = cfg.get(name, None if section.optional else {})  # a section installed after the config was written
        if value is None and section.optional:
            out[name] = None
            continue
        if not isinstance(value, dict):
            raise ConfigError(f"'{name}' must be a mapping, got {describe(value)}")
        out[name] = section_values(section, value)
        pending_checks.append((section, out[name], name))
    if checks:  # the whole config is typed by now
        used = [("task", task), ("data", data), *((s, p.component) for s, p in slots.items() if p is not None)]
        for where, entry in used:
            if entry.check is not None:
                out[where] = {"name": entry.qualified_name, **_run_check(entry, _params(out[where]), where, out)}
        for section, values, where in pending_checks:
            checked = _run_check(section, values, where, out)
            out[where] = checked if section.slot_kind is None else {**out[where], **checked}
        for where, _ in used:
            check_paths(where, sigs[where], out[where])  # a missing data.path before torch is imported
    # What building consumes, read back from the checked config (checks may have changed it).
    for slot, planned in slots.items():
        if planned is not None:
            values = _params(out[slot])
            keys = {k: values.pop(k) for k in list(values) if k in planned.keys}
            slots[slot] = SlotPlan(slot, planned.kind, planned.component, values, keys)
    data_values = _params(out["data"])
    loader = {k: v for k, v in data_values.items() if k in LOADER_PARAMS}
    data_params = {k: v for k, v in data_values.items() if k not in LOADER_PARAMS}
    return Plan(out, task, _params(out["task"]), data, data_params, loader, slots, registry, tuple(notes), from_facts)


def _left_to_facts(where: str, sig: Signature | None, params: dict[str, Any], facts: set[str]) -> tuple[str, ...]:
    return tuple(f"{where}.{p.name}" for p in (sig.params if sig else ()) if p.name in facts and p.name not in params)


def _check_group_settings(slot: str, groups: list[dict[str, Any]], sig: Signature | None) -> None:
    """Each ``param_groups`` entry sets only the optimizer's own parameters, with their types."""
    params = {p.name: p for p in (sig.params if sig else ()) if p.name != "params"}
    for i, group in enumerate(groups):
        where = f"{slot}.param_groups[{i}]"
        for key, value in group.items():
            p = params.get(key)
            if key == "params" or (p is None and (sig is None or sig.open)):
                continue
            if p is None:
                raise ConfigError(
                    f"unknown setting '{key}' in {where}{did_you_mean(key, params)}",
                    hint=f"a group may set: {', '.join(params) or 'nothing'}",
                )
            if not check_type(value, p.annotation):
                raise ConfigError(f"{where}.{key} must be {p.annotation}, got {describe(value)}")
