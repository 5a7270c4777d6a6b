"""The attention picture, checked structurally: readable at 8 layers x 4 heads (issue 34)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("matplotlib")


def test_an_8_layer_4_head_attention_grid_is_readable(tmp_path: Path) -> None:
    from engine_explain.render import attention_figure, attention_png

    rng = np.random.default_rng(0)
    tokens = ["the", "film", "was", "not", "good", "at", "all", "really", "[SEP]", "and", "then", "some"]
    layers = [rng.dirichlet(np.ones(len(tokens)), size=(4, len(tokens))) for _ in range(8)]
    fig = attention_figure(layers, tokens, "review.txt: attention (8 layers)")
    maps = [ax for ax in fig.axes if ax.images]
    assert len(maps) == 32
    assert sum(1 for ax in fig.axes if ax.get_label() == "<colorbar>") == 1  # one scale for every map
    assert {ax.images[0].get_clim() for ax in maps} == {(0.0, max(float(m.max()) for m in layers))}
    titles = [ax.get_title() for ax in maps if ax.get_title()]
    assert titles == ["head 0", "head 1", "head 2", "head 3"]  # once, above the columns: nothing to overlap
    assert [ax.get_ylabel() for ax in maps if ax.get_ylabel()] == [f"layer {r}" for r in range(8)]
    bottom = [ax for ax in maps if ax.get_xticklabels()]
    assert len(bottom) == 4 and [t.get_text() for t in bottom[0].get_xticklabels()] == tokens
    assert all(t.get_fontsize() >= 7 for t in bottom[0].get_xticklabels())
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    boxes = [ax.title.get_window_extent(renderer) for ax in maps if ax.get_title()]
    assert not any(a.overlaps(b) for i, a in enumerate(boxes) for b in boxes[i + 1 :])
    assert fig.get_suptitle() == "review.txt: attention (8 layers)"
    png = attention_png(tmp_path / "a.png", layers, tokens, "t")
    assert png.read_bytes()[:4] == b"\x89PNG"
