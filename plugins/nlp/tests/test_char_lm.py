"""Issue 37 item 11: sliding-window evaluation (every token scored once, with history) and bits per character of a
language model beside the compressors, as run metrics a recipe's targets compare."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import pytest
import torch

from engine import ConfigError
from engine.testing import train_run


@pytest.mark.parametrize(("n", "block", "stride"), [(100, 8, 8), (100, 8, 3), (101, 8, 1), (9, 8, 4), (57, 16, 5)])
def test_scored_windows_score_every_token_once(n: int, block: int, stride: int) -> None:
    from engine_nlp.windows import IGNORE, ScoredWindows

    ids = torch.arange(n)
    ds = ScoredWindows(ids, block, stride)
    scored: list[int] = []
    for i in range(len(ds)):
        x, y = ds[i]
        assert x.shape == y.shape == (block,)
        keep = y != IGNORE
        assert (y[keep] == x[keep] + 1).all()  # the next token of each scored position
        if i:  # after the first window, each scored token has at least block - stride tokens of history
            assert int(torch.nonzero(keep)[0]) >= block - stride
        scored += y[keep].tolist()
    assert scored == list(range(1, n))  # every token but the first, once, in order


def test_text_files_eval_stride(corpus_file: Path) -> None:
    from engine_nlp.data import TextFiles

    src = TextFiles(paths=[str(corpus_file)], max_chars=30_000, context_length=32, eval_stride=8)
    ds = src.datasets()
    assert len(ds["train"]) == (len(src.ids["train"]) - 33) // 32 + 1  # training blocks are unchanged
    targets = torch.cat([ds["test"][i][1] for i in range(len(ds["test"]))])
    assert int((targets != -100).sum()) == len(src.ids["test"]) - 1
    assert src.facts["characters"] == {k: len(src.split_text(k)) for k in ("train", "val", "test")}
    with pytest.raises(ConfigError, match=r"eval_stride .* at most context_length"):
        TextFiles(paths=[str(corpus_file)], max_chars=30_000, context_length=32, eval_stride=33)


def _tiny_lm(corpus: Path) -> list[str]:
    """A one-block GPT of width 16 on ``corpus``: the runs below differ in their data and evaluation settings."""
    return [
        "task=nlp.language_modeling",
        "model=nlp.gpt",
        "model.n_layer=1",
        "model.d_model=16",
        "model.n_head=2",
        "data=nlp.text_files",
        f"data.paths=[{corpus}]",
    ]


def test_run_logs_bits_per_char_beside_the_compressors(tmp_path: Path, corpus_file: Path, cli: Any) -> None:
    from engine_nlp.baselines import compressed_bits_per_char
    from engine_nlp.data import TextFiles

    overrides = [
        *_tiny_lm(corpus_file),
        "data.context_length=16",
        "data.eval_stride=4",
        "task.dynamic_eval_lrs=[0.001]",
        "trainer.max_steps=3",
        "trainer.val_check_interval=3",
    ]
    result = train_run(*overrides, root=tmp_path)
    metrics = result.summary["metrics"]
    src = TextFiles(paths=[str(corpus_file)], context_length=16)
    for split in ("val", "test"):
        text = src.split_text(split)
        per_char = metrics[f"{split}/loss"] / math.log(2) * len(src.ids[split]) / len(text)
        assert metrics[f"{split}/bits_per_char"] == pytest.approx(per_char, rel=1e-5)
        compressed = compressed_bits_per_char(text)
        assert metrics[f"{split}/xz_bits_per_char"] == pytest.approx(compressed["xz -9e"])
        assert metrics[f"{split}/zstd_bits_per_char"] == pytest.approx(compressed["zstd -19"])
    assert metrics["test/dynamic_lr"] == pytest.approx(0.001) and 0 < metrics["test/dynamic_bits_per_char"] < 10
    shown = cli("nlp", "baselines", str(result.run_dir)).stdout.splitlines()
    dynamic = f"{metrics['test/dynamic_bits_per_char']:.3f}"
    assert any(line.startswith("test bits/char (dynamic eval)") and dynamic in line for line in shown)


def test_dynamic_evaluation_adapts_to_the_text_and_leaves_the_model_alone() -> None:
    from engine_nlp.dynamic import dynamic_loss
    from engine_nlp.models import GPT
    from engine_nlp.windows import ScoredWindows

    torch.manual_seed(0)
    model = GPT(5, 16, n_layer=1, n_head=2, d_model=16).eval()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    ids = torch.tensor([0, 1, 2, 3, 4] * 60)  # a repeated text: one a model that keeps learning soon predicts
    windows = ScoredWindows(ids, 16, 8)
    with torch.no_grad():
        static = torch.nn.functional.cross_entropy(
            torch.cat([model(windows[i][0][None])[0] for i in range(len(windows))]),
            torch.cat([windows[i][1] for i in range(len(windows))]),
        )
    assert dynamic_loss(model, ids, 16, 8, 0.0) == pytest.approx(float(static), rel=1e-5)  # lr 0: the static loss
    assert dynamic_loss(model, ids, 16, 8, 0.01) < 0.5 * float(static)
    assert all(torch.equal(v, before[k]) for k, v in model.state_dict().items())


def test_bits_per_char_of_a_bpe_run_is_the_text_total_loss_over_its_characters(
    tmp_path: Path, corpus_file: Path
) -> None:
    """With BPE a token covers several characters: ``bits_per_char`` must be the split's whole loss in bits (every
    token's, the first, which no window predicts, counted at the mean) over its characters, not bits per token."""
    from engine_nlp.perplexity import perplexity

    from engine.runs import open_run

    overrides = [
        *_tiny_lm(corpus_file),
        "data.tokenizer=bpe",
        "data.vocab_size=300",
        "data.context_length=16",
        "data.eval_stride=4",
        "trainer.max_steps=3",
        "trainer.val_check_interval=3",
    ]
    result = train_run(*overrides, root=tmp_path)
    run = open_run(result.run_dir)
    source = run.datamodule().source
    model = run.model("best").eval()
    for split in ("val", "test"):
        text = source.split_text(split)
        ids = source.tokenizer.encode(text)
        assert source.tokenizer.decode(ids) == text and len(ids) < 0.8 * len(text)  # several characters a token
        scored = perplexity(model, ids, 16, stride=4)
        assert scored["tokens"] == len(ids) - 1
        total_bits = scored["loss"] * len(ids) / math.log(2)
        assert result.summary["metrics"][f"{split}/bits_per_char"] == pytest.approx(total_bits / len(text), rel=1e-4)
        assert (
            result.summary["metrics"][f"{split}/bits_per_token"] > result.summary["metrics"][f"{split}/bits_per_char"]
        )
