"""Training techniques of engine-techniques on vision digits: fine-tuning, distillation, pruning (issue 11 targets).

    .venv/bin/python plugins/techniques/bench/techniques.py [--epochs 30] [--threads 1] [--out runs/bench-techniques]

Needs engine-vision (its `vision/digits` recipe) besides this plugin.

Every run is a real `engine run` of the `vision/digits` recipe (small CNN, augmentation; here
without the 2x upsampling and with --epochs, to fit a shared CPU) on one fixed stratified split
(data.seed=0; test = 20 %), varying what each technique needs:

- fine-tuning: pre-train on digits 0-4, then train on few images of digits 5-9 (10 %, ~90, two
  batches an epoch) for small budgets (--ft-epochs: 5 and 10 epochs) from scratch and from the
  pre-trained weights (head re-initialised: model.init_skip=[head.*]), over 3 seeds; print both;
- distillation: the seed-0 run teaches a 4x narrower CNN (task=distill); the same student
  trained from labels alone is printed beside it;
- pruning: the seed-0 config with prune.amount=0.5 (global L1, cubic schedule, fine-tuning after).

(Ensembling, `engine evaluate --ensemble`, is measured by the plugin that provides it.)

Prints one table (figure, target, met?) and the wall time of each run.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import Any


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--epochs", type=int, default=20, help="epochs of the full runs (recipe: 40)")
    parser.add_argument(
        "--upsample", type=int, default=1, help="model.upsample of every CNN (recipe: 2; 1 is 4x cheaper on CPU)"
    )
    parser.add_argument(
        "--ft-epochs", type=int, nargs="+", default=[5, 10], help="the small budgets of the fine-tuning comparison"
    )
    parser.add_argument(
        "--ft-val-fraction",
        type=float,
        default=0.7,
        help="data.val_fraction of the 5-9 runs: 0.7 leaves 10 %% of the images (~90) for training; "
        "the test split (20 %%) is the same whatever this is",
    )
    parser.add_argument("--student-width", type=int, default=12, help="width of the distilled CNN (teacher: 32)")
    parser.add_argument("--threads", type=int, default=1, help="torch intra-op threads")
    parser.add_argument("--ft-seeds", type=int, nargs="+", default=[0, 1, 2], help="seeds of the fine-tuning runs")
    parser.add_argument(
        "--parts",
        nargs="+",
        default=["pruning", "distill", "finetune"],
        choices=["pruning", "distill", "finetune"],
        help="which targets to measure (default: all)",
    )
    parser.add_argument("--out", default="runs/bench-techniques", help="where the runs are written (kept)")
    args = parser.parse_args()

    import warnings

    import torch

    import engine

    warnings.filterwarnings("ignore")
    torch.set_num_threads(args.threads)
    out = Path(args.out)
    stamp = time.strftime("%H%M%S")
    walls: list[tuple[str, float]] = []
    dirs: list[tuple[str, str]] = []

    def train(name: str, *overrides: str) -> dict[str, Any]:
        base = [
            f"run.dir={out}",
            f"run.name={name}-{stamp}",
            "data.seed=0",
            f"trainer.max_epochs={args.epochs}",
            f"model.upsample={args.upsample}",
            "trainer.enable_progress_bar=false",
            "trainer.log_every_n_steps=5",
        ]
        result = engine.train(engine.plan(engine.compose("vision/digits", overrides=[*base, *overrides])))
        wall = float(result.summary["wall_time_s"])
        walls.append((name, wall))
        dirs.append((name, str(result.run_dir)))
        acc = float(result.summary["metrics"]["test/accuracy"])
        print(f"  {name:<22} test accuracy {acc:.4f}  ({wall:.1f} s)", flush=True)
        return {"dir": str(result.run_dir), "acc": acc, "summary": result.summary}

    def params(run_dir: str) -> int:
        return sum(p.numel() for p in engine.open_run(run_dir).model().parameters())

    rows: list[tuple[str, str, str, bool]] = []
    started = time.time()

    # --- seed 0: the teacher and the dense reference of pruning
    seed0: dict[str, Any] = {}
    if {"pruning", "distill"} & set(args.parts):
        print("seed-0 run (teacher, dense reference)", flush=True)
        seed0 = train("seed0", "seed=0")

    if "pruning" in args.parts:
        print("pruning", flush=True)
        pruned = train("pruned50", "seed=0", "prune.amount=0.5")
        sparsity = pruned["summary"]["pruning"]["sparsity"]
        loss_pp = (seed0["acc"] - pruned["acc"]) * 100
        rows.append(
            (
                "50 % magnitude pruning",
                f"dense {seed0['acc']:.4f} -> pruned {pruned['acc']:.4f} (sparsity {sparsity:.3f}); "
                f"loss {loss_pp:+.2f} pp",
                "<= 0.5 pp lost",
                loss_pp <= 0.5,
            )
        )

    if "distill" in args.parts:
        print("distillation", flush=True)
        teacher = seed0
        width = f"model.width={args.student_width}"
        student = train("student-distilled", "seed=0", "task=distill", f"task.teacher={teacher['dir']}", width)
        alone = train("student-labels-only", "seed=0", width)
        tp, sp = params(teacher["dir"]), params(student["dir"])
        rows.append(
            (
                "distilled student",
                f"teacher {teacher['acc']:.4f} ({tp:,} params) -> student {student['acc']:.4f} ({sp:,} params, "
                f"{sp / tp:.3f}x); same student from labels only {alone['acc']:.4f}",
                ">= 0.98 acc, <= 1/4 params",
                student["acc"] >= 0.98 and sp <= tp / 4,
            )
        )

    # --- fine-tuning: 0-4 -> 5-9 with small budgets, over --ft-seeds seeds (same split)
    if "finetune" in args.parts:
        print("fine-tuning", flush=True)
        pre = train("pretrain-0to4", "seed=0", "data.classes=[0,1,2,3,4]")
        init = [f"model.init_from={pre['dir']}", "model.init_skip=[head.*]"]
        for epochs in args.ft_epochs:
            small = [
                f"trainer.max_epochs={epochs}",
                "data.classes=[5,6,7,8,9]",
                f"data.val_fraction={args.ft_val_fraction}",
            ]
            scratch, tuned = [], []
            for seed in args.ft_seeds:
                scratch.append(train(f"scratch-5to9-e{epochs}-s{seed}", *small, f"seed={seed}")["acc"])
                tuned.append(train(f"finetuned-5to9-e{epochs}-s{seed}", *small, f"seed={seed}", *init)["acc"])
            ms, mt = sum(scratch) / len(scratch), sum(tuned) / len(tuned)
            rows.append(
                (
                    f"fine-tune 0-4 -> 5-9, {epochs} epochs",
                    f"mean of seeds {args.ft_seeds}: scratch {ms:.4f} ({' / '.join(f'{a:.4f}' for a in scratch)}); "
                    f"fine-tuned {mt:.4f} ({' / '.join(f'{a:.4f}' for a in tuned)}); "
                    f"pre-trained on 0-4: {pre['acc']:.4f}",
                    "fine-tuned > scratch",
                    mt > ms,
                )
            )

    total = time.time() - started
    print()
    print(
        f"vision/digits recipe, model.upsample={args.upsample}, {args.epochs} epochs per full run, "
        f"torch threads {args.threads}, runs in {out}"
    )
    width = max(len(r[0]) for r in rows)
    print(f"{'technique':<{width}}  {'target':<27}  {'met':<3}  figures")
    for name, figures, target, met in rows:
        print(f"{name:<{width}}  {target:<27}  {'yes' if met else 'NO':<3}  {figures}")
    print()
    print("wall time per run: " + ", ".join(f"{n} {w:.0f} s" for n, w in walls) + f"; total {total:.0f} s")
    shown = [d for n, d in dirs if n in ("seed0", "pruned50", "student-distilled") or n.endswith("e5-s0")]
    print(f"curves: engine report {' '.join(shown)}")


if __name__ == "__main__":
    main()
