"""``engine evaluate RUN [RUN…]``: measure trained runs again, on their own data.

For each run the best checkpoint is loaded into the run's task and the run's
data source is rebuilt from its config (same seed, same split). A task may
define how it is evaluated (the :class:`~engine.protocols.EvaluatesRun` protocol);
its parameters after ``datamodule`` are the options ``engine evaluate RUN KEY=VALUE``
sets, checked against their annotations::

    class PPO(L.LightningModule):
        def evaluate_run(self, datamodule, episodes: int = 100, seed: int = 12345) -> dict[str, float]:
            ...  # e.g. run the greedy policy for `episodes` fresh episodes

otherwise Lightning's test (or validation) loop runs and its logged metrics are
reported.

``engine evaluate RUN1 RUN2 RUN3 --ensemble`` averages the runs' predicted
probabilities (outputs, for regression) on their shared test split and reports
each member beside the ensemble (:func:`ensemble`).
"""

from __future__ import annotations

import argparse
import warnings
from typing import Any

from engine.errors import ConfigError, EngineError
from engine.protocols import EvaluatesRun, HasSplits, implements


def _has_split(datamodule: Any, split: str) -> bool:
    return datamodule.has_split(split) if implements(datamodule, HasSplits) else True


def evaluation_options(task: Any, options: dict[str, Any]) -> dict[str, Any]:
    """``options`` checked against the task's ``evaluate_run`` parameters (after ``datamodule``)."""
    from engine.params import check_params
    from engine.signature import Signature, signature_from_object

    if not implements(task, EvaluatesRun):
        if options:
            raise ConfigError(
                f"the task {type(task).__name__} has no evaluation options (got {', '.join(options)})",
                hint="it is evaluated with Lightning's test loop; see --split and --checkpoint",
            )
        return {}
    sig = signature_from_object(task.evaluate_run)
    sig = Signature(sig.params[1:], sig.open)  # datamodule is the core's
    return check_params("evaluate", f"the evaluation of {type(task).__name__}", options, sig)


def evaluate(path: str, split: str = "test", which: str = "best", **options: Any) -> dict:
    """Metrics of the run at ``path`` (see the module docstring); ``options`` go to the task's own evaluation."""
    from engine.runs import open_run

    run = open_run(path)
    run.checkpoint(which)  # a clear message before any building when there is none
    datamodule = run.datamodule()
    task = run.task(which, facts=dict(datamodule.facts))
    checked = evaluation_options(task, options)
    if implements(task, EvaluatesRun):
        return dict(task.evaluate_run(datamodule, **checked))
    if not _has_split(datamodule, split):
        raise EngineError(f"run {run.path} has no '{split}' split to evaluate", hint="choose another with --split")
    import logging

    import lightning as L

    warnings.filterwarnings("ignore", message=".*does not have many workers.*")
    warnings.filterwarnings("ignore", message=".*LeafSpec.*")
    logging.getLogger("lightning.pytorch.utilities.rank_zero").setLevel(logging.WARNING)  # no device banner
    trainer = L.Trainer(
        accelerator="cpu",
        devices=1,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
    )
    loop = trainer.test if split == "test" else trainer.validate
    results = loop(task, datamodule=datamodule, verbose=False)
    return dict(results[0]) if results else {}


def predictions(path: str, split: str = "test", which: str = "best") -> tuple[Any, Any, dict[str, Any], Any, str]:
    """``(outputs, targets, facts, run, inputs digest)`` of run ``path`` on ``split``.

    Outputs come from the task's ``predict_step`` (the supervised task returns softmax probabilities);
    classification outputs that are not probabilities are passed through a softmax. The digest
    identifies the inputs evaluated, so runs can be shown to share their split.
    """
    import hashlib
    import logging

    import lightning as L
    import torch

    from engine.runs import open_run

    run = open_run(path)
    run.checkpoint(which)
    datamodule = run.datamodule()
    facts = dict(datamodule.facts)
    task = run.task(which, facts=facts)
    if not _has_split(datamodule, split):
        raise EngineError(f"run {run.path} has no '{split}' split to evaluate", hint="choose another with --split")
    datamodule.setup("test" if split == "test" else "validate")
    loader = datamodule.test_dataloader() if split == "test" else datamodule.val_dataloader()
    digest = hashlib.sha256()
    batches = []
    for x, y in loader:
        for tensor in _tensors((x, y)):
            digest.update(tensor.detach().contiguous().cpu().numpy().tobytes())
        batches.append(y)
    targets = torch.cat(batches)
    warnings.filterwarnings("ignore", message=".*does not have many workers.*")
    logging.getLogger("lightning.pytorch.utilities.rank_zero").setLevel(logging.WARNING)
    trainer = L.Trainer(
        accelerator="cpu", devices=1, logger=False, enable_checkpointing=False, enable_progress_bar=False
    )
    try:
        outputs = torch.cat([o.float() for o in trainer.predict(task, dataloaders=loader)])
    except Exception as exc:
        raise EngineError(
            f"run {run.path}: its task ({type(task).__name__}) cannot predict on its data: {type(exc).__name__}: {exc}",
            hint="ensembles need tasks whose predict_step returns probabilities or outputs (supervised, distill)",
        ) from exc
    problem = str(facts.get("problem") or run.config.get("task", {}).get("problem") or "classification")
    if problem == "classification":
        sums = outputs.sum(-1)
        if (outputs < 0).any() or not torch.allclose(sums, torch.ones_like(sums), atol=1e-3):
            outputs = outputs.softmax(-1)
    facts["problem"] = problem
    return outputs, targets, facts, run, digest.hexdigest()


def _tensors(obj: Any) -> Any:
    """Every tensor in a (nested) batch."""
    if isinstance(obj, (list, tuple)):
        for item in obj:
            yield from _tensors(item)
    else:
        import torch

        if isinstance(obj, torch.Tensor):
            yield obj


def scores(outputs: Any, targets: Any, problem: str) -> dict[str, float]:
    """Metrics of ``outputs`` (probabilities for classification) against ``targets``."""
    import torch
    import torchmetrics.functional as M

    if problem == "classification":
        n = outputs.shape[-1]
        nll = -torch.log(outputs.clamp_min(1e-12)).gather(1, targets.long().view(-1, 1)).mean()
        return {
            "accuracy": float(M.accuracy(outputs, targets, task="multiclass", num_classes=n)),
            "f1": float(M.f1_score(outputs, targets, task="multiclass", num_classes=n, average="macro")),
            "nll": float(nll),
        }
    out = outputs.view_as(targets) if outputs.numel() == targets.numel() else outputs
    return {"mae": float(M.mean_absolute_error(out, targets)), "mse": float(M.mean_squared_error(out, targets))}


def ensemble(paths: list[str], split: str = "test", which: str = "best") -> dict[str, dict[str, float]]:
    """Each run's metrics and the ensemble's (mean of probabilities, or of outputs) on their shared split.

    The runs must evaluate the same samples: the same data source and the same inputs and targets
    (however they were loaded or augmented in training). Returns ``{run name: metrics, ...,
    "ensemble": metrics}``.
    """
    if len(paths) < 2:
        raise EngineError("an ensemble needs at least two runs", hint="engine evaluate RUN1 RUN2 [RUN3 ...] --ensemble")
    import torch

    from engine.plan import LOADER_PARAMS

    members = [predictions(p, split, which) for p in paths]
    first_out, first_targets, first_facts, first_run, first_digest = members[0]
    problem = first_facts["problem"]
    source0 = first_run.config.get("data", {}).get("name")
    for out, _targets, facts, run, digest in members[1:]:
        source = run.config.get("data", {}).get("name")
        if source != source0 or digest != first_digest:
            data0, data = first_run.config.get("data", {}), run.config.get("data", {})
            differs = sorted(k for k in {*data0, *data} - set(LOADER_PARAMS) if data0.get(k) != data.get(k))
            raise EngineError(
                f"runs {first_run.path} and {run.path} do not share their {split} split (other samples"
                + (f"; data settings differ: {', '.join(differs)})" if differs else ")"),
                hint="ensemble runs trained on the same data with the same data.seed (vary the top-level seed only)",
            )
        if facts["problem"] != problem or out.shape != first_out.shape:
            raise EngineError(
                f"runs {first_run.path} and {run.path} predict different things "
                f"({problem} {list(first_out.shape[1:])} vs {facts['problem']} {list(out.shape[1:])})"
            )
        if facts.get("class_names") != first_facts.get("class_names"):
            raise EngineError(f"runs {first_run.path} and {run.path} have different class names")
    result: dict[str, dict[str, float]] = {}
    for out, targets, _, run, _ in members:
        name = run.path.name
        while name in result:
            name += "'"
        result[name] = scores(out, targets, problem)
    mean = torch.stack([m[0] for m in members]).mean(0)
    result["ensemble"] = scores(mean, first_targets, problem)
    return result


def _split_items(items: list[str]) -> tuple[list[str], dict[str, Any]]:
    """``RUN… KEY=VALUE…`` -> run directories and evaluation options (values parsed like overrides)."""
    from pathlib import Path

    from engine.compose import parse_override

    runs, options = [], {}
    for item in items:
        if "=" in item and not Path(item).is_dir():
            keys, value = parse_override(item)
            options[".".join(keys)] = value
        else:
            runs.append(item)
    if not runs:
        raise EngineError("no run directory given", hint="engine evaluate RUN [RUN...] [KEY=VALUE...]")
    return runs, options


def cmd_evaluate(args: argparse.Namespace) -> int:
    from engine.console import Console, Table, format_metric

    runs, options = _split_items(list(args.runs))
    console = Console()
    if args.ensemble:
        if options:
            raise EngineError(f"--ensemble takes no evaluation options (got {', '.join(options)})")
        result = ensemble(runs, split=args.split, which=args.checkpoint)
        table = Table("metric", *result)
        for key in next(iter(result.values())):
            table.add_row(f"{args.split}/{key}", *(format_metric(m[key]) for m in result.values()))
        console.print(table)
        best_key = "accuracy" if "accuracy" in result["ensemble"] else "mae"
        members = [m[best_key] for name, m in result.items() if name != "ensemble"]
        best = max(members) if best_key == "accuracy" else min(members)
        console.print(
            f"ensemble of {len(members)}: {best_key} {result['ensemble'][best_key]:.4f}, best member {best:.4f}"
        )
        return 0
    columns = {path: evaluate(path, split=args.split, which=args.checkpoint, **options) for path in runs}
    table = Table("metric", *columns)
    for key in sorted({k for metrics in columns.values() for k in metrics}):
        table.add_row(key, *(format_metric(metrics.get(key)) for metrics in columns.values()))
    console.print(table)
    return 0
