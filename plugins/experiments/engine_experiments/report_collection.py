"""``engine report COLLECTION``: a collection's metric against each setting that varies, the best member's curves.

For a run collection with a primary metric (a sweep: the sweep's metric; any plugin's collection
described by ``engine_run_collection``), reads each member's config and figures and writes, into
``OUT`` (default ``COLLECTION/report``):

- ``sweep.png``: one panel per config key that varies among the members: every finished member's
  metric against its value (categories for text values; a log axis for a positive key spanning
  more than two orders of magnitude), the best member ringed;
- ``curves.png``: the best member's training curves (as ``engine report RUN`` draws them);
- ``report.md``: the members sorted by the metric, with the varying keys.

A member's figure of the metric is its best checkpoint's value (else its final one), or, for a
member that is itself a collection (a cross-validated trial), its figures (the folds' mean).
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import engine
from engine import EngineError
from engine.runs import inside, read_config, read_json, write_text_atomic
from engine_experiments.compare import flatten, varied
from engine_experiments.notes import label
from engine_experiments.report import plot, read_metrics, save_png

#: What a collection's members are called in the report, by its kind.
MEMBERS = {"sweep": "trials", "pipeline": "stages", "cross-validation": "folds"}


def _number(value: Any) -> float | None:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) and not isinstance(value, bool) else None


def member_figures(path: Path, metric: str) -> dict[str, Any] | None:
    """A member's config, status, metric value and wall time; None when it is neither a run nor a collection."""
    if (path / "config.yaml").is_file():
        summary = read_json(path, "summary.json")
        best, final = summary.get("best_metrics") or {}, summary.get("metrics") or {}
        value = _number(best.get(metric, final.get(metric)))
        status = str(summary.get("status", "?"))
        return {"config": read_config(path), "status": status, "value": value, "wall": summary.get("wall_time_s")}
    inner = engine.run_collection(path) if path.is_dir() else None
    if inner is None:
        return None
    figures = inner.figures
    value = _number((figures.get("metrics") or {}).get(metric))
    status = "completed" if value is not None else str(figures.get("status") or inner.kind)
    return {"config": dict(inner.config), "status": status, "value": value, "wall": figures.get("wall_time_s")}


def collection_report(collection: Any, out: Path | None = None) -> dict[str, Any]:
    """Write the report of ``collection`` (a `engine.RunCollection` with a primary metric) into ``out``."""
    path = collection.path
    primary = collection.figures.get("primary_metric") or {}
    metric, mode = str(primary.get("name")), str(primary.get("mode") or "max")
    rows = []
    for name, member in collection.members:
        figures = member_figures(member, metric)
        if figures is not None:
            rows.append({"name": name, "path": member, **figures})
    done = [r for r in rows if r["status"] == "completed" and r["value"] is not None]
    if not done:
        raise EngineError(f"{collection.kind} {path} has no finished member with a {metric} value yet")
    done.sort(key=lambda r: r["value"], reverse=mode == "max")
    best = next((r for r in done if r["name"] == collection.best), None) or done[0]
    keys = varied([r["config"] for r in done])
    out = out or inside(path, "report")
    noun = MEMBERS.get(collection.kind, "runs")
    title = f"{collection.kind.capitalize()} {path.name}: {metric} ({mode}) of {len(done)} {noun}"
    _scatter(done, metric, list(keys), best, out / "sweep.png", title)
    written: dict[str, Any] = {"out_dir": out, "png": out / "sweep.png"}
    if (best["path"] / "config.yaml").is_file():
        curves = read_metrics(best["path"])
        if curves:
            plot([(f"best {label(best['name'])}", curves)], out / "curves.png")
            written["curves"] = out / "curves.png"
    lines = [f"# {collection.kind.capitalize()} {path.name}", "", f"![{metric} against each setting](sweep.png)", ""]
    lines += [f"{len(done)} finished {noun} of {len(rows)}; metric `{metric}` ({mode})."]
    heads = ["member", *keys, metric, "wall_time_s"]
    lines += ["", "| " + " | ".join(heads) + " |", "|" + "---|" * len(heads)]
    for r in done:
        flat = flatten(r["config"])
        cells = [r["name"], *(str(flat.get(k, "-")) for k in keys), f"{r['value']:.6g}", str(r["wall"] or "-")]
        lines.append("| " + " | ".join(cells) + " |")
    if "curves" in written:
        lines += ["", f"## Best: {best['name']}", "", "![best](curves.png)"]
    write_text_atomic(out / "report.md", "\n".join(lines) + "\n")
    written["markdown"] = out / "report.md"
    return written


def _scatter(
    rows: list[dict[str, Any]], metric: str, keys: list[str], best: dict[str, Any], file: Path, title: str = ""
) -> None:
    """``metric`` against each setting of ``keys``, one panel each, the best member ringed; ``title`` above."""
    try:
        import matplotlib
    except ImportError:
        message = "engine report needs matplotlib, which is not installed"
        raise EngineError(message, hint="pip install matplotlib") from None
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    keys = keys or ["member"]
    cols = min(3, len(keys))
    nrows = math.ceil(len(keys) / cols)
    fig, axes = plt.subplots(nrows, cols, figsize=(4.6 * cols, 3.4 * nrows + 0.4), squeeze=False)
    y = [r["value"] for r in rows]
    for ax, key in zip(axes.flat, keys, strict=False):
        raw = [r["name"] if key == "member" else flatten(r["config"]).get(key) for r in rows]
        xs = [_number(v) for v in raw]
        categorical = any(x is None for x in xs)
        labels = sorted({str(v) for v in raw}) if categorical else []
        points = [labels.index(str(v)) for v in raw] if categorical else xs
        ax.scatter(points, y, s=22, alpha=0.8)
        for r, px, py in zip(rows, points, y, strict=True):
            if r is best:
                ax.scatter([px], [py], s=90, facecolors="none", edgecolors="red", linewidths=1.6, label="best")
        if categorical:
            ax.set_xticks(range(len(labels)), [v[:18] for v in labels], rotation=30, fontsize=7)
        elif _log_scale([x for x in xs if x is not None]):
            ax.set_xscale("log")
        ax.set_xlabel(key)
        ax.set_ylabel(metric)
        ax.grid(alpha=0.3)
        if ax.get_legend_handles_labels()[0]:
            ax.legend(fontsize=7)
    for ax in list(axes.flat)[len(keys) :]:
        ax.axis("off")
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    save_png(fig, file)
    plt.close(fig)


def _log_scale(values: list[float]) -> bool:
    """A positive key spanning more than two orders of magnitude (a learning rate) is drawn on a log axis."""
    return bool(values) and min(values) > 0 and max(values) / min(values) > 100
