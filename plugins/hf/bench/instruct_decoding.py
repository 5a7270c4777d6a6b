"""Exact match of an ``nlp.instruct`` run of ``hf.causal_lm`` (e.g. ``nlp/instruct-smollm2``), decoded three ways:
the shared loop with transformers' KV cache (what the task does now), transformers' own ``generate`` (what it
called before: a model-specific branch), and optionally the shared loop recomputing the prefix (``--recompute``:
a deployed artifact's path, slow). Prints each path's time, exact match, and whether its replies are the cached
path's, reply for reply.

    .venv/bin/python plugins/hf/bench/instruct_decoding.py RUN [--limit 100] [--repeats 2] [--recompute]

Run it with ``OMP_NUM_THREADS=1`` (``--threads 1``, the default); wall times on a shared machine are inflated.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable
from typing import Any

import torch

from engine.runs import open_run


def transformers_generate(model: Any, source: Any, split: str, max_new_tokens: int, limit: int) -> list[str]:
    """The replies the task's former branch gave: ``model.hf.generate`` on prompts of one length at a time."""
    from engine_nlp.instruct_task import _cut

    examples = (source.examples.get(split) or [])[:limit]
    prompts = [source.format_chat(m[:-1]) for m in examples]
    refs = [m[-1]["content"].strip() for m in examples]
    (end,) = source.tokenizer.encode(source.end)
    budget = max([max_new_tokens] + [len(source.tokenizer.encode(r)) + 1 for r in refs])
    ids = [source.tokenizer.encode(p)[-max(1, source.context_length - budget) :] for p in prompts]
    out: list[list[int]] = [[] for _ in ids]
    groups: dict[int, list[int]] = {}
    for i, p in enumerate(ids):
        groups.setdefault(len(p), []).append(i)
    with torch.inference_mode():
        for members in groups.values():
            idx = torch.tensor([ids[i] for i in members], dtype=torch.long)
            rows = model.hf.generate(
                input_ids=idx,
                attention_mask=torch.ones_like(idx),
                max_new_tokens=budget,
                do_sample=False,
                temperature=None,
                top_p=None,
                top_k=None,
                eos_token_id=end,
                pad_token_id=end,
                use_cache=True,
            )[:, idx.shape[1] :].tolist()
            for row, i in zip(rows, members, strict=True):
                out[i] = row[: row.index(end)] if end in row else row
    return [_cut(source.decode_tokens(g), source.end) for g in out]


def main() -> None:
    from engine_nlp.generation import caches
    from engine_nlp.instruct_task import exact_match

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("run", help="an nlp.instruct run of hf.causal_lm")
    ap.add_argument("--split", default="test")
    ap.add_argument("--limit", type=int, default=100, help="examples graded (the recipe's eval_limit: 100)")
    ap.add_argument("--max-new-tokens", type=int, help="default: the run's task.max_new_tokens")
    ap.add_argument("--recompute", action="store_true", help="also the shared loop without a cache (slow)")
    ap.add_argument("--repeats", type=int, default=2, help="each path this many times, alternating; the best")
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    run = open_run(args.run)
    model = run.model().eval()
    source = run.datamodule().source
    new = args.max_new_tokens or int(run.config["task"].get("max_new_tokens") or 16)
    print(f"$ {' '.join([sys.executable.rsplit('/', 1)[-1], *sys.argv])}")
    print(f"run {run.path.name}: {type(model).__name__} ({'KV cache' if caches(model) else 'no cache'})")
    print(f"{args.split} split, {args.limit} examples at most, max_new_tokens {new}")
    print(f"{torch.get_num_threads()} torch thread(s), machine shared; best of {args.repeats} (paths alternate)\n")
    paths: dict[str, Callable[[], tuple[float | None, list[str]]]] = {
        "shared loop, KV cache (now)": lambda: _replies(exact_match(model, source, args.split, new, args.limit)),
        "transformers generate (before)": lambda: (
            None,
            transformers_generate(model, source, args.split, new, args.limit),
        ),
    }
    if args.recompute:
        plain = lambda ids: model(ids)  # noqa: E731  an opaque callable (a deployed artifact): no cache
        paths["shared loop, recompute (artifact)"] = lambda: _replies(
            exact_match(plain, source, args.split, new, args.limit)
        )
    seconds: dict[str, float] = {}
    replies: dict[str, list[str]] = {}
    for _ in range(args.repeats):
        for name, fn in paths.items():
            start = time.perf_counter()
            _, replies[name] = fn()
            seconds[name] = min(seconds.get(name, float("inf")), time.perf_counter() - start)
    refs = [m[-1]["content"].strip() for m in (source.examples.get(args.split) or [])[: args.limit]]
    first = replies[next(iter(paths))]
    print("| path | seconds | exact match | replies = the cached path's |")
    print("|------|--------:|------------:|:---------------------------:|")
    for name in paths:
        got = replies[name]
        hits = sum(r == ref for r, ref in zip(got, refs, strict=True)) / len(refs)
        same = sum(a == b for a, b in zip(got, first, strict=True))
        print(f"| {name} | {seconds[name]:.1f} | {hits:.3f} | {same}/{len(got)} |")


def _replies(result: tuple[float, list[tuple[str, str, str]]]) -> tuple[float, list[str]]:
    return result[0], [reply for _, reply, _ in result[1]]


if __name__ == "__main__":
    main()
