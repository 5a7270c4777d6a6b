"""``engine plugins list|info`` and ``engine components list|show``: reading the registry (torch-free)."""

from __future__ import annotations

import argparse
from collections import Counter
from collections.abc import Iterator
from typing import Any

from engine._cli.console import Console, Table, styled
from engine._config.types import describe
from engine._contract.errors import ConfigError, EngineError, did_you_mean


def registry(args: argparse.Namespace) -> Any:
    """The registry of the running command (its ``--disable`` set)."""
    from engine._plugins.registry import get_registry

    return get_registry(tuple(args.disable or ()))


def unknown_plugin(name: str, names: set[str]) -> EngineError:
    """The error for a plugin that is not installed, with a did-you-mean among ``names``."""
    return EngineError(f"unknown plugin '{name}'{did_you_mean(name, names)}", hint="see `engine plugins list`")


def cmd_plugins_list(args: argparse.Namespace) -> int:
    from engine._plugins import manager

    reg = registry(args)
    counts = Counter(entry.plugin for entry in reg.list())
    table = Table("plugin", "distribution", "version", "status", "components", "import", "hooks")
    infos = reg.manager.infos()
    if args.json:
        return emit([_plugin(i, 0 if i.refused else counts[i.name]) for i in infos])
    for info in infos:
        table.add_row(
            info.name,
            info.distribution or "-",
            info.version or "-",
            styled(info.status, {"ok": "green", "disabled": "yellow"}.get(info.status, "red")),
            str(0 if info.refused else counts[info.name]),
            "-" if info.import_s is None else f"{info.import_s * 1000:.0f} ms",
            ", ".join(h.removeprefix("engine_") for h in info.hooks),
        )
    console = Console()
    console.print(table)
    for info in infos:
        if info.error:
            console.print(styled(info.status, "red"), f"{info.label}: {info.error}")
        if (info.import_s or 0) > manager.SLOW_IMPORT_S:
            how = f"`engine plugins disable {info.name}` if you do not need it"
            console.print(styled("slow", "yellow"), f"{info.label}: its import takes {info.import_s:.1f} s; {how}")
    return 0


def emit(data: Any, code: int = 0) -> int:
    """``--json``: ``data`` alone on stdout (the schemas: docs/cli.md)."""
    import json
    import sys

    sys.stdout.write(json.dumps(data, indent=2, default=str) + "\n")
    return code


def _plugin(info: Any, components: int) -> dict[str, Any]:
    import_ms = None if info.import_s is None else round(info.import_s * 1000)
    keys = ("name", "distribution", "version", "status", "module", "error")
    return {k: getattr(info, k) for k in keys} | {"components": components, "import_ms": import_ms, "hooks": info.hooks}


def cmd_plugins_info(args: argparse.Namespace) -> int:
    reg = registry(args)
    matches = [i for i in reg.manager.infos() if args.name in (i.name, i.distribution)]
    if not matches:
        raise unknown_plugin(args.name, {i.name for i in reg.manager.infos()})
    if args.json:
        out, failed = [], False
        for info in matches:
            ok = not info.refused and info.status == "ok"
            entries = [e for e in reg.list() if e.plugin == info.name] if ok else []
            found = list(check_components(reg, info.name, import_targets=args.import_)) if ok else []
            failed |= bool(found) or info.status != "ok"
            out.append(
                _plugin(info, len(entries))
                | {"components": [_component(e) | {"required": list(getattr(e, "required", ()))} for e in entries]}
                | {"problems": [{"component": n, "problem": p} for n, p in found]}
            )
        return emit(out, 1 if failed else 0)
    console = Console()
    problems: list[tuple[str, str]] = []
    for info in matches:
        console.print(styled(info.name, "bold"), f" {info.distribution or '-'} {info.version or ''}")
        console.print(f"module:  {info.module}")
        console.print(f"status:  {info.status}" + (f" — {info.error}" if info.error else ""))
        console.print(f"hooks:   {', '.join(info.hooks) or '-'}")
        if info.import_s is not None:
            console.print(f"import:  {info.import_s * 1000:.0f} ms")
        if info.refused or info.status != "ok":
            continue
        entries = [e for e in reg.list() if e.plugin == info.name]
        if entries:
            table = Table("kind", "name", "summary")
            for e in entries:
                needs = (
                    f" (needs {', '.join(f'{k}=...' for k in e.required)})" if e.kind == "recipe" and e.required else ""
                )
                table.add_row(e.kind, e.qualified_name, e.summary + needs)
            console.print(table)
        problems += check_components(reg, info.name, import_targets=args.import_)
    for name, problem in problems:
        console.print(styled("problem", "red"), f"{name}: {problem}")
    return 1 if problems or any(i.status != "ok" for i in matches) else 0


def check_components(reg: Any, plugin: str, import_targets: bool = False) -> Iterator[tuple[str, str]]:
    """``(component, problem)`` pairs of a plugin: targets not found (imported only if asked), recipes that fail."""
    from engine._config.compose import compose
    from engine._config.plan import make_plan
    from engine._config.signature import locate_module, read_signature

    for e in [e for e in reg.list() if e.plugin == plugin]:
        name = e.qualified_name
        if e.kind == "recipe":
            try:
                if not e.required:  # one that runs on the user's own files cannot be checked without them
                    make_plan(compose(reg, name), reg)
            except EngineError as exc:
                yield name, f"recipe does not validate: {exc.message}"
        elif isinstance(e.target, str) and import_targets:
            try:
                e.load()
            except EngineError as exc:
                yield name, exc.message
        elif isinstance(e.target, str):
            module, _, attr = e.target.partition(":")
            if not attr:
                yield name, f"target '{e.target}' is not of the form 'module:attr'"
            elif locate_module(module) is None:
                yield name, f"target module '{module}' not found"
            elif read_signature(e.target) is None:
                yield name, f"'{attr}' not found in module '{module}' (or not readable statically)"


def cmd_components_list(args: argparse.Namespace) -> int:
    from engine._contract.declarations import KINDS

    if args.kind and args.kind not in KINDS:
        raise ConfigError(
            f"unknown kind '{args.kind}'{did_you_mean(args.kind, KINDS)}", hint=f"kinds: {', '.join(KINDS)}"
        )
    entries = registry(args).list(args.kind, args.pattern)
    if args.json:
        return emit([_component(e) for e in entries])
    table = Table("kind", "name", "summary")
    for e in entries:
        table.add_row(e.kind, e.qualified_name, e.summary)
    console = Console()
    if entries:
        console.print(table)
    else:
        console.print("no components match" + (f" '{args.pattern}'" if args.pattern else ""))
    return 0


def _component(e: Any) -> dict[str, Any]:
    return {"kind": e.kind, "name": e.qualified_name, "plugin": e.plugin, "summary": e.summary}


def cmd_components_show(args: argparse.Namespace) -> int:
    from engine._contract.declarations import KINDS

    reg = registry(args)
    found = []
    for kind in [args.kind] if args.kind else list(KINDS):
        try:
            found.append(reg.resolve(kind, args.name))
        except ConfigError as exc:
            if "ambiguous" in exc.message:
                raise
    if not found:
        every = {e.qualified_name for e in reg.list()} | {e.name for e in reg.list()}
        raise ConfigError(
            f"no component named '{args.name}'{did_you_mean(args.name, every)}", hint="see `engine components list`"
        )
    if args.json:
        return emit([_shown(reg, entry, args.import_) for entry in found])
    console = Console()
    for entry in found:
        console.print(styled(entry.qualified_name, "bold"), f" ({entry.kind})  {entry.summary}")
        console.print(f"  plugin:  {entry.plugin} ({entry.distribution or '-'} {entry.version or ''})")
        console.print(f"  target:  {entry.target_text}")
        if entry.kind == "recipe":
            import yaml

            if entry.targets:
                console.print(f"  targets: {'; '.join(entry.targets)}")
            if entry.required:
                console.print(f"  needs:   {', '.join(f'{k}=...' for k in entry.required)} (set by you)")
            console.print("  config:")
            console.print("    " + yaml.safe_dump(entry.load_config(), sort_keys=False).replace("\n", "\n    "))
            continue
        _show_parameters(console, reg, entry, args.import_)
    return 0


def _shown(reg: Any, entry: Any, import_: bool) -> dict[str, Any]:
    """``components show --json``: one component (a recipe: its config; else its parameters)."""
    out = _component(entry) | {"distribution": entry.distribution, "version": entry.version}
    out["target"] = entry.target_text
    if entry.kind == "recipe":
        return out | {"targets": list(entry.targets), "required": list(entry.required), "config": entry.load_config()}
    sig, rows = _parameters(reg, entry, import_)
    facts = {"facts": list(getattr(entry, "facts", ())), "slots": dict(getattr(entry, "slots", {}))}
    params = [_param(p) for p in rows] if sig is not None else None
    return out | facts | {"parameters": params, "open": bool(sig and sig.open)}


def _param(p: Any) -> dict[str, Any]:
    return {"name": p.name, "type": describe(p.annotation) or None, "required": p.required} | {
        "default": None if p.required else p.default,
        "description": p.doc or None,
    }


def _parameters(reg: Any, entry: Any, import_: bool) -> tuple[Any, list[Any]]:
    """A component's signature and its parameters as shown: its own, a data source's loader's, slot keys."""
    from engine._config.params import load_signature, signature_of
    from engine._config.plan import LOADER_PARAMS, slot_key_params

    sig = load_signature(entry) if import_ else signature_of(entry)
    if sig is None:
        return None, []
    rows = list(sig.params) + (list(LOADER_PARAMS.values()) if entry.kind == "data" else [])
    if entry.kind != "section":
        rows += slot_key_params(reg, entry.kind, sig)  # model.init_from, model.freeze, optimizer.param_groups
    return sig, rows


def _show_parameters(console: Console, reg: Any, entry: Any, import_: bool) -> None:
    from engine._config.signature import read_signature

    if entry.kind == "section":
        where = entry.slot_kind or entry.name
        if entry.slot_kind:
            console.print(f"  keys every {entry.slot_kind} slot accepts")
        elif entry.optional:
            console.print("  optional: off (null) unless one of its keys is set")
    else:
        where = entry.kind
        if entry.facts:
            console.print(f"  facts:   {', '.join(entry.facts)}")
        if entry.slots:
            slots = ", ".join(f"{s} ({k}, default {entry.defaults.get(s) or '-'})" for s, k in entry.slots.items())
            console.print(f"  slots:   {slots}")
        if getattr(entry, "adapters", ()):
            names = ", ".join(a.rpartition(":")[2] for a in entry.adapters)
            console.print(f"  init_from also reads: {names} (state dicts of other libraries)")
        for name, shipped in (getattr(entry, "weights", None) or {}).items():
            params = "".join(f" {k}={v}" for k, v in shipped.params.items())
            console.print(f"  weights: {name}  {shipped.summary}  ({where}.weights={name}{params})")
    sig, rows = _parameters(reg, entry, import_)
    if sig is None:
        console.print("  parameters: not readable from source; add --import to import the target")
        return
    console.print(_param_table("parameter", rows, f"{where}."))
    if sig.open:
        console.print("  (also accepts other keyword arguments)")
    if entry.kind == "task" and isinstance(entry.target, str):
        evaluate = read_signature(f"{entry.target}.evaluate_run")  # its options: `engine evaluate RUN KEY=VALUE`
        if evaluate is not None and len(evaluate.params) > 1:
            console.print(_param_table("evaluate option", evaluate.params[1:]))  # after datamodule


def _param_table(first: str, params: list[Any], prefix: str = "") -> Table:
    table = Table(first, "type", "default", "description")
    for p in params:
        default = styled("required", "bold") if p.required else repr(p.default)
        table.add_row(prefix + p.name, describe(p.annotation) or "", default, p.doc)
    return table
