"""Pictures and pages of attributions: heatmaps over images and spectrograms, ranked bars for features,
attention grids for transformers (PNG, matplotlib), and coloured tokens for text (terminal and HTML)."""

from __future__ import annotations

import html
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np


def _pyplot() -> Any:
    import matplotlib

    matplotlib.use("Agg")  # files only, never a window
    import matplotlib.pyplot as plt

    return plt


def _display(image: np.ndarray) -> tuple[np.ndarray, str | None]:
    """``[C, H, W]`` or ``[H, W]`` -> what imshow draws (grey for one channel, RGB for three)."""
    if image.ndim == 2:
        return image, "gray"
    if image.shape[0] == 3:
        rgb = np.moveaxis(image, 0, -1)
        lo, hi = float(rgb.min()), float(rgb.max())
        return (rgb - lo) / (hi - lo if hi > lo else 1.0), None
    return image.mean(0), "gray"


def heatmap_png(path: Path, image: np.ndarray, attribution: np.ndarray, title: str, spectrogram: bool = False) -> Path:
    """Input, signed attribution and the attribution's magnitude overlaid on the input, side by side."""
    plt = _pyplot()
    heat = attribution if attribution.ndim == 2 else attribution.sum(0)
    shown, cmap = _display(image)
    bound = float(np.abs(heat).max()) or 1.0
    style = {"origin": "lower", "aspect": "auto"} if spectrogram else {}
    fig, axes = plt.subplots(1, 3, figsize=(10.5, 3.8), constrained_layout=True)
    axes[0].imshow(shown, cmap=cmap, interpolation="nearest", **style)
    axes[0].set_title("input")
    im = axes[1].imshow(heat, cmap="RdBu_r", vmin=-bound, vmax=bound, interpolation="nearest", **style)
    axes[1].set_title("attribution (red: towards the target)")
    fig.colorbar(im, ax=axes[1], shrink=0.8)
    axes[2].imshow(shown, cmap=cmap, interpolation="nearest", **style)
    axes[2].imshow(np.abs(heat), cmap="inferno", alpha=0.55, interpolation="nearest", **style)
    axes[2].set_title("|attribution| over the input")
    for ax in axes:
        if spectrogram:
            ax.set_xlabel("frame")
            ax.set_ylabel("frequency bin")
        else:
            ax.set_xticks([])
            ax.set_yticks([])
    fig.suptitle(title)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def bars_png(
    path: Path, names: Sequence[str], values: np.ndarray, attribution: np.ndarray, title: str, top: int
) -> Path:
    """The ``top`` features by absolute attribution, largest first, red towards the target and blue against."""
    plt = _pyplot()
    order = np.argsort(-np.abs(attribution))[:top]
    labels = [f"{names[i]} = {values[i]:.3g}" for i in order][::-1]
    scores = attribution[order][::-1]
    fig, ax = plt.subplots(figsize=(7.5, 0.35 * len(order) + 1.4), constrained_layout=True)
    ax.barh(range(len(order)), scores, color=["#c0392b" if s >= 0 else "#2e86c1" for s in scores])
    ax.set_yticks(range(len(order)), labels)
    ax.axvline(0, color="black", linewidth=0.8)
    ax.set_xlabel("attribution")
    ax.set_title(title)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def attention_figure(layers: Sequence[np.ndarray], labels: Sequence[str] | None, title: str) -> Any:
    """A grid of attention maps: one row per layer, one column per head (queries down, keys across).

    Readable at 8 layers x 4 heads: heads named once above the columns and layers once beside the rows
    (no per-map titles to collide), tokens on the outer axes only, one colour scale and its colour bar.
    """
    plt = _pyplot()
    rows, cols = len(layers), max(m.shape[0] for m in layers)
    tokens = len(labels) if labels is not None else 0
    size = min(4.0, max(2.0, 0.2 * tokens))  # ~0.2 inch a token: 7-point labels fit
    fig, axes = plt.subplots(
        rows, cols, figsize=(size * cols + 1.6, size * rows + 0.9), squeeze=False, layout="constrained"
    )
    top = max(float(m.max()) for m in layers) or 1e-6
    image = None
    for r, weights in enumerate(layers):
        for c in range(cols):
            ax = axes[r][c]
            if c >= weights.shape[0]:
                ax.axis("off")
                continue
            image = ax.imshow(weights[c], cmap="viridis", interpolation="nearest", vmin=0.0, vmax=top)
            ax.set_xticks([])
            ax.set_yticks([])
            if r == 0:
                ax.set_title(f"head {c}", fontsize=9)
            if c == 0:
                ax.set_ylabel(f"layer {r}", fontsize=9)
            if labels is not None and tokens <= 64 and tokens == weights.shape[-1]:
                if r == rows - 1:
                    ax.set_xticks(range(tokens), labels, rotation=90, fontsize=7)
                if c == 0 and tokens == weights.shape[-2]:
                    ax.set_yticks(range(tokens), labels, fontsize=7)
    if image is not None:
        fig.colorbar(image, ax=axes, shrink=min(1.0, 6 / rows + 0.2), label="attention weight")
    fig.suptitle(title)
    return fig


def attention_png(path: Path, layers: Sequence[np.ndarray], labels: Sequence[str] | None, title: str) -> Path:
    """`attention_figure` written to ``path`` (PNG)."""
    plt = _pyplot()
    fig = attention_figure(layers, labels, title)
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def cls_png(path: Path, image: np.ndarray, layers: Sequence[np.ndarray], title: str) -> Path | None:
    """A vision transformer's class-token attention to the patches, per layer (mean over heads), on the image."""
    patches = layers[0].shape[-1] - 1
    side = math.isqrt(patches)
    if patches < 1 or side * side != patches:
        return None
    plt = _pyplot()
    shown, cmap = _display(image)
    height, width = shown.shape[:2]
    fig, axes = plt.subplots(1, len(layers), figsize=(2.4 * len(layers) + 0.4, 2.8), squeeze=False)
    for i, weights in enumerate(layers):
        grid = weights.mean(0)[0, 1:].reshape(side, side)
        ax = axes[0][i]
        ax.imshow(shown, cmap=cmap, extent=(0, width, height, 0))
        ax.imshow(grid, cmap="inferno", alpha=0.6, extent=(0, width, height, 0))
        ax.set_title(f"layer {i}", fontsize=8)
        ax.set_xticks([])
        ax.set_yticks([])
    fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def matrix_png(path: Path, matrix: np.ndarray, rows: Sequence[str], cols: Sequence[str], title: str) -> Path:
    """Attributions of generated text: one row per output token, one column per input token, signed colours."""
    plt = _pyplot()
    bound = float(np.abs(matrix).max()) or 1.0
    fig, ax = plt.subplots(
        figsize=(min(16.0, 1.8 + 0.32 * len(cols)), min(16.0, 1.4 + 0.3 * len(rows))), constrained_layout=True
    )
    im = ax.imshow(matrix, cmap="RdBu_r", vmin=-bound, vmax=bound, interpolation="nearest", aspect="auto")
    ax.set_xticks(range(len(cols)), [c.strip() or repr(c) for c in cols], rotation=90, fontsize=8)
    ax.set_yticks(range(len(rows)), [r.strip() or repr(r) for r in rows], fontsize=8)
    ax.set_xlabel("input token")
    ax.set_ylabel("generated token (probability)")
    fig.colorbar(im, ax=ax, shrink=0.8, label="attribution")
    ax.set_title(title, fontsize=9)
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


# --------------------------------------------------------------------------- text


def _rgb(score: float, bound: float) -> tuple[int, int, int]:
    """White for 0, red for a positive score, blue for a negative one."""
    t = min(1.0, abs(score) / bound) if bound > 0 else 0.0
    if score >= 0:
        return 255, int(255 - 175 * t), int(255 - 175 * t)
    return int(255 - 175 * t), int(255 - 120 * t), 255


def terminal_tokens(tokens: Sequence[str], scores: Sequence[float], color: bool) -> str:
    """Tokens on a coloured background (24-bit ANSI), or, without colour, each followed by its score."""
    bound = max((abs(s) for s in scores), default=0.0)
    if not color:
        return " ".join(f"{t.strip() or repr(t)}({s:+.3f})" for t, s in zip(tokens, scores, strict=True))
    out = []
    for token, score in zip(tokens, scores, strict=True):
        r, g, b = _rgb(score, bound)
        out.append(f"\033[48;2;{r};{g};{b}m\033[38;2;0;0;0m{token}\033[0m")
    return "".join(out)


def html_page(path: Path, title: str, sections: Sequence[dict[str, Any]]) -> Path:
    """One HTML page: per input, its prediction and its tokens shaded by attribution (hover: the score)."""
    parts = [
        "<!doctype html><html><head><meta charset='utf-8'>",
        f"<title>{html.escape(title)}</title>",
        "<style>body{font-family:sans-serif;max-width:60em;margin:2em auto}"
        ".t{font-family:monospace;white-space:pre-wrap;line-height:1.9}.t span{padding:1px 0}"
        "h2{font-size:1em;margin-top:2em}h3{font-size:.9em;font-weight:normal;margin:.6em 0 0}</style></head><body>",
        f"<h1>{html.escape(title)}</h1>",
        "<p>Red: towards the explained class; blue: against it. Hover a token for its score.</p>",
    ]
    for section in sections:
        tokens, scores = section["tokens"], section["scores"]
        bound = max((abs(s) for s in scores), default=0.0)
        level = int(section.get("level", 2))
        parts.append(f"<h{level}>{html.escape(section['heading'])}</h{level}><div class='t'>")
        for token, score in zip(tokens, scores, strict=True):
            r, g, b = _rgb(score, bound)
            parts.append(f"<span style='background:rgb({r},{g},{b})' title='{score:+.4f}'>{html.escape(token)}</span>")
        parts.append("</div>")
    parts.append("</body></html>")
    path.write_text("".join(parts), encoding="utf-8")
    return path
