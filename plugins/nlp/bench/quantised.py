"""Perplexity and generation tokens/s of a GPT in fp32, bf16 and int8 weight-only (torchao), side by side.

Trains a character GPT (or uses --run), deploys it with the deploy plugin's ``int8-weight`` target, then measures
on the run's held-out text: perplexity (``engine_nlp.perplexity``) and greedy generation tokens/s at batch 1 and
8 (KV cache, ``LanguageModelingTask.generate``), for the float model, the model cast to bf16, and the int8 one.
Goal of issue 36: int8 >= 1.3x fp32 tokens/s with perplexity within +2 %.

    .venv/bin/python plugins/nlp/bench/quantised.py --tiny            # seconds: proves the script works
    .venv/bin/python plugins/nlp/bench/quantised.py --run runs/char-gpt --new-tokens 128
"""

from __future__ import annotations

import argparse
import copy
import tempfile
import time
import warnings
from pathlib import Path

import torch


def _train(tiny: bool, root: str) -> Path:
    import engine

    size = ["model.n_layer=1", "model.d_model=64", "model.n_head=2"] if tiny else []
    steps = "trainer.max_steps=60" if tiny else "trainer.max_steps=600"
    overrides = [
        *size,
        steps,
        "trainer.val_check_interval=60" if tiny else "trainer.val_check_interval=200",
        "data.max_chars=60000" if tiny else "data.max_chars=400000",
        "trainer.enable_progress_bar=false",
        "trainer.enable_model_summary=false",
        f"run.dir={root}",
        "run.name=gpt",
    ]
    return engine.train(engine.plan(engine.compose("nlp/char-gpt", overrides=overrides))).run_dir


def _rate(task: object, network: object, prompts: list[list[int]], new_tokens: int) -> float:
    task.generate(network, prompts, max_new_tokens=2, temperature=0)  # warm-up
    t = time.perf_counter()
    task.generate(network, prompts, max_new_tokens=new_tokens, temperature=0)
    return len(prompts) * new_tokens / (time.perf_counter() - t)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--run", default=None, help="a trained nlp.gpt run (default: train one)")
    p.add_argument("--tiny", action="store_true", help="a tiny model and short measures (checks the script)")
    p.add_argument("--new-tokens", type=int, default=None, help="tokens generated per prompt (default 64; tiny 16)")
    p.add_argument("--eval-tokens", type=int, default=None, help="held-out tokens scored (default 20000; tiny 2000)")
    args = p.parse_args()
    warnings.filterwarnings("ignore")
    from engine_deploy.deploy import deploy
    from engine_deploy.weight_int8 import load_int8_weight
    from engine_nlp.perplexity import perplexity

    import engine

    root = tempfile.mkdtemp(prefix="nlp-quantised-")
    run_dir = Path(args.run) if args.run else _train(args.tiny, root)
    run = engine.open_run(run_dir)
    task = run.task()
    model = task.model.eval()
    source = run.datamodule().source
    ids = source.ids.get("test", source.ids["val"]).tolist()[: args.eval_tokens or (2000 if args.tiny else 20000)]
    new = args.new_tokens or (16 if args.tiny else 64)
    out = Path(root) / "int8"
    deploy(run_dir, "int8-weight", out=out, timing=False)
    int8 = load_int8_weight(out)
    bf16 = copy.deepcopy(model).to(torch.bfloat16)
    prompt = ids[:16]
    print(f"run {run_dir}  threads {torch.get_num_threads()}  cpu {torch.backends.cpu.get_cpu_capability()}")
    print(f"{'variant':<22}{'perplexity':>12}{'vs fp32':>9}{'tok/s b1':>11}{'tok/s b8':>11}{'b1 vs fp32':>12}")
    base: dict[str, float] = {}
    for name, net in (("fp32", model), ("bf16 (weights)", bf16), ("int8 weight-only", int8)):
        ppl = perplexity(lambda x, net=net: net(x).float(), ids, model.context_length)["perplexity"]
        b1 = _rate(task, net, [prompt], new)
        b8 = _rate(task, net, [prompt] * 8, new)
        base = base or {"ppl": ppl, "b1": b1}
        print(f"{name:<22}{ppl:>12.4f}{ppl / base['ppl'] - 1:>+9.2%}{b1:>11.1f}{b8:>11.1f}{b1 / base['b1']:>11.2f}x")


if __name__ == "__main__":
    main()
