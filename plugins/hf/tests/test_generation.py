"""``hf.causal_lm`` in the shared decoding loop (`engine_nlp.generation`): transformers' own KV cache
through the ``CachedDecoding`` protocol, the same tokens as recomputing the prefix."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import torch

import engine

CONFIGS = {
    "gpt2": {"model_type": "gpt2", "n_positions": 64, "n_embd": 32, "n_layer": 2, "n_head": 2},
    "llama": {  # RoPE and grouped-query attention: positions must follow the cache
        "model_type": "llama",
        "hidden_size": 32,
        "intermediate_size": 64,
        "num_hidden_layers": 2,
        "num_attention_heads": 4,
        "num_key_value_heads": 2,
        "max_position_embeddings": 64,
    },
}
PROMPTS = [[1, 2, 3], [5], [7, 8, 9], [10, 11, 12, 13, 14, 15, 16, 17, 18, 19]]  # two of one length: a batch


def _tiny(family: str) -> Any:
    torch.manual_seed(0)
    return engine.create("model", "hf.causal_lm", config=CONFIGS[family], vocab_size=50).eval()


def _task(model: Any) -> Any:
    from engine_nlp.optim import gpt_adamw
    from engine_nlp.task import LanguageModelingTask

    return LanguageModelingTask(model, gpt_adamw)


def _fed(model: Any) -> list[int]:
    """The number of positions each call of the transformers model is given (recorded by a hook)."""
    lengths: list[int] = []
    model.hf.register_forward_pre_hook(lambda _m, _a, kw: lengths.append(kw["input_ids"].shape[1]), with_kwargs=True)
    return lengths


@pytest.mark.parametrize("family", ["gpt2", "llama"])
def test_the_decoder_uses_the_transformers_cache_with_the_tokens_of_recomputing(family: str) -> None:
    from engine_nlp.generation import CachedDecoding

    model = _tiny(family)
    task = _task(model)
    assert isinstance(model, CachedDecoding)
    fed = _fed(model)
    greedy = task.generate(model, PROMPTS, max_new_tokens=12, temperature=0)
    # one call per length group fills the cache with the prompt, then every call is one new position
    assert sorted(fed[:3]) == [1, 3, 10] and set(fed[3:]) == {1}, fed
    fed.clear()
    plain = task.generate(lambda ids: model(ids), PROMPTS, max_new_tokens=12, temperature=0)  # an opaque callable
    assert max(fed) == 10 + 11  # the whole prefix every step
    assert plain == greedy and [len(o) for o in greedy] == [12] * 4
    opts = {"max_new_tokens": 12, "temperature": 0.9, "top_k": 20, "top_p": 0.95, "seed": 3}
    sampled = task.generate(model, PROMPTS, **opts)
    assert task.generate(lambda ids: model(ids), PROMPTS, **opts) == sampled
    assert sampled != greedy
    assert list(task.generate_stream(model, PROMPTS[3], **opts)) == sampled[3]  # alone, streamed: the same


def test_rows_that_stop_early_leave_the_cache() -> None:
    model = _tiny("gpt2")
    task = _task(model)
    prompts = [[1, 2, 3], [4, 5, 6], [7, 8, 9]]
    free = task.generate(model, prompts, max_new_tokens=10, temperature=0)
    stop = [free[1][2]]  # the second row stops after 3 tokens at most; the others go on in a smaller batch
    fed = _fed(model)
    cached = task.generate(model, prompts, max_new_tokens=10, temperature=0, stop=stop)
    assert fed[0] == 3 and set(fed[1:]) == {1}
    assert cached == task.generate(lambda ids: model(ids), prompts, max_new_tokens=10, temperature=0, stop=stop)
    assert len(cached[1]) <= 2 and max(len(o) for o in cached) == 10, cached


def test_decoding_past_the_context_restarts_the_cache() -> None:
    from engine_nlp import generation

    model = _tiny("llama")
    opts = generation.check_options({"max_new_tokens": 30, "temperature": 0})
    fed = _fed(model)
    decoder = generation.Decoder(model, [[1, 2, 3, 4]], [opts], context=16)
    while not decoder.finished:
        decoder.step()
    # the prompt, a position per token up to 16 held, the last 8 again, and so on: 1 + 12 + 1 + 8 + 1 + 7 calls
    assert len(decoder.rows[0].out) == 30 and [n for n in fed if n > 1] == [4, 8, 8] and len(fed) == 30


@pytest.mark.parametrize("lora", [False, True])
def test_engine_generate_of_an_hf_run_decodes_with_its_cache(
    train: Any,
    cli: Any,
    tmp_path: Path,
    models: dict[str, Path],
    corpus_file: Path,
    monkeypatch: pytest.MonkeyPatch,
    lora: bool,
) -> None:
    from engine_hf.models import HFModel

    overrides = ["model=hf.causal_lm", "data=hf.text", "data.context_length=32", "data.batch_size=8"]
    overrides += ["trainer.max_steps=2", "trainer.val_check_interval=2", f"model.path={models['llama']}"]
    if lora:  # the model becomes LoRA's AdaptedModel, which forwards the protocol's methods to it
        pytest.importorskip("engine_techniques")
        overrides += ["peft.method=lora", "peft.target_modules=[q_proj,v_proj]"]
    result = train(*overrides, f"data.paths=[{corpus_file}]", root=tmp_path)
    fed: list[int] = []
    original = HFModel.forward_cached

    def counted(self: Any, ids: Any, cache: Any = None) -> Any:
        fed.append(ids.shape[1])
        return original(self, ids, cache)

    monkeypatch.setattr(HFModel, "forward_cached", counted)
    out = cli("generate", str(result.run_dir), "import os", "--max-new-tokens", "6", "--temperature", "0", "--json")
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout.splitlines()[0])["tokens"] == 6
    assert len(fed) == 6 and fed[0] > 1 and fed[1:] == [1] * 5  # the prompt once, then one position per token
