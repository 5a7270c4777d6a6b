"""Generation tokens/s of an ``hf.causal_lm`` through the nlp task's decoding loop: with transformers' KV cache
(``CachedDecoding``) vs recomputing the whole prefix each token (what the loop did for ``hf.causal_lm`` before,
and still does for a deployed artifact), beside transformers' own ``generate`` (what exact match used to call).

``task.generate`` is what ``engine generate`` and ``engine serve`` run. Greedy decoding, no stop token, so every
row is exactly ``--new-tokens`` long; the three paths must give the same tokens (checked, a mismatch is printed).

    .venv/bin/python plugins/hf/bench/generate_speed.py                      # a tiny random Llama (seconds)
    .venv/bin/python plugins/hf/bench/generate_speed.py --path DIR           # a converted SmolLM2 directory

Tokens/s counts the generated tokens of the whole batch. Timings on a shared CPU are noisy: ``--repeats`` and the
median; run it with ``OMP_NUM_THREADS=1`` (``--threads 1``, the default).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Callable
from typing import Any

import torch

import engine

TINY = {  # the shape of SmolLM2 (Llama: RoPE, grouped-query attention), much smaller
    "model_type": "llama",
    "hidden_size": 128,
    "intermediate_size": 384,
    "num_hidden_layers": 4,
    "num_attention_heads": 4,
    "num_key_value_heads": 2,
    "max_position_embeddings": 512,
    "vocab_size": 2000,
}


def timed(fn: Callable[[], list[list[int]]], repeats: int) -> tuple[float, list[list[int]]]:
    times, out = [], []
    for _ in range(repeats):
        start = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times), out


def rate(tokens: int, seconds: float) -> str:
    return f"{tokens / seconds:,.0f}" if tokens / seconds >= 100 else f"{tokens / seconds:.1f}"


def hf_generate(model: Any, prompts: list[list[int]], new: int) -> list[list[int]]:
    idx = torch.tensor(prompts, dtype=torch.long)
    with torch.inference_mode():
        out = model.hf.generate(
            input_ids=idx,
            attention_mask=torch.ones_like(idx),
            max_new_tokens=new,
            min_new_tokens=new,
            do_sample=False,
            temperature=None,
            top_p=None,
            top_k=None,
            pad_token_id=0,
            use_cache=True,
        )
    return out[:, idx.shape[1] :].tolist()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--path", help="a model directory (e.g. engine hf convert smollm2 DIR); default: a tiny Llama")
    ap.add_argument("--prompt-tokens", type=int, default=32)
    ap.add_argument("--new-tokens", type=int, default=64)
    ap.add_argument("--batches", type=int, nargs="+", default=[1, 8])
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    if args.path:
        model = engine.create("model", "hf.causal_lm", path=args.path).eval()
    else:
        model = engine.create("model", "hf.causal_lm", config=TINY).eval()
    from engine_nlp.optim import gpt_adamw
    from engine_nlp.task import LanguageModelingTask

    task = LanguageModelingTask(model, gpt_adamw)
    vocab = model.vocab_size
    params = sum(p.numel() for p in model.parameters())
    name = args.path or "tiny random Llama (4 layers, width 128)"
    print(f"$ {' '.join([sys.executable.rsplit('/', 1)[-1], *sys.argv])}")
    print(f"model: {name}, {params / 1e6:.1f} M parameters; prompt {args.prompt_tokens} tokens, {args.new_tokens} new")
    print(f"torch threads {torch.get_num_threads()} (machine shared); median of {args.repeats}\n")
    print("| batch | recompute tok/s | KV cache tok/s | speed-up | transformers generate tok/s | same tokens |")
    print("|------:|----------------:|---------------:|---------:|----------------------------:|:-----------:|")
    for batch in args.batches:
        g = torch.Generator().manual_seed(batch)
        prompts = torch.randint(3, vocab, (batch, args.prompt_tokens), generator=g).tolist()
        opts = {"max_new_tokens": args.new_tokens, "temperature": 0}
        plain = lambda ids: model(ids)  # noqa: E731  an opaque callable: no cache (a deployed artifact's path)
        t_plain, out_plain = timed(lambda: task.generate(plain, prompts, **opts), args.repeats)  # noqa: B023
        t_cache, out_cache = timed(lambda: task.generate(model, prompts, **opts), args.repeats)  # noqa: B023
        t_hf, out_hf = timed(lambda: hf_generate(model, prompts, args.new_tokens), args.repeats)  # noqa: B023
        tokens = batch * args.new_tokens
        same = "yes" if out_plain == out_cache == out_hf else "NO"
        print(
            f"| {batch} | {rate(tokens, t_plain)} | {rate(tokens, t_cache)} | {t_plain / t_cache:.1f}x "
            f"| {rate(tokens, t_hf)} | {same} |"
        )


if __name__ == "__main__":
    main()
