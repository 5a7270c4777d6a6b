"""Quality figures of the GAN recipes: `gan/ring8` over seeds, `gan/digits` with a classifier score.

    .venv/bin/python plugins/gan/bench/gan_table.py                      # ring8, seeds 0 1 2
    .venv/bin/python plugins/gan/bench/gan_table.py --digits --classifier runs/digits-clf
    .venv/bin/python plugins/gan/bench/gan_table.py --digits --train-classifier   # trains a vision.cnn first

Each run goes through `engine.train(engine.plan(engine.compose(...)))`, exactly like `engine run gan/ring8 seed=S`; the
figures are the test-split metrics of the best checkpoint (fresh evaluation noise).
Targets (issue 9): ring8 8/8 modes and >= 90% high-quality samples on every seed;
digits 10/10 classes and mean classifier confidence >= 0.9.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import Any


def _run(recipe: str | None, overrides: list[str]) -> tuple[dict[str, Any], float, Path]:
    import engine

    plan = engine.plan(engine.compose(recipe, overrides=[*overrides, "trainer.enable_progress_bar=false"]))
    started = time.time()
    result = engine.train(plan)
    return result.summary["metrics"], time.time() - started, result.run_dir


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", type=int, nargs="*", default=[0, 1, 2], help="ring8 seeds (default: 0 1 2)")
    parser.add_argument("--digits", action="store_true", help="also train gan/digits")
    parser.add_argument("--classifier", default=None, help="run directory of a digits classifier")
    parser.add_argument("--train-classifier", action="store_true", help="train a vision.cnn digits classifier first")
    parser.add_argument("--run-dir", default="runs/bench-gan", help="where the runs go (default: runs/bench-gan)")
    parser.add_argument("--threads", type=int, default=1, help="torch intra-op threads (default: 1)")
    parser.add_argument("extra", nargs="*", help="extra key=value overrides for every GAN run")
    args = parser.parse_args()

    import torch

    torch.set_num_threads(args.threads)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    rows = []
    for seed in args.seeds:
        m, wall, run_dir = _run(
            "gan/ring8", [f"seed={seed}", f"run.dir={args.run_dir}", f"run.name=ring8-s{seed}-{stamp}", *args.extra]
        )
        rows.append((seed, m["test/modes"], m["test/hq"], m["val/modes"], m["val/hq"], wall, run_dir))
    if rows:
        print("\ngan/ring8 (test split of the best checkpoint, 2500 samples; target 8/8 modes, HQ >= 90%)")
        print(f"{'seed':>4} | {'modes':>5} | {'HQ %':>6} | {'val modes':>9} | {'val HQ %':>8} | {'wall s':>6} | run")
        for seed, modes, hq, vmodes, vhq, wall, run_dir in rows:
            print(
                f"{seed:>4} | {modes:>3.0f}/8 | {100 * hq:>6.1f} | {vmodes:>7.0f}/8 | {100 * vhq:>8.1f} | "
                f"{wall:>6.0f} | {run_dir}"
            )
        ok = all(r[1] == 8 and r[2] >= 0.9 for r in rows)
        print(f"target met on every seed: {ok}")

    if args.digits:
        classifier = args.classifier
        if args.train_classifier:
            m, wall, run_dir = _run(
                None,
                [
                    "model=vision.cnn",
                    "data=vision.digits",
                    "data.augment.rotate=10",
                    "data.augment.shift=0.1",
                    "optimizer=adamw",
                    "optimizer.lr=0.003",
                    "trainer.max_epochs=25",
                    f"run.dir={args.run_dir}",
                    f"run.name=digits-classifier-{stamp}",
                ],
            )
            classifier = str(run_dir)
            print(f"classifier: test accuracy {m['test/accuracy']:.4f} ({wall:.0f} s) -> {run_dir}")
        if classifier is None:
            parser.error("--digits needs --classifier RUN or --train-classifier")
        m, wall, run_dir = _run(
            "gan/digits",
            [f"task.classifier_run={classifier}", f"run.dir={args.run_dir}", f"run.name=digits-{stamp}", *args.extra],
        )
        print("\ngan/digits (test split of the best checkpoint; target 10/10 classes, confidence >= 0.9)")
        print(f"{'split':>5} | {'coverage':>8} | {'confidence':>10} | {'MMD':>7} | {'wall s':>6} | run")
        for split in ("val", "test"):
            print(
                f"{split:>5} | {m[f'{split}/class_coverage']:>5.0f}/10 | {m[f'{split}/confidence']:>10.3f} | "
                f"{m[f'{split}/mmd']:>7.4f} | {wall:>6.0f} | {run_dir}"
            )
        ok = m["test/class_coverage"] == 10 and m["test/confidence"] >= 0.9
        print(f"target met: {ok}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
