"""What a hook implementation hands back, checked as soon as it returns: garbage is the plugin's fault, named.

`problem` says what is wrong (the value shown, shortened) or None; the manager then marks the plugin broken.
``engine_adjust_config`` must keep the config's shape, ``engine_model_built`` the model a module (`shape`).
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Mapping
from typing import Any

from engine._contract.events import RunCollection


def shown(value: Any, limit: int = 160) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _module(model: Any) -> bool:
    torch = sys.modules.get("torch")
    return torch is not None and isinstance(model, torch.nn.Module)


def shape(hook: str, args: tuple[Any, ...]) -> Any:
    """Taken before the call: each top-level config key's type and its ``name``'s; whether the model is a module."""
    if hook == "engine_adjust_config" and args and isinstance(args[0], dict):
        return {k: (type(v), type(v.get("name")) if isinstance(v, dict) else None) for k, v in args[0].items()}
    return _module(getattr(args[0], "model", None)) if hook == "engine_model_built" and args else None


def _config(config: dict[str, Any], before: dict[str, Any]) -> str | None:
    for key in sorted({*before, *config}):
        now, (was, name) = config.get(key), before.get(key, (type(None), None))
        if key == "seed":
            bad = was is int and (not isinstance(now, int) or isinstance(now, bool))
        else:  # a section (or a key it adds) is a mapping; the core's never None
            bad = was in (dict, type(None)) and not (isinstance(now, dict) or (now is None and key not in CORE))
        if bad:
            return f"left config[{key!r}] = {shown(now)}: a section must stay a mapping (seed an int)"
        if name is str and isinstance(now, dict) and not isinstance(now.get("name"), str):
            return f"left config[{key!r}]['name'] = {shown(now.get('name'))}: a component name must stay a string"
    return None


def _callbacks(value: Any) -> bool:
    from lightning.pytorch import Callback
    from lightning.pytorch.loggers import Logger

    return isinstance(value, (list, tuple)) and all(isinstance(item, (Callback, Logger)) for item in value)


CORE = ("task", "data", "trainer")  # config keys the core composes: they stay mappings
#: hook -> (is what it returned or left fine, what it should be)
RETURNS: dict[str, tuple[Callable[[Any], bool], str]] = {
    "engine_callbacks": (_callbacks, "a list of Lightning callbacks and loggers"),
    "engine_run_finished": (lambda v: isinstance(v, dict), "a dict of summary entries (or None)"),
    "engine_run_main": (lambda v: isinstance(v, int) and not isinstance(v, bool), "an exit code (or None)"),
    "engine_run_collection": (lambda v: isinstance(v, RunCollection), "a RunCollection (or None)"),
}


def problem(hook: str, value: Any, args: tuple[Any, ...], before: Any) -> str | None:
    """What is wrong with what a plugin's ``hook`` returned (``value``) or left in its arguments, or None."""
    if hook == "engine_adjust_config" and before is not None:
        return _config(args[0], before)
    if hook == "engine_model_built" and before and not _module(args[0].model):
        return f"left built.model = {shown(args[0].model)}, not a torch.nn.Module"
    splits = getattr(args[0], "splits", None) if hook == "engine_datasets_built" else {"train": 0}
    if not isinstance(splits, Mapping) or "train" not in splits:
        return f"left built.splits = {shown(splits)}, not a dict of datasets with a 'train' split"
    ok, expected = RETURNS.get(hook, (None, ""))
    return None if ok is None or value is None or ok(value) else f"returned {shown(value)}, not {expected}"
