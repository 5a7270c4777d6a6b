"""Language-model serving and generation speed: ``engine serve``'s /v1 routes, and engine vs transformers.

1. Served: a character GPT run served in-process (uvicorn on 127.0.0.1), streamed completions with the
   official ``openai`` client at 1 and 8 concurrent streams: tokens/s (all streams together) and time to the
   first token (median).
2. Generation, same weights: a GPT-2-shaped ``transformers.GPT2LMHeadModel`` (random, built from a config: no
   download) and the same weights in ``nlp.gpt`` through the plugin's GPT-2 adapter, greedy, KV cache both,
   batch 1 and 8: engine ``LanguageModelingTask.generate`` vs ``model.generate``. Goal: >= 1.0x.

    .venv/bin/python plugins/deploy/bench/lm_serve.py --tiny       # seconds: proves the script works
    .venv/bin/python plugins/deploy/bench/lm_serve.py              # GPT-2 small (124 M), 64 new tokens
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
import warnings
from pathlib import Path

import torch


def _train(root: str, tiny: bool) -> Path:
    import engine

    overrides = [
        "model.n_layer=1" if tiny else "model.n_layer=4",
        "trainer.max_steps=30" if tiny else "trainer.max_steps=300",
        "trainer.val_check_interval=30" if tiny else "trainer.val_check_interval=300",
        "data.max_chars=40000",
        "trainer.enable_progress_bar=false",
        "trainer.enable_model_summary=false",
        f"run.dir={root}",
        "run.name=gpt",
    ]
    return engine.train(engine.plan(engine.compose("nlp/char-gpt", overrides=overrides))).run_dir


async def _streams(url: str, model: str, n: int, tokens: int) -> tuple[float, float]:
    import openai

    client = openai.AsyncOpenAI(base_url=f"{url}/v1", api_key="bench", max_retries=0, timeout=300)

    async def one() -> tuple[float, int]:
        t0 = time.perf_counter()
        first, count = None, 0
        stream = await client.completions.create(
            model=model, prompt="def ", max_tokens=tokens, temperature=0.8, seed=1, stream=True
        )
        async for chunk in stream:
            if chunk.choices and chunk.choices[0].text:
                first = first or time.perf_counter() - t0
                count += 1
        return first or 0.0, count

    await one()  # warm-up
    t = time.perf_counter()
    results = await asyncio.gather(*(one() for _ in range(n)))
    wall = time.perf_counter() - t
    return sum(c for _, c in results) / wall, statistics.median(f for f, _ in results)


def served(tiny: bool, tokens: int) -> None:
    from engine_deploy.predictor import Predictor
    from engine_deploy.server import BackgroundServer, create_app

    run_dir = _train(tempfile.mkdtemp(prefix="lm-serve-"), tiny)
    front = create_app(Predictor(run_dir), api_key="bench")
    print(f"served: {run_dir.name}, {tokens} tokens a stream (SSE chunks, a chunk per decoded piece)")
    print(f"{'streams':>8}{'tokens/s (all)':>16}{'TTFT median ms':>16}")
    with BackgroundServer(front) as url:
        for n in (1, 8):
            rate, ttft = asyncio.run(_streams(url, run_dir.name, n, tokens))
            print(f"{n:>8}{rate:>16.1f}{ttft * 1000:>16.1f}")


def generation(tiny: bool, tokens: int) -> None:
    import transformers
    from engine_nlp.adapters import hf_gpt2_to_gpt
    from engine_nlp.models import GPT
    from engine_nlp.optim import gpt_adamw
    from engine_nlp.task import LanguageModelingTask

    size = dict(n_layer=2, n_head=4, n_embd=64) if tiny else dict(n_layer=12, n_head=12, n_embd=768)
    vocab, context = (512, 128) if tiny else (50257, 1024)
    config = transformers.GPT2Config(vocab_size=vocab, n_positions=context, bos_token_id=0, eos_token_id=0, **size)
    torch.manual_seed(0)
    hf = transformers.GPT2LMHeadModel(config).eval()
    gpt = GPT(vocab, context, size["n_layer"], size["n_head"], size["n_embd"], bias=True).eval()
    mapped, _ = hf_gpt2_to_gpt(hf.state_dict(), gpt)
    gpt.load_state_dict(mapped)
    task = LanguageModelingTask(gpt, gpt_adamw)
    print(f"\ngeneration: GPT-2 shape {size}, vocab {vocab}, greedy, {tokens} new tokens, threads "
          f"{torch.get_num_threads()}")  # fmt: skip
    print(f"{'batch':>6}{'engine tok/s':>14}{'transformers tok/s':>20}{'ratio':>8}{'same tokens':>13}")
    prompt = torch.randint(vocab, (1, 16), generator=torch.Generator().manual_seed(0))
    for batch in (1, 8):
        x = prompt.repeat(batch, 1)
        kwargs = dict(max_new_tokens=tokens, min_new_tokens=tokens, do_sample=False, pad_token_id=0)
        with torch.inference_mode():
            hf.generate(x, **{**kwargs, "max_new_tokens": 2, "min_new_tokens": 2})
            t = time.perf_counter()
            theirs = hf.generate(x, attention_mask=torch.ones_like(x), **kwargs)[:, x.shape[1] :]
            t_hf = time.perf_counter() - t
        task.generate(gpt, x.tolist(), max_new_tokens=2, temperature=0)
        t = time.perf_counter()
        ours = task.generate(gpt, x.tolist(), max_new_tokens=tokens, temperature=0)
        t_ours = time.perf_counter() - t
        same = ours == theirs.tolist()
        n = batch * tokens
        print(f"{batch:>6}{n / t_ours:>14.1f}{n / t_hf:>20.1f}{t_hf / t_ours:>7.2f}x{same!s:>13}")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--tiny", action="store_true", help="tiny models, few tokens (checks the script)")
    p.add_argument("--tokens", type=int, default=None, help="new tokens per stream / prompt (default 64; tiny 12)")
    args = p.parse_args()
    warnings.filterwarnings("ignore")
    tokens = args.tokens or (12 if args.tiny else 64)
    served(args.tiny, tokens)
    generation(args.tiny, tokens)


if __name__ == "__main__":
    main()
