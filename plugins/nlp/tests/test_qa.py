"""Extractive question answering: SQuAD JSON, the official EM/F1, spans on tokens, the model, the task, the recipe."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import torch

from engine import ConfigError

CONTEXT = "The Eiffel Tower was finished in 1889. It stands in Paris, the capital of France."


def write_squad(path: Path, repeat: int = 1) -> Path:
    """A small SQuAD v1.1-style file: two paragraphs, several answers for one question (as in the dev set)."""
    other = "Mount Fuji is 3776 metres high. It lies west of Tokyo on the island of Honshu."
    paris = [{"text": "Paris", "answer_start": 52}, {"text": "Paris, the capital of France", "answer_start": 52}]
    qas = [
        {
            "id": "q1",
            "question": "When was the Eiffel Tower finished?",
            "answers": [{"text": "1889", "answer_start": 33}],
        },
        {"id": "q2", "question": "Where does the tower stand?", "answers": paris},
    ]
    qas2 = [
        {"id": "q3", "question": "How high is Mount Fuji?", "answers": [{"text": "3776 metres", "answer_start": 14}]}
    ]
    paragraphs = [{"context": CONTEXT + f" ({i})", "qas": [dict(q, id=f"{q['id']}-{i}") for q in qas]}
                  for i in range(repeat)] + [{"context": other, "qas": qas2}]  # fmt: skip
    path.write_text(json.dumps({"version": "1.1", "data": [{"title": "t", "paragraphs": paragraphs}]}))
    return path


def test_official_normalisation_exact_match_and_f1() -> None:
    from engine_nlp.qa.squad import exact_match, f1, normalize_answer

    assert normalize_answer("  The  Eiffel-Tower, in PARIS! ") == "eiffeltower in paris"
    assert normalize_answer("an apple a day") == "apple day"
    assert exact_match("the Paris", ["Paris, the capital of France", "Paris."]) == 1.0
    assert exact_match("London", ["Paris"]) == 0.0
    # "paris capital" vs "paris capital of france": precision 1, recall 2/4 -> F1 2/3 (the best gold answer)
    assert f1("Paris, the capital", ["Paris, the capital of France", "Lyon"]) == pytest.approx(2 / 3)
    assert f1("", ["Paris"]) == 0.0


def test_read_squad_and_its_one_line_errors(tmp_path: Path) -> None:
    from engine_nlp.qa.squad import read_squad

    examples = read_squad(write_squad(tmp_path / "s.json"))
    assert [e.id for e in examples] == ["q1-0", "q2-0", "q3"]
    assert examples[1].answers == (("Paris", 52), ("Paris, the capital of France", 52))
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"data": [{"paragraphs": [{"context": "abc", "qas": [
        {"id": "x", "question": "q?", "answers": [{"text": "zz", "answer_start": 0}]}]}]}]}))  # fmt: skip
    with pytest.raises(ConfigError, match="not at answer_start 0"):
        read_squad(bad)
    bad.write_text(json.dumps({"data": [{"title": "no paragraphs"}]}))
    with pytest.raises(ConfigError, match="not SQuAD format"):
        read_squad(bad)


def test_generated_answers_are_spans_of_their_paragraphs() -> None:
    from engine_nlp.qa.synthetic import generate

    examples = generate(60, seed=3)
    assert len(examples) == 60 and examples == generate(60, seed=3)
    for e in examples:
        text, start = e.answers[0]
        assert e.context[start : start + len(text)] == text
        assert e.question.endswith("?")


@pytest.mark.parametrize("tokenizer", ["char", "bpe"])
def test_answer_spans_map_to_tokens_and_back_to_the_answer(tmp_path: Path, tokenizer: str) -> None:
    from engine_nlp.qa.data import Squad
    from engine_nlp.qa.task import span_texts

    source = Squad(str(write_squad(tmp_path / "s.json", repeat=8)), tokenizer=tokenizer, context_length=160,
                   val_fraction=0.2, test_fraction=0.2)  # fmt: skip
    facts = source.facts
    assert facts["sep_id"] != facts["pad_id"] and facts["dropped"] == 0
    for name, ds in source.datasets().items():
        for i in range(len(ds)):
            x, y = ds[i]
            got = span_texts(y["span"][None], y["offsets"][None], [y["context"]])[0]
            assert got.strip() == y["answers"].split("\x1f")[0], (name, got)
            assert x[y["span"][0]] != facts["pad_id"]


def test_answers_beyond_the_context_length_are_left_out_and_counted(tmp_path: Path) -> None:
    from engine_nlp.qa.data import Squad

    source = Squad(str(write_squad(tmp_path / "s.json", repeat=8)), tokenizer="char", context_length=70,
                   val_fraction=0, test_fraction=0)  # fmt: skip
    assert source.facts["dropped"] == 16  # the Eiffel Tower's answers come after 70 characters, Fuji's before
    assert source.facts["samples"] == {"train": 1}
    with pytest.raises(ConfigError, match="no training question fits in context_length=40"):
        _ = Squad(str(tmp_path / "s.json"), tokenizer="char", context_length=40).facts


def test_span_model_masks_the_question_and_decodes_the_best_span() -> None:
    from engine_nlp.qa.model import SpanQA
    from engine_nlp.qa.task import best_spans

    model = SpanQA(vocab_size=20, context_length=12, pad_id=0, sep_id=1, n_layer=1, n_head=2, d_model=16).eval()
    x = torch.tensor([[5, 6, 1, 7, 8, 9, 0, 0], [5, 1, 7, 8, 9, 10, 11, 0]])
    out = model(x)
    assert out.shape == (2, 8, 2)
    spans = best_spans(out, max_answer_tokens=3)
    for row, (s, e) in zip(x.tolist(), spans.tolist(), strict=True):
        first = row.index(1) + 1
        assert first <= s <= e < s + 3 and row[e] != 0
    logits = torch.full((1, 6, 2), -5.0)
    logits[0, 4, 0], logits[0, 2, 1], logits[0, 5, 1] = 3.0, 9.0, 2.0  # the best end (2) is before the start
    assert best_spans(logits, 4).tolist() == [[4, 5]]


def test_span_model_starts_from_a_classifier_checkpoint() -> None:
    from engine_nlp.models import TransformerClassifier
    from engine_nlp.qa.model import SpanQA, classifier_to_span

    clf = TransformerClassifier(30, 5, 16, 0, n_layer=1, n_head=2, d_model=16)
    model = SpanQA(30, 16, 0, 1, n_layer=1, n_head=2, d_model=16)
    mapped, notes = classifier_to_span(clf.state_dict(), model)
    missing, unexpected = model.load_state_dict(mapped, strict=False)
    assert sorted(missing) == ["head.bias", "head.weight", "match_emb.weight", "seg_emb.weight"] and not unexpected
    assert torch.equal(model.blocks[0].fc.weight, clf.blocks[0].fc.weight) and notes


def test_extractive_qa_trains_on_a_squad_file_and_reports_em_f1(train: Any, tmp_path: Path) -> None:
    data = write_squad(tmp_path / "squad.json", repeat=12)
    overrides = ["data=nlp.squad", f"data.path={data}", "data.tokenizer=char", "data.context_length=128",
                 "data.val_fraction=0.2", "data.test_fraction=0.2", "model.n_layer=1", "model.d_model=32",
                 "model.n_head=2", "trainer.max_epochs=2"]  # fmt: skip
    result = train(*overrides, root=tmp_path, name="qa")
    metrics = result.summary["metrics"]
    for split in ("val", "test"):
        assert 0 <= metrics[f"{split}/exact_match"] <= metrics[f"{split}/f1"] <= 1
    assert result.summary["primary_metric"]["name"].endswith("f1")
    config = json.loads(json.dumps(result.summary.get("config", {}))) if "config" in result.summary else {}
    assert config.get("task", {}).get("name", "nlp.extractive_qa") == "nlp.extractive_qa"


def test_the_qa_task_refuses_classification_data_in_one_line(tmp_path: Path) -> None:
    import engine

    cfg = engine.compose(overrides=["task=nlp.extractive_qa", "data=nlp.text_classification",
                                    "data.max_samples=80", "data.vocab_size=300", "data.max_length=32",
                                    f"run.dir={tmp_path}"])  # fmt: skip
    with pytest.raises(ConfigError, match="extractive QA task needs"):
        engine.train(engine.plan(cfg))


@pytest.mark.slow
def test_recipe_qa_synthetic_learns_short(train: Any, tmp_path: Path) -> None:
    """The recipe, short (6000 questions, 2 epochs: 150 steps), already beats the name-blind baseline it logs."""
    result = train("data.num_questions=6000", "trainer.max_epochs=2", recipe="nlp/qa-synthetic", root=tmp_path)
    metrics = result.summary["metrics"]
    assert 0.5 < metrics["test/blind_exact_match"] < 0.75
    assert metrics["test/exact_match"] >= metrics["test/blind_exact_match"] + 0.1


def _name_puzzles(n: int, gen: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """``question <sep> context`` ids where only the question's name tells which of three values is the answer:
    sentences ``name w value .`` or ``value w name .`` (the value before or after its name, as in the generator's
    "In 1950, Bruno was born."), in a random order, so no position and no word says which one is asked."""
    xs, spans = [], []
    for _ in range(n):
        names = torch.randperm(10, generator=gen)[:3] + 10
        values = torch.randperm(20, generator=gen)[:3] + 20
        ask = int(torch.randint(3, (1,), generator=gen))
        x, answer = [3, int(names[ask]), 1], 0
        for i in range(3):
            before = bool(torch.randint(2, (1,), generator=gen))
            if i == ask:
                answer = len(x) + (0 if before else 2)
            x += [int(values[i]), 4, int(names[i]), 2] if before else [int(names[i]), 5, int(values[i]), 2]
        xs.append(x)
        spans.append([answer, answer])
    return torch.tensor(xs), torch.tensor(spans)


def test_the_span_model_learns_to_use_the_name_in_the_question() -> None:
    """The mechanism the recipe needs, in seconds: a value is the answer only through its sentence's name matching
    the question's (a name-blind model is right a third of the time)."""
    from engine_nlp.qa.model import SpanQA
    from engine_nlp.qa.task import best_spans

    torch.manual_seed(0)
    gen = torch.Generator().manual_seed(0)
    model = SpanQA(vocab_size=40, context_length=16, pad_id=0, sep_id=1, n_layer=2, n_head=4, d_model=32,
                   dropout=0.0, rotary=True)  # fmt: skip
    opt = torch.optim.AdamW(model.parameters(), lr=3e-3)
    for _ in range(STEPS):
        x, span = _name_puzzles(64, gen)
        out = model(x)
        loss = torch.nn.functional.cross_entropy(out[..., 0], span[:, 0]) + torch.nn.functional.cross_entropy(
            out[..., 1], span[:, 1]
        )
        opt.zero_grad()
        loss.backward()
        opt.step()
    x, span = _name_puzzles(256, gen)
    with torch.no_grad():
        right = (best_spans(model.eval()(x), 1) == span).all(1).float().mean().item()
    assert right >= 0.9, right


STEPS = 200
