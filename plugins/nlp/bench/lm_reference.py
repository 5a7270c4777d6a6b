"""Engine vs a plain-PyTorch reference loop on the same GPT, data, batches, optimizer, steps and seed.

Prints, with the machine's load average (timings on a shared CPU are noisy):

- validation loss of both after ``--steps`` steps (target: within 1 %) and the bigram baseline;
- training tokens/s of both (target: engine >= 0.98x) over ``--repeats`` timing pairs: the two runs of the
  loss comparison, then short runs in alternating order (reference first, then engine first, ...), so
  that load changes hit both alike; the ratio reported is the median of the per-pair ratios;
- the fixed per-step cost of each loop, measured on a tiny model where compute is negligible (what
  Lightning, logging and the data path add per step);
- P3 = achieved FLOP/s / fp32 matmul peak (target >= 40 %); the peak is measured between the timing pairs
  and the best value is used (conservative on a loaded machine).

With ``--variants`` it also times the reference loop under CPU speed-ups (for-each vs fused AdamW, bf16
autocast, ``torch.compile``) to show what helps on this machine.

    .venv/bin/python plugins/nlp/bench/lm_reference.py            # ~4-5 min on a quiet 2-core CPU
    .venv/bin/python plugins/nlp/bench/lm_reference.py --variants

FLOPs per token = 6 N + 12 L d T (PaLM appendix B: N = weights used in matmuls, i.e. every parameter but
the position embeddings, the tied embedding counted once as the output projection; the second term is
attention scores and weighted values, forward and backward).
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import math
import os
import statistics
import time
import warnings
from typing import Any

import torch
import torch.nn.functional as F


def load() -> str:
    return "load average " + " ".join(f"{x:.1f}" for x in os.getloadavg())


def matmul_peak(size: int = 1024, repeats: int = 10) -> float:
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
) -> tuple[Any, float, float]:
    """The plain-PyTorch loop: same seed, init, sampler order, optimizer, steps as the engine run.

    Returns the model, training tokens/s (steps after ``args.warmup``) and seconds per step (median wall time,
    mean process CPU time).
    """
    import lightning as L
    from engine_nlp.optim import gpt_adamw

    from engine.data import EpochShuffleSampler

    L.seed_everything(args.seed, verbose=False)
    train = source.datasets()["train"]
    model = make_model(args, source.facts["vocab_size"])
    opt = gpt_adamw(model.parameters(), lr=args.lr, fused=fused)
    forward = torch.compile(model) if compile else model
    model.train()
    step, epoch, t0 = 0, 0, time.perf_counter()
    starts: list[float] = []
    while step < args.steps:
        sampler = EpochShuffleSampler(len(train), args.seed)
        sampler.set_epoch(epoch)
        loader = torch.utils.data.DataLoader(
            train, batch_size=args.batch_size, sampler=sampler, generator=torch.Generator().manual_seed(args.seed)
        )
        for x, y in loader:
            if step == args.warmup:
                t0, c0 = time.perf_counter(), time.process_time()
            starts.append(time.perf_counter())
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
    end, cpu = time.perf_counter(), time.process_time() - c0
    steps = [b - a for a, b in zip(starts[args.warmup :], [*starts[args.warmup + 1 :], end], strict=True)]
    n = args.steps - args.warmup
    return model, n * args.batch_size * args.context / (end - t0), (statistics.median(steps), cpu / n)


def engine_plan(args: argparse.Namespace) -> Any:
    import engine

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
    return engine.plan(engine.compose(None, overrides=overrides))


def engine_run(args: argparse.Namespace, plan: Any, dm: Any) -> tuple[Any, float, float]:
    """The engine: the plugin's task built from the config, trained by a Lightning ``Trainer`` on its datamodule.

    Returns the model, training tokens/s (steps after ``args.warmup``) and seconds per step (median wall time,
    mean process CPU time).
    """
    import lightning as L

    import engine

    L.seed_everything(plan.config["seed"], verbose=False)  # as the runner does
    task = engine.build(plan).task  # its own data is built first: no random draws, the same initial weights
    starts: list[float] = []
    end: list[float] = []
    cpu: list[float] = []

    class Timer(L.Callback):
        def on_train_batch_start(self, trainer: Any, module: Any, batch: Any, batch_idx: int) -> None:
            starts.append(time.perf_counter())
            if len(starts) == args.warmup + 1:
                cpu.append(time.process_time())

        def on_train_end(self, trainer: Any, module: Any) -> None:
            end.append(time.perf_counter())
            cpu.append(time.process_time())

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
    steps = [b - a for a, b in zip(starts[args.warmup :], [*starts[args.warmup + 1 :], end[0]], strict=True)]
    n = args.steps - args.warmup
    tps = n * args.batch_size * args.context / (end[0] - starts[args.warmup])
    return task.model, tps, (statistics.median(steps), (cpu[1] - cpu[0]) / n)


def table(header: tuple[str, ...], rows: list[tuple[str, ...]]) -> None:
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]
    for r in [header, *rows]:
        print("  ".join(str(c).ljust(w) for c, w in zip(r, widths, strict=True)).rstrip())


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--steps", type=int, default=60, help="training steps of the loss comparison")
    p.add_argument("--time-steps", type=int, default=20, help="timed steps of each interleaved timing run")
    p.add_argument("--warmup", type=int, default=5, help="steps excluded from each timing")
    p.add_argument("--repeats", type=int, default=3, help="timing pairs (the first is the loss comparison's runs)")
    p.add_argument("--batch-size", type=int, default=8)
    p.add_argument("--context", type=int, default=256)
    p.add_argument("--d-model", type=int, default=256)
    p.add_argument("--layers", type=int, default=4)
    p.add_argument("--heads", type=int, default=4)
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--max-chars", type=int, default=400_000)
    p.add_argument("--val-batches", type=int, default=10)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--variants", action="store_true", help="also time reference-loop speed-ups")
    args = p.parse_args()
    warnings.filterwarnings("ignore")
    for name in ("lightning", "lightning.pytorch", "lightning.fabric"):
        logging.getLogger(name).setLevel(logging.ERROR)

    from engine_nlp.baselines import best_bigram_loss

    import engine

    print(f"start: {load()}", flush=True)
    t_start = time.time()
    plan = engine_plan(args)
    dm = engine.build(plan).datamodule
    source = dm.source
    vocab = source.facts["vocab_size"]

    # 1. the same training in both loops: validation losses must agree. These two runs are also the first
    # timing pair; the others (2.) are short runs in alternating order, the matmul peak measured between them.
    peaks = [matmul_peak()]
    tps: dict[str, list[float]] = {"engine": [], "reference": []}
    ratios: list[float] = []
    cpu_ratios: list[float] = []  # by process CPU time per step: less sensitive to other jobs than wall time

    def record(pair: dict[str, tuple[float, float]]) -> None:
        for which, (value, _) in pair.items():
            tps[which].append(value)
        ratios.append(pair["engine"][0] / pair["reference"][0])
        cpu_ratios.append(pair["reference"][1] / pair["engine"][1])
        peaks.append(matmul_peak())
        print(
            f"  timing pair {len(ratios)}: engine {pair['engine'][0]:,.0f} tok/s, reference "
            f"{pair['reference'][0]:,.0f} tok/s; CPU s/step {pair['engine'][1]:.3f} vs {pair['reference'][1]:.3f} "
            f"({load()})",
            flush=True,
        )

    t = time.time()
    eng_model, eng_tps, (_, eng_cpu) = engine_run(args, plan, dm)
    eng_wall = time.time() - t
    t = time.time()
    ref_model, ref_tps, (_, ref_cpu) = reference(args, source)
    ref_wall = time.time() - t
    record({"engine": (eng_tps, eng_cpu), "reference": (ref_tps, ref_cpu)})
    val = source.datasets()["val"]
    eng_val, ref_val = val_loss(eng_model, val, args), val_loss(ref_model, val, args)
    fpt = flops_per_token(ref_model, args)
    n_val = args.val_batches * args.batch_size * args.context
    bigram, alpha = best_bigram_loss(source.ids["train"], source.ids["val"][: n_val + 1], vocab)
    del eng_model, ref_model

    # 2. more timing pairs: short runs, interleaved
    timed = argparse.Namespace(**{**vars(args), "steps": args.warmup + args.time_steps})
    for r in range(1, args.repeats):
        order = ("reference", "engine") if r % 2 else ("engine", "reference")
        pair: dict[str, tuple[float, float]] = {}
        for which in order:
            _, value, (_, cpu) = engine_run(timed, plan, dm) if which == "engine" else reference(timed, source)
            pair[which] = (value, cpu)
        record(pair)
    peak = max(peaks)  # the best the machine gave: a conservative P3
    eng_tps, ref_tps = statistics.median(tps["engine"]), statistics.median(tps["reference"])

    # 3. fixed per-step cost: a tiny model, where compute is negligible
    tiny = argparse.Namespace(
        **{
            **vars(args),
            "steps": 60,
            "warmup": 10,
            "layers": 1,
            "d_model": 16,
            "heads": 2,
            "context": 16,
            "batch_size": 4,
        }
    )
    tiny_plan = engine_plan(tiny)
    tiny_dm = engine.build(tiny_plan).datamodule
    overhead: dict[str, list[tuple[float, float]]] = {"engine": [], "reference": []}
    for _ in range(3):
        overhead["engine"].append(engine_run(tiny, tiny_plan, tiny_dm)[2])
        overhead["reference"].append(reference(tiny, tiny_dm.source)[2])
    (eng_fixed, eng_cpu), (ref_fixed, ref_cpu) = (
        (min(w for w, _ in overhead[k]), min(c for _, c in overhead[k])) for k in ("engine", "reference")
    )

    print(
        f"\nGPT d={args.d_model} L={args.layers} H={args.heads} T={args.context}, batch {args.batch_size}, "
        f"char tokens of {source.corpus}, {torch.get_num_threads()} threads, torch {torch.__version__}"
    )
    print(
        f"fp32 matmul peak (1024^3, best of {len(peaks)}): {peak / 1e9:.1f} GFLOP/s; FLOPs/token "
        f"{fpt / 1e6:.2f} M; {load()}"
    )
    rows = [
        (
            f"val loss after {args.steps} steps (nats/token)",
            f"{ref_val:.4f}",
            f"{eng_val:.4f}",
            f"{abs(eng_val - ref_val) / ref_val:.2%} diff",
            "<= 1 %",
        ),
        (
            f"train tokens/s (median of {len(ratios)}, interleaved)",
            f"{ref_tps:,.0f}",
            f"{eng_tps:,.0f}",
            f"{statistics.median(ratios):.3f}x",
            ">= 0.98x",
        ),
        ("per-pair ratios", "", "", " ".join(f"{r:.3f}" for r in ratios), ""),
        (
            "per-pair ratios by CPU time per step",
            "",
            "",
            " ".join(f"{r:.3f}" for r in cpu_ratios) + f" (median {statistics.median(cpu_ratios):.3f}x)",
            "",
        ),
        (
            "fixed cost per step, tiny model (ms)",
            f"{ref_fixed * 1e3:.2f}",
            f"{eng_fixed * 1e3:.2f}",
            f"+{(eng_fixed - ref_fixed) * 1e3:.2f} ms",
            "",
        ),
        (
            "  same, process CPU time (ms)",
            f"{ref_cpu * 1e3:.2f}",
            f"{eng_cpu * 1e3:.2f}",
            f"+{(eng_cpu - ref_cpu) * 1e3:.2f} ms",
            "",
        ),
        ("P3 achieved/peak", f"{fpt * ref_tps / peak:.1%}", f"{fpt * eng_tps / peak:.1%}", "", ">= 40 %"),
        (f"wall time of the {args.steps}-step runs (s)", f"{ref_wall:.1f}", f"{eng_wall:.1f}", "", ""),
        ("bigram baseline val loss", f"{bigram:.4f} (add-{alpha:g})", "", "", "trained GPT below: nlp/char-gpt"),
    ]
    table(("metric", "reference", "engine", "engine vs ref", "target"), rows)

    if args.variants:
        print(f"\nreference loop speed-ups on this CPU ({timed.time_steps} timed steps each, {load()}):")
        for label, kw in [
            ("fp32, for-each AdamW", {"fused": False}),
            ("fp32, fused AdamW", {"fused": True}),
            ("bf16 autocast, fused AdamW", {"fused": True, "bf16": True}),
            ("torch.compile, fused AdamW", {"fused": True, "compile": True}),
        ]:
            try:
                t = time.time()
                _, v_tps, _ = reference(timed, source, **kw)
                print(f"  {label:<28} {v_tps:>8,.0f} tok/s  P3 {fpt * v_tps / peak:5.1%}  ({time.time() - t:.0f} s)")
            except Exception as exc:  # e.g. no compiler for torch.compile
                print(f"  {label:<28} failed: {type(exc).__name__}: {str(exc)[:80]}")
    print(f"\nln(vocab) = {math.log(vocab):.3f} nats (uniform); total {time.time() - t_start:.0f} s; end: {load()}")


if __name__ == "__main__":
    main()
