"""The recsys table: popularity, EASE, ALS, MF, NCF and two-tower on synthetic data sets of
different density and popularity skew (issue 23).

Every model is trained through the engine (``engine.train``) on the same seeded split of
each set (leave-last-out, every item ranked, training and validation items excluded); popularity
and EASE are the ranking task's baselines (``test/pop_*``, ``test/ease_*``: EASE's L2 weight
chosen on the validation users). Prints Recall@10 / NDCG@10 on the test users for each set, the
recipe figures against EASE, and the wall time of each run.

    .venv/bin/python plugins/recsys/bench/synthetic_table.py              # ~10 min on 2 cores
    .venv/bin/python plugins/recsys/bench/synthetic_table.py --sets default --models als ease_ml
"""

from __future__ import annotations

import argparse
import tempfile
import time
import warnings
from typing import Any

import torch

import engine

#: name: (what it is, data overrides of recsys.synthetic)
SETS: dict[str, tuple[str, list[str]]] = {
    "default": ("recsys.synthetic defaults: 5k users, 2k items, 30/user, Zipf 1.4, drift 0.5", []),
    "sparse": (
        "6k users, 3k items, 12/user, Zipf 1.6, activity sigma 1.2, drift 0.8",
        [
            "data.num_users=6000",
            "data.num_items=3000",
            "data.interactions_per_user=12",
            "data.popularity_exponent=1.6",
            "data.activity_sigma=1.2",
            "data.drift=0.8",
        ],
    ),
    "dense": (
        "2k users, 1k items, 60/user, Zipf 1.0, activity sigma 0.6, drift 0.25, taste 2.5",
        [
            "data.num_users=2000",
            "data.num_items=1000",
            "data.interactions_per_user=60",
            "data.popularity_exponent=1.0",
            "data.activity_sigma=0.6",
            "data.drift=0.25",
            "data.preference_strength=2.5",
        ],
    ),
}
#: name: (label, recipe, overrides); the first model of a set also reports the baselines
MODELS: dict[str, tuple[str, str, list[str]]] = {
    "ease_ml": ("EASE, recsys/movielens settings", "recsys/synthetic-mf", ["trainer.max_epochs=1"]),
    "als": ("ALS (recsys.als defaults)", "recsys/synthetic-mf", ["model=recsys.als", "trainer.max_epochs=1"]),
    "mf": ("MF-BPR, recsys/synthetic-mf", "recsys/synthetic-mf", []),
    "ncf": (
        "NCF (BCE, lr 0.002)",
        "recsys/synthetic-mf",
        ["model=recsys.ncf", "loss=recsys.bce", "optimizer.lr=0.002"],
    ),
    "two_tower": ("two-tower, recsys/synthetic-two-tower", "recsys/synthetic-two-tower", []),
}
QUIET = ["trainer.enable_progress_bar=false", "trainer.enable_model_summary=false"]


def movielens_model() -> list[str]:
    """The recsys/movielens recipe's EASE settings (its fallback), as overrides (kept in step with the recipe)."""
    model = engine.compose("recsys/movielens", overrides=["data.path=unused"])["fallback"]  # data.path: required
    return [f"model={model['name']}", *(f"model.{k}={v}" for k, v in model.items() if k != "name")]


def train(recipe: str, overrides: list[str], out: str, name: str) -> dict[str, Any]:
    plan = engine.plan(engine.compose(recipe, overrides=[*overrides, *QUIET, f"run.dir={out}", f"run.name={name}"]))
    started = time.perf_counter()
    result = engine.train(plan)
    return {"metrics": result.summary["metrics"], "seconds": time.perf_counter() - started}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sets", nargs="+", choices=list(SETS), default=list(SETS))
    ap.add_argument("--models", nargs="+", choices=list(MODELS), default=list(MODELS))
    ap.add_argument("--threads", type=int, default=1, help="torch threads (default 1: the 2 cores are shared)")
    ap.add_argument("--out", default=None, help="where runs are written (default: a temporary directory)")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    warnings.filterwarnings("ignore")
    out = args.out or tempfile.mkdtemp(prefix="recsys-synthetic-")
    started = time.perf_counter()
    table: dict[str, dict[str, tuple[float, float]]] = {}
    seconds: dict[str, dict[str, float]] = {}
    for set_name in args.sets:
        _, data = SETS[set_name]
        for i, key in enumerate(args.models):
            label, recipe, overrides = MODELS[key]
            if key == "ease_ml":
                overrides = [*overrides, *movielens_model()]
            baselines = [] if i == 0 else ["task.ease_baseline=false"]
            r = train(recipe, [*overrides, *data, *baselines], out, f"{set_name}-{key}")
            m = r["metrics"]
            if i == 0:
                table.setdefault("popularity", {})[set_name] = (m["test/pop_recall@10"], m["test/pop_ndcg@10"])
                if "test/ease_recall@10" in m:
                    table.setdefault("EASE (baseline, l2 on val)", {})[set_name] = (
                        m["test/ease_recall@10"],
                        m["test/ease_ndcg@10"],
                    )
            table.setdefault(label, {})[set_name] = (m["test/recall@10"], m["test/ndcg@10"])
            seconds.setdefault(label, {})[set_name] = r["seconds"]
            print(f"{set_name:8} {label:40} Recall@10 {m['test/recall@10']:.4f}  {r['seconds']:6.1f} s", flush=True)

    print()
    for set_name in args.sets:
        print(f"- {set_name}: {SETS[set_name][0]}")
    print()
    head = " | ".join(f"{s} R@10 | {s} N@10" for s in args.sets)
    print(f"| model | {head} |")
    print("|---|" + "---|" * (2 * len(args.sets)))
    for label, row in table.items():
        cells = " | ".join(f"{row[s][0]:.4f} | {row[s][1]:.4f}" if s in row else "- | -" for s in args.sets)
        print(f"| {label} | {cells} |")
    print()
    ease = table.get("EASE (baseline, l2 on val)", {})
    for label, row in table.items():
        if label.startswith(("popularity", "EASE (baseline")):
            continue
        ratios = ", ".join(f"{s} {row[s][0] / ease[s][0]:.2f}" for s in args.sets if s in row and s in ease)
        times = ", ".join(f"{s} {seconds[label][s]:.0f} s" for s in args.sets if s in seconds.get(label, {}))
        print(f"{label}: Recall@10 / EASE's: {ratios or '-'}; wall time: {times}")
    print(f"runs in {out}; bench wall time {time.perf_counter() - started:.0f} s, torch threads {args.threads}")


if __name__ == "__main__":
    main()
