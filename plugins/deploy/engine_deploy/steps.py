"""The ``deploy`` step of ``engine pipeline`` (declared through ``engine_pipeline_steps``)::

    stages:
      fine: {recipe: core/mlp-synthetic}
      export:
        deploy: {run: "${stages.fine}", target: onnx, options: {opset: 17}}

`check_deploy_step` runs when the pipeline is planned (torch-free: nothing is imported but this
module), `deploy_step` when the stage's turn comes; it returns the manifest ``engine deploy``
writes, with the figures the pipeline shows (``metrics``, ``primary_metric``).
"""

from __future__ import annotations

import ast
import importlib.util
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import engine
from engine import ConfigError, did_you_mean
from engine.runs import check_run_dir


def deploy_step(
    out: Path,
    run: str,
    target: str,
    options: dict = {},  # noqa: B006 (read, never changed: the pipeline's data)
    samples: int = 1024,
    timing: bool = True,
    threads: int = 1,
) -> dict:
    """Export ``run`` with ``target`` into the stage's directory ``out``, reload and verify the artifact.

    Args:
        run: the run to deploy: ``${stages.NAME}`` of a run stage, or any run directory.
        target: a deployment target: onnx, int8, container, or a plugin's (`engine components list --kind deploy`).
        options: the target's parameters ({opset: 17}), checked against them before anything runs.
        samples: test inputs to compare the artifact with eager PyTorch on.
        timing: measure latency at batch 1 and 32.
        threads: torch threads while exporting and measuring (0: the libraries' defaults).
    """
    from engine_deploy.deploy import deploy

    manifest = deploy(run, target, out=out, options=dict(options), samples=samples, timing=timing, threads=threads)
    return {**manifest, **figures(manifest)}


def figures(manifest: Mapping[str, Any]) -> dict[str, Any]:
    """What a pipeline shows of a deployment: the verification, and the test metric measured on the artifact."""
    v = manifest.get("verification") or {}
    metrics = {k: v[k] for k in ("max_abs_diff", "passed", "top1_agreement") if k in v}
    metric, primary = v.get("metric") or {}, None
    if "artifact" in metric:
        metrics[metric["name"]] = metric["artifact"]
        primary = {"name": metric["name"], "value": metric["artifact"], "eager": metric.get("eager")}
    return {"metrics": metrics, "primary_metric": primary}


def check_deploy_step(values: dict[str, Any], where: str, config: Mapping[str, Any]) -> dict[str, Any]:
    """The step's keys can work: the target exists (did-you-mean), its options are its parameters, the run is one.

    Returns the keys with the target's qualified name. Torch-free: the target's parameters are read
    from its source, not imported (their types are checked when it deploys).
    """
    for key in ("run", "target"):
        if not isinstance(values.get(key), str) or not values[key]:
            raise ConfigError(f"{where}.{key} must be set", hint=f"{where}: {{run: '${{stages.NAME}}', target: onnx}}")
    component = engine.get_registry().resolve("deploy", values["target"])
    options = values.get("options") or {}
    if not isinstance(options, Mapping):
        raise ConfigError(f"{where}.options must be a mapping of the target's parameters, got {options!r}")
    names = parameter_names(component)
    for key in options if names is not None else ():
        if key not in names:
            raise ConfigError(
                f"unknown parameter '{where}.options.{key}' for deploy target '{component.qualified_name}'"
                + did_you_mean(str(key), names),
                hint=f"it takes: {', '.join(names) or 'no parameters'}",
            )
    for key, low in (("samples", 1), ("threads", 0)):
        if values[key] < low:
            raise ConfigError(f"{where}.{key} must be an integer >= {low}, got {values[key]!r}")
    check_run_dir(values["run"], f"{where}.run")
    return {**values, "target": component.qualified_name, "options": dict(options)}


def parameter_names(component: Any) -> list[str] | None:
    """The names of a deploy target's parameters, read from its source without importing it (None: unknown)."""
    if not isinstance(component.target, str):
        import inspect

        return [p for p in inspect.signature(component.target).parameters if p != "self"]
    module, _, attr = component.target.partition(":")
    try:
        spec = importlib.util.find_spec(module)
        tree = ast.parse(Path(str(spec.origin)).read_text(encoding="utf-8")) if spec and spec.origin else None
    except (ImportError, OSError, SyntaxError, ValueError):
        return None
    node = next((n for n in getattr(tree, "body", []) if getattr(n, "name", None) == attr), None)
    if isinstance(node, ast.ClassDef):
        node = next((n for n in node.body if isinstance(n, ast.FunctionDef) and n.name == "__init__"), None)
        if node is None:  # a dataclass, or an inherited __init__: not read here
            return None
    if not isinstance(node, ast.FunctionDef) or node.args.kwarg is not None:
        return None
    args = [*node.args.posonlyargs, *node.args.args, *node.args.kwonlyargs]
    return [a.arg for a in args if a.arg != "self"]
