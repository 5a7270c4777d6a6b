"""``engine report RUN [RUN…]``: training curves as PNG and a Markdown summary of one or more runs.

Reads each run's ``csv/<attempt>/metrics.csv`` (every attempt of a resumed run, in order),
``config.yaml`` and ``summary.json``; draws one panel per quantity (loss, each metric, the
learning rate, anything else logged such as ``prune/sparsity``) with every run on the same
axes, and writes::

    OUT/curves.png   train (dashed) and validation (solid, dots) curves against the optimizer step
    OUT/report.md    runs with their final metrics and wall time, and the config keys that differ

Needs matplotlib (``pip install matplotlib``); nothing else does.
"""

from __future__ import annotations

import csv
import math
from datetime import datetime
from pathlib import Path
from typing import Any

from engine.errors import EngineError


def read_metrics(run_dir: Path) -> list[dict[str, float]]:
    """Every row of the run's metrics CSVs (attempt 0, 1, … of a resumed run), numbers only."""
    rows: list[dict[str, float]] = []
    attempts = sorted((run_dir / "csv").glob("*/metrics.csv"), key=lambda p: (len(p.parent.name), p.parent.name))
    for file in attempts:
        with file.open(newline="", encoding="utf-8") as fh:
            for row in csv.DictReader(fh):
                values = {}
                for key, text in row.items():
                    if key is None or text in (None, ""):
                        continue
                    try:
                        values[key] = float(text)
                    except ValueError:
                        continue
                rows.append(values)
    return rows


def series(rows: list[dict[str, float]], key: str) -> tuple[list[float], list[float]]:
    """``(steps, values)`` of ``key`` in ``rows``, in step order."""
    points = sorted((r.get("step", i), r[key]) for i, r in enumerate(rows) if key in r and math.isfinite(r[key]))
    return [p[0] for p in points], [p[1] for p in points]


def panels(keys: set[str]) -> list[tuple[str, list[str]]]:
    """Group logged keys into chart panels: loss, each metric (train/val), learning rate, the rest."""
    keys = {k for k in keys if k not in ("step", "epoch") and not k.startswith("test/")}
    out: list[tuple[str, list[str]]] = []
    loss = sorted(k for k in keys if k.split("/")[-1] == "loss" and k.split("/")[0] in ("train", "val"))
    if loss:
        out.append(("loss", loss))
    metrics = sorted({k.split("/", 1)[1] for k in keys if k.startswith(("train/", "val/"))} - {"loss"})
    for metric in metrics:
        out.append((metric, sorted(k for k in keys if k in (f"train/{metric}", f"val/{metric}"))))
    lr = sorted(k for k in keys if k.startswith("lr-"))
    if lr:
        out.append(("learning rate", lr))
    used = {k for _, ks in out for k in ks}
    out += [(k, [k]) for k in sorted(keys - used)]
    return out


def config_differences(configs: list[dict[str, Any]]) -> dict[str, list[Any]]:
    """Flattened config keys whose values differ between runs (``run.name`` aside)."""
    from engine.compare import varied

    return varied(configs)


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}" if abs(value) < 1e-3 or abs(value) >= 1e4 else f"{value:.4f}"
    return "-" if value is None else str(value)


def plot(runs: list[tuple[str, list[dict[str, float]]]], out_file: Path) -> list[str]:
    """Draw every run's curves into ``out_file`` (PNG); returns the panel titles."""
    try:
        import matplotlib
    except ImportError:
        raise EngineError(
            "engine report needs matplotlib, which is not installed",
            hint="pip install matplotlib",
        ) from None
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    keys = set().union(*(set().union(*rows) if rows else set() for _, rows in runs))
    groups = panels(keys)
    if not groups:
        raise EngineError(
            "nothing to plot: the runs logged no metrics",
            hint="metrics are written to RUN/csv/0/metrics.csv while training (trainer.log_every_n_steps)",
        )
    cols = min(3, len(groups))
    nrows = math.ceil(len(groups) / cols)
    fig, axes = plt.subplots(nrows, cols, figsize=(5.2 * cols, 3.6 * nrows), squeeze=False)
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for ax, (title, group_keys) in zip(axes.flat, groups, strict=False):
        for i, (name, rows) in enumerate(runs):
            color = colors[i % len(colors)]
            for key in group_keys:
                steps, values = series(rows, key)
                if not steps:
                    continue
                label = f"{name} {key}" if len(runs) > 1 else key
                if key.startswith("val/"):
                    ax.plot(steps, values, "-o", color=color, markersize=3, linewidth=1.6, label=label)
                elif key.startswith("lr-") and len(group_keys) > 1:
                    style = ["-", "--", ":", "-."][group_keys.index(key) % 4]
                    ax.plot(steps, values, style, color=color, linewidth=1.4, label=label)
                else:
                    ax.plot(
                        steps,
                        values,
                        "--" if key.startswith("train/") else "-",
                        color=color,
                        alpha=0.8,
                        linewidth=1.0,
                        label=label,
                    )
        ax.set_title(title)
        ax.set_xlabel("step")
        if title == "learning rate":
            ax.ticklabel_format(axis="y", style="sci", scilimits=(-2, 3))
        if title == "loss":
            positive = all(v > 0 for _, rows in runs for k in group_keys for v in series(rows, k)[1])
            if positive:
                ax.set_yscale("log")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    for ax in list(axes.flat)[len(groups) :]:
        ax.axis("off")
    fig.suptitle(", ".join(name for name, _ in runs)[:120], fontsize=10)
    fig.tight_layout()
    out_file.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out_file, dpi=110)
    plt.close(fig)
    return [t for t, _ in groups]


def markdown(runs: list[Any], image: str) -> str:
    """The Markdown summary of ``runs`` (opened with :func:`engine.runs.open_run`)."""
    names = [r.path.name for r in runs]
    lines = [f"# Training report: {', '.join(names)}", "", f"![curves]({image})", "", "## Runs", ""]
    final = sorted({k for r in runs for k in (r.summary.get("metrics") or {}) if k.startswith(("test/", "val/"))})
    head = ["run", "status", "task", "model", "data", "steps", "epochs", "wall time", *final]
    lines += ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in runs:
        s, c = r.summary, r.config
        metrics = s.get("metrics") or {}
        wall = s.get("wall_time_s")
        row = [
            r.path.name,
            str(s.get("status", "?")),
            str((c.get("task") or {}).get("name", "-")),
            str((c.get("model") or {}).get("name", "-")),
            str((c.get("data") or {}).get("name", "-")),
            _fmt(s.get("global_step")),
            _fmt(s.get("epochs")),
            f"{wall:.1f} s" if isinstance(wall, (int, float)) else "-",
            *(_fmt(metrics.get(k)) for k in final),
        ]
        lines.append("| " + " | ".join(row) + " |")
    extras = []
    for r in runs:
        pruning = r.summary.get("pruning")
        if pruning:
            extras.append(
                f"- {r.path.name}: pruned ({pruning['method']}, {pruning['scope']}) to sparsity "
                f"{pruning['sparsity']:.3f} over {pruning['layers']} layers, epochs {pruning['epochs']}"
            )
        for slot, info in (r.summary.get("transfer") or {}).items():
            init = info.get("init_from")
            if init:
                extras.append(
                    f"- {r.path.name}: {slot} initialised from {init['source']} ({init['loaded']} tensors, "
                    f"{len(init['reinitialized'])} re-initialised, {len(init['missing'])} missing)"
                )
            if info.get("frozen_tensors"):
                extras.append(f"- {r.path.name}: {info['frozen_tensors']} parameter tensors of {slot} frozen")
    if extras:
        lines += ["", "## Techniques", "", *extras]
    if len(runs) > 1:
        diff = config_differences([r.config for r in runs])
        lines += ["", "## Config differences", ""]
        if diff:
            lines += ["| key | " + " | ".join(names) + " |", "|" + "---|" * (len(names) + 1)]
            lines += [f"| {k} | " + " | ".join(_fmt(v) for v in values) + " |" for k, values in diff.items()]
        else:
            lines.append("The runs have the same config (apart from their names).")
    else:
        c = runs[0].config
        lines += ["", "## Config", ""]
        for section in ("task", "model", "data", "loss", "optimizer", "scheduler", "trainer", "prune", "seed"):
            if c.get(section) is not None:
                lines.append(f"- `{section}`: `{c[section]}`")
    return "\n".join(lines) + "\n"


def report(paths: list[str], out: str | None = None) -> dict[str, Any]:
    """Write ``curves.png`` and ``report.md`` for the runs at ``paths``; return what was written.

    (A sweep directory's report: :func:`engine.report_sweep.sweep_report`.)
    """
    from engine.runs import open_run

    runs = [open_run(p) for p in paths]
    data = [(r.path.name, read_metrics(r.path)) for r in runs]
    empty = [name for name, rows in data if not rows]
    if len(empty) == len(runs):
        raise EngineError(
            f"no metrics in {', '.join(empty)} (csv/*/metrics.csv)",
            hint="report reads the metrics a run logs while training; was it started?",
        )
    if out is not None:
        out_dir = Path(out).expanduser()
    elif len(runs) == 1:
        out_dir = runs[0].path / "report"
    else:
        out_dir = Path("reports") / datetime.now().strftime("%Y%m%d-%H%M%S")
    image = out_dir / "curves.png"
    titles = plot(data, image)
    text = markdown(runs, image.name)
    (out_dir / "report.md").write_text(text, encoding="utf-8")
    return {"out_dir": out_dir, "png": image, "markdown": out_dir / "report.md", "panels": titles, "text": text}
