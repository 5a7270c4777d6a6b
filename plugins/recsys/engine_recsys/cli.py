"""``engine recommend RUN --user ID``: the top-K items for one user from a trained run."""

from __future__ import annotations

import argparse
import json

from engine import EngineError


def _examples(ids: list[str], n: int = 5) -> str:
    shown = ", ".join(ids[:n])
    return shown + (", ..." if len(ids) > n else "")


def recommend(args: argparse.Namespace) -> int:
    """Handler of ``engine recommend``."""
    from engine.runs import open_run

    if args.k < 1:
        raise EngineError(f"--k must be at least 1, got {args.k}")
    run = open_run(args.run)
    task_name = (run.config.get("task") or {}).get("name")
    if task_name != "recsys.ranking":
        raise EngineError(
            f"{run.path} is a '{task_name}' run, not a recommender",
            hint="train one with `engine run recsys/synthetic-mf` (task recsys.ranking)",
        )
    import torch

    dm = run.datamodule()
    source = getattr(dm, "source", dm)
    try:
        user = source.user_index(args.user)
    except KeyError:
        raise EngineError(
            f"unknown user id {args.user!r}: the run's data has {len(source.user_ids)} users "
            f"({_examples(source.user_ids)})",
            hint="pass a user id exactly as written in the data file",
        ) from None
    candidates = None
    if args.items:
        unknown = [i for i in args.items if i not in set(source.item_ids)]
        if unknown:
            raise EngineError(
                f"unknown item id(s) {', '.join(repr(i) for i in unknown)}: the run's data has "
                f"{len(source.item_ids)} items ({_examples(source.item_ids)})",
                hint="pass item ids exactly as written in the data file",
            )
        candidates = torch.tensor([source.item_index(i) for i in args.items])
    task = run.task(args.checkpoint)
    task.attach_data(source)
    num_items = len(source.item_ids)
    exclude = torch.zeros(1, num_items, dtype=torch.bool)
    seen = source.all.row(user)
    if not args.include_seen:
        exclude[0, seen] = True
    if candidates is not None:
        allowed = torch.zeros(num_items, dtype=torch.bool)
        allowed[candidates] = True
        exclude |= ~allowed
    available = int((~exclude).sum())
    if available == 0:
        raise EngineError(
            f"user {args.user!r} has already interacted with every candidate item",
            hint="pass --include-seen to rank them anyway",
        )
    scores, items = task.recommend(torch.tensor([user]), min(args.k, available), exclude)
    rows = [
        {"rank": r + 1, "item": source.item_ids[int(i)], "score": round(float(s), 4)}
        for r, (s, i) in enumerate(zip(scores[0], items[0], strict=True))
    ]
    if args.json:
        print(json.dumps({"user": args.user, "seen": len(seen), "recommendations": rows}, indent=2))
        return 0
    note = "" if args.include_seen else f", {len(seen)} seen item(s) excluded"
    print(f"top {len(rows)} for user {args.user} ({run.config['model']['name']}{note})")
    width = max(4, *(len(r["item"]) for r in rows))
    print(f"{'rank':>4}  {'item':<{width}}  score")
    for r in rows:
        print(f"{r['rank']:>4}  {r['item']:<{width}}  {r['score']:.4f}")
    return 0
