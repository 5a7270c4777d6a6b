"""Perplexity and generation tokens/s of a GPT in fp32, bf16 and int8 weight-only (torchao), side by side.

Trains a character GPT (or uses --run), deploys it with the deploy plugin's ``int8-weight`` target, then measures
on the run's held-out text: perplexity (``engine_nlp.perplexity``) and greedy generation tokens/s at batch 1 and
8 (KV cache, ``LanguageModelingTask.generate``), for the float model, the model cast to bf16, and the int8 one.
Goal of issue 36: int8 >= 1.3x fp32 tokens/s with perplexity within +2 %.

    .venv/bin/python plugins/nlp/bench/quantised.py --tiny            # seconds: proves the script works
    .venv/bin/python plugins/nlp/bench/quantised.py --run runs/char-gpt --new-tokens 128
    OMP_NUM_THREADS=1 .venv/bin/python plugins/nlp/bench/quantised.py --tiny --real-size   # + GPT-2-small shape

Every variant is also measured with torchao's int8 dynamic activations + int8 weights
(``Int8DynamicActivationInt8WeightConfig``). ``--real-size`` adds tokens/s at GPT-2 small's shape (124 M
parameters, random init, context 256, vocabulary 50,257: speed does not depend on the weights' values; perplexity
comes from the trained model above). All ratios are measured side by side in one process; on a shared machine
the absolute tokens/s are inflated, the ratios less so.
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


def _torchao(model: torch.nn.Module, dynamic: bool) -> torch.nn.Module:
    """A copy of ``model`` with torchao int8 Linear layers: weight-only, or dynamic int8 activations too."""
    import torchao.quantization as q

    net = copy.deepcopy(model).eval()
    config = q.Int8DynamicActivationInt8WeightConfig() if dynamic else q.Int8WeightOnlyConfig()
    q.quantize_(net, config)
    return net


def _own_rate(net: torch.nn.Module, batch: int, prompt: int, new_tokens: int) -> float:
    """Greedy generation tokens/s with the model's own KV-cache loop (``nlp.gpt``'s ``generate``)."""
    idx = torch.randint(0, 1000, (batch, prompt), generator=torch.Generator().manual_seed(0))
    with torch.inference_mode():
        net.generate(idx, 2, top_k=1)  # warm-up
        t = time.perf_counter()
        net.generate(idx, new_tokens, top_k=1)
    return batch * new_tokens / (time.perf_counter() - t)


def real_size(new_tokens: int) -> None:
    """tokens/s at GPT-2 small's shape, fp32 / bf16 / int8 weight-only / int8 dynamic, batch 1 and 8."""
    import engine

    torch.manual_seed(0)
    shape = {"vocab_size": 50257, "context_length": 256, "n_layer": 12, "n_head": 12, "d_model": 768}
    model = engine.create("model", "nlp.gpt", **shape).eval()
    print(f"\nnlp.gpt at GPT-2 small's shape (124 M, random init), {new_tokens} new tokens after 16, greedy")
    print(f"{'variant':<30}{'tok/s b1':>11}{'tok/s b8':>11}{'b1 vs fp32':>12}{'b8 vs fp32':>12}")
    base: dict[str, float] = {}
    variants = [("fp32", lambda: model), ("bf16 (weights)", lambda: copy.deepcopy(model).to(torch.bfloat16))]
    variants += [("int8 weight-only (torchao)", lambda: _torchao(model, False))]
    variants += [("int8 dyn act + int8 w (torchao)", lambda: _torchao(model, True))]
    for name, make in variants:
        net = make()
        b1, b8 = _own_rate(net, 1, 16, new_tokens), _own_rate(net, 8, 16, new_tokens)
        base = base or {"b1": b1, "b8": b8}
        print(f"{name:<30}{b1:>11.1f}{b8:>11.1f}{b1 / base['b1']:>11.2f}x{b8 / base['b8']:>11.2f}x")
        del net


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--run", default=None, help="a trained nlp.gpt run (default: train one)")
    p.add_argument("--tiny", action="store_true", help="a tiny model and short measures (checks the script)")
    p.add_argument("--new-tokens", type=int, default=None, help="tokens generated per prompt (default 64; tiny 16)")
    p.add_argument("--real-size", action="store_true", help="also tokens/s at GPT-2 small's shape (124 M)")
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
    dynamic = _torchao(model, True)
    variants = [("fp32", model), ("bf16 (weights)", bf16), ("int8 weight-only", int8), ("int8 dynamic", dynamic)]
    for name, net in variants:
        ppl = perplexity(lambda x, net=net: net(x).float(), ids, model.context_length)["perplexity"]
        b1 = _rate(task, net, [prompt], new)
        b8 = _rate(task, net, [prompt] * 8, new)
        base = base or {"ppl": ppl, "b1": b1}
        print(f"{name:<22}{ppl:>12.4f}{ppl / base['ppl'] - 1:>+9.2%}{b1:>11.1f}{b8:>11.1f}{b1 / base['b1']:>11.2f}x")
    if args.real_size:
        real_size(args.new_tokens or (16 if args.tiny else 32))


if __name__ == "__main__":
    main()
