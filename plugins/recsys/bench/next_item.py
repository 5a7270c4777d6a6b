"""Next-item recall on MovieLens-format files: popularity, EASE, SASRec and what ``recsys/movielens`` picks.

    OMP_NUM_THREADS=1 .venv/bin/python plugins/recsys/bench/next_item.py            # 3 seeds, ml100k set
    OMP_NUM_THREADS=1 .venv/bin/python plugins/recsys/bench/next_item.py --seeds 0 --epochs 10   # a quick look

For each seed, writes the ``ml100k`` set of ``movielens_files.py`` (MovieLens 100k's size, histories in
time order: genre runs, releases, novelty, drifting tastes; data seed = the seed) as ``u.data`` and runs
the recipe ``recsys/movielens`` on it through the engine (``engine.train``; training seed = the seed).
One run gives every row, on the same leave-last-out split (each user's last item is test, the one
before validation; every item ranked, the user's earlier items excluded):

- popularity: ``test/pop_*``; EASE: the task's baseline, its L2 weight chosen on the validation
  users (``test/ease_*``; like every model here it scores a test user from the training items and the
  validation item);
- SASRec: the recipe's model at its best validation checkpoint (``test/model_*``);
- the recipe: the figures of whichever of SASRec and its EASE fallback won on validation
  (``test/recall@10``; ``test/fallback_chosen`` says which).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
import warnings
from pathlib import Path

import torch
from movielens_files import SETS, write_u_data

import engine

QUIET = ["trainer.enable_progress_bar=false", "trainer.enable_model_summary=false"]
ROWS = {
    "popularity": "test/pop_",
    "EASE (baseline, l2 on val)": "test/ease_",
    "SASRec (recipe's model)": "test/model_",
    "recsys/movielens (chosen on val)": "test/",
}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    ap.add_argument("--set", default="ml100k", choices=list(SETS), help="data set of movielens_files.py")
    ap.add_argument("--epochs", type=int, default=None, help="SASRec epochs (default: the recipe's)")
    ap.add_argument("--threads", type=int, default=1, help="torch threads (default 1: the 2 cores are shared)")
    ap.add_argument("--out", default=None, help="where files and runs are written (default: a temporary directory)")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    warnings.filterwarnings("ignore")
    out = Path(args.out or tempfile.mkdtemp(prefix="recsys-next-item-"))
    started = time.perf_counter()
    results: dict[int, dict[str, float]] = {}
    for seed in args.seeds:
        path = out / f"{args.set}-seed{seed}" / "u.data"
        write_u_data(SETS[args.set][1], path, seed)
        overrides = [f"data.path={path}", f"seed={seed}", *QUIET, f"run.dir={out}", f"run.name=seed{seed}"]
        if args.epochs is not None:
            overrides += [f"trainer.max_epochs={args.epochs}", f"trainer.check_val_every_n_epoch={min(args.epochs, 5)}"]
        t0 = time.perf_counter()
        result = engine.train(engine.plan(engine.compose("recsys/movielens", overrides=overrides)))
        m = dict(result.summary["metrics"])
        m["seconds"] = time.perf_counter() - t0
        m["epochs"] = result.summary.get("epochs", float("nan"))
        results[seed] = m
        print(
            f"seed {seed}: recipe R@10 {m['test/recall@10']:.4f} (fallback chosen: {m['test/fallback_chosen']:.0f}), "
            f"EASE {m['test/ease_recall@10']:.4f}, {m['seconds']:.0f} s",
            flush=True,
        )

    print()
    print(f"data: {args.set}: {SETS[args.set][0]}")
    print()
    head = " | ".join(f"seed {s} R@10 | seed {s} N@10" for s in args.seeds)
    print(f"| model | {head} | mean R@10 | mean N@10 |")
    print("|---|" + "---|" * (2 * len(args.seeds) + 2))
    for label, prefix in ROWS.items():
        r = [results[s][f"{prefix}recall@10"] for s in args.seeds]
        n = [results[s][f"{prefix}ndcg@10"] for s in args.seeds]
        cells = " | ".join(f"{a:.4f} | {b:.4f}" for a, b in zip(r, n, strict=True))
        print(f"| {label} | {cells} | {statistics.mean(r):.4f} | {statistics.mean(n):.4f} |")
    print()
    nan = float("nan")
    for s in args.seeds:
        m = results[s]
        print(
            f"seed {s}: recipe / EASE Recall@10 {m['test/recall@10'] / m['test/ease_recall@10']:.2f}, "
            f"NDCG@10 {m['test/ndcg@10'] / m['test/ease_ndcg@10']:.2f}; val NDCG@10 SASRec "
            f"{m.get('val/model_ndcg@10', nan):.4f} vs EASE fallback {m.get('val/fallback_ndcg@10', nan):.4f} -> "
            f"{'EASE' if m['test/fallback_chosen'] else 'SASRec'}; {m['epochs']} epochs, {m['seconds']:.0f} s"
        )
    wall = time.perf_counter() - started
    print(f"runs in {out}; wall time {wall:.0f} s (torch threads {args.threads}, machine shared)")
    command = " ".join(["plugins/recsys/bench/next_item.py", *sys.argv[1:]])
    print(f"command: OMP_NUM_THREADS=1 MKL_NUM_THREADS=1 .venv/bin/python {command}")


if __name__ == "__main__":
    main()
