"""The conformance kit: every component a plugin contributes, checked the way the core will use it (docs/testing.md)."""

from __future__ import annotations

import tempfile
from collections.abc import Iterable
from functools import partial
from pathlib import Path
from typing import Any

from engine._config.compose import compose, defaults, merge
from engine._config.params import load_signature
from engine._config.plan import make_plan
from engine._config.signature import Unevaluated
from engine._config.types import check_type, describe
from engine._contract.declarations import KINDS
from engine._contract.protocols import problems
from engine._contract.targets import parse_targets
from engine._plugins.registry import get_registry
from engine._run.build import build_component, data_module


class ConformanceError(AssertionError):
    """One or more components failed their conformance checks."""


def check_plugin(
    name: str,
    *,
    run_dir: str | Path | None = None,
    data_params: dict[str, dict[str, Any]] | None = None,
    facts: dict[str, Any] | None = None,
    fast_dev_run: bool = True,
    skip: Iterable[str] = (),
    task_overrides: dict[str, list[str]] | None = None,
) -> list[str]:
    """Check every component plugin ``name`` contributes; raise `ConformanceError` on failure.

    Args:
        name: the plugin (entry-point) name.
        run_dir: where recipe smoke runs write (default: a temporary directory).
        data_params: parameters per data source (qualified name) without usable defaults,
            e.g. ``{"vision.image_folder": {"path": ...}}``.
        facts: data facts to build models from, tried before each of the plugin's own data sources
            (a model passes on the first it fits).
        fast_dev_run: also train each recipe and task for one batch.
        skip: qualified names of components not to check.
        task_overrides: config overrides per task (qualified name) for its ``fast_dev_run``, e.g.
            ``{"rl.dqn": ["data=rl.gym"]}``; by default the plugin's first data source (else ``synthetic``)
            and, in each model slot, the task's default, else the plugin's first model, else ``mlp``.

    Returns:
        the names of the checks that passed.
    """
    from engine._run.data import SourceDataModule, sample_batch  # imports torch

    reg = get_registry(fresh=True)
    info = reg.manager.plugins.get(name)
    if info is None:
        raise ConformanceError(f"plugin '{name}' is not installed (see `engine plugins list`)")
    if info.status != "ok":
        raise ConformanceError(f"plugin '{name}' is {info.status}: {info.error}")
    skipped = set(skip)
    entries = [e for e in reg.list() if e.plugin == name and e.qualified_name not in skipped]
    kinds = {kind: [e for e in entries if e.kind == kind] for kind in KINDS}
    failures: list[str] = []
    passed: list[str] = []
    batches: dict[str, tuple[Any, dict[str, Any]]] = {}

    def attempt(label: str, fn: Any) -> Any:
        try:
            result = fn()
        except Exception as exc:
            failures.append(f"{label}: {type(exc).__name__}: {exc}")
            return None
        passed.append(label)
        return result

    # 1. every target imports and exposes its parameters; tasks' optional methods fit the protocols
    for e in entries:
        if e.kind != "recipe":
            attempt(f"{e.kind} '{e.qualified_name}' imports", e.load)
            attempt(f"{e.kind} '{e.qualified_name}' parameters", lambda e=e: _defaults_fit(load_signature(e)))
        if e.kind == "task":
            attempt(f"task '{e.qualified_name}' protocols", lambda e=e: _conforms(e.load(), "task"))

    # 2. data sources build and yield batches, kept for the models
    for e in kinds["data"]:

        def check_data(e: Any = e) -> None:
            dm = data_module(e, dict((data_params or {}).get(e.qualified_name, {})), {"batch_size": 8})
            _conforms(dm.source if isinstance(dm, SourceDataModule) else dm, "data")
            got = dict(dm.facts)
            missing = [f for f in e.facts if f not in got]
            if missing:
                raise AssertionError(f"declares facts {missing} but its facts are {sorted(got)}")
            batch = sample_batch(dm, 8)
            x = batch[0] if isinstance(batch, (list, tuple)) else batch
            shape = got.get("input_shape")
            if shape is not None and hasattr(x, "shape") and list(x.shape[1:]) != list(shape):
                raise AssertionError(f"batch input shape {list(x.shape[1:])} != input_shape fact {list(shape)}")
            batches[e.qualified_name] = (batch, got)

        attempt(f"data '{e.qualified_name}' builds and yields batches", check_data)

    # 3. models run forward and backward on ``facts``, else on each of the plugin's data sources in turn:
    # a model passes on the first it fits (a plugin may mix data kinds, images and text)
    candidates = ([("facts=", None, facts)] if facts is not None else []) + [
        (f"data '{name}'", batch, got) for name, (batch, got) in batches.items()
    ]
    for e in kinds["model"]:
        attempt(f"model '{e.qualified_name}' forward/backward", lambda e=e: _check_model(reg, e, candidates))

    # 4. losses, optimizers, schedulers, deployment targets
    for e in kinds["loss"] + kinds["optimizer"] + kinds["scheduler"] + kinds["deploy"]:
        what, check = _CHECKS[e.kind]
        attempt(
            f"{e.kind} '{e.qualified_name}' {what}",
            lambda e=e, c=check: c(build_component(reg, e.kind, e.qualified_name, {})),
        )

    # 5. tasks and recipes validate, and train one batch
    root = Path(run_dir) if run_dir is not None else Path(tempfile.mkdtemp(prefix="engine-check-"))

    def smoke(cfg: dict[str, Any], name: str) -> None:
        from engine._run.runner import train

        quiet = {"fast_dev_run": True, "enable_progress_bar": False, "enable_model_summary": False}
        cfg = {**cfg, "trainer": {**cfg["trainer"], **quiet}}
        cfg["run"] = {"dir": str(root), "name": name.replace("/", "-")}
        train(make_plan(cfg, reg))

    own = {kind: [e.qualified_name for e in kinds[kind]] for kind in ("data", "model")}
    for e in kinds["task"]:
        overrides = (task_overrides or {}).get(e.qualified_name)
        base = defaults(reg)
        if overrides is None:
            data = (own["data"] or ["synthetic"])[0]
            base = merge(base, {"data": {"name": data, **(data_params or {}).get(data, {})}})
            overrides = [
                f"{slot}={e.defaults.get(slot) or (own['model'] or ['mlp'])[0]}"
                for slot, k in e.slots.items()
                if k == "model"
            ]
        overrides = [f"task={e.qualified_name}", *overrides]
        cfg = attempt(
            f"task '{e.qualified_name}' validates with {' '.join(overrides[1:]) or 'its defaults'}",
            lambda o=overrides, b=base: make_plan(compose(reg, None, (), o, base=b), reg).config,
        )
        if cfg is not None and fast_dev_run:
            attempt(f"task '{e.qualified_name}' completes fast_dev_run", lambda c=cfg, e=e: smoke(c, e.qualified_name))

    for e in [e for e in kinds["recipe"] if not e.required]:  # required: the user's own files
        cfg = attempt(
            f"recipe '{e.qualified_name}' validates", lambda e=e: make_plan(compose(reg, e.qualified_name), reg).config
        )
        if e.targets:
            attempt(f"recipe '{e.qualified_name}' targets", lambda e=e: parse_targets(e.targets, e.qualified_name))
        if cfg is not None and fast_dev_run:
            attempt(
                f"recipe '{e.qualified_name}' completes fast_dev_run", lambda c=cfg, e=e: smoke(c, e.qualified_name)
            )

    if failures:
        raise ConformanceError(
            f"plugin '{name}': {len(failures)} conformance check(s) failed:\n  - " + "\n  - ".join(failures)
        )
    return passed


def _defaults_fit(sig: Any) -> None:
    """Each default fits its parameter's declared type and range (a range refusing its own default is a slip)."""
    for p in sig.params:
        if not (p.required or isinstance(p.default, Unevaluated) or check_type(p.default, p.annotation)):
            raise ConformanceError(f"default {p.name}={p.default!r} is not {describe(p.annotation)}")


def _conforms(obj: Any, kind: str) -> None:
    found = problems(obj, kind)
    if found:
        raise AssertionError("; ".join(found))


def _check_model(reg: Any, e: Any, candidates: list[tuple[str, Any, Any]]) -> None:
    if not candidates:
        raise AssertionError("no data to build it from: pass facts=... to check_plugin")
    if len(candidates) == 1:
        return _forward_backward(reg, e.qualified_name, *candidates[0][1:])
    errors = []
    for label, batch, facts in candidates:
        try:
            return _forward_backward(reg, e.qualified_name, batch, facts)
        except Exception as exc:
            errors.append(f"with {label}: {type(exc).__name__}: {exc}")
    raise AssertionError("; ".join(errors))


def _forward_backward(reg: Any, name: str, batch: Any, facts: dict[str, Any]) -> None:
    """Build model ``name`` from ``facts``; run it forward and backward on ``batch`` (or random ``input_shape``)."""
    import torch

    model = build_component(reg, "model", name, {}, facts=facts)
    if not isinstance(model, torch.nn.Module):
        raise AssertionError(f"built a {type(model).__name__}, not a torch.nn.Module")
    if batch is None:
        shape = facts.get("input_shape")
        if shape is None:
            return
        x = torch.randn(2, *shape)
    else:
        x = batch[0] if isinstance(batch, (list, tuple)) else batch
    out = model(x)
    (out if isinstance(out, torch.Tensor) else out[0]).float().mean().backward()
    if not any(p.grad is not None for p in model.parameters()):
        raise AssertionError("backward reached no parameter")


def _check_loss(loss: Any) -> None:
    import torch

    tries = [  # a regression pair first: classification losses reject it, regression ones would broadcast
        (torch.randn(4, 1, requires_grad=True), torch.rand(4)),
        (torch.randn(4, 3, requires_grad=True), torch.randint(3, (4,))),
    ]
    errors = []
    for out, target in tries:
        try:
            value = loss(out, target)
        except Exception as exc:
            errors.append(str(exc))
            continue
        if value.dim() != 0 or not value.requires_grad:
            raise AssertionError("does not return a differentiable scalar")
        return
    raise AssertionError("fails on classification and regression examples: " + "; ".join(errors))


def _check_steps(factory: Any, scheduler: bool = False) -> None:
    """An optimizer (or a scheduler, over SGD) steps on a small layer."""
    import torch

    layer = torch.nn.Linear(3, 2)
    opt = torch.optim.SGD(layer.parameters(), lr=0.1) if scheduler else factory(layer.parameters())
    sched = factory(opt, total_steps=10, max_epochs=2) if scheduler else None
    sched = sched["scheduler"] if isinstance(sched, dict) else sched
    layer(torch.randn(4, 3)).sum().backward()
    opt.step()
    if isinstance(sched, torch.optim.lr_scheduler.ReduceLROnPlateau):
        sched.step(1.0)
    elif sched is not None:
        sched.step()


def _check_deploy(target: Any) -> None:
    """Export a tiny model, reload it, and agree with eager within the target's tolerance."""
    import torch

    _conforms(target, "deploy")
    model = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.ReLU(), torch.nn.Linear(8, 3)).eval()
    x = torch.randn(2, 4)
    with tempfile.TemporaryDirectory() as out:
        path = target.export(model, x, Path(out))
        if not Path(path).exists():
            raise AssertionError(f"export() returned {path}, which does not exist")
        got = torch.as_tensor(target.load(Path(path))(x))
    with torch.no_grad():
        diff = (got - model(x)).abs().max().item()
    tolerance = float(target.tolerance)
    if diff > tolerance:
        raise AssertionError(f"reloaded artifact differs from eager by {diff:.3g} > tolerance {tolerance:g}")


#: What the kit checks of each built loss, optimizer, scheduler and deployment target.
_CHECKS = {
    "loss": ("returns a differentiable scalar", _check_loss),
    "optimizer": ("steps", _check_steps),
    "scheduler": ("steps", partial(_check_steps, scheduler=True)),
    "deploy": ("exports and reloads", _check_deploy),
}
