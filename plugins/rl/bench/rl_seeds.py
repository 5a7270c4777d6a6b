"""Train the RL recipes over seeds x torch thread counts and evaluate each greedy policy on fresh episodes.

Each cell trains the recipe (``seed=S``, ``torch.set_num_threads(T)``), then evaluates two greedy
policies over ``--episodes`` fresh episodes (seeds ``--eval-seed`` …, never used in training): the
*kept* checkpoint (best periodic evaluation) and the *final* policy (``last.ckpt``, what training
ended with: a collapse shows here). It checks the recipe's targets (``engine components show
rl/cartpole-ppo``) on the kept policy's evaluation and the training's environment steps, and prints
one row per cell (training env steps, total env steps including every evaluation, kept and final
fresh means ± std, wall time) and each recipe's worst cell (``engine_experiments.matrix``)::

    python plugins/rl/bench/rl_seeds.py                                  # every recipe, seeds 0 1 2, threads 1 2
    python plugins/rl/bench/rl_seeds.py --recipes rl/cartpole-ppo --seeds 0 --threads 2
    python plugins/rl/bench/rl_seeds.py --recipes rl/frozenlake-q --episodes 1000
    OMP_NUM_THREADS=1 python plugins/rl/bench/rl_seeds.py --recipes rl/lunarlander-ppo --threads 1

Runs one training at a time (CPU); each run directory is kept under ``--out``.
"""

from __future__ import annotations

import argparse
import logging
import sys
import tempfile
import time
import warnings
from pathlib import Path
from typing import Any


def bench_one(recipe: str, seed: int, episodes: int, eval_seed: int, out: Path, overrides: list[str]) -> dict[str, Any]:
    import torch

    import engine
    from engine.runs import load_checkpoint, open_run

    threads = torch.get_num_threads()

    name = f"{recipe.replace('/', '-')}-s{seed}-{int(time.time())}"
    plan = engine.plan(
        engine.compose(
            recipe,
            overrides=[
                f"seed={seed}",
                "trainer.enable_progress_bar=false",
                f"run.dir={out}",
                f"run.name={name}",
                f"task.num_threads={threads}",
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
    final = r.task("last", facts=dm.facts).evaluate_run(dm, episodes=episodes, seed=eval_seed)
    m = result.summary["metrics"]
    return {
        "recipe": recipe,
        "seed": seed,
        "env_steps": int(m["train/env_steps"]),
        "env_steps_total": int(m.get("test/env_steps_total", -1)),
        "best_steps": best_steps,
        "train_s": train_s,
        "eval_s": time.time() - started,
        "run_dir": str(result.run_dir),
        **metrics,
        "final/return_mean": final["eval/return_mean"],
        "final/return_std": final["eval/return_std"],
    }


def main() -> None:
    import torch
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

    print("command: python plugins/rl/bench/rl_seeds.py " + " ".join(sys.argv[1:]), flush=True)
    header = (
        f"{'recipe':<20} {'seed':>4} {'thr':>3} {'train steps':>11} {'total steps':>11} {'kept at':>9} "
        f"{'kept mean ± std':>17} {'final mean ± std':>17} {'wall s':>7}"
    )
    table: list[str] = []

    def train(recipe: str, seed: int) -> dict[str, Any]:
        row = bench_one(recipe, seed, args.episodes, args.eval_seed, out, args.overrides)
        line = (
            f"{recipe:<20} {seed:>4} {torch.get_num_threads():>3} {row['env_steps']:>11} "
            f"{row['env_steps_total']:>11} {row['best_steps']:>9} "
            f"{row['eval/return_mean']:>8.1f} ± {row['eval/return_std']:<6.1f} "
            f"{row['final/return_mean']:>8.1f} ± {row['final/return_std']:<6.1f} {row['train_s']:>7.0f}"
        )
        table.append(line)
        print(header if len(table) == 1 else "", line, sep="\n" if len(table) == 1 else "", flush=True)
        return {**row, "train/env_steps": row["env_steps"]}

    targets = {r: parse_targets(recipes[r].targets, r) for r in args.recipes}
    rows = run_matrix(args.recipes, args.seeds, args.threads, train)
    print("\n" + header, *table, sep="\n")
    print(
        f"kept: the checkpoint the run selected; final: last.ckpt; {args.episodes} fresh greedy episodes each "
        f"(seeds {args.eval_seed}+); total steps: training + periodic and final evaluations; wall s: training, "
        "machine shared"
    )
    print_matrix(rows, targets)
    print(f"runs in {out}")


if __name__ == "__main__":
    main()
