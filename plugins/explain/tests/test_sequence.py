"""engine explain on models that generate text: one row of attributions per generated token, tokens as text.

The run comes from a third-party-style plugin written here (``copyrev``): a character-level reversal task with a
tiny encoder-decoder, reached only through the protocols (`DeclaresIO`, `Generates`, `EncodesText`, `LoadsInput`).
"""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest
import torch
from torch import nn

PLUGIN = """
from engine import Component, hookimpl

@hookimpl
def engine_models():
    return [Component("tiny_s2s", "copyrev_impl:TinySeq2Seq", "a tiny encoder-decoder transformer")]

@hookimpl
def engine_data_sources():
    return [Component("reversed", "copyrev_impl:Reversed", "strings and their reversal", task="copyrev.reverse",
                      facts=("vocab_size", "pad_id", "bos_id", "eos_id"))]

@hookimpl
def engine_tasks():
    return [Component("reverse", "copyrev_impl:ReverseTask", "teacher-forced reversal, greedy decoding",
                      slots={"model": "model", "optimizer": "optimizer"}, defaults={"optimizer": "adamw"},
                      required_slots=("model",))]
"""

IMPL = """
import lightning as L
import torch
import torch.nn.functional as F
from torch import nn

from engine import ConfigError
from engine.data import ArrayDataset, DataSource

PAD, BOS, EOS = 0, 1, 2
CHARS = "abcdef"


class Reversed(DataSource):
    def __init__(self, num_samples: int = 512, length: int = 5, seed: int = 0):
        self.n, self.length, self.seed = num_samples, length, seed

    @property
    def facts(self):
        return {"vocab_size": 3 + len(CHARS), "pad_id": PAD, "bos_id": BOS, "eos_id": EOS}

    def encode_text(self, text):
        if not text:
            raise ConfigError("empty text: nothing to reverse")
        if len(text) > self.length:
            raise ConfigError(f"text of {len(text)} characters; the model reads at most {self.length}")
        unknown = sorted(set(text) - set(CHARS))
        if unknown:
            raise ConfigError(f"unknown characters {''.join(unknown)!r}: the vocabulary is {CHARS!r}")
        return [3 + CHARS.index(c) for c in text] + [EOS]

    def decode_tokens(self, ids):
        return "".join(CHARS[i - 3] for i in ids if i >= 3)

    def load_input(self, path):
        with open(path, encoding="utf-8") as fh:
            return torch.tensor([self.encode_text(fh.read().strip())])

    def datasets(self):
        g = torch.Generator().manual_seed(self.seed)
        src = torch.full((self.n, self.length + 1), PAD)
        tgt = torch.full((self.n, self.length + 2), PAD)
        for i in range(self.n):
            k = int(torch.randint(2, self.length + 1, (1,), generator=g))
            s = torch.randint(3, 3 + len(CHARS), (k,), generator=g)
            src[i, :k], src[i, k] = s, EOS
            tgt[i, 0], tgt[i, 1 : k + 1], tgt[i, k + 1] = BOS, s.flip(0), EOS
        cut = self.n * 7 // 8
        return {"train": ArrayDataset(src[:cut], tgt[:cut]), "val": ArrayDataset(src[cut:], tgt[cut:])}


class TinySeq2Seq(nn.Module):
    def __init__(self, vocab_size: int, dim: int = 32, max_len: int = 16):
        super().__init__()
        self.embed = nn.Embedding(vocab_size, dim)  # shared by the encoder and the decoder
        self.pos = nn.Embedding(max_len, dim)
        self.core = nn.Transformer(dim, 2, 1, 1, 64, dropout=0.0, batch_first=True)
        self.out = nn.Linear(dim, vocab_size)

    def forward(self, src, tgt):
        def e(ids):
            return self.embed(ids) + self.pos(torch.arange(ids.shape[1], device=ids.device))[None]

        mask = nn.Transformer.generate_square_subsequent_mask(tgt.shape[1])
        h = self.core(e(src), e(tgt), tgt_mask=mask, tgt_is_causal=True,
                      src_key_padding_mask=src == PAD, memory_key_padding_mask=src == PAD)
        return self.out(h)


class ReverseTask(L.LightningModule):
    input_kind = "text"
    output_kind = "text"

    def __init__(self, model, optimizer):
        super().__init__()
        self.model, self.optimizer_factory = model, optimizer

    def _loss(self, batch):
        src, tgt = batch
        logits = self.model(src, tgt[:, :-1])
        return F.cross_entropy(logits.reshape(-1, logits.shape[-1]), tgt[:, 1:].reshape(-1), ignore_index=PAD)

    def training_step(self, batch, _):
        loss = self._loss(batch)
        self.log("train/loss", loss)
        return loss

    def validation_step(self, batch, _):
        self.log("val/loss", self._loss(batch))

    def configure_optimizers(self):
        return self.optimizer_factory(self.parameters())

    def network_inputs(self, inputs):
        width = max(len(x) for x in inputs)
        src = torch.tensor([list(x) + [PAD] * (width - len(x)) for x in inputs])
        return src, torch.full((len(inputs), 1), BOS)

    def generate(self, network, inputs, max_new_tokens: int = 7, **_):
        if max_new_tokens < 1:
            raise ConfigError(f"max_new_tokens must be >= 1, got {max_new_tokens}")
        src, out = self.network_inputs(inputs)
        for _ in range(max_new_tokens):
            nxt = network(src, out)[:, -1].argmax(-1, keepdim=True)
            out = torch.cat([out, nxt], 1)
            if bool((out == EOS).any(1).all()):
                break
        found = []
        for row in out[:, 1:].tolist():
            found.append(row[: row.index(EOS) + 1] if EOS in row else row)
        return found
"""


@pytest.fixture(autouse=True)
def _isolated(engine_isolated: Path) -> Path:
    return engine_isolated


@pytest.fixture
def copyrev(plugin_site: Any) -> None:
    plugin_site("copyrev", PLUGIN, extra={"copyrev_impl": IMPL})


def _reversal_run(train: Any, root: Path, epochs: int, samples: int = 256) -> Path:
    overrides = ["model=copyrev.tiny_s2s", "data=copyrev.reversed", f"data.num_samples={samples}",
                 "optimizer.lr=0.01", f"trainer.max_epochs={epochs}"]  # fmt: skip
    return Path(train(*overrides, root=root, name="rev").run_dir)


def test_the_default_output_never_fails_on_a_missing_value() -> None:
    from engine_explain.cli import _said

    assert _said(SimpleNamespace(prediction={"value": None})) == "-"
    assert _said(SimpleNamespace(prediction={"label": "a"})) == "a"
    assert _said(SimpleNamespace(prediction={"value": [1.0, None]})) == "1, -"


class Copier(nn.Module):
    """Encoder-decoder: the logits at decoder position p read only source token p (an exact copy model)."""

    def __init__(self, vocab: int = 9) -> None:
        super().__init__()
        self.embed = nn.Embedding(vocab, vocab)
        with torch.no_grad():
            self.embed.weight.copy_(torch.eye(vocab) * 5)

    def forward(self, src: torch.Tensor, tgt: torch.Tensor) -> torch.Tensor:
        return self.embed(src)[:, : tgt.shape[1]]


class Echo(nn.Module):
    """A causal LM predicting its current token again: position p reads only token p."""

    def __init__(self, vocab: int = 9) -> None:
        super().__init__()
        self.embed = nn.Embedding(vocab, vocab)
        with torch.no_grad():
            self.embed.weight.copy_(torch.eye(vocab) * 5)

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        return self.embed(ids)


@pytest.mark.parametrize("method", ["integrated_gradients", "saliency", "occlusion", "gradient_shap"])
def test_each_generated_token_is_attributed_to_the_input_token_it_copies(method: str) -> None:
    from engine_explain.sequence import attribute

    src = torch.tensor([[3, 5, 4, 7]])
    matrix, probs = attribute(Copier(), (src, torch.tensor([[1]])), [3, 5, 4, 7], method, 0, 8, 4)
    assert matrix.shape == (4, 4) and len(probs) == 4 and min(probs) > 0.9
    assert matrix.argmax(1).tolist() == [0, 1, 2, 3], matrix
    assert np.allclose(matrix - np.diag(np.diag(matrix)), 0, atol=1e-5), f"{method}: {matrix}"


def test_the_decoder_start_is_found_when_network_inputs_gives_a_longer_prefix() -> None:
    """A task's network_inputs may give ``<s> <s>`` (an export shape); the model was trained after one ``<s>``."""
    from engine_explain.sequence import attribute

    src = torch.tensor([[3, 5, 4, 7]])
    matrix, probs = attribute(Copier(), (src, torch.tensor([[1, 1]])), [3, 5, 4, 7], "integrated_gradients", 0, 8, 4)
    assert matrix.argmax(1).tolist() == [0, 1, 2, 3] and min(probs) > 0.9, matrix


def test_a_causal_lm_attributes_generated_tokens_to_its_prompt_only() -> None:
    from engine_explain.sequence import attribute

    prompt = torch.tensor([[3, 5, 4]])
    matrix, _ = attribute(Echo(), (prompt,), [4, 4], "integrated_gradients", 0, 8, 4)
    assert matrix.shape == (2, 3)
    assert matrix[0].argmax() == 2 and abs(matrix[0, :2]).max() < 1e-5  # the next token reads the last prompt token
    assert abs(matrix[1]).max() < 1e-5  # the second reads the first generated token: not a prompt token


def test_explain_a_seq2seq_run_one_row_per_generated_token_tokens_as_text(
    copyrev: None, train: Any, cli: Any, tmp_path: Path
) -> None:
    run = _reversal_run(train, tmp_path, epochs=1)
    (tmp_path / "in.txt").write_text("abc\nfed\n")
    res = cli("explain", str(run), str(tmp_path / "in.txt"), "--method", "saliency", "--max-new-tokens", "4")
    assert res.returncode == 0, res.stderr
    assert "'abc' ->" in res.stdout and "in.txt[1]" in res.stdout
    record = json.loads((run / "explain" / "saliency" / "attributions.json").read_text())
    assert record["kind"] == "sequence" and len(record["inputs"]) == 2
    first = record["inputs"][0]
    assert first["input_tokens"] == ["a", "b", "c", "<eos>"]  # text, not ids
    assert 1 <= len(first["output_tokens"]) <= 4 and len(first["attribution"]) == len(first["output_tokens"])
    assert all(len(row) == 4 for row in first["attribution"])
    assert all(t in "abcdef" or t == "<eos>" for t in first["output_tokens"])
    assert (run / "explain" / "saliency" / "attributions.html").is_file()
    assert (run / "explain" / "saliency" / "000-in-0.png").is_file()
    lines = cli("explain", str(run), str(tmp_path / "in.txt"), "--json", "--method", "occlusion").stdout.splitlines()
    assert [json.loads(line)["text"] for line in lines] == ["abc", "fed"]


def test_bad_text_inputs_are_one_line_refusals(copyrev: None, train: Any, cli: Any, tmp_path: Path) -> None:
    run = _reversal_run(train, tmp_path, epochs=1, samples=64)
    (tmp_path / "latin1.txt").write_bytes("caf\xe9".encode("latin-1"))
    (tmp_path / "unknown.txt").write_text("abz\n")
    (tmp_path / "long.txt").write_text("abcdefabc\n")
    for name, said in (("latin1.txt", "not UTF-8"), ("unknown.txt", "unknown characters"), ("long.txt", "at most")):
        res = cli("explain", str(run), str(tmp_path / name))
        assert res.returncode == 2 and said in res.stderr and "Traceback" not in res.stderr, res.stderr
    res = cli("explain", str(run), str(tmp_path / "unknown.txt"), "--target", "3")
    assert res.returncode == 2 and "--target" in res.stderr


@pytest.mark.slow
def test_a_trained_reversal_model_attributes_each_output_to_the_mirrored_input(
    copyrev: None, train: Any, tmp_path: Path
) -> None:
    from engine_explain.explain import explain

    run = _reversal_run(train, tmp_path, epochs=30, samples=1024)
    (tmp_path / "in.txt").write_text("abcd\ncafe\n")
    report = explain(run, [str(tmp_path / "in.txt")], method="integrated_gradients", progress=False)
    for item in report.items:
        assert item.output_text == item.text[::-1]
        n = len(item.text)
        assert item.attribution[:n].argmax(1).tolist() == list(range(n - 1, -1, -1)), item.attribution


def test_input_tokens_are_shown_with_the_source_side_vocabulary() -> None:
    from engine_explain.sequence import token_texts

    class Pair:
        def decode_tokens(self, ids: list[int]) -> str:
            return "".join("T" for i in ids if i > 2)

        def decode_source(self, ids: list[int]) -> str:
            return "".join("S" for i in ids if i > 2)

    facts = {"src_vocab_size": 9, "tgt_vocab_size": 9, "eos_id": 2}  # two vocabularies of one size
    assert token_texts(Pair(), [5, 2], facts, "source") == ["S", "<eos>"]
    assert token_texts(Pair(), [5, 1], facts, "target") == ["T", "#1"]
