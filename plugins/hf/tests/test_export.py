"""``engine hf export``: runs of nlp.gpt and hf.* models as Hugging Face directories, the same logits."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from engine.runs import open_run

GPT = [
    "task=nlp.language_modeling",
    "model=nlp.gpt",
    "model.n_layer=2",
    "model.d_model=32",
    "model.n_head=2",
    "data.batch_size=8",
]


def _logits_equal(run_dir: Path, out: Path, vocab: int) -> None:
    from transformers import AutoModelForCausalLM, AutoTokenizer

    ours = open_run(run_dir).model()
    theirs = AutoModelForCausalLM.from_pretrained(str(out), local_files_only=True).eval()
    ids = torch.randint(0, vocab, (2, 16))
    with torch.no_grad():
        diff = (ours(ids) - theirs(ids).logits).abs().max().item()
    assert diff <= 1e-4, diff
    assert AutoTokenizer.from_pretrained(str(out), local_files_only=True) is not None


@pytest.mark.parametrize("bias", [False, True])
def test_an_nlp_gpt_run_exports_as_gpt2(train, cli, tmp_path: Path, corpus_file: Path, bias: bool) -> None:
    result = train(
        *GPT,
        f"model.bias={str(bias).lower()}",
        "data=nlp.text_files",
        f"data.paths=[{corpus_file}]",
        "data.context_length=16",
        "trainer.max_steps=3",
        "trainer.val_check_interval=3",
        root=tmp_path,
    )
    out = tmp_path / "exported"
    done = cli("hf", "export", str(result.run_dir), str(out))
    assert done.returncode == 0, done.stderr
    assert (out / "config.json").is_file() and (out / "model.safetensors").is_file()
    vocab = open_run(result.run_dir).facts["vocab_size"]
    _logits_equal(Path(result.run_dir), out, vocab)


def test_an_hf_run_exports_with_its_tokenizer(
    train, cli, tmp_path: Path, models: dict[str, Path], corpus_file: Path
) -> None:
    result = train(
        "model=hf.causal_lm",
        f"model.path={models['llama']}",
        "data=hf.text",
        f"data.paths=[{corpus_file}]",
        "data.context_length=16",
        "data.batch_size=8",
        "trainer.max_steps=2",
        "trainer.val_check_interval=2",
        root=tmp_path,
    )
    out = tmp_path / "exported"
    assert cli("hf", "export", str(result.run_dir), str(out)).returncode == 0
    _logits_equal(Path(result.run_dir), out, 320)
    from transformers import AutoTokenizer

    assert "im_start" in AutoTokenizer.from_pretrained(str(out)).chat_template  # the chat template went along


def test_a_rotary_gpt_is_refused_in_one_line(train, cli, tmp_path: Path, corpus_file: Path) -> None:
    result = train(
        *GPT,
        "model.positions=rotary",
        "data=nlp.text_files",
        f"data.paths=[{corpus_file}]",
        "data.context_length=16",
        "trainer.max_steps=1",
        "trainer.val_check_interval=1",
        root=tmp_path,
    )
    done = cli("hf", "export", str(result.run_dir), str(tmp_path / "out"))
    assert done.returncode == 2 and "rotary positions" in done.stderr and "Traceback" not in done.stderr
