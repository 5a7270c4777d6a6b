"""Instruction / chat data: formats, chat templates, response-only masks, truncation, packing, the instruct task."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from engine_nlp.chat import DEFAULT_TEMPLATE, generated_examples, read_examples, renderer, segments
from engine_nlp.instructions import IGNORE, Instructions, PadCollate, pack

from engine import ConfigError

CHATML = (
    "{% for m in messages %}{{ '<|im_start|>' + m['role'] + '\\n' + m['content'] + '<|im_end|>' + '\\n' }}"
    "{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}"
)


def _write(path: Path, records: list[Any]) -> Path:
    path.write_text("\n".join(json.dumps(r) for r in records) + "\n", encoding="utf-8")
    return path


def test_the_default_template_and_the_response_only_mask_on_one_example(tmp_path: Path) -> None:
    """Hand-checked: the text, which characters are trained, and the shifted targets."""
    example = [{"role": "user", "content": "Add 2 and 3."}, {"role": "assistant", "content": "5"}]
    render = renderer(None)
    assert render(example, False) == "<|user|>\nAdd 2 and 3.<|end|>\n<|assistant|>\n5<|end|>\n"
    assert segments(example, render) == [
        ("<|user|>\nAdd 2 and 3.<|end|>\n<|assistant|>\n", False),
        ("5<|end|>\n", True),
    ]
    source = Instructions(
        path=str(_write(tmp_path / "one.jsonl", [{"prompt": "Add 2 and 3.", "response": "5"}] * 10)),
        val_fraction=0,
        test_fraction=0,
    )
    ids, labels = source.encode_example(example)
    text = "<|user|>\nAdd 2 and 3.<|end|>\n<|assistant|>\n5<|end|>\n"
    assert source.tokenizer.decode(ids) == text and len(ids) == len(text)  # characters
    prompt = len("<|user|>\nAdd 2 and 3.<|end|>\n<|assistant|>\n")
    assert labels[:prompt] == [IGNORE] * prompt and labels[prompt:] == ids[prompt:]
    x, y = source.datasets()["train"][0]
    assert x.tolist() == ids[:-1] and y.tolist() == labels[1:]
    assert y.tolist().index(ids[prompt]) == prompt - 1  # "5" is predicted from the "\n" before it
    assert source.tokenizer.decode([t for t in y.tolist() if t != IGNORE]) == "5<|end|>\n"


def test_the_tokenizers_chat_template_is_used(tmp_path: Path) -> None:
    """A tokenizer_config.json with a (ChatML) chat template beside tokenizer_file formats the examples."""
    from engine_nlp.tokenizer import TextTokenizer

    TextTokenizer.train("char", ["<|im_start|>user assistant system\n<|im_end|> Add 0123456789 and ."]).save(
        tmp_path / "tokenizer.json"
    )
    (tmp_path / "tokenizer_config.json").write_text(json.dumps({"chat_template": CHATML, "eos_token": "<|im_end|>"}))
    data = _write(
        tmp_path / "d.jsonl",
        [{"messages": [{"role": "user", "content": "Add 1 and 2."}, {"role": "assistant", "content": "3"}]}] * 10,
    )
    source = Instructions(path=str(data), tokenizer_file=str(tmp_path / "tokenizer.json"), test_fraction=0.2)
    assert source.facts["chat_template"] == "tokenizer" and source.end == "<|im_end|>"
    example = source.examples["train"][0]
    assert segments(example, source.render) == [
        ("<|im_start|>user\nAdd 1 and 2.<|im_end|>\n<|im_start|>assistant\n", False),
        ("3<|im_end|>\n", True),
    ]
    assert source.format_chat(example[:1]).endswith("<|im_start|>assistant\n")
    (tmp_path / "tokenizer_config.json").write_text(json.dumps({"eos_token": {"content": "<|im_end|>"}}))
    (tmp_path / "chat_template.jinja").write_text(CHATML)  # where recent transformers save it
    again = Instructions(path=str(data), tokenizer_file=str(tmp_path / "tokenizer.json"), test_fraction=0.2)
    assert again.template_from == "tokenizer" and again.end == "<|im_end|>"
    assert segments(example, again.render) == segments(example, source.render)


def test_file_formats_and_bad_records(tmp_path: Path) -> None:
    alpaca = {"instruction": "Reverse the word.", "input": "cat", "output": "tac"}
    chat = {
        "messages": [
            {"role": "system", "content": "Be terse."},
            {"role": "user", "content": "Hi"},
            {"role": "assistant", "content": "Hello"},
            {"role": "user", "content": "2+2?"},
            {"role": "assistant", "content": "4"},
        ]
    }
    examples = read_examples(str(_write(tmp_path / "a.jsonl", [alpaca, chat])))
    assert examples[0] == [
        {"role": "user", "content": "Reverse the word.\n\ncat"},
        {"role": "assistant", "content": "tac"},
    ]
    parts = segments(examples[1], renderer(None))
    assert [t for t, trained in parts if trained] == ["Hello<|end|>\n", "4<|end|>\n"]  # every reply is learned
    (tmp_path / "list.json").write_text(json.dumps([{"prompt": "a", "response": "b"}]))
    assert len(read_examples(str(tmp_path / "list.json"))) == 1
    with pytest.raises(
        ConfigError, match=r"example 1: an example needs prompt/response, instruction/input/output or messages"
    ):
        read_examples(str(_write(tmp_path / "bad.jsonl", [{"question": "x"}])))
    with pytest.raises(ConfigError, match="the last message must be the assistant's reply"):
        read_examples(str(_write(tmp_path / "bad2.jsonl", [{"messages": [{"role": "user", "content": "x"}]}])))
    with pytest.raises(ConfigError, match="instruction file not found"):
        Instructions(path=str(tmp_path / "missing.jsonl"))


def test_truncation_is_reported_and_packing_keeps_each_mask(capsys: pytest.CaptureFixture[str]) -> None:
    source = Instructions(num_examples=60, context_length=48, val_fraction=0, test_fraction=0, seed=1)
    rows = source.rows["train"]
    assert source.truncated > 0 and all(len(ids) <= 49 for ids, _ in rows)
    assert "truncated" in capsys.readouterr().err and source.facts["truncated"] == source.truncated
    plain = Instructions(num_examples=60, context_length=256, val_fraction=0, test_fraction=0, seed=1)
    packed = Instructions(num_examples=60, context_length=256, pack=True, val_fraction=0, test_fraction=0, seed=1)
    assert len(packed.rows["train"]) < len(plain.rows["train"]) / 2
    trained = [[t for t in labels if t != IGNORE] for _, labels in plain.rows["train"]]
    assert [t for _, labels in packed.rows["train"] for t in labels if t != IGNORE] == [t for r in trained for t in r]
    assert pack([([1, 2], [IGNORE, 2]), ([3], [3]), ([4, 5, 6], [IGNORE, 5, 6])], 3) == [
        ([1, 2, 3], [IGNORE, 2, 3]),
        ([4, 5, 6], [IGNORE, 5, 6]),
    ]
    x, y = PadCollate(0)([plain.datasets()["train"][0], plain.datasets()["train"][1]])
    assert x.shape == y.shape and (y == IGNORE).any()


class _Oracle:
    """A network that continues every prompt with its reference reply and end marker (then repeats ``a``),
    counting its calls: what exact match must score 1.0 with."""

    def __init__(self, source: Instructions, split: str = "test") -> None:
        tok = source.tokenizer
        self.texts = [
            tok.encode(source.format_chat(m[:-1]) + m[-1]["content"] + source.end) for m in source.examples[split]
        ]
        self.vocab, self.filler, self.calls = tok.vocab_size, tok.encode("a")[0], 0

    def __call__(self, idx: Any) -> Any:
        import torch

        self.calls += 1
        logits = torch.zeros(idx.shape[0], idx.shape[1], self.vocab)
        for b, row in enumerate(idx.tolist()):
            full = next((t for t in self.texts if t[: len(row)] == row), None)
            nxt = full[len(row)] if full is not None and len(full) > len(row) else self.filler
            logits[b, -1, nxt] = 1.0
        return logits


def _word_source(tmp_path: Path) -> Instructions:
    records = [{"prompt": f"Write {w} in capitals.", "response": w.upper()} for w in ("castle", "falcon", "pepper")]
    return Instructions(path=str(_write(tmp_path / "w.jsonl", records * 10)), val_fraction=0, test_fraction=0.3)


def test_a_correct_reply_longer_than_max_new_tokens_with_its_end_marker_still_counts(tmp_path: Path) -> None:
    """Six capitals plus the 7-character end marker do not fit in 8 new characters: the budget grows to the
    longest reference plus its end marker, so a correct reply is not cut into "CASTLE<|" and marked wrong."""
    from engine_nlp.instruct_task import exact_match

    source = _word_source(tmp_path)
    value, rows = exact_match(_Oracle(source), source, "test", max_new_tokens=8)
    assert value == 1.0, rows
    assert all(reply == ref for _, reply, ref in rows)


def test_exact_match_stops_decoding_at_the_end_marker_and_never_grades_a_reply_that_does_not_stop(
    tmp_path: Path,
) -> None:
    from engine_nlp.instruct_task import exact_match

    source = _word_source(tmp_path)
    oracle = _Oracle(source)
    assert exact_match(oracle, source, "test", max_new_tokens=64)[0] == 1.0
    assert oracle.calls <= len("CASTLE<|end|>") + 1  # not 64: every reply stopped at its end marker
    rambling = _Oracle(source)
    rambling.texts = [t[: -len(source.end)] for t in rambling.texts]  # the right word, then no end marker
    value, rows = exact_match(rambling, source, "test", max_new_tokens=8)
    assert value == 0.0 and all(reply.startswith(ref + "a") for _, reply, ref in rows)


def test_the_generated_set_has_checkable_answers() -> None:
    examples = generated_examples(200, seed=3)
    for messages in examples:
        prompt, answer = messages[0]["content"], messages[1]["content"]
        if prompt.startswith("Add "):
            a, b = prompt[4:-1].split(" and ")
            assert int(answer) == int(a) + int(b)
        elif prompt.startswith("Reverse the word "):
            assert answer == prompt[len("Reverse the word ") : -1][::-1]
    assert "{% for m in messages %}" in DEFAULT_TEMPLATE


@pytest.mark.slow
def test_an_instruction_run_measures_exact_match_before_and_after(tmp_path: Path, train: Any) -> None:
    """A tiny run (no task named: the source's), packed, with gradient accumulation: both exact matches logged."""
    result = train(
        "model=nlp.gpt",
        "model.n_layer=1",
        "model.d_model=32",
        "model.n_head=2",
        "data=nlp.instructions",
        "data.num_examples=200",
        "data.context_length=64",
        "data.pack=true",
        "data.batch_size=8",
        "task.max_new_tokens=4",
        "trainer.max_steps=6",
        "trainer.accumulate_grad_batches=2",
        "trainer.val_check_interval=6",
        root=tmp_path,
        name="instruct",
    )
    metrics = result.summary["metrics"]
    assert result.summary["status"] == "completed"
    assert 0 <= metrics["test/exact_match"] <= 1 and "test/exact_match_before" in metrics
    assert (Path(result.run_dir) / "tokenizer.json").is_file()
    import engine

    run = engine.open_run(result.run_dir)  # `engine evaluate RUN`: the task's evaluate_run
    assert 0 <= run.task().evaluate_run(run.datamodule(), limit=5, max_new_tokens=2)["test/exact_match"] <= 1


def test_the_lm_loss_ignores_masked_targets_and_weighs_tokens_it_scores() -> None:
    """Validation loss: the mean over the targets that are not -100 (a batch mostly masked weighs what it scores)."""
    import torch
    import torch.nn.functional as F
    from engine_nlp.task import LanguageModelingTask

    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Embedding(10, 10))
    task = LanguageModelingTask(model, optimizer=lambda params: torch.optim.SGD(params, lr=0.1))
    x1, y1 = torch.randint(0, 10, (2, 6)), torch.randint(0, 10, (2, 6))
    x2, y2 = torch.randint(0, 10, (2, 6)), torch.randint(0, 10, (2, 6))
    y2[:, :5] = IGNORE  # 2 of its 12 targets scored
    for x, y in ((x1, y1), (x2, y2)):
        task._evaluate((x, y), "val")
    logits = torch.cat([model(x1), model(x2)]).reshape(-1, 10)
    expected = F.cross_entropy(logits, torch.cat([y1, y2]).reshape(-1))  # mean over the 14 scored targets
    assert torch.allclose(task.nll["val"].compute(), expected, atol=1e-6)
