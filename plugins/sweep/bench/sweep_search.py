"""Sweep quality and overhead: a 10-trial TPE sweep against a 30-point grid, and what a sweep costs per trial.

    python plugins/sweep/bench/sweep_search.py                 # the measurement (quiet machine, ~10 min)
    python plugins/sweep/bench/sweep_search.py --quick         # a smoke run of the script (~2 min)

Space (both searches): ``optimizer.lr=loguniform(1e-4,1e-1)`` x ``model.hidden=choice([32],[64,64],[128])``;
the grid takes 10 log-spaced learning rates x 3 widths = 30 points. Every trial is the core's
``core/mlp-synthetic`` (6 classes, 32 features) on ``--samples`` samples for ``--epochs`` epochs,
run seed 0, default thread count, no pruning (the searches are compared, not the pruner).

Quality: the best val/accuracy of the grid, and of TPE (10 trials) with sampler seeds 0, 1, 2;
the goal is TPE within 1 % of the grid (relative) for every seed.

Overhead: (sweep wall - sum of the trials' own wall_time_s) / trials, and as a share of the mean
trial, for the optuna backend (``--jobs 1``, trials in the sweep's process; the one-time
torch/Lightning import every ``engine run`` pays is not counted) and the ray backend (a local
Ray started by the sweep, one trial at a time with every CPU, so the sum of trial walls is
comparable; Ray's start-up is counted). Goal: optuna <= 5 % of a trial. Its first rows are a
10-trial TPE sweep of the recipe as shipped (6000 samples, 8 epochs: the trial a user's
``engine sweep core/mlp-synthetic`` runs); then the same figure for the searches above, whose
trials were cut to half a second so that the grid stays quick (the overhead per trial is
about the same; its share of such a short trial is not).
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

SPACE = {"optimizer.lr": "loguniform(1e-4,1e-1)", "model.hidden": "choice([32],[64,64],[128])"}


def run_sweep(root: Path, base: list[str], **options: Any) -> tuple[dict[str, Any], float]:
    from engine_sweep.cli import sweep

    started = time.perf_counter()
    meta = sweep("core/mlp-synthetic", base, space=SPACE, metric="val/accuracy", dir=str(root), quiet=True, **options)
    return meta, time.perf_counter() - started


def overhead_row(name: str, meta: dict[str, Any], outside: float) -> str:
    n = meta["finished"]
    inside, trials = meta["wall_time_s"], meta["trial_wall_time_s"]
    per, mean = (inside - trials) / n, trials / n
    return (
        f"{name:<28} {n:>6} {inside:>10.1f} {outside:>10.1f} {trials:>12.1f} {mean:>10.2f} "
        f"{per:>14.3f} {100 * per / mean:>9.1f}%"
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="smallest settings: checks the script, not the figures")
    ap.add_argument("--samples", type=int, default=3000, help="synthetic samples per trial (default 3000)")
    ap.add_argument("--epochs", type=int, default=6, help="epochs per trial (default 6)")
    ap.add_argument("--seeds", type=int, default=3, help="TPE sampler seeds (default 3: 0, 1, 2)")
    ap.add_argument("--tpe-trials", type=int, default=10)
    ap.add_argument("--grid-points", type=int, default=10, help="learning rates in the grid (x 3 widths)")
    ap.add_argument("--ray-trials", type=int, default=10, help="trials of the ray overhead sweep (0: skip ray)")
    ap.add_argument("--out", help="where the sweep directories go (default: a temporary directory)")
    args = ap.parse_args()
    if args.quick:
        args.samples, args.epochs, args.seeds, args.tpe_trials, args.grid_points, args.ray_trials = 300, 1, 1, 3, 2, 2
    out = Path(args.out or tempfile.mkdtemp(prefix="sweep-bench-"))
    base = [
        f"data.num_samples={args.samples}",
        f"trainer.max_epochs={args.epochs}",
        "trainer.enable_progress_bar=false",
    ]
    print(f"sweep bench: core/mlp-synthetic, {args.samples} samples, {args.epochs} epochs per trial, run seed 0")
    print(f"space: {SPACE}; sweep directories in {out}\n")

    grid, grid_wall = run_sweep(out / "grid", base, sampler="grid", grid_points=args.grid_points, pruner="none")
    best_grid = grid["best"]["value"]
    tpe = []
    for seed in range(args.seeds):
        meta, wall = run_sweep(
            out / f"tpe-{seed}", base, trials=args.tpe_trials, sampler="tpe", sampler_seed=seed, pruner="none"
        )
        tpe.append((seed, meta, wall))

    print(f"{'search':<28} {'trials':>6} {'best val/accuracy':>18} {'vs grid':>9}  within 1 %")
    print(f"{'grid':<28} {grid['finished']:>6} {best_grid:>18.4f} {'':>9}")
    for seed, meta, _ in tpe:
        value = meta["best"]["value"]
        gap = 100 * (best_grid - value) / best_grid
        print(f"{f'tpe (sampler seed {seed})':<28} {meta['finished']:>6} {value:>18.4f} {-gap:>8.2f}%  {gap <= 1.0}")
    values = [m["best"]["value"] for _, m, _ in tpe]
    print(f"{'tpe mean over seeds':<28} {'':>6} {statistics.fmean(values):>18.4f}\n")

    shipped = base if args.quick else ["trainer.enable_progress_bar=false"]  # the recipe's own size
    rows = []
    for seed in range(args.seeds):
        meta, wall = run_sweep(
            out / f"shipped-{seed}", shipped, trials=args.tpe_trials, sampler_seed=seed, pruner="none"
        )
        rows.append(overhead_row(f"recipe as shipped, seed {seed}", meta, wall))
    rows += [overhead_row(f"optuna tpe seed {s} (jobs 1)", m, w) for s, m, w in tpe]
    rows.append(overhead_row("optuna grid (jobs 1)", grid, grid_wall))
    if args.ray_trials:
        cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
        meta, wall = run_sweep(
            out / "ray",
            base,
            trials=args.ray_trials,
            backend="ray",
            jobs=1,
            cpus_per_trial=float(cores),
            pruner="none",
        )
        rows.append(overhead_row(f"ray tpe (1 at a time, {cores} CPUs)", meta, wall))
    print(
        f"{'overhead':<28} {'trials':>6} {'sweep s':>10} {'outside s':>10} {'sum trials s':>12} {'trial s':>10} "
        f"{'overhead/trial':>14} {'of trial':>10}"
    )
    print("\n".join(rows))
    print("\nsweep s: the sweep's own wall (sweep.json); outside s: around the call, imports included.")
    print("goal: TPE within 1 % of the grid for every seed; optuna overhead <= 5 % of a trial.")


if __name__ == "__main__":
    main()
