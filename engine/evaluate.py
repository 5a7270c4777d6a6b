"""``engine evaluate RUN [RUN…]``: measure trained runs again, on their own data.

For each run the best checkpoint is loaded into the run's task and the run's
data source is rebuilt from its config (same seed, same split). A task may
define how it is evaluated::

    class PPO(L.LightningModule):
        def evaluate_run(self, datamodule, episodes: int, seed: int) -> dict[str, float]:
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

from engine.errors import EngineError


def evaluate(path: str, split: str = "test", episodes: int = 100, seed: int = 12345, which: str = "best") -> dict:
    """Metrics of the run at ``path`` (see the module docstring)."""
    from engine.runs import open_run

    run = open_run(path)
    run.checkpoint(which)  # a clear message before any building when there is none
    datamodule = run.datamodule()
    task = run.task(which, facts=dict(datamodule.facts))
    custom = getattr(task, "evaluate_run", None)
    if custom is not None:
        return dict(custom(datamodule, episodes=episodes, seed=seed))
    has_split = getattr(datamodule, "has_split", lambda s: True)
    if not has_split(split):
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


#: Data keys that do not change which samples are evaluated (loading, training-time augmentation).
_LOADING_KEYS = ("batch_size", "num_workers", "pin_memory", "augment")


def predictions(path: str, split: str = "test", which: str = "best") -> tuple[Any, Any, dict[str, Any], Any]:
    """``(outputs, targets, facts, run)`` of run ``path`` on ``split``: probabilities for classification.

    Outputs come from the task's ``predict_step`` (the supervised task returns softmax probabilities);
    classification outputs that are not probabilities are passed through a softmax.
    """
    import logging

    import lightning as L
    import torch

    from engine.runs import open_run

    run = open_run(path)
    run.checkpoint(which)
    datamodule = run.datamodule()
    facts = dict(datamodule.facts)
    task = run.task(which, facts=facts)
    if not getattr(datamodule, "has_split", lambda s: True)(split):
        raise EngineError(f"run {run.path} has no '{split}' split to evaluate", hint="choose another with --split")
    datamodule.setup("test" if split == "test" else "validate")
    loader = datamodule.test_dataloader() if split == "test" else datamodule.val_dataloader()
    targets = torch.cat([batch[1] for batch in loader])
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
    problem = str(facts.get("problem") or getattr(task, "problem", "classification"))
    if problem == "classification":
        sums = outputs.sum(-1)
        if (outputs < 0).any() or not torch.allclose(sums, torch.ones_like(sums), atol=1e-3):
            outputs = outputs.softmax(-1)
    facts["problem"] = problem
    return outputs, targets, facts, run


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

    The runs must evaluate the same samples: same data section (loading and augmentation aside)
    and identical targets. Returns ``{run name: metrics, ..., "ensemble": metrics}``.
    """
    if len(paths) < 2:
        raise EngineError("an ensemble needs at least two runs", hint="engine evaluate RUN1 RUN2 [RUN3 ...] --ensemble")
    import torch

    members = [predictions(p, split, which) for p in paths]
    first_out, first_targets, first_facts, first_run = members[0]
    problem = first_facts["problem"]
    data0 = {k: v for k, v in first_run.config.get("data", {}).items() if k not in _LOADING_KEYS}
    for out, targets, facts, run in members[1:]:
        data = {k: v for k, v in run.config.get("data", {}).items() if k not in _LOADING_KEYS}
        differs = sorted(k for k in set(data) | set(data0) if data.get(k) != data0.get(k))
        if differs or not torch.equal(targets, first_targets):
            raise EngineError(
                f"runs {first_run.path} and {run.path} do not share their {split} split"
                + (f" (data settings differ: {', '.join(differs)})" if differs else ""),
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
    for out, targets, _, run in members:
        name = run.path.name
        while name in result:
            name += "'"
        result[name] = scores(out, targets, problem)
    mean = torch.stack([m[0] for m in members]).mean(0)
    result["ensemble"] = scores(mean, first_targets, problem)
    return result


def cmd_evaluate(args: argparse.Namespace) -> int:
    from engine.cli import _console, _metric, _table

    if args.ensemble:
        if args.checkpoint not in ("best", "last"):
            raise EngineError(f"unknown checkpoint '{args.checkpoint}'")
        result = ensemble(list(args.runs), split=args.split, which=args.checkpoint)
        table = _table("metric", *result)
        for key in next(iter(result.values())):
            table.add_row(f"{args.split}/{key}", *(_metric(m[key]) for m in result.values()))
        console = _console()
        console.print(table)
        best_key = "accuracy" if "accuracy" in result["ensemble"] else "mae"
        members = [m[best_key] for name, m in result.items() if name != "ensemble"]
        best = max(members) if best_key == "accuracy" else min(members)
        console.print(
            f"ensemble of {len(members)}: {best_key} {result['ensemble'][best_key]:.4f}, best member {best:.4f}"
        )
        return 0
    columns: dict[str, dict[str, Any]] = {}
    for path in args.runs:
        columns[path] = evaluate(path, split=args.split, episodes=args.episodes, seed=args.seed, which=args.checkpoint)
    keys = sorted({k for metrics in columns.values() for k in metrics})
    table = _table("metric", *columns)
    for key in keys:
        table.add_row(key, *(_metric(metrics.get(key)) for metrics in columns.values()))
    _console().print(table)
    return 0


def add_parser(sub: Any) -> None:
    p = sub.add_parser(
        "evaluate",
        help="evaluate trained runs again on their own data (test split, or episodes for RL)",
        description="Load each run's best checkpoint and evaluate it on the run's data: Lightning's test "
        "loop for supervised tasks, or the task's own evaluation (e.g. RL episodes on fresh seeds). "
        "With --ensemble, the runs' probabilities are averaged into one ensemble prediction.",
        epilog="examples:\n  engine evaluate runs/a\n  engine evaluate runs/a runs/b --split val\n"
        "  engine evaluate runs/seed0 runs/seed1 runs/seed2 --ensemble",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("runs", nargs="+", metavar="RUN", help="run directories")
    p.add_argument("--split", choices=("test", "val"), default="test", help="split to evaluate (default: test)")
    p.add_argument("--episodes", type=int, default=100, help="episodes, for tasks evaluated by acting (default: 100)")
    p.add_argument("--seed", type=int, default=12345, help="seed of evaluation episodes (default: 12345)")
    p.add_argument("--checkpoint", choices=("best", "last"), default="best", help="which checkpoint (default: best)")
    p.add_argument(
        "--ensemble",
        action="store_true",
        help="average the runs' predicted probabilities (outputs for regression) on their shared split and report "
        "each member and the ensemble (runs must share data and split: vary only the seed)",
    )
    p.set_defaults(handler="engine.evaluate:cmd_evaluate")
