"""Peak memory of LoRA (peft, r=8) against full fine-tuning of the same model, each in its own process (issue 36).

    OMP_NUM_THREADS=1 .venv/bin/python plugins/techniques/bench/lora_memory.py [--size gpt2-small] [--steps 3]
    .venv/bin/python plugins/techniques/bench/lora_memory.py --size tiny --steps 2      # a check that it runs

Four processes (peak RSS, ``ru_maxrss``, is per process), the engine's ``nlp.gpt`` at the given size each time:

- ``ref-full`` / ``ref-lora``: the reference, a plain PyTorch loop (AdamW over the trainable parameters, random
  tokens), the LoRA one wrapping the model with ``peft.get_peft_model`` directly, as issue 36 measured;
- ``engine-full`` / ``engine-lora``: ``engine.train`` of the ``nlp/char-gpt`` recipe at that shape (vocabulary
  padded to the size's), ``--steps`` steps, checkpoints and ``model.safetensors`` written as in any run; LoRA
  through the ``peft`` section (same targets, r, alpha, dropout).

Prints one table (trainable / total parameters, peak RSS, seconds per step) and the ratios LoRA / full (the
issue's goal: <= 0.6). Set ``MALLOC_MMAP_THRESHOLD_=131072`` to see glibc's share: without it, the dynamic mmap
threshold keeps freed activation buffers in the heap, counted in RSS.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile

SIZES = {
    # GPT-2 small's shape: 124 M parameters (tied embeddings), context 256, batch 4, as measured in issue 36
    "gpt2-small": {"vocab_size": 50257, "context_length": 256, "n_layer": 12, "n_head": 12, "d_model": 768, "batch": 4},
    "tiny": {"vocab_size": 256, "context_length": 32, "n_layer": 2, "n_head": 2, "d_model": 32, "batch": 2},
}
LORA = {"r": 8, "alpha": 16.0, "dropout": 0.05}


def shape_of(size: str) -> dict:
    """``nlp.gpt``'s parameters at ``size``."""
    return {k: v for k, v in SIZES[size].items() if k != "batch"}


def _peak_gib() -> float:
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20


def reference(mode: str, size: str, steps: int, targets: list[str]) -> dict:
    """A plain loop: the model (wrapped by ``peft.get_peft_model`` for LoRA), AdamW over what trains."""
    import time

    import torch
    import torch.nn.functional as F

    import engine

    shape, batch = shape_of(size), SIZES[size]["batch"]
    torch.manual_seed(0)
    model = engine.create("model", "nlp.gpt", **shape)
    if mode == "lora":
        from peft import LoraConfig, get_peft_model

        model = get_peft_model(
            model,
            LoraConfig(r=LORA["r"], lora_alpha=LORA["alpha"], lora_dropout=LORA["dropout"], target_modules=targets),
        )
    trainable = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(trainable, lr=1e-4)
    model.train()
    ids = torch.randint(0, shape["vocab_size"], (batch, shape["context_length"] + 1))

    def loss_of(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:  # the logits are freed before backward
        logits = model(x)
        return F.cross_entropy(logits.reshape(-1, logits.shape[-1]), y.reshape(-1))

    times = []
    for _ in range(steps):
        t0 = time.perf_counter()
        loss_of(ids[:, :-1], ids[:, 1:]).backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        times.append(time.perf_counter() - t0)
    total = sum(p.numel() for p in {id(p): p for p in model.parameters()}.values())
    median = sorted(times)[len(times) // 2]
    return {"trainable": sum(p.numel() for p in trainable), "total": total, "s_per_step": median}


def through_engine(mode: str, size: str, steps: int, targets: list[str]) -> dict:
    """``engine.train`` of the char-GPT recipe at ``size``'s shape (LoRA: the ``peft`` section)."""
    import torch

    import engine

    torch.set_num_threads(int(os.environ.get("OMP_NUM_THREADS", torch.get_num_threads())))
    shape = SIZES[size]
    with tempfile.TemporaryDirectory() as root:
        overrides = [f"model.{k}={shape[k]}" for k in ("vocab_size", "n_layer", "n_head", "d_model")]
        overrides += [
            "model.dropout=0.0",
            f"data.context_length={shape['context_length']}",
            f"data.batch_size={shape['batch']}",
            "data.max_chars=200000",
            f"trainer.max_steps={steps}",
            "trainer.val_check_interval=null",
            "trainer.limit_val_batches=0",
            "trainer.limit_test_batches=0",
            "checkpoint.monitor=train/loss",
            f"run.dir={root}",
            f"run.name={mode}",
        ]
        if mode == "lora":
            overrides += [f"peft.{k}={v}" for k, v in LORA.items()]
            overrides += ["peft.method=lora", f"peft.target_modules=[{','.join(targets)}]"]
        result = engine.train(engine.plan(engine.compose("nlp/char-gpt", overrides=overrides)))
        summary = result.summary
    info = (summary.get("peft") or {}).get("model") or {}
    with torch.device("meta"):  # the full model's parameter count, allocating nothing
        total = sum(p.numel() for p in engine.create("model", "nlp.gpt", **shape_of(size)).parameters())
    total = info.get("total_params") or total
    seconds = summary.get("wall_time_s") or summary.get("train_time_s") or 0.0
    return {"trainable": info.get("trainable_params", total), "total": total, "s_per_step": seconds / max(steps, 1)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size", choices=sorted(SIZES), default="gpt2-small")
    parser.add_argument("--steps", type=int, default=3, help="training steps per process (peak memory at 2)")
    parser.add_argument("--targets", nargs="+", default=["qkv", "proj", "fc", "out"], help="peft.target_modules")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        where, mode = args.child.split("-")
        row = (reference if where == "ref" else through_engine)(mode, args.size, args.steps, args.targets)
        print(json.dumps({"mode": args.child, "peak_rss_gib": _peak_gib(), **row}))
        return
    rows = {}
    for mode in ("ref-full", "ref-lora", "engine-full", "engine-lora"):
        cmd = [sys.executable, __file__, "--child", mode, "--size", args.size, "--steps", str(args.steps)]
        out = subprocess.run([*cmd, "--targets", *args.targets], capture_output=True, text=True, check=False)
        if out.returncode != 0:
            sys.exit(f"{mode} failed:\n{out.stderr[-2000:]}")
        rows[mode] = json.loads(out.stdout.strip().splitlines()[-1])
    threads = os.environ.get("OMP_NUM_THREADS", "default")
    print(
        f"$ {' '.join(sys.argv)}   (OMP_NUM_THREADS={threads}, MALLOC_MMAP_THRESHOLD_="
        f"{os.environ.get('MALLOC_MMAP_THRESHOLD_', 'unset')})"
    )
    lora = f"LoRA r={LORA['r']} alpha={LORA['alpha']} dropout={LORA['dropout']}"
    print(f"nlp.gpt {args.size}, {args.steps} steps, {lora} on {' '.join(args.targets)}")
    print(f"{'mode':<12} {'trainable':>13} {'total':>13} {'share':>8} {'peak RSS GiB':>13} {'s/step':>8}")
    for mode, row in rows.items():
        share = 100 * row["trainable"] / max(row["total"], 1)
        print(
            f"{mode:<12} {row['trainable']:>13,} {row['total']:>13,} {share:>7.2f}% "
            f"{row['peak_rss_gib']:>13.3f} {row['s_per_step']:>8.2f}"
        )
    for where in ("ref", "engine"):
        ratio = rows[f"{where}-lora"]["peak_rss_gib"] / rows[f"{where}-full"]["peak_rss_gib"]
        print(f"peak RSS LoRA / full ({where}): {ratio:.2f} (goal <= 0.6)")
    print(f"engine / reference: full {rows['engine-full']['peak_rss_gib'] / rows['ref-full']['peak_rss_gib']:.2f}, "
          f"LoRA {rows['engine-lora']['peak_rss_gib'] / rows['ref-lora']['peak_rss_gib']:.2f}  (machine shared: "
          "s/step inflated)")  # fmt: skip


if __name__ == "__main__":
    main()
