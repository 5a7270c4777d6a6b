"""Continuing a run (``--resume``), decided before any compute: a completed run is left alone, a new length
refused where the run's scheduler was planned for the old one."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from engine._config.plan import Plan
from engine._config.signature import read_signature, signature_from_object
from engine._contract.errors import ConfigError
from engine._run.runs import read_config, read_json

#: What fixes a run's length: schedulers told ``total_steps`` or ``max_epochs`` were planned with them.
LENGTH_KEYS = ("trainer.max_epochs", "trainer.max_steps", "trainer.accumulate_grad_batches", "data.batch_size")


def check_resume(plan: Plan, resume: Path) -> dict[str, Any] | None:
    """Torch-free, before any compute: a completed run given the same config is left alone (its summary is
    returned); a new length is refused when a scheduler was planned for the old one (cosine, one-cycle)."""
    if not (resume / "config.yaml").is_file():
        return None  # killed before its records: trained again in place
    old, new = read_config(resume), plan.config
    changed = {key: (_value(old, key), _value(new, key)) for key in LENGTH_KEYS}
    changed = {key: (a, b) for key, (a, b) in changed.items() if a != b}
    summary = read_json(resume, "summary.json")
    if old == new and summary.get("status") == "completed":  # the same config: nothing left to train
        print(
            f"resume: {resume} is complete ({summary.get('epochs')} epochs, {summary.get('global_step')} steps): "
            "nothing left to train with the same config, left as it was (a larger trainer.max_epochs trains on)",
            file=sys.stderr,
        )
        return summary
    sized = [
        p.component.qualified_name
        for p in plan.slots.values()
        if p is not None and p.kind == "scheduler" and {"total_steps", "max_epochs"} & set(_arguments(p.component))
    ]
    if changed and sized:
        sets = " ".join(f"{key}={b}" for key, (_, b) in changed.items())
        raise ConfigError(
            f"cannot continue {resume} with {', '.join(f'{k} {a} -> {b}' for k, (a, b) in changed.items())}: "
            f"its scheduler {', '.join(sized)} was planned for the run's length and would not follow the new one",
            hint=f"train on from its weights in a new run: engine run -c {resume / 'config.yaml'} "
            f"{plan.task.main_slot or 'model'}.init_from={resume} {sets} run.name=NAME",
        )
    return None


def _value(config: dict[str, Any], key: str) -> Any:
    section, name = key.split(".")
    return (config.get(section) or {}).get(name)


def _arguments(component: Any) -> list[str]:
    target = component.target
    sig = read_signature(target) if isinstance(target, str) else signature_from_object(target)
    return sig.names if sig is not None else []
