"""Does a language-model recipe beat a compressor? Test bits/char over seeds beside xz -9e, zstd -19 and the bigram.

    OMP_NUM_THREADS=1 MKL_NUM_THREADS=1 .venv/bin/python plugins/nlp/bench/char_lm_vs_compressors.py \\
        [--recipe nlp/bpe-gpt] [--seeds 0 1 2] [--threads 1] [--set K=V ...] [--out DIR] [--runs RUN_DIR ...]

Each seed is ``engine run RECIPE seed=S`` (default ``nlp/bpe-gpt``, the recipe that beats the compressors; plus
``--set``), trained in this process; ``--runs`` tabulates finished runs instead. Per seed: the run's
``test/bits_per_char`` (its loss over the test split's tokens, per character of the split's text; the recipe's
sliding-window evaluation) beside the compressors on the same text compressed alone (``test/xz_bits_per_char``,
``test/zstd_bits_per_char``, what the recipe's targets compare), the best add-alpha bigram counted on the train
split, and the same figures on an **unseen text** (default: the GPL-3 licence text, which is not Python source):
the model scores it in windows of its context every ``context / 4`` tokens (characters its vocabulary lacks are
``<unk>``, counted; none for BPE), the compressors compress it alone. Bits per character are always the loss over
the text's tokens, in bits, divided by its characters, whatever the tokenizer. Wall time is the run's (training +
evaluation), under the thread count given; on a shared machine it is inflated, so the steps and training tokens
(steps x batch x context) are printed too.
"""

from __future__ import annotations

import argparse
import math
import platform
import sys
import tempfile
import warnings
from pathlib import Path
from typing import Any

QUIET = ["trainer.enable_progress_bar=false", "trainer.enable_model_summary=false"]


def unseen_figures(run_dir: Path, text: str, dynamic_lr: float | None) -> dict[str, float]:
    """The run's bits/char on ``text`` (sliding windows, stride context/4; and dynamic evaluation at the run's
    learning rate, chosen on its validation text) and the compressors'."""
    import torch
    from engine_nlp.baselines import compressed_bits_per_char
    from engine_nlp.dynamic import dynamic_loss
    from engine_nlp.perplexity import perplexity
    from engine_nlp.tokenizer import TextTokenizer

    from engine.runs import open_run

    run = open_run(run_dir)
    tok = TextTokenizer.load(run_dir / "tokenizer.json")
    ids = tok.encode(text)
    model = run.model("best").eval()
    context = int(model.context_length)
    scored = perplexity(model, ids, context, stride=max(1, context // 4))
    comp = compressed_bits_per_char(text)
    per_char = len(ids) / math.log(2) / len(text)  # nats per token -> bits per character
    dynamic = dynamic_loss(model, torch.tensor(ids), context, max(1, context // 4), dynamic_lr) if dynamic_lr else None
    return {
        "model": scored["loss"] * per_char,
        "dynamic": math.nan if dynamic is None else dynamic * per_char,
        "xz": comp["xz -9e"],
        "zstd": comp["zstd -19"],
        "unknown": len(tok.unknown_chars(text)),
    }


def bigram_bits_per_char(run_dir: Path) -> float:
    from engine_nlp.baselines import best_bigram_loss

    from engine.runs import open_run

    dm = open_run(run_dir).datamodule()
    ids, facts = dm.source.ids, dm.facts
    loss, _ = best_bigram_loss(ids["train"], ids["test"], int(facts["vocab_size"]))
    return loss / math.log(2) * len(ids["test"]) / facts["characters"]["test"]


def row(run_dir: Path, unseen: str, targets: list[Any]) -> dict[str, Any]:
    from engine.runs import open_run

    run = open_run(run_dir)
    m = run.summary["metrics"]
    return {
        "seed": run.summary.get("seed"),
        "steps": run.config["trainer"]["max_steps"],
        "tokens": run.config["trainer"]["max_steps"]
        * run.config["data"]["batch_size"]
        * run.config["data"]["context_length"],
        "tokenizer": run.facts.get("tokenizer", "?"),
        "model": m["test/bits_per_char"],
        "dynamic": m.get("test/dynamic_bits_per_char", math.nan),
        "val": m["val/bits_per_char"],
        "xz": m["test/xz_bits_per_char"],
        "zstd": m["test/zstd_bits_per_char"],
        "bigram": bigram_bits_per_char(run_dir),
        "unseen": unseen_figures(run_dir, unseen, m.get("test/dynamic_lr")),
        "wall": float(run.summary.get("wall_time_s", math.nan)),
        "held": all(t.check(m)[0] for t in targets),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--recipe", default="nlp/bpe-gpt")
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--threads", type=int, default=1, help="torch threads (default 1: the machine is shared)")
    ap.add_argument("--set", nargs="*", default=[], metavar="K=V", help="extra overrides for every run")
    ap.add_argument("--unseen", default="/usr/share/common-licenses/GPL-3", help="a text the model never saw")
    ap.add_argument("--out", default=None, help="keep the runs here (default: a temporary directory)")
    ap.add_argument("--runs", nargs="+", default=None, metavar="RUN_DIR", help="tabulate these finished runs")
    args = ap.parse_args()
    warnings.filterwarnings("ignore")

    import torch

    import engine
    from engine.console import QUIET as QUIET_LOGS
    from engine.console import set_verbosity
    from engine.testing import parse_targets

    torch.set_num_threads(args.threads)
    set_verbosity(QUIET_LOGS)
    unseen = Path(args.unseen).read_text(encoding="utf-8")
    recipe = {r.qualified_name: r for r in engine.get_registry().list("recipe")}[args.recipe]
    targets = parse_targets(recipe.targets, args.recipe)
    root = Path(args.out or (tempfile.mkdtemp(prefix="charlm-") if not args.runs else "."))
    rows: list[dict[str, Any]] = []
    for seed in args.seeds if not args.runs else ():
        overrides = [f"seed={seed}", f"run.dir={root}", f"run.name=seed{seed}", *QUIET, *args.set]
        result = engine.train(engine.plan(engine.compose(args.recipe, overrides=overrides)))
        rows.append(row(result.run_dir, unseen, targets))
        print(f"seed {seed}: {rows[-1]['model']:.3f} bits/char, {rows[-1]['wall']:.0f} s", file=sys.stderr, flush=True)
    for run_dir in args.runs or ():
        rows.append(row(Path(run_dir), unseen, targets))
    print(f"$ OMP_NUM_THREADS={args.threads} MKL_NUM_THREADS={args.threads} .venv/bin/python {' '.join(sys.argv)}")
    print(f"{args.recipe}, {platform.processor() or platform.machine()}, {args.threads} thread(s), machine shared")
    print(f"targets: {'; '.join(map(str, targets))}; unseen text: {args.unseen} ({len(unseen)} characters)")
    print(
        f"{'seed':>4} {'tok.':>4} {'steps':>6} {'tokens':>7} {'val':>6} {'test':>6} {'dyn.':>6} {'bigram':>7} "
        f"{'xz -9e':>7} {'zstd-19':>7}  "
        f"{'unseen':>6} {'dyn.':>6} {'xz':>6} {'zstd':>6} {'unk':>4} {'wall s':>7}  targets"
    )
    for r in rows:
        u = r["unseen"]
        print(
            f"{r['seed']:>4} {r['tokenizer']:>4} {r['steps']:>6} {r['tokens'] / 1e6:>6.2f}M {r['val']:>6.3f} "
            f"{r['model']:>6.3f} {r['dynamic']:>6.3f} "
            f"{r['bigram']:>7.3f} {r['xz']:>7.3f} {r['zstd']:>7.3f}  {u['model']:>6.3f} {u['dynamic']:>6.3f} "
            f"{u['xz']:>6.3f} {u['zstd']:>6.3f} {u['unknown']:>4} {r['wall']:>7.0f}  "
            f"{'held' if r['held'] else 'MISSED'}"
        )
    worst = max(rows, key=lambda r: r["model"])
    print(
        f"worst test bits/char {worst['model']:.3f} (seed {worst['seed']}) vs xz -9e {worst['xz']:.3f}: "
        f"{'beats' if worst['model'] < worst['xz'] else 'does not beat'} it by {worst['xz'] - worst['model']:+.3f}"
    )
    print(f"runs in {root}" if not args.runs else f"runs: {' '.join(args.runs)}")


if __name__ == "__main__":
    main()
