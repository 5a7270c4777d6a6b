"""Exact match of instruction replies on an ``hf.causal_lm``: its own ``generate`` (KV cache), the same replies."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import engine


def test_exact_match_on_a_transformers_model_uses_its_cached_generate_and_gives_the_same_replies(
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
    assert len(source.tokenizer.encode(source.end)) == 1  # the end of turn is one token (generate stops on it)
    model = engine.create("model", "hf.causal_lm", path=str(models["llama"])).eval()
    calls: list[int] = []
    model.register_forward_hook(lambda *a: calls.append(1))
    fast, fast_rows = exact_match(model, source, "test", max_new_tokens=6)
    assert calls == []  # the wrapper's full forward was not called once per token: transformers' generate was

    def plain(ids: Any) -> Any:  # the same network seen as a bare callable: engine_nlp.generation's loop
        return model(ids)

    slow, slow_rows = exact_match(plain, source, "test", max_new_tokens=6)
    assert calls and fast == slow and [r[1] for r in fast_rows] == [r[1] for r in slow_rows]
