from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import pytest

from engine import ConfigError, EngineError
from engine.testing import run_cli, train_run

TINY = {"max_chars": 30_000, "context_length": 32}


def _run(overrides: list[str], tmp_path: Path) -> dict:
    return train_run(*overrides, root=tmp_path).summary


# --------------------------------------------------------------------------- conformance


def test_conformance(engine_check, pairs_tsv: Path) -> None:
    passed = engine_check(
        "nlp",
        data_params={
            "nlp.text_classification": {"max_samples": 160, "vocab_size": 300, "max_length": 32},
            "nlp.text_files": dict(TINY),
            "nlp.unlabelled_texts": {"max_samples": 160, "vocab_size": 300, "context_length": 32},
            "nlp.parallel_text": {"path": str(pairs_tsv), "vocab_size": 300},
            "nlp.synthetic_translation": {"num_pairs": 200},
            "nlp.reading_comprehension": {"num_questions": 60},
        },
        task_overrides={
            "nlp.language_modeling": [
                "data=nlp.text_files",
                "data.max_chars=30000",
                "data.context_length=32",
                "model=nlp.gpt",
                "model.n_layer=1",
                "model.d_model=32",
            ],
            "nlp.seq2seq": ["data=nlp.synthetic_translation", "data.num_pairs=200", "model.d_model=32"],
            "nlp.extractive_qa": ["data=nlp.reading_comprehension", "data.num_questions=60", "model.d_model=32"],
        },
    )
    assert any("recipe 'nlp/char-gpt' completes" in p for p in passed)
    assert any("recipe 'nlp/classify' completes" in p for p in passed)
    assert any("recipe 'nlp/translate-synthetic' completes" in p for p in passed)
    assert any("task 'nlp.seq2seq' completes" in p for p in passed)
    assert any("model 'nlp.seq2seq' forward/backward" in p for p in passed)


def test_plugin_module_imports_no_torch() -> None:
    import subprocess
    import sys

    code = "import sys, engine_nlp.plugin; print('torch' in sys.modules, 'tokenizers' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.split() == ["False", "False"]


# --------------------------------------------------------------------------- tokenizers and data


def test_char_tokenizer_round_trip_and_unknown_chars(tmp_path: Path) -> None:
    from engine_nlp.tokenizer import TextTokenizer

    tok = TextTokenizer.train("char", ["def f(x):\n    return x\n"])
    text = "def fx(r):\n"
    assert tok.decode(tok.encode(text)) == text
    assert tok.encode(text) == tok.tokenizer.encode(text).ids  # fast path == the tokenizers pipeline
    tok.save(tmp_path / "t.json")
    again = TextTokenizer.load(tmp_path / "t.json")
    assert again.kind == "char" and again.encode(text) == tok.encode(text)
    with pytest.raises(EngineError, match="never seen"):
        again.encode_prompt("λ")


def test_bpe_tokenizer_encodes_anything(tmp_path: Path, corpus_file: Path) -> None:
    from engine_nlp.tokenizer import TextTokenizer

    tok = TextTokenizer.train("bpe", [corpus_file.read_text()], vocab_size=400)
    assert tok.vocab_size == 400 and tok.pad_id == 0
    text = "naïve ☃ import os"
    assert tok.decode(tok.encode_prompt(text)) == text
    assert len(tok.encode("import os\n")) < len("import os\n")  # merges learned
    with pytest.raises(ConfigError, match="at least 260"):
        TextTokenizer.train("bpe", ["abc"], vocab_size=100)


def test_text_files_split_by_position(corpus_file: Path) -> None:
    from engine_nlp.data import TextFiles

    src = TextFiles(paths=[str(corpus_file)], val_fraction=0.1, test_fraction=0.1, **TINY)
    ds = src.datasets()
    x, y = ds["train"][3]
    assert x.shape == y.shape == (32,) and (x[1:] == y[:-1]).all()
    n = sum(len(v) for v in src.ids.values())
    assert abs(len(src.ids["val"]) / n - 0.1) < 0.01
    # contiguous: train text, then val, then test; the tokenizer never saw val/test text
    text = corpus_file.read_text()[: TINY["max_chars"]]
    test_text = text[-len(src.ids["test"]) :]
    vocab = src.tokenizer.tokenizer.get_vocab()
    expected = "".join(c if c in vocab else "<unk>" for c in test_text)  # chars unseen in train are <unk>
    assert src.tokenizer.decode(src.ids["test"].tolist()) == expected
    facts = src.facts
    assert facts["context_length"] == 32 and facts["vocab_size"] == src.tokenizer.vocab_size


def test_tokenizer_saved_in_run_and_reused(tiny_lm_run: Path, corpus_file: Path) -> None:
    from engine_nlp.data import TextFiles
    from engine_nlp.tokenizer import TextTokenizer

    saved = TextTokenizer.load(tiny_lm_run / "tokenizer.json")
    facts = json.loads((tiny_lm_run / "facts.json").read_text())
    assert saved.vocab_size == facts["vocab_size"]
    reused = TextFiles(paths=[str(corpus_file)], tokenizer_file=str(tiny_lm_run / "tokenizer.json"), **TINY)
    assert reused.tokenizer.tokenizer.get_vocab() == saved.tokenizer.get_vocab()
    rebuilt = TextFiles(paths=[str(corpus_file)], **TINY)  # retraining on the same text is deterministic
    assert rebuilt.tokenizer.tokenizer.get_vocab() == saved.tokenizer.get_vocab()


def _no_training(monkeypatch: pytest.MonkeyPatch) -> None:
    from engine_nlp.tokenizer import TextTokenizer

    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("a tokenizer was trained although the run has its own tokenizer.json")

    monkeypatch.setattr(TextTokenizer, "train", refuse)


def test_reopened_run_reads_its_tokenizer(tiny_lm_run: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from engine.runs import open_run

    _no_training(monkeypatch)
    dm = open_run(tiny_lm_run).datamodule()  # the core calls load_artifacts(run_dir)
    saved = json.loads((tiny_lm_run / "tokenizer.json").read_text())["model"]["vocab"]
    assert dm.source.tokenizer.tokenizer.get_vocab() == saved
    assert dm.facts["vocab_size"] == json.loads((tiny_lm_run / "facts.json").read_text())["vocab_size"]
    x, y = dm.splits["val"][0]
    assert x.shape == (32,) and (x[1:] == y[:-1]).all()


@pytest.mark.slow
def test_evaluate_uses_the_runs_tokenizer(tiny_lm_run: Path, corpus_file: Path, tmp_path: Path) -> None:
    """Change the corpus so that retraining would give another vocabulary: evaluate must use the run's."""
    import shutil

    import yaml

    run = tmp_path / "run"
    shutil.copytree(tiny_lm_run, run)
    corpus = tmp_path / "corpus.txt"
    corpus.write_text("λμ☃\n" + corpus_file.read_text(), encoding="utf-8")  # 3 new characters in the train part
    config = yaml.safe_load((run / "config.yaml").read_text())
    config["data"]["paths"] = [str(corpus)]
    (run / "config.yaml").write_text(yaml.safe_dump(config))
    r = run_cli("evaluate", str(run))  # the experiments plugin's command
    assert r.returncode == 0, r.stderr  # a retrained tokenizer would have 3 more tokens: the checkpoint would not fit
    assert "test/loss" in r.stdout
    from engine.runs import open_run

    facts = json.loads((run / "facts.json").read_text())
    (run / "tokenizer.json").rename(tmp_path / "elsewhere.json")  # without it the tokenizer is trained again:
    assert open_run(run).datamodule().facts["vocab_size"] == facts["vocab_size"] + 3  # so the check above can fail


def test_classification_reads_run_tokenizer(
    labelled_jsonl: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from engine_nlp.data import TextClassification
    from engine_nlp.tokenizer import TextTokenizer

    kw = {"path": str(labelled_jsonl), "text_column": "body", "label_column": "package", "max_length": 40}
    TextTokenizer.train("char", ["import os\n"]).save(tmp_path / "tokenizer.json")  # not what training would give
    _no_training(monkeypatch)
    src = TextClassification(vocab_size=300, **kw)
    src.load_artifacts(tmp_path)
    assert src.facts["tokenizer"] == "char" and src.facts["vocab_size"] == 2 + len(set("import os\n"))
    x, _ = src.datasets()["train"][0]
    assert int(x.max()) < src.facts["vocab_size"]


def test_text_classification_jsonl_columns(labelled_jsonl: Path) -> None:
    from engine_nlp.data import TextClassification

    src = TextClassification(
        path=str(labelled_jsonl), text_column="body", label_column="package", vocab_size=300, max_length=400
    )
    assert src.facts["class_names"] == ["email", "tkinter"] and src.facts["num_classes"] == 2
    x, y = src.datasets()["train"][0]
    assert x.shape == (400,) and y.dim() == 0
    lengths = [len(s) for s in src.datasets()["train"].ids]
    assert max(lengths) <= 400 and min(lengths) < 400  # cut to max_length; short texts get padded
    assert (x[lengths[0] :] == src.facts["pad_id"]).all()


# --------------------------------------------------------------------------- bad input


def test_empty_corpus(tmp_path: Path) -> None:
    from engine_nlp.data import TextFiles

    empty = tmp_path / "empty.txt"
    empty.write_text("  \n")
    with pytest.raises(ConfigError, match="corpus is empty"):
        TextFiles(paths=[str(empty)]).facts  # noqa: B018 -- read on first use, as the runner does
    with pytest.raises(ConfigError, match="no text file matches"):
        TextFiles(paths=[str(tmp_path / "nothing*.txt")]).facts  # noqa: B018


def test_text_shorter_than_one_block(tmp_path: Path) -> None:
    from engine_nlp.data import TextFiles

    short = tmp_path / "short.txt"
    short.write_text("print('hello world')\n" * 3)
    with pytest.raises(ConfigError, match="shorter than one block"):
        TextFiles(paths=[str(short)], context_length=128).facts  # noqa: B018 -- tokenized on first use, as the runner does


def test_missing_label_column(tmp_path: Path, labelled_jsonl: Path, cli: Any) -> None:
    from engine_nlp.data import TextClassification

    with pytest.raises(ConfigError, match="no label column 'label'; keys are body, package"):
        TextClassification(path=str(labelled_jsonl), text_column="body")
    csv_file = tmp_path / "t.csv"
    csv_file.write_text("text,category\nhello,a\nworld,b\n")
    with pytest.raises(ConfigError, match="no label column 'label'; columns are text, category"):
        TextClassification(path=str(csv_file))
    # through the CLI: one line, exit code 2, no traceback
    r = cli("run", "model=nlp.lstm_classifier", "data=nlp.text_classification", f"data.path={csv_file}")
    assert r.returncode == 2, r.stderr
    assert "no label column 'label'" in r.stderr and "Traceback" not in r.stderr


def test_classifier_model_with_lm_task_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="language-modelling task needs"):
        _run(
            [
                "task=nlp.language_modeling",
                "model=nlp.gpt",
                "data=nlp.text_classification",
                "data.max_samples=100",
                "data.vocab_size=300",
            ],
            tmp_path,
        )


# --------------------------------------------------------------------------- models train


def test_gpt_rotary_learns(tmp_path: Path, corpus_file: Path) -> None:
    summary = _run(
        [
            "task=nlp.language_modeling",
            "model=nlp.gpt",
            "model.positions=rotary",
            "model.n_layer=1",
            "model.d_model=32",
            "model.n_head=2",
            "data=nlp.text_files",
            f"data.paths=[{corpus_file}]",
            "data.context_length=32",
            "data.batch_size=16",
            "optimizer.lr=0.01",
            "trainer.max_steps=40",
            "trainer.val_check_interval=40",
        ],
        tmp_path,
    )
    m = summary["metrics"]
    vocab = json.loads(next(tmp_path.glob("*/facts.json")).read_text())["vocab_size"]
    assert m["val/loss"] < 0.75 * math.log(vocab)  # far from uniform after 40 steps
    assert m["val/perplexity"] == pytest.approx(math.exp(m["val/loss"]), rel=1e-4)
    assert m["val/bits_per_token"] == pytest.approx(m["val/loss"] / math.log(2), rel=1e-4)
    assert m["train/tokens_per_s"] > 0 and "test/loss" in m


@pytest.mark.parametrize(
    ("model", "min_val_accuracy", "max_train_loss"),
    [
        # a few hundred snippets: small, mean-pooled, gentle LR (wider [CLS] encoders need more data, see nlp/classify)
        (
            [
                "model=nlp.transformer_classifier",
                "model.pooling=mean",
                "model.n_layer=1",
                "model.d_model=64",
                "optimizer.lr=0.0005",
            ],
            0.7,
            0.65,
        ),
        # the LSTM fits its training texts fast and overfits this little data: check both
        (["model=nlp.lstm_classifier", "optimizer.lr=0.003"], 0.6, 0.4),
    ],
    ids=["transformer", "lstm"],
)
def test_classifiers_learn(
    tmp_path: Path, labelled_jsonl: Path, model: list[str], min_val_accuracy: float, max_train_loss: float
) -> None:
    summary = _run(
        [
            *model,
            "model.dropout=0.0",
            "data=nlp.text_classification",
            f"data.path={labelled_jsonl}",
            "data.text_column=body",
            "data.label_column=package",
            "data.vocab_size=300",
            "data.max_length=48",
            "data.batch_size=16",
            "trainer.max_epochs=3",
        ],
        tmp_path,
    )
    m = summary["metrics"]
    assert m["val/accuracy"] >= min_val_accuracy  # two balanced classes: chance is 0.5
    assert m["train/loss"] < max_train_loss  # ln 2 = 0.69 at chance


def test_padding_is_ignored() -> None:
    import torch
    from engine_nlp.models import LSTMClassifier, TransformerClassifier

    for model in (TransformerClassifier(50, 3, 16, 0, dropout=0.0), LSTMClassifier(50, 3, 0, dropout=0.0)):
        model.eval()
        x = torch.randint(1, 50, (2, 10))
        padded = torch.cat([x, torch.zeros(2, 6, dtype=torch.long)], 1)
        torch.testing.assert_close(model(x), model(padded), atol=1e-5, rtol=1e-5)


def test_gpt_is_causal_and_ties_weights() -> None:
    import torch
    from engine_nlp.models import GPT

    model = GPT(40, 16, n_layer=2, d_model=32, n_head=4).eval()
    assert model.head.weight is model.tok_emb.weight
    x = torch.randint(40, (1, 16))
    y = x.clone()
    y[0, 10:] = (y[0, 10:] + 1) % 40
    torch.testing.assert_close(model(x)[:, :10], model(y)[:, :10])  # the future does not leak


# --------------------------------------------------------------------------- commands


def test_generate_command(tiny_lm_run: Path, cli: Any) -> None:
    r = cli("generate", str(tiny_lm_run), "--prompt", "def ", "--max-new-tokens", "40", "--seed", "3")
    assert r.returncode == 0, r.stderr
    assert len(r.stdout) >= 30  # the continuation: 40 characters (special tokens dropped)
    again = cli("generate", str(tiny_lm_run), "--prompt", "def ", "--max-new-tokens", "40", "--seed", "3")
    assert again.stdout == r.stdout  # seeded
    greedy = cli("generate", str(tiny_lm_run), "def ", "--max-new-tokens", "10", "--temperature", "0")
    assert greedy.returncode == 0 and greedy.stdout.strip("\n"), greedy.stderr


def test_generate_bad_input(tiny_lm_run: Path, tmp_path: Path, cli: Any) -> None:
    r = cli("generate", str(tiny_lm_run), "--prompt", "☃ snow")
    assert r.returncode == 2 and "vocabulary lacks: '☃'" in r.stderr and "Traceback" not in r.stderr
    r = cli("generate", str(tmp_path / "nope"), "--prompt", "x")
    assert r.returncode == 2 and "run directory not found" in r.stderr
    assert "--top-k" in run_cli("generate", "--help").stdout  # the installed command


def test_baselines_command(tiny_lm_run: Path, cli: Any) -> None:
    r = cli("nlp", "baselines", str(tiny_lm_run))
    assert r.returncode == 0, r.stderr
    assert "bigram" in r.stdout and "val/loss" in r.stdout
    # issue 37 item 11: the compressors a user tries first, in bits per character of the same text
    for name in ("xz -9e", "zstd -19", "zstd --ultra -22"):
        assert any(line.startswith("val bits/char") and line.endswith(f"({name})") for line in r.stdout.splitlines())


def test_compressors_bits_per_char() -> None:
    import lzma
    import random

    from engine_nlp.baselines import compressed_bits_per_char

    rng = random.Random(0)
    noise = "".join(rng.choice("ab") for _ in range(20_000))  # one bit of entropy per character
    figures = compressed_bits_per_char(noise)
    assert set(figures) == {"xz -9e", "zstd -19", "zstd --ultra -22"}
    assert all(1.0 < v < 1.6 for v in figures.values()), figures
    xz = len(lzma.compress(noise.encode(), preset=9 | lzma.PRESET_EXTREME)) * 8 / len(noise)
    assert figures["xz -9e"] == xz
    assert compressed_bits_per_char("def f():\n    return 1\n" * 500)["xz -9e"] < 0.1


def test_model_check_refuses_weights_read_another_way(tiny_lm_run: Path) -> None:
    """The nlp models' plan-time check on ``init_from`` (the key itself comes with the techniques plugin)."""
    from engine_nlp.checks import check_model

    data = {"name": "nlp.text_classification", "tokenizer_file": None}
    with pytest.raises(ConfigError, match=r"comes with the tokenizer .* would train a new one"):
        check_model({"init_from": str(tiny_lm_run), "n_head": 2}, "model", {"data": data})
    data["tokenizer_file"] = str(tiny_lm_run / "tokenizer.json")
    with pytest.raises(ConfigError, match=r"model\.n_head is 4, the weights of model\.init_from were trained with 2"):
        check_model({"init_from": str(tiny_lm_run), "n_head": 4}, "model", {"data": data})
    check_model({"init_from": str(tiny_lm_run), "n_head": 2}, "model", {"data": data})  # their tokenizer, heads
    check_model({"init_from": str(tiny_lm_run)}, "model", {"data": data})  # the LSTM: no heads to compare
    check_model({"n_head": 4}, "model", {"data": {**data, "tokenizer_file": None}})  # no weights: nothing to check


def test_nlp_group_alone_prints_its_help(cli: Any) -> None:
    r = cli("nlp")
    assert r.returncode == 0 and "baselines" in r.stdout


@pytest.mark.parametrize("positions", ["learned", "rotary"])
def test_gpt_kv_cache_matches_full_forward(positions: str) -> None:
    import torch
    from engine_nlp.models import GPT

    torch.manual_seed(0)
    model = GPT(60, 16, n_layer=1, d_model=16, n_head=2, positions=positions).eval()
    x = torch.randint(60, (2, 6))
    cache: list = [[] for _ in model.blocks]
    steps = [model(x[:, :4], cache), model(x[:, 4:5], cache), model(x[:, 5:6], cache)]
    torch.testing.assert_close(torch.cat(steps, 1), model(x), atol=1e-5, rtol=1e-5)
    # within the context, cached and uncached generation give the same tokens; beyond it, the cache restarts
    greedy = model.generate(x, 10, temperature=0, use_cache=True)
    assert torch.equal(greedy, model.generate(x, 10, temperature=0, use_cache=False))
    long = model.generate(x, 24, temperature=1.0, top_k=5, generator=torch.Generator().manual_seed(0))
    assert long.shape == (2, 30) and int(long.max()) < 60


def test_the_docs_list_the_facts_the_sources_declare_and_expose(corpus_file: Path, labelled_jsonl: Path) -> None:
    import re

    from engine_nlp.data import TextClassification, TextFiles
    from engine_nlp.unlabelled import UnlabelledTexts

    import engine

    page = (Path(__file__).resolve().parents[3] / "docs" / "plugins" / "nlp.md").read_text()
    rows = {
        m[0]: ([f for f in re.findall(r"`(\w+)`", m[1])], [f for f in re.findall(r"`(\w+)`", m[2])])
        for m in re.findall(r"^\| `(nlp\.\w+)` \| (.*?) \| (.*?) \|$", page, flags=re.M)
    }
    built = {
        "nlp.text_files": TextFiles(paths=[str(corpus_file)], **TINY),
        "nlp.text_classification": TextClassification(
            path=str(labelled_jsonl), text_column="body", label_column="package", vocab_size=300
        ),
        "nlp.unlabelled_texts": UnlabelledTexts(
            path=str(labelled_jsonl), text_column="body", label_column="package", vocab_size=300, context_length=32
        ),
    }
    reg = engine.get_registry()
    assert set(rows) == set(built)
    for name, source in built.items():
        declared, others = rows[name]
        assert declared == list(reg.resolve("data", name).facts), name
        values = [v for v in others if v not in ("char", "bpe")]
        assert sorted(declared + values) == sorted(source.facts), name
