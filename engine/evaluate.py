"""``engine evaluate RUN [RUN…]``: measure trained runs again, on their own data.

For each run the best checkpoint is loaded into the run's task and the run's
data source is rebuilt from its config (same seed, same split). A task may
define how it is evaluated::

    class PPO(L.LightningModule):
        def evaluate_run(self, datamodule, episodes: int, seed: int) -> dict[str, float]:
            ...  # e.g. run the greedy policy for `episodes` fresh episodes

otherwise Lightning's test (or validation) loop runs and its logged metrics are
reported.
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


def cmd_evaluate(args: argparse.Namespace) -> int:
    from engine.cli import _add_row, _console, _metric, _table

    columns: dict[str, dict[str, Any]] = {}
    for path in args.runs:
        columns[path] = evaluate(path, split=args.split, episodes=args.episodes, seed=args.seed, which=args.checkpoint)
    keys = sorted({k for metrics in columns.values() for k in metrics})
    table = _table("metric", *columns)
    for key in keys:
        _add_row(table, key, *(_metric(metrics.get(key)) for metrics in columns.values()))
    _console().print(table)
    return 0


def add_parser(sub: Any) -> None:
    p = sub.add_parser(
        "evaluate",
        help="evaluate trained runs again on their own data (test split, or episodes for RL)",
        description="Load each run's best checkpoint and evaluate it on the run's data: Lightning's test "
        "loop for supervised tasks, or the task's own evaluation (e.g. RL episodes on fresh seeds).",
    )
    p.add_argument("runs", nargs="+", metavar="RUN", help="run directories")
    p.add_argument("--split", choices=("test", "val"), default="test", help="split to evaluate (default: test)")
    p.add_argument("--episodes", type=int, default=100, help="episodes, for tasks evaluated by acting (default: 100)")
    p.add_argument("--seed", type=int, default=12345, help="seed of evaluation episodes (default: 12345)")
    p.add_argument("--checkpoint", choices=("best", "last"), default="best", help="which checkpoint (default: best)")
    p.set_defaults(handler="engine.evaluate:cmd_evaluate")
