"""Engine vs a plain-PyTorch reference loop on the same GPT, data, batches, optimizer, steps and seed.

Prints validation loss of both (target: within 1 %), training tokens/s of both (target: engine >= 0.98x),
P3 = achieved FLOP/s / measured fp32 matmul peak (target >= 40 %), and the bigram baseline. With
``--variants`` it also times the reference loop under CPU speed-ups (fused AdamW, bf16 autocast,
torch.compile) to show what helps on this machine.

    .venv/bin/python plugins/nlp/bench/lm_reference.py            # ~3-5 min on a quiet 2-core CPU
    .venv/bin/python plugins/nlp/bench/lm_reference.py --variants

FLOPs per token = 6 N + 12 L d T (PaLM appendix B: N = weights used in matmuls, i.e. every parameter but
the position embeddings, the tied embedding counted once as the output projection; the second term is
attention scores and weighted values, forward and backward).
"""

from __future__ import annotations

import argparse
import contextlib
import math
import time
import warnings
from typing import Any

import torch
import torch.nn.functional as F


def matmul_peak(size: int = 1024, repeats: int = 20) -> float:
    """Best fp32 matmul FLOP/s over a few trials (the machine's practical peak)."""
    a, b = torch.randn(size, size), torch.randn(size, size)
    for _ in range(3):
        a @ b
    best = 0.0
    for _ in range(5):
        t = time.perf_counter()
        for _ in range(repeats):
            a @ b
        best = max(best, 2 * size**3 * repeats / (time.perf_counter() - t))
    return best


def make_model(args: argparse.Namespace, vocab: int) -> Any:
    from engine_nlp.models import GPT

    return GPT(vocab, args.context, n_layer=args.layers, n_head=args.heads, d_model=args.d_model, dropout=0.0)


def flops_per_token(model: Any, args: argparse.Namespace) -> float:
    n = sum(p.numel() for name, p in model.named_parameters() if not name.startswith("pos_emb"))
    return 6 * n + 12 * args.layers * args.d_model * args.context


@torch.no_grad()
def val_loss(model: Any, val: Any, args: argparse.Namespace) -> float:
    model.eval()
    loader = torch.utils.data.DataLoader(val, batch_size=args.batch_size)
    total, count = 0.0, 0
    for i, (x, y) in enumerate(loader):
        if i >= args.val_batches:
            break
        logits = model(x)
        total += F.cross_entropy(logits.reshape(-1, logits.shape[-1]), y.reshape(-1), reduction="sum").item()
        count += y.numel()
    return total / count


def reference(
    args: argparse.Namespace, source: Any, fused: bool = True, bf16: bool = False, compile: bool = False
) -> tuple[Any, float]:
    """The plain-PyTorch loop: same seed, init, sampler order, optimizer, steps as the engine run."""
    import lightning as L
    from engine_nlp.optim import gpt_adamw

    from engine.data import EpochShuffleSampler

    L.seed_everything(args.seed, verbose=False)
    train = source.datasets()["train"]
    model = make_model(args, source.facts["vocab_size"])
    opt = gpt_adamw(model.parameters(), lr=args.lr, fused=fused)
    forward = torch.compile(model) if compile else model
    model.train()
    step, t0 = 0, time.perf_counter()
    epoch = 0
    while step < args.steps:
        sampler = EpochShuffleSampler(len(train), args.seed)
        sampler.set_epoch(epoch)
        loader = torch.utils.data.DataLoader(
            train, batch_size=args.batch_size, sampler=sampler, generator=torch.Generator().manual_seed(args.seed)
        )
        for x, y in loader:
            if step == args.warmup:
                t0 = time.perf_counter()
            ctx = torch.autocast("cpu", dtype=torch.bfloat16) if bf16 else contextlib.nullcontext()
            with ctx:
                logits = forward(x)
            loss = F.cross_entropy(logits.reshape(-1, logits.shape[-1]).float(), y.reshape(-1))
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            step += 1
            if step >= args.steps:
                break
        epoch += 1
    elapsed = time.perf_counter() - t0
    return model, (args.steps - args.warmup) * args.batch_size * args.context / elapsed


def engine_run(args: argparse.Namespace) -> tuple[Any, float, Any]:
    """The engine: the plugin's data source, model and task, built from a config, trained by Lightning."""
    import lightning as L

    import engine
    from engine.build import build_data, build_task
    from engine.config import compose, validate

    reg = engine.get_registry()
    overrides = [
        "task=nlp.language_modeling",
        "model=nlp.gpt",
        f"model.n_layer={args.layers}",
        f"model.n_head={args.heads}",
        f"model.d_model={args.d_model}",
        "model.dropout=0.0",
        "data=nlp.text_files",
        "data.tokenizer=char",
        f"data.context_length={args.context}",
        f"data.max_chars={args.max_chars}",
        f"data.batch_size={args.batch_size}",
        "optimizer=nlp.gpt_adamw",
        f"optimizer.lr={args.lr}",
        f"seed={args.seed}",
    ]
    cfg = validate(compose(reg, None, (), overrides), reg)
    L.seed_everything(cfg["seed"], verbose=False)  # as the runner does
    dm = build_data(reg, cfg)
    task = build_task(reg, cfg, dict(dm.facts))
    times: dict[str, float] = {}

    class Timer(L.Callback):
        def on_train_batch_start(self, trainer: Any, module: Any, batch: Any, batch_idx: int) -> None:
            if trainer.global_step == args.warmup and "t0" not in times:
                times["t0"] = time.perf_counter()

        def on_train_end(self, trainer: Any, module: Any) -> None:
            times["t1"] = time.perf_counter()

    trainer = L.Trainer(
        max_steps=args.steps,
        limit_val_batches=0,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        callbacks=[Timer()],
        accelerator="cpu",
        devices=1,
    )
    trainer.fit(task, datamodule=dm)
    tps = (args.steps - args.warmup) * args.batch_size * args.context / (times["t1"] - times["t0"])
    return task.model, tps, dm.source


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--steps", type=int, default=150)
    p.add_argument("--warmup", type=int, default=10, help="steps excluded from the timing")
    p.add_argument("--batch-size", type=int, default=16)
    p.add_argument("--context", type=int, default=128)
    p.add_argument("--d-model", type=int, default=128)
    p.add_argument("--layers", type=int, default=4)
    p.add_argument("--heads", type=int, default=4)
    p.add_argument("--lr", type=float, default=2e-3)
    p.add_argument("--max-chars", type=int, default=400_000)
    p.add_argument("--val-batches", type=int, default=25)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--variants", action="store_true", help="also time reference-loop speed-ups")
    args = p.parse_args()
    warnings.filterwarnings("ignore")
    import logging

    logging.getLogger("lightning").setLevel(logging.ERROR)
    logging.getLogger("lightning.pytorch").setLevel(logging.ERROR)

    from engine_nlp.baselines import best_bigram_loss

    peak = matmul_peak()
    t = time.time()
    eng_model, eng_tps, source = engine_run(args)
    eng_wall = time.time() - t
    t = time.time()
    ref_model, ref_tps = reference(args, source)
    ref_wall = time.time() - t
    val = source.datasets()["val"]
    eng_val, ref_val = val_loss(eng_model, val, args), val_loss(ref_model, val, args)
    fpt = flops_per_token(ref_model, args)
    n_val = args.val_batches * args.batch_size * args.context
    bigram, alpha = best_bigram_loss(source.ids["train"], source.ids["val"][: n_val + 1], source.facts["vocab_size"])

    print(
        f"\nGPT d={args.d_model} L={args.layers} H={args.heads} T={args.context}, batch {args.batch_size}, "
        f"{args.steps} steps (timing excludes {args.warmup}), char tokens of {source.corpus}, "
        f"{torch.get_num_threads()} threads"
    )
    print(f"fp32 matmul peak: {peak / 1e9:.1f} GFLOP/s; FLOPs/token {fpt / 1e6:.2f} M")
    rows = [
        (
            "val loss (nats/token)",
            f"{ref_val:.4f}",
            f"{eng_val:.4f}",
            f"{abs(eng_val - ref_val) / ref_val:.2%} diff",
            "<= 1 %",
        ),
        ("train tokens/s", f"{ref_tps:,.0f}", f"{eng_tps:,.0f}", f"{eng_tps / ref_tps:.3f}x", ">= 0.98x"),
        ("P3 achieved/peak", f"{fpt * ref_tps / peak:.1%}", f"{fpt * eng_tps / peak:.1%}", "", ">= 40 %"),
        ("wall time (s)", f"{ref_wall:.1f}", f"{eng_wall:.1f}", "", ""),
        ("bigram baseline val loss", f"{bigram:.4f} (add-{alpha:g})", "", "", "GPT clearly below"),
    ]
    header = ("metric", "reference", "engine", "engine vs ref", "target")
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(5)]
    for r in [header, *rows]:
        print("  ".join(str(c).ljust(w) for c, w in zip(r, widths, strict=True)))

    if args.variants:
        print("\nreference loop speed-ups on this CPU (tokens/s, same steps):")
        short = argparse.Namespace(**{**vars(args), "steps": max(args.warmup + 20, args.steps // 3)})
        for label, kw in [
            ("fp32, for-each AdamW", {"fused": False}),
            ("fp32, fused AdamW", {"fused": True}),
            ("bf16 autocast, fused AdamW", {"fused": True, "bf16": True}),
            ("torch.compile, fused AdamW", {"fused": True, "compile": True}),
        ]:
            try:
                _, tps = reference(short, source, **kw)
                print(f"  {label:<28} {tps:>10,.0f}")
            except Exception as exc:  # e.g. no compiler for torch.compile
                print(f"  {label:<28} failed: {type(exc).__name__}: {str(exc)[:80]}")
    print(f"\nln(vocab) = {math.log(source.facts['vocab_size']):.3f} nats (uniform)")


if __name__ == "__main__":
    main()
