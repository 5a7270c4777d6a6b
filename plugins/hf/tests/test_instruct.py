"""Exact match of instruction replies on an ``hf.causal_lm``: the shared decoding loop with transformers' KV cache
(no ``generate`` of its own), the same replies as recomputing the prefix."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import engine


def test_exact_match_on_a_transformers_model_decodes_with_its_cache_in_the_shared_loop(
    tmp_path: Path, models: dict[str, Path]
) -> None:
    from engine_nlp.instruct_task import exact_match
    from engine_nlp.instructions import Instructions

    records = [{"prompt": f"Add {a} and {a + 1}.", "response": str(2 * a + 1)} for a in range(12)]
    data = tmp_path / "d.jsonl"
    data.write_text("\n".join(json.dumps(r) for r in records), encoding="utf-8")
    source = Instructions(
        path=str(data), tokenizer_file=str(models["llama"] / "tokenizer.json"), context_length=48, test_fraction=0.5
    )
    model = engine.create("model", "hf.causal_lm", path=str(models["llama"])).eval()

    def refuse(*args: Any, **kwargs: Any) -> None:
        raise AssertionError("exact match has no model-specific path: it does not call transformers' generate")

    model.hf.generate = refuse
    fed: list[int] = []
    model.hf.register_forward_pre_hook(lambda _m, _a, kw: fed.append(kw["input_ids"].shape[1]), with_kwargs=True)
    fast, fast_rows = exact_match(model, source, "test", max_new_tokens=6)
    prompts = [n for n in fed if n > 1]  # one call per prompt length fills the cache, then a position per token
    assert 0 < len(prompts) <= len(fast_rows) and len(fed) > 2 * len(prompts)

    def plain(ids: Any) -> Any:  # the same network seen as a bare callable (a deployed artifact): no cache
        return model(ids)

    slow, slow_rows = exact_match(plain, source, "test", max_new_tokens=6)
    assert fast == slow and [r[1] for r in fast_rows] == [r[1] for r in slow_rows]
