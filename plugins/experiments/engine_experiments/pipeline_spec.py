"""A pipeline file read, checked and planned: named stages in order, each a run or a step (torch-free).

::

    stages:
      pre:                                   # a run: recipe, files, config sections, overrides (all optional)
        recipe: core/mlp-synthetic
        overrides: [trainer.max_epochs=2]
      fine:
        model: {init_from: "${stages.pre}"}  # config sections, merged like one more `-c` file
        overrides: [data.num_samples=500]
      export:                                # a step: KIND: {keys}, KIND declared by a plugin
        deploy: {run: "${stages.fine}", target: onnx}

``${stages.NAME}`` is the run directory of an earlier stage (``DIR/stages/NAME``). It is substituted
here, before composition, so it never meets OmegaConf's own ``${...}`` interpolation. A run stage is
composed like ``engine run`` (defaults, recipe, files relative to the pipeline file, its sections,
its overrides) and planned with `engine.plan`. A step's kind is a component of kind ``step``
(the ``engine_pipeline_steps`` hook): its keys are checked against the parameters of the step's
function (`engine.check_arguments`) and by the step's own ``check``. While the stages are
planned, the directories of the run stages count as runs that will exist
(`engine.runs.planned_runs`), so ``model.init_from: ${stages.pre}`` validates before ``pre``
has trained. See docs/pipelines.md.
"""

from __future__ import annotations

import copy
import hashlib
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import engine
from engine import ConfigError, EngineError, did_you_mean
from engine.runs import planned_runs

#: A stage's name: its directory's name too.
STAGE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]*$")
#: ``${stages.NAME}`` (and the near miss ``${stage.NAME}``, refused with a did-you-mean).
REFERENCE = re.compile(r"\$\{\s*(stages?)\s*\.\s*([^}]*?)\s*\}")
RUN_KEYS = ("recipe", "files", "overrides")
#: Config keys the core composes itself (every other section comes from a plugin's declaration).
CORE_SECTIONS = ("task", "data", "seed", "trainer")


@dataclass(frozen=True)
class StageSpec:
    """One stage as written: a run (``kind == "train"``) or a step (``kind == "step"``), references not substituted."""

    name: str
    kind: str
    recipe: str | None = None
    files: tuple[Path, ...] = ()
    sections: dict[str, Any] | None = None  # config sections given at the stage's top level
    overrides: tuple[str, ...] = ()
    step: str | None = None  # a step's kind, as written (``deploy``)
    keys: dict[str, Any] | None = None  # a step's keys, as written
    refs: tuple[str, ...] = ()  # the earlier stages it names, in order


@dataclass(frozen=True)
class StagePlan:
    """A stage checked and resolved: where it goes, what it is, the hash of its resolved config."""

    spec: StageSpec
    run_dir: Path
    config_hash: str
    description: str
    plan: Any = None  # a run stage's engine Plan
    step: Any = None  # a step's Component (kind ``step``)
    values: dict[str, Any] | None = None  # a step's keys, checked, references substituted
    notes: tuple[str, ...] = ()

    @property
    def name(self) -> str:
        return self.spec.name

    @property
    def kind(self) -> str:
        """``train`` for a run stage, the step kind's name for a step (``deploy``)."""
        return "train" if self.step is None else str(self.step.name)


def in_stage(name: str, exc: EngineError) -> EngineError:
    """``exc`` (same class and exit code) with its message prefixed ``stage 'NAME': ``."""
    message = f"stage '{name}': {exc.message}"
    if exc.message.startswith(f"stage '{name}': "):
        return exc
    try:
        out = copy.copy(exc)
    except Exception:  # a subclass whose __init__ copy cannot call: keep what the user sees
        out = EngineError(message, hint=exc.hint)
        out.exit_code = exc.exit_code
    out.message, out.args = message, (message,)
    return out


# --------------------------------------------------------------------------- reading


def load_source(source: str | Path | Mapping[str, Any]) -> tuple[dict[str, Any], Path | None]:
    """The pipeline as plain data (``${...}`` left as written) and the file it came from."""
    if isinstance(source, Mapping):
        return copy.deepcopy(dict(source)), None
    path = Path(source).expanduser()
    if not path.is_file():
        raise ConfigError(f"pipeline file not found: {path}", hint="engine pipeline FILE.yaml (see docs/pipelines.md)")
    return engine.read_config_file(path), path


def config_sections(registry: Any) -> set[str]:
    """Every top-level config key a run stage may hold: the core's, every task's slots, the plugins' sections."""
    slots = {slot for task in registry.list("task") for slot in task.slots}
    return {*CORE_SECTIONS, *slots, *(s.name for s in registry.list("section") if s.slot_kind is None)}


def parse(data: Mapping[str, Any], registry: Any, base: Path | None = None) -> list[StageSpec]:
    """The stages of a pipeline mapping, checked: names, keys, kinds, and every ``${stages.X}`` reference."""
    for key in data:
        if key != "stages":
            raise ConfigError(
                f"unknown pipeline key '{key}'{did_you_mean(str(key), ['stages'])}",
                hint="a pipeline file holds `stages:`, a mapping of stage names to stages (see docs/pipelines.md)",
            )
    stages = data.get("stages")
    if not isinstance(stages, Mapping) or not stages:
        raise ConfigError(
            "a pipeline needs `stages:`, a mapping of stage names to stages, in order",
            hint="e.g. stages: {pre: {recipe: core/mlp-synthetic}, fine: {model: {init_from: '${stages.pre}'}}}",
        )
    sections = config_sections(registry)
    steps = {n for e in registry.list("step") for n in (e.name, e.qualified_name)}
    names = [str(n) for n in stages]
    out: list[StageSpec] = []
    for i, (name, body) in enumerate(stages.items()):
        name = str(name)
        if not STAGE_NAME.match(name):
            raise ConfigError(
                f"stage name '{name}' is not usable as a directory name",
                hint="letters, digits, _ and -, starting with a letter or digit",
            )
        try:
            spec = _stage(name, {} if body is None else body, sections, steps, base)
            out.append(replace(spec, refs=_references(spec, names[:i], names[i + 1 :])))
        except EngineError as exc:
            raise in_stage(name, exc) from None
    return out


def _stage(name: str, body: Any, sections: set[str], steps: set[str], base: Path | None) -> StageSpec:
    if not isinstance(body, Mapping):
        raise ConfigError(f"a stage is a mapping, got {type(body).__name__}", hint="e.g. {recipe: core/mlp-synthetic}")
    kind = next((str(k) for k in body if k in steps and k not in sections and k not in RUN_KEYS), None)
    if kind is not None:
        if set(body) != {kind}:
            raise ConfigError(f"a {kind} step holds only `{kind}:`, not {', '.join(sorted(set(body) - {kind}))}")
        keys = body[kind] if body[kind] is not None else {}
        if not isinstance(keys, Mapping):
            hint = f"see `engine components show {kind}`"
            raise ConfigError(f"{kind}: must be a mapping of the step's keys", hint=hint)
        return StageSpec(name, "step", step=kind, keys=dict(keys))
    for key in body:
        if key not in RUN_KEYS and key not in sections:
            kinds = sorted(s for s in steps if "." not in s)
            raise ConfigError(
                f"unknown key '{key}'{did_you_mean(str(key), [*RUN_KEYS, *kinds, *sections])}",
                hint=f"a stage takes {', '.join(RUN_KEYS)} and config sections ({', '.join(sorted(sections))}), "
                f"or is one step: KIND: {{keys}} (step kinds, declared by plugins: {', '.join(kinds) or 'none'})",
            )
    lists = {}
    for key, what in (("overrides", "KEY=VALUE strings: [trainer.max_epochs=2]"), ("files", "YAML config files")):
        value = body.get(key) or []
        value = [value] if isinstance(value, str) else value
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise ConfigError(f"{key}: must be a list of {what}, got {value!r:.80}")
        lists[key] = value
    recipe = body.get("recipe")
    if recipe is not None and not isinstance(recipe, str):
        raise ConfigError(f"recipe: must be a recipe name, got {recipe!r}", hint="see `engine components list`")
    files = [Path(f).expanduser() for f in lists["files"]]
    return StageSpec(
        name,
        "train",
        recipe=recipe,
        files=tuple(f if f.is_absolute() or base is None else base / f for f in files),
        sections={k: v for k, v in body.items() if k not in RUN_KEYS} or None,
        overrides=tuple(lists["overrides"]),
    )


def _strings(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, Mapping):
        return [s for v in value.values() for s in _strings(v)]
    if isinstance(value, (list, tuple)):
        return [s for v in value for s in _strings(v)]
    return []


def _references(spec: StageSpec, earlier: list[str], later: list[str]) -> tuple[str, ...]:
    refs: list[str] = []
    for text in _strings([spec.sections, list(spec.overrides), spec.keys]):
        for word, ref in REFERENCE.findall(text):
            if word == "stage":
                raise ConfigError(f"'{text}' names ${{stage.{ref}}} — did you mean '${{stages.{ref}}}'?")
            if ref == spec.name:
                raise ConfigError(f"'{text}' refers to the stage itself", hint="a stage can use the stages before it")
            if ref in later:
                raise ConfigError(
                    f"'{text}' refers to stage '{ref}', which comes later",
                    hint=f"stage '{ref}' runs after stage '{spec.name}': move it before, or refer to an earlier one",
                )
            if ref not in earlier:
                raise ConfigError(
                    f"unknown stage '{ref}' in '{text}'{did_you_mean(ref, earlier)}",
                    hint="earlier stages: " + (", ".join(earlier) or "none: this is the first stage"),
                )
            if ref not in refs:
                refs.append(ref)
    return tuple(refs)


# --------------------------------------------------------------------------- substituting and hashing


def substitute(value: Any, dirs: Mapping[str, Path]) -> Any:
    """``value`` with every ``${stages.NAME}`` replaced by that stage's run directory."""
    if isinstance(value, str):
        return REFERENCE.sub(lambda m: str(dirs[m.group(2)]), value)
    if isinstance(value, Mapping):
        return {k: substitute(v, dirs) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [substitute(v, dirs) for v in value]
    return value


def _override(item: str, dirs: Mapping[str, Path]) -> str:
    """An override with its references substituted; a value that is one reference is quoted (any path reads back)."""
    key, sep, value = item.partition("=")
    whole = REFERENCE.fullmatch(value.strip())
    if sep and whole:
        return f"{key}='" + str(dirs[whole.group(2)]).replace("'", "''") + "'"
    return substitute(item, dirs)


def fingerprint(config: Mapping[str, Any], dirs: Mapping[str, Path]) -> str:
    """The hash of a resolved config, the same wherever the pipeline directory is.

    ``run.dir`` and ``run.name`` (set by the pipeline) are left out, and the stage directories are put
    back as ``${stages.NAME}``: moving the pipeline directory (and saying ``--dir``) reruns nothing.
    """
    paths = sorted(((str(p), n) for n, p in dirs.items()), key=lambda x: -len(x[0]))

    def back(value: Any) -> Any:
        if isinstance(value, str):
            for path, n in paths:
                value = value.replace(path, f"${{stages.{n}}}")
            return value
        if isinstance(value, Mapping):
            return {k: back(v) for k, v in value.items()}
        if isinstance(value, (list, tuple)):
            return [back(v) for v in value]
        return value

    data = back(dict(config))
    if isinstance(data.get("run"), dict):
        data["run"] = {k: v for k, v in data["run"].items() if k not in ("dir", "name")}
    text = json.dumps(data, sort_keys=True, default=str, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:16]


# --------------------------------------------------------------------------- planning


def plan_stages(stages: list[StageSpec], dirs: Mapping[str, Path], registry: Any) -> list[StagePlan]:
    """Every stage planned before any trains: the run stages' directories count as runs to come."""
    with planned_runs(dirs[s.name] for s in stages if s.kind == "train"):
        return [plan_stage(s, dirs, registry) for s in stages]


def plan_stage(spec: StageSpec, dirs: Mapping[str, Path], registry: Any) -> StagePlan:
    """Compose and plan one stage (``dirs``: every stage's directory); errors name the stage."""
    try:
        return _plan_step(spec, dirs, registry) if spec.kind == "step" else _plan_run(spec, dirs, registry)
    except EngineError as exc:
        raise in_stage(spec.name, exc) from None


def _plan_run(spec: StageSpec, dirs: Mapping[str, Path], registry: Any) -> StagePlan:
    run_dir = dirs[spec.name]
    where = {"dir": str(run_dir.parent), "name": run_dir.name}
    files: list[Any] = [*spec.files, substitute(spec.sections or {}, dirs), {"run": where}]
    overrides = [_override(o, dirs) for o in spec.overrides]
    cfg = engine.compose(spec.recipe, files, overrides, registry=registry)
    if {k: cfg["run"].get(k) for k in where} != where:
        raise ConfigError(
            "run.dir and run.name are the pipeline's: a stage's run is DIR/stages/NAME",
            hint="drop the run.dir / run.name overrides (choose the pipeline directory with --dir)",
        )
    plan = engine.plan(cfg, registry=registry)
    model = f"{plan.primary.component.qualified_name} on " if plan.primary else "on "
    epochs = plan.config["trainer"].get("max_epochs")
    text = f"{plan.task.qualified_name}: {model}{plan.data.qualified_name}"
    text += f", {epochs} epoch{'s' * (epochs != 1)}" if isinstance(epochs, int) else ""
    text += f" (from {', '.join(spec.refs)})" if spec.refs else ""
    return StagePlan(spec, run_dir, fingerprint(plan.config, dirs), text, plan=plan, notes=tuple(plan.notes))


def _plan_step(spec: StageSpec, dirs: Mapping[str, Path], registry: Any) -> StagePlan:
    """A step: its kind resolved, its keys checked against the step's parameters and by its own check."""
    kind = str(spec.step)
    component = registry.resolve("step", kind)
    values = engine.check_arguments(component.load(), substitute(spec.keys or {}, dirs), kind, skip=1)
    check = component.load_check()
    if check is not None:
        checked = check(values, kind, {"stages": {n: str(d) for n, d in dirs.items()}})
        values = dict(checked) if isinstance(checked, Mapping) else values
    shown = [
        f"{k}={v}"
        for k, v in values.items()
        if isinstance(v, str) and not REFERENCE.search(str((spec.keys or {}).get(k, "")))
    ]
    text = f"{component.name} {', '.join(spec.refs)}".strip() + (f" ({', '.join(shown)})" if shown else "")
    config_hash = fingerprint({"step": component.qualified_name, **values}, dirs)
    return StagePlan(spec, dirs[spec.name], config_hash, text, step=component, values=values)
