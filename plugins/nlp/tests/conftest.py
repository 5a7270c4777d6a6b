from __future__ import annotations

import json
from pathlib import Path

import pytest


@pytest.fixture(autouse=True, scope="session")
def _threads(one_thread: None) -> None:
    """One torch thread (engine.testing's ``one_thread``): the tiny models here run faster on a shared machine."""


@pytest.fixture(scope="session")
def corpus_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from engine_nlp.corpus import stdlib_text

    text, _ = stdlib_text(30_000)
    path = tmp_path_factory.mktemp("corpus") / "corpus.txt"
    path.write_text(text, encoding="utf-8")
    return path


@pytest.fixture(scope="session")
def labelled_jsonl(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Stdlib snippets of two packages (tkinter, email) as JSONL with custom column names."""
    from engine_nlp.corpus import stdlib_snippets

    rows = stdlib_snippets(("tkinter", "email"), lines_per_snippet=8, max_per_class=200)
    path = tmp_path_factory.mktemp("labelled") / "snippets.jsonl"
    path.write_text("\n".join(json.dumps({"body": t, "package": c}) for t, c in rows) + "\n", encoding="utf-8")
    return path


@pytest.fixture(scope="session")
def tiny_lm_run(tmp_path_factory: pytest.TempPathFactory, corpus_file: Path) -> Path:
    """A trained (briefly) character-level GPT run, for generate/baselines tests."""
    from engine.testing import train_run

    overrides = [
        "task=nlp.language_modeling",
        "model=nlp.gpt",
        "model.n_layer=1",
        "model.d_model=32",
        "model.n_head=2",
        "data=nlp.text_files",
        f"data.paths=[{corpus_file}]",
        "data.context_length=32",
        "data.batch_size=16",
        "optimizer=nlp.gpt_adamw",
        "optimizer.lr=0.01",
        "trainer.max_steps=40",
        "trainer.val_check_interval=40",
    ]
    return train_run(*overrides, root=tmp_path_factory.mktemp("runs"), name="tiny-lm").run_dir


@pytest.fixture(scope="session")
def pairs_tsv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """300 sentence pairs of the synthetic language as Tatoeba ships a TSV: no header, a third column ignored."""
    from engine_nlp.seq2seq.synthetic import sentence_pairs

    path = tmp_path_factory.mktemp("pairs") / "pairs.tsv"
    rows = [f"{s}\t{t}\tCC-BY 2.0 (France) #{i}" for i, (s, t) in enumerate(sentence_pairs(300, seed=5))]
    path.write_text("\n".join(rows) + "\n", encoding="utf-8")
    return path
