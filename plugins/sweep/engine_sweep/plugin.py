"""The sweep plugin: ``engine sweep`` (Optuna, or Ray Tune with ``--backend ray``) and the ``sweep`` section.

Hook implementations only: nothing here imports torch, Optuna or Ray, so ``engine --help`` and
every other command stay fast.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from engine import CommandSink, Section, hookimpl

ENGINE_API = ">=1,<2"

SWEEP_EPILOG = """\
space expressions (--space KEY=EXPR, repeatable; or a `space:` mapping in a -c sweep.yaml):
  optimizer.lr=loguniform(1e-4,1e-1)    float, uniform in log space
  model.dropout=uniform(0,0.5)          float, uniform
  trainer.max_epochs=int(2,8)           integer in [2, 8] (int(2,8,2): step 2)
  model.hidden=choice([32],[64,64])     one of these values (as written in an override)
  optimizer=choice(adamw,sgd)           components too

examples:
  engine sweep core/mlp-synthetic --space 'optimizer.lr=loguniform(1e-4,1e-1)' \\
      --space 'model.hidden=choice([32],[64,64])' --trials 20 --metric val/accuracy
  engine sweep -c sweep.yaml --dir sweeps/lr --jobs 2        2 trials at a time, threads divided
  engine sweep core/mlp-synthetic --space 'optimizer.lr=loguniform(1e-4,1e-1)' --sampler grid --grid-points 10
  engine sweep core/mlp-synthetic --space ... --folds 5      each trial cross-validates; its metric is the mean
  engine sweep --resume sweeps/lr                            continue a killed sweep to exactly its N trials
  engine sweep core/mlp-synthetic --space ... --backend ray --address auto --storage /shared/ray
  engine runs compare sweeps/lr        engine report sweeps/lr

Writes DIR/sweep.json (settings, best trial), DIR/results.csv (one row per finished trial, best first),
DIR/trials/NNN/ (ordinary run directories), DIR/best_summary.json and DIR/study.db (Optuna, SQLite).
A failing trial is recorded with its error and the sweep goes on (--fail-fast stops it).
Exit codes: 0 done, 1 no trial completed (or --fail-fast stopped it), 2 a usage or configuration error.
"""


@hookimpl
def engine_config_sections() -> list[Section]:
    return [
        Section(
            "sweep",
            "engine_sweep.section:SweepTrial",
            "Which trial of an `engine sweep` this run is (reports the metric for pruning; set by the sweep)",
            optional=True,
            check="engine_sweep.section:check_sweep",
            bookkeeping=True,
        )
    ]


@hookimpl
def engine_callbacks(config: dict[str, Any]) -> list[Any]:
    section = config.get("sweep")
    if section is None:
        return []
    from engine_sweep.callback import reporter

    return [reporter(section, config)]


@hookimpl
def engine_run_collection(path: Path) -> Any:
    """A sweep directory (``sweep.json``): its trials, best trial and figures (``runs list|compare``, ``report``)."""
    if not (path / "sweep.json").is_file():
        return None
    from engine_sweep.collection import describe

    return describe(path)


def _formatter(prog: str) -> Any:
    return argparse.RawDescriptionHelpFormatter(prog, max_help_position=30)


@hookimpl
def engine_add_commands(subparsers: CommandSink) -> None:
    p = subparsers.add_parser(
        "sweep",
        help="search hyperparameters over any run (Optuna TPE/random/grid with pruning, or Ray Tune)",
        description="Run N trials of a composed run ([RECIPE] [-c FILE]… [KEY=VALUE]…), each with values "
        "drawn from the search space, and keep the best by --metric. Every key of the space is checked "
        "(with a did-you-mean) before any trial starts.",
        epilog=SWEEP_EPILOG,
        formatter_class=_formatter,
    )
    p.add_argument("items", nargs="*", metavar="RECIPE|KEY=VALUE", help="the run every trial starts from")
    p.add_argument(
        "-c", "--config", action="append", metavar="FILE", help="run config or sweep YAML (space:, metric:, …)"
    )
    p.add_argument("--space", action="append", default=[], metavar="KEY=EXPR", help="a searched key (repeatable)")
    p.add_argument("--trials", type=int, metavar="N", help="trials to run (default 20; grid: the whole grid)")
    p.add_argument("--metric", metavar="NAME", help="the metric to optimise, e.g. val/accuracy (required)")
    p.add_argument(
        "--direction", choices=["max", "min"], help="maximise or minimise (default: min for losses and errors)"
    )
    p.add_argument("--dir", metavar="DIR", help="sweep directory (default sweeps/<model>-<data>-<time>)")
    p.add_argument("--resume", metavar="DIR", help="continue the sweep in DIR (its settings from DIR/sweep.json)")
    search = p.add_argument_group("search")
    search.add_argument("--sampler", choices=["tpe", "random", "grid"], help="search algorithm (default tpe)")
    search.add_argument("--grid-points", type=int, metavar="K", help="grid: values per float range (default 5)")
    search.add_argument(
        "--pruner", choices=["median", "halving", "none"], help="stop poor trials early (default median; ray: halving)"
    )
    search.add_argument("--prune-startup", type=int, metavar="N", help="finished trials before pruning (default 5)")
    search.add_argument("--prune-warmup", type=int, metavar="N", help="validations before a trial may stop (1)")
    search.add_argument("--sampler-seed", type=int, metavar="S", help="seed of the sampler (default 0)")
    runs = p.add_argument_group("trials")
    runs.add_argument("--jobs", type=int, metavar="N", help="trials at a time, in separate processes (default 1)")
    runs.add_argument("--fail-fast", action="store_true", default=None, help="stop the sweep at the first failure")
    runs.add_argument("--folds", type=int, metavar="K", help="cross-validate each trial; its metric is the fold mean")
    runs.add_argument("--group-by", metavar="COLUMN", help="with --folds: keep each group in one fold")
    ray = p.add_argument_group("ray (--backend ray)")
    ray.add_argument("--backend", choices=["optuna", "ray"], help="optuna (default: this machine) or ray")
    ray.add_argument("--address", metavar="ADDR", help="Ray cluster to join ('auto', ray://host:10001; default local)")
    ray.add_argument("--storage", metavar="PATH", help="Ray's experiment storage, shared by all nodes (DIR/ray)")
    ray.add_argument("--cpus-per-trial", type=float, metavar="C", help="CPUs Ray reserves for a trial (default 1)")
    p.set_defaults(handler="engine_sweep.cli:cmd_sweep")
