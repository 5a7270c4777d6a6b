"""Do the recipes hold? Each recipe's targets over seeds x torch thread counts.

    .venv/bin/python bench/recipe_matrix.py [RECIPE ...] [--seeds 0 1 2] [--threads 1 2] [--out DIR]
        [--set k=v ...]

Without RECIPE: every installed recipe that declares targets (``engine components show RECIPE``
lists them). Each cell is ``engine run RECIPE seed=S`` trained in this process with
``torch.set_num_threads(T)``: the seed moves the initialisation, the batch order and, for data
generated or split by seed, the data; the thread count moves how reductions are split. Targets are
checked on the run's final metrics (the test split of its best checkpoint) and its numeric data
facts as ``facts/NAME`` (``test/accuracy >= 0.98 * facts/bayes_accuracy``). Prints one row per
cell and each recipe's worst cell: the figure its documentation quotes. Recipes whose figure needs
more than the run (a fresh evaluation, a baseline) have their own bench script in
``plugins/*/bench/`` built on the same :mod:`engine.matrix`.
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
    args = ap.parse_args()
    warnings.filterwarnings("ignore")

    import torch

    import engine
    from engine import logs
    from engine.config import compose, validate
    from engine.errors import ConfigError, did_you_mean
    from engine.matrix import print_matrix, run_matrix
    from engine.rundir import read_json
    from engine.runner import run
    from engine.targets import parse_targets

    logs.set_verbosity(logs.QUIET)
    reg = engine.get_registry()
    recipes = {r.qualified_name: r for r in reg.list("recipe")}
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
            cfg = validate(compose(reg, recipe, (), [*QUIET, *args.set, f"seed={seed}", *where]), reg)
        except ConfigError as exc:
            raise SystemExit(f"error: {recipe}: {exc.message}") from None
        result = run(cfg, reg)
        facts = read_json(result.run_dir, "facts.json")  # e.g. tabular.churn's bayes_accuracy: a bound to aim at
        numbers = {f"facts/{k}": v for k, v in facts.items() if isinstance(v, (int, float)) and not isinstance(v, bool)}
        return {**numbers, **(result.summary.get("best_metrics") or {}), **(result.summary.get("metrics") or {})}

    print(f"recipes {', '.join(names)}; seeds {args.seeds}; torch threads {args.threads}; runs in {root}")
    rows = run_matrix(names, args.seeds, args.threads, train)
    print_matrix(rows, targets)


if __name__ == "__main__":
    main()
