"""``engine report SWEEP_DIR``: the metric against each swept parameter, and the best trial's curves.

Reads the sweep directory's ``sweep.json`` and ``results.csv`` (see :mod:`engine.compare`) and
writes ``OUT/sweep.png`` (one panel per parameter: every finished trial's metric against its
value, log scale for ``loguniform`` parameters, the best trial marked), the best trial's
``curves.png`` (as ``engine report RUN`` draws them) and ``report.md`` (the trials sorted by the
metric).
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from engine.errors import EngineError


def _number(text: str) -> float | None:
    try:
        value = float(text)
    except (TypeError, ValueError):
        return None
    return value if math.isfinite(value) else None


def sweep_report(path: Path, out: Path | None = None) -> dict[str, Any]:
    """Write the sweep's report into ``out`` (default ``SWEEP_DIR/report``); return what was written."""
    from engine.compare import sweep_results
    from engine.report import plot, read_metrics

    meta, rows = sweep_results(path)
    metric, space = meta.get("metric"), dict(meta.get("space") or {})
    done = [r for r in rows if r.get("status") == "completed" and _number(r.get(str(metric), "")) is not None]
    if not done:
        raise EngineError(f"sweep {path} has no finished trial with a {metric} value yet")
    out = out or path / "report"
    out.mkdir(parents=True, exist_ok=True)
    best = (meta.get("best") or {}).get("number")
    _scatter(done, str(metric), space, best, out / "sweep.png")
    written = {"out_dir": out, "png": out / "sweep.png"}
    best_run = (meta.get("best") or {}).get("run")
    if best_run and (path / best_run / "config.yaml").is_file():
        rows_best = read_metrics(path / best_run)
        if rows_best:
            plot([(f"best trial {best}", rows_best)], out / "curves.png")
            written["curves"] = out / "curves.png"
    lines = [f"# Sweep {path.name}", "", f"![{metric} against each parameter](sweep.png)", ""]
    lines += [f"{len(done)} finished trials of {meta.get('trials', '?')}; metric `{metric}` ({meta.get('direction')})."]
    heads = ["number", *space, str(metric), "wall_time_s"]
    lines += ["", "| " + " | ".join(heads) + " |", "|" + "---|" * len(heads)]
    lines += ["| " + " | ".join(str(r.get(h, "")) for h in heads) + " |" for r in done]
    if "curves" in written:
        lines += ["", "## Best trial", "", "![best trial](curves.png)"]
    (out / "report.md").write_text("\n".join(lines) + "\n", encoding="utf-8")
    written["markdown"] = out / "report.md"
    return written


def _scatter(rows: list[dict[str, str]], metric: str, space: dict[str, str], best: Any, file: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    keys = list(space) or ["number"]
    cols = min(3, len(keys))
    fig, axes = plt.subplots(math.ceil(len(keys) / cols), cols, figsize=(4.6 * cols, 3.4), squeeze=False)
    y = [_number(r[metric]) for r in rows]
    for ax, key in zip(axes.flat, keys, strict=False):
        raw = [r.get(key, "") for r in rows]
        xs = [_number(v) for v in raw]
        categorical = any(x is None for x in xs)
        labels = sorted(set(raw)) if categorical else []
        points = [labels.index(v) for v in raw] if categorical else xs
        ax.scatter(points, y, s=22, alpha=0.8)
        for r, px, py in zip(rows, points, y, strict=True):
            if str(r.get("number")) == str(best):
                ax.scatter([px], [py], s=90, facecolors="none", edgecolors="red", linewidths=1.6, label="best")
        if categorical:
            ax.set_xticks(range(len(labels)), [v[:18] for v in labels], rotation=30, fontsize=7)
        elif space.get(key, "").startswith("loguniform"):
            ax.set_xscale("log")
        ax.set_xlabel(key)
        ax.set_ylabel(metric)
        ax.grid(alpha=0.3)
        if ax.get_legend_handles_labels()[0]:
            ax.legend(fontsize=7)
    for ax in list(axes.flat)[len(keys) :]:
        ax.axis("off")
    fig.tight_layout()
    fig.savefig(file, dpi=110)
    plt.close(fig)
