"""DP-SGD on the 8x8 digits: test accuracy at epsilon ~ 1, 3 and 8 against the same run without privacy,
and the epsilon the engine reports checked against Opacus' accountant computed directly.

Every run is the same config (``vision.cnn`` with GroupNorm, AdamW, the seed's split) except for the
``privacy`` section: ``privacy.target_epsilon=E`` (delta = 1/N, the engine's default) for each E, none for
the non-private reference. For each private run the epsilon in ``summary.json`` is recomputed with a fresh
Opacus accountant of the same kind (``history = [(noise, sample_rate, steps)]``) from the noise multiplier
the run chose, the optimizer steps the trainer took, and the sample rate ``1 / ceil(N / batch_size)`` and
delta ``1 / N`` of Opacus' Poisson sampling recomputed from the data split: the two must agree to 1e-6
(relative), and the spent epsilon must not exceed the target by more than Opacus' search tolerance (0.01).

    .venv/bin/python plugins/privacy/bench/dp_digits.py                 # the measurement: 3 seeds, 30 epochs
    .venv/bin/python plugins/privacy/bench/dp_digits.py --quick         # smallest settings (1 seed, 2 epochs)
    .venv/bin/python plugins/privacy/bench/dp_digits.py --seeds 0 --epsilons 3 -- trainer.max_epochs=10

Prints one row per run, then per setting the mean test accuracy over the seeds and the epsilon check.
"""

from __future__ import annotations

import argparse
import math
import statistics
import tempfile
import time
from typing import Any

BASE = [
    "model=vision.cnn",
    "model.norm=group",
    "model.width=16",
    "model.stages=2",
    "model.dropout=0.0",
    "data=vision.digits",
    "data.batch_size=128",
    "optimizer=adamw",
    "optimizer.lr=0.003",
    "optimizer.weight_decay=0.0",
    "privacy.max_grad_norm=1.0",
    "trainer.enable_progress_bar=false",
    "trainer.enable_model_summary=false",
]


def train_size(seed: int) -> int:
    """Training samples of the digits split of ``seed``, from the data source itself (not from the run)."""
    from engine_vision.data import Digits

    return len(Digits(seed=seed).index["train"])


def direct_epsilon(accountant: str, noise: float, sample_rate: float, steps: int, delta: float) -> float:
    """A fresh Opacus accountant of the run's kind, fed ``steps`` steps of ``noise`` at ``sample_rate``."""
    from opacus.accountants import create_accountant

    fresh = create_accountant(mechanism=accountant)
    fresh.history = [(noise, sample_rate, steps)]
    return float(fresh.get_epsilon(delta=delta))


def one_run(root: str, name: str, overrides: list[str]) -> tuple[dict[str, Any], dict[str, Any]]:
    """The run's summary and its resolved config."""
    import engine

    plan = engine.plan(engine.compose(overrides=[*overrides, f"run.dir={root}", f"run.name={name}"]))
    return engine.train(plan).summary, plan.config


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--epsilons", type=float, nargs="+", default=[1.0, 3.0, 8.0])
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--accountant", default="prv", choices=["prv", "rdp", "gdp"])
    parser.add_argument(
        "--threads", type=int, default=0, help="torch intra-op threads (default 0: torch's own count, as a user's run)"
    )
    parser.add_argument("--quick", action="store_true", help="smallest settings: seed 0, 2 epochs (a smoke test)")
    parser.add_argument("overrides", nargs="*", help="extra key=value overrides for every run")
    args = parser.parse_args()
    if args.quick:
        args.seeds, args.epochs = args.seeds[:1], 2

    import warnings

    import torch

    warnings.filterwarnings("ignore")
    if args.threads > 0:
        torch.set_num_threads(args.threads)
    settings: list[tuple[str, float | None]] = [("non-private", None), *((f"eps={e:g}", e) for e in args.epsilons)]
    rows: list[dict[str, Any]] = []
    started = time.time()
    with tempfile.TemporaryDirectory(prefix="privacy-bench-") as root:
        for seed in args.seeds:
            for label, target in settings:
                overrides = [
                    *BASE,
                    f"seed={seed}",
                    f"data.seed={seed}",
                    f"trainer.max_epochs={args.epochs}",
                    *args.overrides,
                ]
                if target is None:
                    overrides = [o for o in overrides if not o.startswith("privacy.")]
                else:
                    overrides += [f"privacy.target_epsilon={target}", f"privacy.accountant={args.accountant}"]
                summary, cfg = one_run(root, f"{label}-seed{seed}", overrides)
                row = {"setting": label, "target": target, "seed": seed, "wall": summary["wall_time_s"]}
                row["accuracy"] = float(summary["metrics"]["test/accuracy"])
                privacy = summary.get("privacy")
                if privacy is not None:
                    # Independent of the run's accounting: the trainer's step count, and the sample rate and
                    # delta of Opacus' Poisson sampling recomputed from the split (q = 1 / batches per epoch).
                    n, batch = train_size(cfg["data"]["seed"]), cfg["data"]["batch_size"]
                    rate, steps, delta = 1 / math.ceil(n / batch), int(summary["global_step"]), 1 / n
                    noise = privacy["noise_multiplier"]
                    row.update(
                        epsilon=privacy["epsilon"],
                        direct=direct_epsilon(args.accountant, noise, rate, steps, delta),
                        noise=noise,
                        rate=rate,
                        steps=steps,
                        delta=delta,
                    )
                rows.append(row)
                print(_row(row), flush=True)
    print()
    took = time.time() - started
    print(f"vision.cnn (GroupNorm) on vision.digits, {args.epochs} epochs, seeds {args.seeds}, ", end="")
    print(f"accountant {args.accountant}, torch threads {torch.get_num_threads()}, {took:.0f} s in all")
    print(f"{'setting':<12}  {'test acc mean':>13}  {'std':>6}  {'epsilon':>8}  {'max |eps - opacus|':>18}  check")
    failures = 0
    for label, target in settings:
        mine = [r for r in rows if r["setting"] == label]
        accs = [r["accuracy"] for r in mine]
        std = statistics.stdev(accs) if len(accs) > 1 else 0.0
        if target is None:
            print(f"{label:<12}  {statistics.mean(accs):>13.4f}  {std:>6.4f}  {'-':>8}  {'-':>18}  -")
            continue
        diff = max(abs(r["epsilon"] - r["direct"]) for r in mine)
        ok = all(math.isclose(r["epsilon"], r["direct"], rel_tol=1e-6) and r["epsilon"] <= target + 0.01 for r in mine)
        failures += not ok
        eps = statistics.mean(r["epsilon"] for r in mine)
        verdict = "PASS" if ok else "FAIL"
        print(f"{label:<12}  {statistics.mean(accs):>13.4f}  {std:>6.4f}  {eps:>8.4f}  {diff:>18.2e}  {verdict}")
    verdict = "PASS" if not failures else "FAIL"
    print(f"epsilon check: {verdict} (the engine's epsilon = Opacus' accountant for the same steps, noise and")
    print("sample rate; spent <= target + 0.01)")


def _row(r: dict[str, Any]) -> str:
    text = f"{r['setting']:<12} seed {r['seed']}: test accuracy {r['accuracy']:.4f} in {r['wall']:.1f} s"
    if "epsilon" in r:
        text += (
            f"; epsilon {r['epsilon']:.4f} (opacus {r['direct']:.4f}), noise {r['noise']:.4f}, "
            f"sample rate {r['rate']:.4f}, {r['steps']} steps, delta {r['delta']:.2e}"
        )
    return text


if __name__ == "__main__":
    main()
