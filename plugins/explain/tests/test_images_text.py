"""engine explain on pixels, tokens and attention: correct rankings, heatmaps, coloured tokens, attention maps."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from torch import nn

METHODS = ("integrated_gradients", "saliency", "occlusion", "gradient_shap")
PIXELS = {(1, 2), (4, 3)}  # only these pixels decide the label below


@pytest.fixture(scope="module")
def pixel_model() -> tuple[nn.Module, torch.Tensor, torch.Tensor]:
    """A small conv net trained on 6x6 noise images whose label is pixel (1, 2) > pixel (4, 3)."""
    torch.manual_seed(0)
    x = torch.randn(1536, 1, 6, 6)
    y = (x[:, 0, 1, 2] > x[:, 0, 4, 3]).long()
    model = nn.Sequential(nn.Conv2d(1, 8, 3, padding=1), nn.ReLU(), nn.Flatten(), nn.Linear(8 * 36, 2))
    opt = torch.optim.AdamW(model.parameters(), lr=0.01, weight_decay=0.05)
    for _ in range(400):
        i = torch.randint(0, 1024, (128,))
        loss = nn.functional.cross_entropy(model(x[i]), y[i])
        opt.zero_grad()
        loss.backward()
        opt.step()
    model.eval()
    with torch.no_grad():
        assert (model(x[1024:]).argmax(-1) == y[1024:]).float().mean() > 0.9
    return model, x[1024:1088], x[:256]


@pytest.mark.parametrize("method", METHODS)
def test_attributions_rank_exactly_the_decisive_pixels_first(pixel_model: Any, method: str) -> None:
    from engine_explain.methods import Options, attribute

    model, x, background = pixel_model
    with torch.no_grad():
        target = model(x).argmax(-1)
    scores = attribute(model, x, target, Options(method=method, background=background[:32]))
    assert scores.shape == x.shape
    mean = scores.abs().mean(0)[0]
    top = {divmod(int(i), 6) for i in mean.flatten().argsort(descending=True)[:2]}
    assert top == PIXELS, f"{method} ranks {top} first"


@pytest.fixture(scope="module")
def vit_run(train: Any, tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("runs")
    overrides = ["model=vision.vit", "model.width=16", "model.heads=2", "model.depth=2", "data=vision.digits",
                 "trainer.max_epochs=1", "trainer.limit_train_batches=3", "trainer.limit_val_batches=1",
                 "trainer.limit_test_batches=1"]  # fmt: skip
    return Path(train(*overrides, root=root, name="vit").run_dir)


@pytest.mark.slow
def test_images_get_heatmaps_and_a_transformer_its_attention(vit_run: Path, cli: Any, tmp_path: Path) -> None:
    from engine_deploy.common import split_inputs

    from engine.runs import open_run

    x, _, _ = split_inputs(open_run(vit_run).datamodule(), 3)
    np.save(tmp_path / "digits.npy", x.numpy())
    out = tmp_path / "out"
    r = cli("explain", str(vit_run), str(tmp_path / "digits.npy"), "-m", "saliency", "-o", str(out))
    assert r.returncode == 0, r.stderr
    assert "attention: 2 layers captured" in r.stdout
    names = sorted(p.name for p in out.iterdir())
    assert "000-digits-0.png" in names and "000-digits-0-attention.png" in names and "000-digits-0-cls.png" in names
    assert len([n for n in names if n.endswith(".png")]) == 9
    record = json.loads((out / "attributions.json").read_text())["inputs"][2]
    assert record["kind"] == "image" and np.array(record["attribution"]).shape == (1, 8, 8)


def test_attention_weights_are_what_the_layers_apply() -> None:
    """Recomputed weights times the values give the fused attention's output; MHA's are its own."""
    import torch.nn.functional as F
    from engine_explain.attention import attention_maps, sdpa_weights

    q, k, v = torch.randn(3, 2, 3, 6, 4).unbind(0)
    mask = torch.rand(2, 1, 6, 6) > 0.3
    mask[..., 0] = True
    for kwargs in ({"attn_mask": mask}, {"is_causal": True}, {"scale": 0.3}):
        expected = F.scaled_dot_product_attention(q, k, v, **kwargs)
        torch.testing.assert_close(sdpa_weights(q, k, v, **kwargs) @ v, expected, atol=1e-5, rtol=1e-5)

    layer = nn.TransformerEncoderLayer(8, 2, 16, 0.0, batch_first=True).eval()
    x = torch.randn(2, 5, 8)
    with torch.no_grad():  # an inference pass would take the fused fast path, which skips the attention module
        maps = attention_maps(layer, x)
        _, own = layer.self_attn(x, x, x, need_weights=True, average_attn_weights=False)
    assert len(maps) == 1 and maps[0].shape == (2, 2, 5, 5)
    torch.testing.assert_close(maps[0], own)
    assert attention_maps(nn.Linear(8, 2), torch.randn(2, 8)) == []


@pytest.fixture(scope="module")
def text_run(train: Any, tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("runs")
    overrides = ["model=nlp.transformer_classifier", "model.d_model=16", "model.n_head=2", "model.n_layer=1",
                 "data=nlp.text_classification", "data.max_samples=160", "data.max_length=24",
                 "data.tokenizer=char", "trainer.max_epochs=1"]  # fmt: skip
    return Path(train(*overrides, root=root, name="text").run_dir)


@pytest.mark.parametrize("method", METHODS)
def test_text_gets_token_attributions(text_run: Path, cli: Any, tmp_path: Path, method: str) -> None:
    snippet = tmp_path / "snippet.txt"
    snippet.write_text("import os\nos.path")
    out = tmp_path / method
    r = cli("explain", str(text_run), str(snippet), "-m", method, "-o", str(out))
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert "predicted" in lines[0] and lines[1].startswith("i(") and "p(" in lines[1]  # char tokens with scores
    record = json.loads((out / "attributions.json").read_text())["inputs"][0]
    assert "".join(record["tokens"]) == "import os\nos.path" and len(record["attribution"]) == 17
    page = (out / "attributions.html").read_text()
    assert page.count("<span") == 17 and "title='" in page
    assert (out / "000-snippet-attention.png").is_file()


def test_terminal_colours_and_html_escape(tmp_path: Path) -> None:
    from engine_explain.render import html_page, terminal_tokens

    coloured = terminal_tokens(["a", "<b>"], [1.0, -0.5], color=True)
    assert "\033[48;2;255;80;80m" in coloured and "\033[0m" in coloured
    assert terminal_tokens(["a", " "], [0.25, 0.0], color=False) == "a(+0.250) ' '(+0.000)"
    page = html_page(tmp_path / "p.html", "t", [{"heading": "h", "tokens": ["<b>"], "scores": [1.0]}]).read_text()
    assert "&lt;b&gt;" in page and "<b>" not in page.split("<body>")[1]


@pytest.fixture(scope="module")
def digits_run(train: Any, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The digits CNN with its shipped weights (test accuracy 1.0), one step at a negligible lr: seconds."""
    quick = ["model.weights=digits", "optimizer.lr=1e-8", "trainer.max_epochs=1", "trainer.limit_train_batches=1",
             "trainer.limit_val_batches=1", "trainer.limit_test_batches=1"]  # fmt: skip
    return Path(train(*quick, root=tmp_path_factory.mktemp("digits"), recipe="vision/digits", name="d").run_dir)


@pytest.mark.slow
def test_explain_reads_raw_digits_like_predict(digits_run: Path, tmp_path: Path, cli: Any) -> None:
    """The input rule of docs/plugins/deploy.md: a raw ``(5, 8, 8)`` batch of pixels 0..16 is preprocessed."""
    from engine_explain.explain import explain
    from sklearn.datasets import load_digits

    bunch = load_digits()
    raw = np.stack([bunch.images[list(bunch.target).index(d)] for d in range(5)]).astype(np.float32)
    np.save(tmp_path / "nhw.npy", raw)
    report = explain(digits_run, [str(tmp_path / "nhw.npy")], method="saliency", out=tmp_path / "why", progress=False)
    assert [item.prediction["label"] for item in report.items] == ["0", "1", "2", "3", "4"]
    np.save(tmp_path / "far.npy", raw * 16)  # 0..255 pixels given to a 0..16 run: warned
    r = cli("explain", str(digits_run), str(tmp_path / "far.npy"), "-m", "saliency", "--out", str(tmp_path / "f"))
    assert r.returncode == 0 and "warning:" in r.stderr and "0..16" in r.stderr
