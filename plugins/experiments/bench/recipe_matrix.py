"""Do the recipes hold? Each recipe's targets over seeds x torch thread counts.

    .venv/bin/python plugins/experiments/bench/recipe_matrix.py [RECIPE ...] [--seeds 0 1 2] [--threads 1 2] [--out DIR]
        [--set k=v ...] [--runs RUN_DIR ...]

Without RECIPE: every installed recipe that declares targets (``engine components show RECIPE``
lists them). Each cell is ``engine run RECIPE seed=S`` trained in this process with
``torch.set_num_threads(T)``: the seed moves the initialisation, the batch order and, for data
generated or split by seed, the data; the thread count moves how reductions are split. Targets are
checked on the run's final metrics (the test split of its best checkpoint) and its numeric data
facts as ``facts/NAME`` (``test/accuracy >= 0.98 * facts/bayes_accuracy``). Prints one row per
cell and each recipe's worst cell: the figure its documentation quotes. Recipes whose figure needs
more than the run (a fresh evaluation, a baseline) have their own bench script in
``plugins/*/bench/`` built on the same `engine_experiments.matrix`. ``--runs`` tabulates finished run
directories of this script (named ``RECIPE-seedS-threadsT``, e.g. from two processes that ran
``--threads 1`` and ``--threads 2`` side by side) instead of training. On a shared machine, start it
with ``OMP_WAIT_POLICY=PASSIVE``: idle OpenMP threads then sleep instead of spinning (the same
threads do the same arithmetic, so the figures are those of the default policy).
"""

from __future__ import annotations

import argparse
import tempfile
import warnings
from pathlib import Path
from typing import Any

QUIET = ["trainer.enable_progress_bar=false", "trainer.enable_model_summary=false"]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("recipes", nargs="*", help="recipes to check (default: every recipe with targets)")
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--threads", type=int, nargs="+", default=[1, 2], help="torch thread counts (default 1 2)")
    ap.add_argument("--out", default=None, help="keep the runs here (default: a temporary directory)")
    ap.add_argument("--set", nargs="*", default=[], metavar="K=V", help="extra overrides for every run")
    ap.add_argument("--runs", nargs="+", default=None, metavar="RUN_DIR", help="tabulate these finished runs")
    args = ap.parse_args()
    warnings.filterwarnings("ignore")

    import torch
    from engine_experiments.matrix import print_matrix, run_matrix

    import engine
    from engine import ConfigError, did_you_mean
    from engine.console import QUIET as QUIET_LOGS
    from engine.console import set_verbosity
    from engine.testing import parse_targets

    set_verbosity(QUIET_LOGS)
    reg = engine.get_registry()
    recipes = {r.qualified_name: r for r in reg.list("recipe")}
    if args.runs:
        rows = [_finished(Path(d), recipes) for d in args.runs]
        names = list(dict.fromkeys(r["recipe"] for r in rows))
        print_matrix(rows, {n: parse_targets(recipes[n].targets, n) for n in names})
        return
    names = args.recipes or [n for n, r in recipes.items() if r.targets]
    for name in names:
        if name not in recipes:
            raise SystemExit(f"error: no recipe '{name}'{did_you_mean(name, recipes)}")
    targets = {n: parse_targets(recipes[n].targets, n) for n in names}
    root = Path(args.out or tempfile.mkdtemp(prefix="recipe-matrix-"))

    def train(recipe: str, seed: int) -> dict[str, Any]:
        threads = torch.get_num_threads()
        where = [f"run.dir={root}", f"run.name={recipe.replace('/', '-')}-seed{seed}-threads{threads}"]
        try:
            plan = engine.plan(engine.compose(recipe, (), [*QUIET, *args.set, f"seed={seed}", *where]))
        except ConfigError as exc:
            raise SystemExit(f"error: {recipe}: {exc.message}") from None
        result = engine.train(plan)
        return _figures(result.run_dir, result.summary)

    print(f"recipes {', '.join(names)}; seeds {args.seeds}; torch threads {args.threads}; runs in {root}")
    rows = run_matrix(names, args.seeds, args.threads, train)
    print_matrix(rows, targets)


def _figures(run_dir: Path, summary: dict[str, Any]) -> dict[str, Any]:
    """What targets are checked on: the run's numeric data facts as ``facts/NAME``, its best and final metrics."""
    from engine.runs import read_json

    facts = read_json(run_dir, "facts.json")  # e.g. tabular.churn's bayes_accuracy: a bound to aim at
    numbers = {f"facts/{k}": v for k, v in facts.items() if isinstance(v, (int, float)) and not isinstance(v, bool)}
    return {**numbers, **(summary.get("best_metrics") or {}), **(summary.get("metrics") or {})}


def _finished(run_dir: Path, recipes: dict[str, Any]) -> dict[str, Any]:
    """A matrix row from a finished run directory named ``RECIPE-seedS-threadsT`` (as ``train`` names them)."""
    import re

    from engine.runs import read_json

    named = re.fullmatch(r"(.+)-seed(-?\d+)-threads(\d+)", run_dir.name)
    by_dir_name = {n.replace("/", "-"): n for n in recipes}
    if named is None or named.group(1) not in by_dir_name:
        raise SystemExit(f"error: {run_dir}: not a run of this script (RECIPE-seedS-threadsT)")
    summary = read_json(run_dir, "summary.json")
    row = {"recipe": by_dir_name[named.group(1)], "seed": int(named.group(2)), "threads": int(named.group(3))}
    row.update(metrics=_figures(run_dir, summary), wall_time_s=float(summary.get("wall_time_s") or 0.0))
    if summary.get("status") != "completed":
        row["error"] = f"status {summary.get('status')}"
    return row


if __name__ == "__main__":
    main()
