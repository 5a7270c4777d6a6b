"""Recipes over seeds x torch thread counts, checked against their targets: what "the recipe holds" means.

A user's figure must not depend on the seed they happen to use or on how many threads torch takes
on their machine (reductions split differently, so runs differ in the last bits and, on a fragile
recipe, in the result). `run_matrix` trains each (recipe, seed, threads) cell with a caller's
``train(recipe, seed)`` under ``torch.set_num_threads(threads)``; `print_matrix` prints one row
per cell with every target's value, then the worst cell of each recipe: the figure to document.
``plugins/experiments/bench/recipe_matrix.py`` runs it for recipes' own metrics; plugins' bench scripts
pass their own ``train`` (an extra evaluation, a baseline) to the same functions. Targets are read by
`engine.testing.parse_targets` (`engine.testing.Target`).
"""

from __future__ import annotations

import math
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, TextIO

if TYPE_CHECKING:
    from engine.testing import Target

Train = Callable[[str, int], Mapping[str, Any]]


def run_matrix(
    recipes: Sequence[str],
    seeds: Sequence[int],
    threads: Sequence[int],
    train: Train,
    progress: TextIO | None = sys.stderr,
) -> list[dict[str, Any]]:
    """Every cell, threads outermost: ``{"recipe", "seed", "threads", "metrics", "wall_time_s"}``.

    The caller's thread count is restored afterwards; a cell that raises is recorded with its
    ``error`` and the matrix goes on.
    """
    import torch

    before = torch.get_num_threads()
    rows: list[dict[str, Any]] = []
    cells = [(t, r, s) for t in threads for r in recipes for s in seeds]
    try:
        for i, (n, recipe, seed) in enumerate(cells, 1):
            torch.set_num_threads(n)
            started = time.time()
            row: dict[str, Any] = {"recipe": recipe, "seed": seed, "threads": n, "metrics": {}}
            try:
                row["metrics"] = dict(train(recipe, seed))
            except Exception as exc:  # one broken cell is a figure too: the matrix goes on
                row["error"] = f"{type(exc).__name__}: {exc}".splitlines()[0][:300]
            row["wall_time_s"] = time.time() - started
            rows.append(row)
            if progress is not None:
                state = row.get("error") or "done"
                print(
                    f"[{i}/{len(cells)}] {recipe} seed {seed} threads {n}: {state} ({row['wall_time_s']:.0f} s)",
                    file=progress,
                    flush=True,
                )
    finally:
        torch.set_num_threads(before)
    return rows


def _cell(target: Target, metrics: Mapping[str, Any]) -> tuple[str, float | None]:
    """The cell's text and its margin: how far it is on the good side of the bound (None: no figure)."""
    met, value, bound = target.check(metrics)
    if value is None or bound is None:
        return "missing", None
    margin = value - bound if target.higher_is_better else bound - value
    shown = f"{value:.4f}" + ("" if target.reference is None or bound is None else f" (bound {bound:.4f})")
    return f"{shown} {'ok' if met else 'MISSED'}", margin


def print_matrix(
    rows: Sequence[dict[str, Any]], targets: Mapping[str, Sequence[Target]], out: TextIO = sys.stdout
) -> bool:
    """One line per cell, then each recipe's worst cell per target; whether every target held everywhere."""
    held = True
    for recipe in dict.fromkeys(r["recipe"] for r in rows):
        cells, checks = [r for r in rows if r["recipe"] == recipe], list(targets.get(recipe, ()))
        print(f"\n{recipe}: {'; '.join(map(str, checks)) or 'no targets'}", file=out)
        heads = " ".join(f"{t.metric:>28}" for t in checks)
        print(f"{'seed':>6} {'threads':>8} {heads} {'wall s':>8}", file=out)
        for r in cells:
            texts = [r.get("error", "")[:28] or _cell(t, r["metrics"])[0] for t in checks]
            print(f"{r['seed']:>6} {r['threads']:>8} " + " ".join(f"{x:>28}" for x in texts), end="", file=out)
            print(f" {r['wall_time_s']:>8.0f}", file=out)
        for t in checks:
            margins = [None if "error" in r else _cell(t, r["metrics"])[1] for r in cells]
            worst = min(range(len(cells)), key=lambda i: -math.inf if margins[i] is None else margins[i])
            w = cells[worst]
            met = margins[worst] is not None and t.check(w["metrics"])[0]
            held = held and met
            value = None if margins[worst] is None else t.check(w["metrics"])[1]
            shown = "-" if value is None else f"{value:.4f}"
            print(
                f"  worst of {len(cells)} for {t}: {shown} (seed {w['seed']}, {w['threads']} threads) "
                f"{'held' if met else 'NOT MET'}",
                file=out,
            )
    print(f"\nevery target held in every cell: {held}", file=out)
    return held
