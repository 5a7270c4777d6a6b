"""Peak memory of LoRA (peft, r=8) against full fine-tuning of the same model, each in its own process (issue 36).

    .venv/bin/python plugins/techniques/bench/lora_memory.py [--size gpt2-small] [--steps 5] [--targets qkv proj fc out]
    .venv/bin/python plugins/techniques/bench/lora_memory.py --size tiny --steps 2      # a check that it runs

Each mode runs in a fresh subprocess (peak RSS is per process): build the engine's ``nlp.gpt`` at the given size,
for LoRA wrap it exactly as ``peft.*`` does (`engine_techniques.lora.adapt_model`), then train ``--steps`` steps of
AdamW (all parameters handed to the optimizer, as the engine's tasks do: frozen ones get no gradient, hence no
moments) on random tokens, and report the process's peak RSS (``ru_maxrss``), trainable / total parameters and
seconds per step. Default threads. Prints one table and the ratio LoRA / full (the issue's goal: <= 0.6).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys

SIZES = {
    # GPT-2 small's shape: 124 M parameters (tied embeddings), context 256 as measured in issue 36
    "gpt2-small": {"vocab_size": 50257, "context_length": 256, "n_layer": 12, "n_head": 12, "d_model": 768, "batch": 4},
    "tiny": {"vocab_size": 256, "context_length": 32, "n_layer": 2, "n_head": 2, "d_model": 32, "batch": 2},
}


def child(mode: str, size: str, steps: int, targets: list[str], r: int) -> dict:
    import resource
    import time

    import torch

    import engine

    shape = dict(SIZES[size])
    batch = shape.pop("batch")
    torch.manual_seed(0)
    model = engine.create("model", "nlp.gpt", **shape)
    if mode == "lora":
        from engine_techniques.lora import adapt_model

        model = adapt_model(
            model,
            {"r": r, "alpha": 2.0 * r, "dropout": 0.05, "target_modules": targets},
            "model",
            {"init_from": "bench"},
        )
    from engine_techniques.lora import count_parameters

    trainable, total = count_parameters(model)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4)
    model.train()
    ids = torch.randint(0, shape["vocab_size"], (batch, shape["context_length"] + 1))
    times = []
    for _ in range(steps):
        t0 = time.perf_counter()
        logits = model(ids[:, :-1])
        loss = torch.nn.functional.cross_entropy(logits.reshape(-1, logits.shape[-1]), ids[:, 1:].reshape(-1))
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        times.append(time.perf_counter() - t0)
    peak_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return {
        "mode": mode,
        "trainable": trainable,
        "total": total,
        "peak_rss_gib": peak_kib / 2**20,
        "s_per_step": sorted(times)[len(times) // 2],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size", choices=sorted(SIZES), default="gpt2-small")
    parser.add_argument("--steps", type=int, default=5, help="training steps per mode (peak memory is reached at 2)")
    parser.add_argument("--r", type=int, default=8, help="LoRA rank")
    parser.add_argument("--targets", nargs="+", default=["qkv", "proj", "fc", "out"], help="peft.target_modules")
    parser.add_argument("--child", choices=("lora", "full"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(child(args.child, args.size, args.steps, args.targets, args.r)))
        return
    rows = []
    for mode in ("full", "lora"):
        cmd = [sys.executable, __file__, "--child", mode, "--size", args.size, "--steps", str(args.steps)]
        cmd += ["--r", str(args.r), "--targets", *args.targets]
        out = subprocess.run(cmd, capture_output=True, text=True, check=False)
        if out.returncode != 0:
            sys.exit(f"{mode} failed:\n{out.stderr[-2000:]}")
        rows.append(json.loads(out.stdout.strip().splitlines()[-1]))
    print(f"nlp.gpt {args.size}, {args.steps} steps, LoRA r={args.r} on {' '.join(args.targets)}")
    print(f"{'mode':<6} {'trainable':>13} {'total':>13} {'share':>8} {'peak RSS GiB':>13} {'s/step':>8}")
    for row in rows:
        share = 100 * row["trainable"] / row["total"]
        print(
            f"{row['mode']:<6} {row['trainable']:>13,} {row['total']:>13,} {share:>7.2f}% "
            f"{row['peak_rss_gib']:>13.3f} {row['s_per_step']:>8.3f}"
        )
    full, lora = rows
    print(f"peak RSS LoRA / full: {lora['peak_rss_gib'] / full['peak_rss_gib']:.2f} (goal <= 0.6)")


if __name__ == "__main__":
    main()
