"""Train the RL recipes over several seeds and evaluate each greedy policy on fresh episodes.

Prints one row per (recipe, seed): environment steps (of training, and when the evaluated best
checkpoint was written), training wall time, evaluation
mean ± std over ``--episodes`` episodes (seeds ``--eval-seed`` …, never used in training),
and whether the issue's target is met::

    python plugins/rl/bench/rl_seeds.py                                  # every recipe, seeds 0 1 2
    python plugins/rl/bench/rl_seeds.py --recipes rl/cartpole-ppo --seeds 0
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

#: recipe -> (metric, threshold, env-step budget or None)
TARGETS: dict[str, tuple[str, float, int | None]] = {
    "rl/frozenlake-q": ("eval/success_rate", 0.70, None),
    "rl/cartpole-dqn": ("eval/return_mean", 475.0, 100_000),
    "rl/cartpole-ppo": ("eval/return_mean", 475.0, 100_000),
    "rl/pendulum-ppo": ("eval/return_mean", -250.0, None),
}


def bench_one(recipe: str, seed: int, episodes: int, eval_seed: int, out: Path, overrides: list[str]) -> dict[str, Any]:
    import engine
    from engine.config import compose, validate
    from engine.runner import run
    from engine.runs import open_run

    reg = engine.get_registry()
    name = f"{recipe.replace('/', '-')}-s{seed}-{int(time.time())}"
    cfg = validate(
        compose(
            reg,
            recipe,
            overrides=[
                f"seed={seed}",
                "trainer.enable_progress_bar=false",
                f"run.dir={out}",
                f"run.name={name}",
                *overrides,
            ],
        ),
        reg,
    )
    started = time.time()
    result = run(cfg, reg)
    train_s = time.time() - started
    r = open_run(result.run_dir)
    dm = r.datamodule()
    task = r.task(facts=dm.facts)
    from engine.checkpoints import load_checkpoint

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
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--recipes", nargs="+", default=list(TARGETS), help="recipes to run (default: all)")
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2], help="training seeds (default: 0 1 2)")
    parser.add_argument("--episodes", type=int, default=100, help="evaluation episodes per run (default 100)")
    parser.add_argument("--eval-seed", type=int, default=12345, help="seed of the first evaluation episode")
    parser.add_argument("--out", default=None, help="directory for the run directories (default: a temp dir)")
    parser.add_argument("overrides", nargs="*", help="config overrides applied to every run, e.g. task.gamma=0.99")
    args = parser.parse_args()
    unknown = [r for r in args.recipes if r not in TARGETS]
    if unknown:
        parser.error(f"unknown recipe(s) {unknown}; choose from {list(TARGETS)}")

    warnings.filterwarnings("ignore")
    logging.getLogger("lightning.pytorch").setLevel(logging.ERROR)
    logging.getLogger("lightning.fabric").setLevel(logging.ERROR)
    out = Path(args.out or tempfile.mkdtemp(prefix="rl-bench-"))

    rows = []
    header = (
        f"{'recipe':17s} {'seed':>4s} {'env steps':>9s} {'best at':>8s} {'train s':>8s} {'eval mean ± std':>18s} "
        f"{'success':>7s} {'target':>14s} ok"
    )
    print(header, flush=True)
    for recipe in args.recipes:
        for seed in args.seeds:
            row = bench_one(recipe, seed, args.episodes, args.eval_seed, out, args.overrides)
            metric, threshold, budget = TARGETS[recipe]
            ok = row[metric] >= threshold and (budget is None or row["env_steps"] <= budget)
            row["ok"] = ok
            rows.append(row)
            success = f"{row['eval/success_rate']:.3f}" if "eval/success_rate" in row else "-"
            target = f"{metric.split('/')[1].split('_')[0]}>={threshold:g}"
            print(
                f"{recipe:17s} {seed:>4d} {row['env_steps']:>9d} {row['best_steps']:>8d} {row['train_s']:>8.1f} "
                f"{row['eval/return_mean']:>9.2f} ± {row['eval/return_std']:<6.2f} {success:>7s} {target:>14s} "
                f"{'yes' if ok else 'NO'}",
                flush=True,
            )
    print(
        f"\n{sum(r['ok'] for r in rows)}/{len(rows)} runs meet their target; "
        f"{args.episodes} evaluation episodes each (seeds {args.eval_seed}+); runs in {out}"
    )


if __name__ == "__main__":
    main()
