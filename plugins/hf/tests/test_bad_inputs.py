"""Mistakes about where a model is, or which tokenizer goes with it: one line, exit 2, nothing downloaded."""

from __future__ import annotations

from pathlib import Path

import pytest

import engine


def _dry(cli, *args: str):
    result = cli("run", "model=hf.causal_lm", "data=hf.text", *args, "--dry-run")
    assert result.returncode == 2, result
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert "Traceback" not in result.stderr
    return " ".join(lines)


def test_a_hub_id_says_to_download_it_first(cli) -> None:
    err = _dry(cli, "model.path=HuggingFaceTB/SmolLM2-135M")
    assert "hub id" in err and "huggingface-cli download HuggingFaceTB/SmolLM2-135M" in err and "model.path=" in err


def test_a_missing_directory_says_where(cli, tmp_path: Path) -> None:
    err = _dry(cli, f"model.path={tmp_path / 'nowhere'}")
    assert "not a local directory" in err and "nothing is downloaded" in err


def test_a_directory_that_is_not_a_model(cli, tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("hello")
    err = _dry(cli, f"model.path={tmp_path}")
    assert "is not a Hugging Face model directory (no config.json)" in err


def test_path_and_config_together_are_refused(cli, models: dict[str, Path]) -> None:
    err = _dry(cli, f"model.path={models['gpt2']}", f"model.config_path={models['gpt2']}")
    assert "set exactly one of" in err


def test_data_without_a_tokenizer_for_another_model(cli) -> None:
    result = cli("run", "model=nlp.gpt", "data=hf.text", "--dry-run")
    assert result.returncode == 2 and "set data.tokenizer" in result.stderr


def test_a_tokenizer_that_does_not_match_the_weights(
    tmp_path: Path, models: dict[str, Path], corpus_file: Path, make_model
) -> None:
    bigger = make_model("gpt2", tmp_path, corpus_file, vocab=320, tokenizer_vocab=400)  # 400 tokens, 320 rows
    cfg = engine.compose(None, (), ["model=hf.causal_lm", f"model.path={models['gpt2']}", "data=hf.text"])
    cfg["data"]["tokenizer"], cfg["data"]["paths"] = str(bigger), [str(corpus_file)]
    with pytest.raises(engine.ConfigError, match="the tokenizer has 400 tokens but the model's embedding only 320"):
        engine.build(engine.plan(cfg))


def test_a_context_longer_than_the_model_positions(models: dict[str, Path], corpus_file: Path) -> None:
    cfg = engine.compose(None, (), ["model=hf.causal_lm", f"model.path={models['gpt2']}", "data=hf.text"])
    cfg["data"]["paths"], cfg["data"]["context_length"] = [str(corpus_file)], 100
    with pytest.raises(engine.ConfigError, match="the model has 64 positions"):
        engine.build(engine.plan(cfg))


def test_a_smaller_tokenizer_than_the_one_saved_with_the_weights(
    tmp_path: Path, models: dict[str, Path], corpus_file: Path, make_model
) -> None:
    other = make_model("gpt2", tmp_path, corpus_file, vocab=300)  # another tokenizer of 300 tokens
    cfg = engine.compose(None, (), ["model=hf.causal_lm", f"model.path={models['gpt2']}", "data=hf.text"])
    cfg["data"]["tokenizer"], cfg["data"]["paths"] = str(other), [str(corpus_file)]
    with pytest.raises(
        engine.ConfigError, match="the data's tokenizer has 300 tokens, the one saved with these weights 320"
    ):
        engine.build(engine.plan(cfg))
