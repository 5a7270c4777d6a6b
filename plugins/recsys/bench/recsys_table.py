"""Recommenders on recsys.synthetic (default size): popularity, EASE, MF, NCF, two-tower.

Prints Recall@10 / NDCG@10 on the test split (leave-last-out, items seen in training and
validation excluded, all items ranked) with training and evaluation wall times, then checks
issue 10's targets: MF-BPR Recall@10 >= 2x popularity and >= 90 % of EASE; evaluation of
all users <= 10 s. (The table over several synthetic sets, ALS included: synthetic_table.py.)

Popularity is computed here and checked against the task's ``pop_*`` baseline; EASE (Steck 2019,
closed-form item-item ridge regression, lambda chosen on the validation users) is the ranking
task's ``ease_*`` baseline of the first run, on the same split.

    .venv/bin/python plugins/recsys/bench/recsys_table.py            # ~5-6 min on 2 shared cores
    .venv/bin/python plugins/recsys/bench/recsys_table.py --only mf  # one model
"""

from __future__ import annotations

import argparse
import tempfile
import time
import warnings
from typing import Any

import torch
from engine_recsys.metrics import RankingMetrics

import engine

MODELS: dict[str, tuple[str, list[str]]] = {
    "mf": ("recsys/synthetic-mf", []),
    "ncf": ("recsys/synthetic-mf", ["model=recsys.ncf", "loss=recsys.bce", "optimizer.lr=0.002"]),
    "two_tower": ("recsys/synthetic-two-tower", []),
}
QUIET = ["trainer.enable_progress_bar=false", "trainer.enable_model_summary=false"]


def evaluate(scores_of: Any, dataset: Any, ks: list[int]) -> tuple[dict[str, float], float]:
    """Full-ranking metrics of ``scores_of(users)`` on an eval dataset, in batches of 1024 users."""
    started = time.perf_counter()
    metric = RankingMetrics(ks)
    for s in range(0, len(dataset), 1024):
        users, (seen, target) = dataset.__getitems__(range(s, min(s + 1024, len(dataset))))
        metric.update(scores_of(users), seen, target)
    return {k: float(v) for k, v in metric.compute().items()}, time.perf_counter() - started


def train(name: str, out: str) -> dict[str, Any]:
    recipe, overrides = MODELS[name]
    plan = engine.plan(engine.compose(recipe, overrides=[*overrides, *QUIET, f"run.dir={out}", f"run.name={name}"]))
    cfg = plan.config
    result = engine.train(plan)
    m = result.summary["metrics"]
    return {
        "model": cfg["model"]["name"],
        "loss": cfg["loss"]["name"],
        "recall@10": m["test/recall@10"],
        "ndcg@10": m["test/ndcg@10"],
        "recall@20": m["test/recall@20"],
        "train_s": result.summary["wall_time_s"],
        "eval_s": m["test/eval_time_s"],
        "pop": (m["test/pop_recall@10"], m["test/pop_ndcg@10"], m["test/pop_recall@20"]),
        "ease": (m.get("test/ease_recall@10"), m.get("test/ease_ndcg@10"), m.get("test/ease_recall@20")),
        "epochs": cfg["trainer"].get("max_epochs"),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--only", nargs="+", choices=sorted(MODELS), default=list(MODELS), help="models to train")
    ap.add_argument("--threads", type=int, default=1, help="torch threads (default 1: the 2 cores are shared)")
    ap.add_argument("--out", default=None, help="where runs are written (default: a temporary directory)")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    warnings.filterwarnings("ignore")
    out = args.out or tempfile.mkdtemp(prefix="recsys-bench-")
    bench_started = time.perf_counter()

    plan = engine.plan(engine.compose("recsys/synthetic-mf"))
    started = time.perf_counter()
    source = engine.build(plan).datamodule.source
    facts = source.facts
    print(
        f"data: recsys.synthetic {facts['num_users']} users, {facts['num_items']} items, "
        f"{facts['num_interactions']} interactions ({facts['split']}; built in {time.perf_counter() - started:.1f} s); "
        f"test users {facts['num_test_users']}; torch threads {torch.get_num_threads()}"
    )
    sets = source.datasets()
    pop, pop_s = evaluate(lambda u: source.item_popularity.expand(len(u), -1), sets["test"], [10, 20])
    rows = [("popularity", "-", pop["recall@10"], pop["ndcg@10"], pop["recall@20"], 0.0, pop_s)]
    results = {}
    ease_m: dict[str, float] = {}
    for name in args.only:
        r = train(name, out)
        results[name] = r
        if not ease_m and r["ease"][0] is not None:
            ease_m = dict(zip(("recall@10", "ndcg@10", "recall@20"), r["ease"], strict=True))
            rows.append(("EASE (task baseline)", "closed form", *r["ease"], float("nan"), float("nan")))
        rows.append((r["model"], r["loss"], r["recall@10"], r["ndcg@10"], r["recall@20"], r["train_s"], r["eval_s"]))
        if abs(r["pop"][0] - pop["recall@10"]) > 1e-4:
            print(
                f"warning: the task's popularity Recall@10 {r['pop'][0]:.4f} "
                f"differs from the bench's {pop['recall@10']:.4f}"
            )

    print()
    print(f"| {'model':<22} | {'loss':<22} | Recall@10 | NDCG@10 | Recall@20 | train s | eval s (all users) |")
    print(f"|{'-' * 24}|{'-' * 24}|-----------|---------|-----------|---------|--------------------|")
    for model, loss, r10, n10, r20, tr, ev in rows:
        print(f"| {model:<22} | {loss:<22} | {r10:9.4f} | {n10:7.4f} | {r20:9.4f} | {tr:7.1f} | {ev:18.2f} |")
    print()
    if "mf" in results and ease_m:
        mf = results["mf"]["recall@10"]
        ratio_pop, ratio_ease = mf / pop["recall@10"], mf / ease_m["recall@10"]
        print(f"MF-BPR Recall@10 = {ratio_pop:.2f} x popularity (target >= 2): {'PASS' if ratio_pop >= 2 else 'FAIL'}")
        print(
            f"MF-BPR Recall@10 = {100 * ratio_ease:.1f} % of EASE (target >= 90 %): "
            f"{'PASS' if ratio_ease >= 0.9 else 'FAIL'}"
        )
    slowest = max(r["eval_s"] for r in results.values()) if results else 0.0
    print(
        f"slowest full evaluation of {facts['num_test_users']} users: {slowest:.2f} s (target <= 10 s): "
        f"{'PASS' if slowest <= 10 else 'FAIL'}"
    )
    print(f"runs in {out}; bench wall time {time.perf_counter() - bench_started:.0f} s")


if __name__ == "__main__":
    main()
