"""Train the RL recipes over seeds x torch thread counts and evaluate each greedy policy on fresh episodes.

Each cell trains the recipe (``seed=S``, ``torch.set_num_threads(T)``), then evaluates the best
checkpoint's greedy policy over ``--episodes`` episodes (seeds ``--eval-seed`` …, never used in
training) and checks the recipe's targets (``engine components show rl/cartpole-ppo``) on that
evaluation and the training's environment steps. Prints one row per cell and each recipe's worst
cell (the experiments plugin's recipe matrix, ``engine_experiments.matrix``)::

    python plugins/rl/bench/rl_seeds.py                                  # every recipe, seeds 0 1 2, threads 1 2
    python plugins/rl/bench/rl_seeds.py --recipes rl/cartpole-ppo --seeds 0 --threads 2
    python plugins/rl/bench/rl_seeds.py --recipes rl/frozenlake-q --episodes 1000

Runs one training at a time (CPU); each run directory is kept under ``--out``.
"""

from __future__ import annotations

import argparse
import logging
import tempfile
import time
import warnings
from pathlib import Path
from typing import Any


def bench_one(recipe: str, seed: int, episodes: int, eval_seed: int, out: Path, overrides: list[str]) -> dict[str, Any]:
    import engine
    from engine.runs import load_checkpoint, open_run

    name = f"{recipe.replace('/', '-')}-s{seed}-{int(time.time())}"
    plan = engine.plan(
        engine.compose(
            recipe,
            overrides=[
                f"seed={seed}",
                "trainer.enable_progress_bar=false",
                f"run.dir={out}",
                f"run.name={name}",
                *overrides,
            ],
        )
    )
    started = time.time()
    result = engine.train(plan)
    train_s = time.time() - started
    r = open_run(result.run_dir)
    dm = r.datamodule()
    task = r.task(facts=dm.facts)
    # training env steps at which the evaluated (best) checkpoint was written
    ckpt = load_checkpoint(r.checkpoint("best"))  # data only: weights_only=True
    best_steps = int(ckpt.get("rl", {}).get("env_steps", -1))
    started = time.time()
    metrics = task.evaluate_run(dm, episodes=episodes, seed=eval_seed)
    return {
        "recipe": recipe,
        "seed": seed,
        "env_steps": int(result.summary["metrics"]["train/env_steps"]),
        "best_steps": best_steps,
        "train_s": train_s,
        "eval_s": time.time() - started,
        "run_dir": str(result.run_dir),
        **metrics,
    }


def main() -> None:
    from engine_experiments.matrix import print_matrix, run_matrix  # the experiments plugin (engine-experiments)

    import engine
    from engine.testing import parse_targets

    recipes = {r.qualified_name: r for r in engine.get_registry().list("recipe") if r.plugin == "rl"}
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--recipes", nargs="+", default=list(recipes), help="recipes to run (default: all)")
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2], help="training seeds (default: 0 1 2)")
    parser.add_argument("--threads", nargs="+", type=int, default=[1, 2], help="torch thread counts (default: 1 2)")
    parser.add_argument("--episodes", type=int, default=100, help="evaluation episodes per run (default 100)")
    parser.add_argument("--eval-seed", type=int, default=12345, help="seed of the first evaluation episode")
    parser.add_argument("--out", default=None, help="directory for the run directories (default: a temp dir)")
    parser.add_argument("overrides", nargs="*", help="config overrides applied to every run, e.g. task.gamma=0.99")
    args = parser.parse_args()
    unknown = [r for r in args.recipes if r not in recipes]
    if unknown:
        parser.error(f"unknown recipe(s) {unknown}; choose from {list(recipes)}")

    warnings.filterwarnings("ignore")
    logging.getLogger("lightning.pytorch").setLevel(logging.ERROR)
    logging.getLogger("lightning.fabric").setLevel(logging.ERROR)
    out = Path(args.out or tempfile.mkdtemp(prefix="rl-bench-"))

    def train(recipe: str, seed: int) -> dict[str, Any]:
        row = bench_one(recipe, seed, args.episodes, args.eval_seed, out, args.overrides)
        print(
            f"  {recipe} seed {seed}: best checkpoint at {row['best_steps']} env steps, eval "
            f"{row['eval/return_mean']:.2f} ± {row['eval/return_std']:.2f}, train {row['train_s']:.0f} s",
            flush=True,
        )
        return {**row, "train/env_steps": row["env_steps"]}

    targets = {r: parse_targets(recipes[r].targets, r) for r in args.recipes}
    rows = run_matrix(args.recipes, args.seeds, args.threads, train)
    print_matrix(rows, targets)
    print(f"{args.episodes} evaluation episodes each (seeds {args.eval_seed}+); runs in {out}")


if __name__ == "__main__":
    main()
