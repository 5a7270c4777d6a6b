"""Ensembling on vision digits: three seeds averaged by ``engine evaluate --ensemble`` (issue 11's target).

    .venv/bin/python plugins/experiments/bench/ensemble.py [--epochs 20] [--threads 1] [--out runs/bench-ensemble]

Every run is a real ``engine run`` of the ``vision/digits`` recipe (small CNN, augmentation; here
without the 2x upsampling and with --epochs, to fit a shared CPU) on one fixed stratified split
(``data.seed=0``; test = 20 %), seeds 0, 1 and 2. The target: the ensemble is at least as good as its
best member. Prints the members', the ensemble's accuracy and negative log-likelihood, and the
wall time of each run. (The other techniques' figures: ``plugins/techniques/bench``.)
"""

from __future__ import annotations

import argparse
import time
import warnings
from pathlib import Path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--epochs", type=int, default=20, help="epochs of each run (recipe: 40)")
    parser.add_argument("--upsample", type=int, default=1, help="model.upsample (recipe: 2; 1 is 4x cheaper on CPU)")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2], help="the members' seeds")
    parser.add_argument("--threads", type=int, default=1, help="torch intra-op threads")
    parser.add_argument("--out", default="runs/bench-ensemble", help="where the runs are written (kept)")
    args = parser.parse_args()

    import torch
    from engine_experiments.evaluate import ensemble

    import engine

    warnings.filterwarnings("ignore")
    torch.set_num_threads(args.threads)
    stamp = time.strftime("%H%M%S")
    dirs, walls = [], []
    for seed in args.seeds:
        overrides = [
            f"run.dir={Path(args.out)}",
            f"run.name=seed{seed}-{stamp}",
            f"seed={seed}",
            "data.seed=0",
            f"trainer.max_epochs={args.epochs}",
            f"model.upsample={args.upsample}",
            "trainer.enable_progress_bar=false",
        ]
        result = engine.train(engine.plan(engine.compose("vision/digits", overrides=overrides)))
        dirs.append(str(result.run_dir))
        walls.append(float(result.summary["wall_time_s"]))
        print(f"  seed {seed}: test accuracy {result.summary['metrics']['test/accuracy']:.4f}", flush=True)
    result = ensemble(dirs)
    members = {n: m for n, m in result.items() if n != "ensemble"}
    ens = result["ensemble"]
    best = max(m["accuracy"] for m in members.values())
    best_nll = min(m["nll"] for m in members.values())
    print()
    print(f"vision/digits, model.upsample={args.upsample}, {args.epochs} epochs, torch threads {args.threads}")
    accuracies = " / ".join(f"{m['accuracy']:.4f}" for m in members.values())
    print(f"members   {accuracies} test accuracy")
    print(f"ensemble  {ens['accuracy']:.4f} (nll {ens['nll']:.4f} vs best member {best_nll:.4f})")
    print(f"target: ensemble >= best member ({best:.4f}): {'met' if ens['accuracy'] >= best else 'NOT MET'}")
    print("wall time per run: " + ", ".join(f"{w:.0f} s" for w in walls))


if __name__ == "__main__":
    main()
