"""``engine report RUN [RUN…]``: training curves as PNG and a Markdown summary of one or more runs.

Reads each run's ``csv/<attempt>/metrics.csv`` (every attempt of a resumed run, in order),
``config.yaml`` and ``summary.json``; draws one panel per quantity (loss, each metric, the
learning rate, anything else logged such as ``prune/sparsity``) with every run on the same
axes, and writes::

    OUT/curves.png   train (dashed) and validation (solid, dots) curves against the optimizer step;
                     a baseline (``val/pop_hr@10``) dashed in its metric's panel; timing series
                     (``train/tokens_per_s``) and series constant in every run left out
    OUT/report.md    runs with their final metrics and wall time, and the config keys that differ

Needs matplotlib (``pip install matplotlib``); nothing else does.
"""

from __future__ import annotations

import csv
import math
from datetime import datetime
from pathlib import Path
from typing import Any

from engine import EngineError
from engine.runs import inside, write_text_atomic


def read_metrics(run_dir: Path) -> list[dict[str, float]]:
    """Every row of the run's metrics CSVs (attempt 0, 1, … of a resumed run), numbers only."""
    rows: list[dict[str, float]] = []
    found = inside(run_dir, "csv").glob("*/metrics.csv")  # never through a link leading out of the run
    attempts = sorted(found, key=lambda p: (len(p.parent.name), p.parent.name))
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


#: Prefixes of a baseline's metric: ``val/pop_hr@10`` is popularity's ``val/hr@10``.
BASELINES = ("pop_", "popularity_", "ease_", "baseline_", "bigram_", "unigram_", "random_", "majority_")
#: Suffixes of timing series (throughput, durations): left out of the panels.
TIMING = ("_per_s", "/s", "_time", "_time_s", "_ms", "/fps", "_fps", "throughput")


def baseline_of(key: str) -> str | None:
    """The key a baseline key compares with (``val/pop_hr@10`` -> ``val/hr@10``), else None."""
    split, _, name = key.partition("/")
    for prefix in BASELINES:
        if name.startswith(prefix) and len(name) > len(prefix):
            return f"{split}/{name[len(prefix) :]}"
    return None


def left_out(runs: list[tuple[str, list[dict[str, float]]]]) -> dict[str, str]:
    """Series not worth a panel, with why: timing (``tokens_per_s``), or constant in every run."""
    out: dict[str, str] = {}
    keys = set().union(*(set().union(*rows) if rows else set() for _, rows in runs)) - {"step", "epoch"}
    for key in sorted(keys):
        if key.endswith(TIMING):
            out[key] = "timing"
            continue
        values = [series(rows, key)[1] for _, rows in runs]
        values = [v for v in values if v]
        if values and all(len(v) >= 3 and max(v) - min(v) <= 1e-12 * max(1.0, abs(v[0])) for v in values):
            shown = ", ".join(_fmt(v[0]) for v in values)
            out[key] = f"constant {shown}"
    return out


def panels(keys: set[str], skip: set[str] | dict[str, str] = frozenset()) -> list[tuple[str, list[str]]]:
    """Group logged keys into chart panels: loss, each metric (train/val, with its baselines), learning rate, the rest.

    ``skip`` are keys left out (see `left_out`); test-split keys are never drawn.
    """
    keys = {k for k in keys if k not in ("step", "epoch") and not k.startswith("test/") and k not in skip}
    out: list[tuple[str, list[str]]] = []
    loss = sorted(k for k in keys if k.split("/")[-1] == "loss" and k.split("/")[0] in ("train", "val"))
    if loss:
        out.append(("loss", loss))
    logged = {k for k in keys if k.startswith(("train/", "val/"))}
    baselines = {k: b for k in logged if (b := baseline_of(k)) in logged}
    metrics = sorted({k.split("/", 1)[1] for k in logged - set(baselines)} - {"loss"})
    for metric in metrics:
        own = [k for k in (f"train/{metric}", f"val/{metric}") if k in keys]
        out.append((metric, own + sorted(k for k, b in baselines.items() if b in own)))
    lr = sorted(k for k in keys if k.startswith("lr-"))
    if lr:
        out.append(("learning rate", lr))
    used = {k for _, ks in out for k in ks}
    out += [(k, [k]) for k in sorted(keys - used)]
    return out


def line_style(key: str, group_keys: list[str]) -> dict[str, Any]:
    """How a key's curve is drawn: validation solid with dots, train dashed, a baseline dashed and thin."""
    if baseline_of(key) in group_keys:
        return {"linestyle": "--", "linewidth": 1.2, "alpha": 0.7}
    if key.startswith("val/"):
        return {"linestyle": "-", "marker": "o", "markersize": 3, "linewidth": 1.6}
    if key.startswith("lr-") and len(group_keys) > 1:
        return {"linestyle": ["-", "--", ":", "-."][group_keys.index(key) % 4], "linewidth": 1.4}
    return {"linestyle": "--" if key.startswith("train/") else "-", "alpha": 0.8, "linewidth": 1.0}


def config_differences(configs: list[dict[str, Any]]) -> dict[str, list[Any]]:
    """Flattened config keys whose values differ between runs (``run.name`` aside)."""
    from engine_experiments.compare import varied

    return varied(configs)


#: The config sections a one-run report shows.
SECTIONS = ("task", "model", "data", "loss", "optimizer", "scheduler", "trainer", "prune", "seed")


def rounded(value: Any, digits: int = 6) -> Any:
    """``value`` with every float to ``digits`` significant digits (``0.30000000000000004`` -> ``0.3``)."""
    if isinstance(value, float) and math.isfinite(value):
        return float(f"{value:.{digits}g}")
    if isinstance(value, dict):
        return {k: rounded(v, digits) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [rounded(v, digits) for v in value]
    return value


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}" if abs(value) < 1e-3 or abs(value) >= 1e4 else f"{value:.4f}"
    return "-" if value is None else str(value)


#: Per run (the 1st, 2nd, …): its validation marker and train dash pattern, so identical runs stay apart.
MARKERS = ("o", "s", "^", "D", "v", "P")
DASHES = ("--", "-.", (0, (1, 1.5)), (0, (6, 2, 1, 2, 1, 2)), (0, (8, 3)), (0, (3, 3)))


def figure(
    runs: list[tuple[str, list[dict[str, float]]]], best: dict[str, Any] | None = None
) -> tuple[Any, list[str], dict[str, str]]:
    """The figure of every run's curves, its panel titles, and the series left out (with why).

    ``best``: the step of each run's best checkpoint (by run name), marked by a dotted vertical line.
    """
    try:
        import matplotlib
    except ImportError:
        raise EngineError(
            "engine report needs matplotlib, which is not installed",
            hint="pip install matplotlib",
        ) from None
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import matplotlib.ticker

    keys = set().union(*(set().union(*rows) if rows else set() for _, rows in runs))
    skipped = left_out(runs)
    groups = panels(keys, skipped)
    if not groups:
        raise EngineError(
            "nothing to plot: the runs logged no metrics that change",
            hint="metrics are written to RUN/csv/0/metrics.csv while training (trainer.log_every_n_steps)",
        )
    cols = min(3, len(groups))
    nrows = math.ceil(len(groups) / cols)
    fig, axes = plt.subplots(nrows, cols, figsize=(5.2 * cols, 3.6 * nrows + 0.5), squeeze=False)
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for ax, (title, group_keys) in zip(axes.flat, groups, strict=False):
        for i, (name, rows) in enumerate(runs):
            for key in group_keys:
                steps, values = series(rows, key)
                if steps:
                    label = f"{name} {key}" if len(runs) > 1 else key
                    if baseline_of(key) in group_keys:
                        label += " (baseline)"
                    style = line_style(key, group_keys)
                    if len(runs) > 1:  # identical runs' curves coincide: the earlier drawn wider, own marks
                        style["linewidth"] *= 1 + 1.2 * (len(runs) - 1 - i) / (len(runs) - 1)
                        if "marker" in style:
                            style.update(marker=MARKERS[i % len(MARKERS)], markersize=3 + 2 * (len(runs) - 1 - i))
                        elif baseline_of(key) not in group_keys:  # a baseline stays dashed
                            solid = style["linestyle"] == "-"
                            style["linestyle"] = ("-", "--", "-.", ":")[i % 4] if solid else DASHES[i % len(DASHES)]
                    ax.plot(steps, values, color=colors[i % len(colors)], label=label, **style)
            step = (best or {}).get(name)
            if isinstance(step, (int, float)):
                # best_step counts optimizer steps taken; the CSV's "step" of that evaluation is one less
                mark = ax.axvline(
                    max(0, step - 1), color=colors[i % len(colors)], linestyle=":", linewidth=1.2, alpha=0.9
                )
                mark.set_label(f"{name} best" if len(runs) > 1 else "best checkpoint")
                mark.set_gid("best")
        ax.set_title(title)
        ax.set_xlabel("step")
        ax.set_ylabel(title)
        if title == "learning rate":
            ax.ticklabel_format(axis="y", style="sci", scilimits=(-2, 3))
        if title == "loss":
            positive = all(v > 0 for _, rows in runs for k in group_keys for v in series(rows, k)[1])
            if positive:
                ax.set_yscale("log")
                plain = matplotlib.ticker.FuncFormatter(lambda v, _: f"{v:.3g}")  # 1.25, not 1.25 x 10^0
                ax.yaxis.set_major_formatter(plain)
                ax.yaxis.set_minor_formatter(plain)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    for ax in list(axes.flat)[len(groups) :]:
        ax.axis("off")
    names = ", ".join(name for name, _ in runs)
    fig.suptitle(names if len(names) <= 120 else names[:117] + "...", fontsize=10)
    # Leave the suptitle its own band above the panels' titles.
    fig.tight_layout(rect=(0, 0, 1, 1 - 0.45 / fig.get_figheight()))
    return fig, [t for t, _ in groups], skipped


def plot(
    runs: list[tuple[str, list[dict[str, float]]]], out_file: Path, best: dict[str, Any] | None = None
) -> tuple[list[str], dict[str, str]]:
    """Draw every run's curves into ``out_file`` (PNG); returns the panel titles and the series left out."""
    fig, titles, skipped = figure(runs, best)
    import matplotlib.pyplot as plt

    save_png(fig, out_file)
    plt.close(fig)
    return titles, skipped


def save_png(fig: Any, file: Path) -> None:
    """``fig`` as ``file`` (PNG), written whole or not at all; an OSError (a full disk) names the file."""
    import io

    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=110)
    write_text_atomic(file, buffer.getvalue())


def markdown(runs: list[Any], image: str, skipped: dict[str, str] | None = None) -> str:
    """The Markdown summary of ``runs`` (opened with `engine.open_run`); ``skipped``: series not drawn."""
    names = [r.path.name for r in runs]
    lines = [f"# Training report: {', '.join(names)}", "", f"![curves]({image})", ""]
    if skipped:
        lines += ["Not drawn: " + ", ".join(f"`{k}` ({why})" for k, why in skipped.items()) + ".", ""]
    lines += ["## Runs", ""]
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
            lines += [f"| {k} | " + " | ".join(_fmt(rounded(v)) for v in values) + " |" for k, values in diff.items()]
        else:
            lines.append("The runs have the same config (apart from their names).")
    else:
        import yaml

        c = runs[0].config
        shown = {k: rounded(c[k]) for k in SECTIONS if c.get(k) is not None}
        lines += ["", "## Config", "", "```yaml", yaml.safe_dump(shown, sort_keys=False).rstrip(), "```"]
    return "\n".join(lines) + "\n"


def report(paths: list[str], out: str | None = None) -> dict[str, Any]:
    """Write ``curves.png`` and ``report.md`` for the runs at ``paths``; return what was written.

    (A collection's report, a sweep's: `engine_experiments.report_collection.collection_report`.)
    """
    import engine

    runs = [engine.open_run(p) for p in paths]
    names = [r.path.name for r in runs]
    # Two runs of one name (runs/a/seed0, runs/b/seed0): labelled with their parent directory too.
    names = [f"{r.path.parent.name}/{n}" if names.count(n) > 1 else n for r, n in zip(runs, names, strict=True)]
    data = [(n, read_metrics(r.path)) for r, n in zip(runs, names, strict=True)]
    best = {n: r.summary.get("best_step") for r, n in zip(runs, names, strict=True)}
    empty = [name for name, rows in data if not rows]
    if len(empty) == len(runs):
        raise EngineError(
            f"no metrics in {', '.join(empty)} (csv/*/metrics.csv)",
            hint="report reads the metrics a run logs while training; was it started?",
        )
    if out is not None:
        out_dir = Path(out).expanduser()
    elif len(runs) == 1:
        out_dir = inside(runs[0].path, "report")
    else:
        out_dir = Path("reports") / datetime.now().strftime("%Y%m%d-%H%M%S")
    image = out_dir / "curves.png"
    titles, skipped = plot(data, image, best)
    text = markdown(runs, image.name, skipped)
    write_text_atomic(out_dir / "report.md", text)
    return {"out_dir": out_dir, "png": image, "markdown": out_dir / "report.md", "panels": titles, "text": text}
