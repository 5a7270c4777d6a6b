"""A pipeline file read, checked and planned: named stages in order, each a run or a deploy step (torch-free).

::

    stages:
      pre:                                   # a run: recipe, files, config sections, overrides (all optional)
        recipe: core/mlp-synthetic
        overrides: [trainer.max_epochs=2]
      fine:
        model: {init_from: "${stages.pre}"}  # config sections, merged like one more `-c` file
        overrides: [data.num_samples=500]
      export:
        deploy: {run: "${stages.fine}", target: onnx}

``${stages.NAME}`` is the run directory of an earlier stage (``DIR/stages/NAME``). It is substituted
here, before composition, so it never meets OmegaConf's own ``${...}`` interpolation. A run stage is
composed like ``engine run`` (defaults, recipe, files relative to the pipeline file, its sections,
its overrides) and planned with :func:`engine.plan.make_plan`. While the stages are planned, the
directories of the run stages count as runs that will exist (:func:`engine.rundir.planned_runs`),
so ``model.init_from: ${stages.pre}`` validates before ``pre`` has trained. See docs/pipelines.md.
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

from engine.errors import ConfigError, EngineError, did_you_mean

#: A stage's name: its directory's name too.
STAGE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]*$")
#: ``${stages.NAME}`` (and the near miss ``${stage.NAME}``, refused with a did-you-mean).
REFERENCE = re.compile(r"\$\{\s*(stages?)\s*\.\s*([^}]*?)\s*\}")
RUN_KEYS = ("recipe", "files", "overrides")
#: A deploy step's keys and their defaults (``run`` and ``target`` are required); see ``engine deploy``.
DEPLOY_KEYS: dict[str, Any] = {
    "run": None,
    "target": None,
    "options": {},
    "samples": 1024,
    "timing": True,
    "threads": 1,
}


@dataclass(frozen=True)
class StageSpec:
    """One stage as written: a run (``kind == "train"``) or a deploy step, references not yet substituted."""

    name: str
    kind: str
    recipe: str | None = None
    files: tuple[Path, ...] = ()
    sections: dict[str, Any] | None = None  # config sections given at the stage's top level
    overrides: tuple[str, ...] = ()
    deploy: dict[str, Any] | None = None
    refs: tuple[str, ...] = ()  # the earlier stages it names, in order


@dataclass(frozen=True)
class StagePlan:
    """A stage checked and resolved: where it goes, what it is, the hash of its resolved config."""

    spec: StageSpec
    run_dir: Path
    config_hash: str
    description: str
    plan: Any = None  # a run stage's engine.plan.Plan
    deploy: dict[str, Any] | None = None  # a deploy step's deploy() arguments, references substituted
    notes: tuple[str, ...] = ()

    @property
    def name(self) -> str:
        return self.spec.name

    @property
    def kind(self) -> str:
        return self.spec.kind


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
    from engine.compose import load_file

    if isinstance(source, Mapping):
        return copy.deepcopy(dict(source)), None
    path = Path(source).expanduser()
    if not path.is_file():
        raise ConfigError(f"pipeline file not found: {path}", hint="engine pipeline FILE.yaml (see docs/pipelines.md)")
    return load_file(path), path


def parse(data: Mapping[str, Any], registry: Any, base: Path | None = None) -> list[StageSpec]:
    """The stages of a pipeline mapping, checked: names, keys, kinds, and every ``${stages.X}`` reference."""
    from engine.compose import section_kinds
    from engine.registry import CORE_KEYS

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
    sections = {*CORE_KEYS, *section_kinds(registry), *(s.name for s in registry.sections())}
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
            spec = _stage(name, {} if body is None else body, sections, base)
            spec = replace(spec, refs=_references(spec, names[:i], names[i + 1 :]))
            run = (spec.deploy or {}).get("run")
            if isinstance(run, str) and any(s.kind == "deploy" for s in out if s.name in _refs_in(run)):
                raise ConfigError(
                    f"deploy.run names a deploy step ({run})", hint="deploy.run names a stage that trains"
                )
        except EngineError as exc:
            raise in_stage(name, exc) from None
        out.append(spec)
    return out


def _stage(name: str, body: Any, sections: set[str], base: Path | None) -> StageSpec:
    if not isinstance(body, Mapping):
        raise ConfigError(f"a stage is a mapping, got {type(body).__name__}", hint="e.g. {recipe: core/mlp-synthetic}")
    if "deploy" in body:
        step = body["deploy"]
        if set(body) != {"deploy"}:
            raise ConfigError(f"a deploy step holds only `deploy:`, not {', '.join(sorted(set(body) - {'deploy'}))}")
        if not isinstance(step, Mapping):
            raise ConfigError("deploy: must be a mapping", hint="deploy: {run: '${stages.NAME}', target: onnx}")
        for key in step:
            if key not in DEPLOY_KEYS:
                raise ConfigError(
                    f"unknown key 'deploy.{key}'{did_you_mean(str(key), DEPLOY_KEYS)}",
                    hint=f"a deploy step takes: {', '.join(DEPLOY_KEYS)}",
                )
        return StageSpec(name, "deploy", deploy=dict(step))
    for key in body:
        if key not in RUN_KEYS and key not in sections:
            raise ConfigError(
                f"unknown key '{key}'{did_you_mean(str(key), [*RUN_KEYS, 'deploy', *sections])}",
                hint=f"a stage takes {', '.join(RUN_KEYS)}, deploy, or config sections ({', '.join(sorted(sections))})",
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


def _refs_in(text: str) -> list[str]:
    return [m.group(2) for m in REFERENCE.finditer(text)]


def _references(spec: StageSpec, earlier: list[str], later: list[str]) -> tuple[str, ...]:
    refs: list[str] = []
    for text in _strings([spec.sections, list(spec.overrides), spec.deploy]):
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
    from engine.rundir import planned_runs

    with planned_runs(dirs[s.name] for s in stages if s.kind == "train"):
        return [plan_stage(s, dirs, registry) for s in stages]


def plan_stage(spec: StageSpec, dirs: Mapping[str, Path], registry: Any) -> StagePlan:
    """Compose and plan one stage (``dirs``: every stage's directory); errors name the stage."""
    try:
        return _plan_deploy(spec, dirs, registry) if spec.kind == "deploy" else _plan_run(spec, dirs, registry)
    except EngineError as exc:
        raise in_stage(spec.name, exc) from None


def _plan_run(spec: StageSpec, dirs: Mapping[str, Path], registry: Any) -> StagePlan:
    from engine.compose import compose
    from engine.plan import make_plan

    run_dir = dirs[spec.name]
    where = {"dir": str(run_dir.parent), "name": run_dir.name}
    files: list[Any] = [*spec.files, substitute(spec.sections or {}, dirs), {"run": where}]
    cfg = compose(registry, spec.recipe, files, [_override(o, dirs) for o in spec.overrides])
    if {k: cfg["run"].get(k) for k in where} != where:
        raise ConfigError(
            "run.dir and run.name are the pipeline's: a stage's run is DIR/stages/NAME",
            hint="drop the run.dir / run.name overrides (choose the pipeline directory with --dir)",
        )
    plan = make_plan(cfg, registry)
    model = f"{plan.primary.component.qualified_name} on " if plan.primary else "on "
    epochs = plan.config["trainer"].get("max_epochs")
    text = f"{plan.task.qualified_name}: {model}{plan.data.qualified_name}"
    text += f", {epochs} epoch{'s' * (epochs != 1)}" if isinstance(epochs, int) else ""
    text += f" (from {', '.join(spec.refs)})" if spec.refs else ""
    return StagePlan(spec, run_dir, fingerprint(plan.config, dirs), text, plan=plan, notes=tuple(plan.notes))


def _plan_deploy(spec: StageSpec, dirs: Mapping[str, Path], registry: Any) -> StagePlan:
    from engine.params import check_params
    from engine.sections import check_run_dir

    step = {**copy.deepcopy(DEPLOY_KEYS), **substitute(spec.deploy or {}, dirs)}
    for key in ("run", "target"):
        if not isinstance(step[key], str) or not step[key]:
            raise ConfigError(f"deploy.{key} must be set", hint="deploy: {run: '${stages.NAME}', target: onnx}")
    _check_deploy_plugin(registry)
    component = registry.resolve("deploy", step["target"])
    if not isinstance(step["options"], Mapping):
        raise ConfigError(f"deploy.options must be a mapping of the target's parameters, got {step['options']!r}")
    sig = registry.signature(component)  # None: checked when it deploys (nothing is imported here)
    what = f"deploy target '{component.qualified_name}'"
    options = check_params("deploy.options", what, dict(step["options"]), sig) if sig else dict(step["options"])
    for key, low in (("samples", 1), ("threads", 0)):
        if not isinstance(step[key], int) or isinstance(step[key], bool) or step[key] < low:
            raise ConfigError(f"deploy.{key} must be an integer >= {low}, got {step[key]!r}")
    if not isinstance(step["timing"], bool):
        raise ConfigError(f"deploy.timing must be true or false, got {step['timing']!r}")
    check_run_dir(step["run"], "deploy.run")
    step["target"] = component.qualified_name
    source = spec.refs[0] if spec.refs else step["run"]
    notes = () if sig else (f"the options of {what} are checked when it deploys (its source could not be read)",)
    return StagePlan(
        spec,
        dirs[spec.name],
        fingerprint({**step, "options": options}, dirs),
        f"deploy {source} to {component.qualified_name}",
        deploy=step,
        notes=notes,
    )


def _check_deploy_plugin(registry: Any) -> None:
    """The engine-deploy plugin is installed and working: a deploy step calls its ``deploy()``."""
    info = next((p for p in registry.manager.infos() if p.module.split(".")[0] == "engine_deploy"), None)
    if info is None:
        raise ConfigError(
            "a deploy step needs the engine-deploy plugin, which is not installed",
            hint="engine plugins install engine-deploy",
        )
    if info.status != "ok":
        raise ConfigError(
            f"a deploy step needs the plugin '{info.name}' ({info.distribution}), which is {info.status}"
            + (f": {info.error}" if info.error else ""),
            hint=f"engine plugins enable {info.name}" if info.status == "disabled" else "see `engine plugins list`",
        )
