"""Train the ``nlp/classify`` recipe (and optionally the LSTM on the same data); print test accuracy vs majority.

.venv/bin/python plugins/nlp/bench/classify_table.py [--lstm] [--epochs N]
"""

from __future__ import annotations

import argparse
import tempfile
import time
import warnings

import torch


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--epochs", type=int, default=None, help="override trainer.max_epochs")
    p.add_argument("--lstm", action="store_true", help="also train nlp.lstm_classifier on the same data")
    p.add_argument("--out", default=None, help="run directory root (default: a temporary directory)")
    args = p.parse_args()
    warnings.filterwarnings("ignore")

    from engine_nlp.baselines import majority_accuracy

    import engine

    root = args.out or tempfile.mkdtemp(prefix="nlp-classify-")
    quiet = ["trainer.enable_progress_bar=false", "trainer.enable_model_summary=false", f"run.dir={root}"]
    if args.epochs:
        quiet.append(f"trainer.max_epochs={args.epochs}")
    variants = [("transformer_classifier (recipe)", [])]
    if args.lstm:
        variants.append(("lstm_classifier", ["model=nlp.lstm_classifier"]))
    rows = []
    majority = None
    for label, extra in variants:
        plan = engine.plan(engine.compose("nlp/classify", overrides=[*extra, *quiet]))
        t = time.time()
        result = engine.train(plan)
        wall = time.time() - t
        if majority is None:
            dm = engine.open_run(result.run_dir).datamodule()  # the run's data, as it was trained
            splits = dm.splits
            train = torch.stack([splits["train"][i][1] for i in range(len(splits["train"]))])
            test = torch.stack([splits["test"][i][1] for i in range(len(splits["test"]))])
            majority = majority_accuracy(train, test)
            names = dm.facts["class_names"]
            counts = torch.bincount(train, minlength=len(names)).tolist()
            print("classes (train counts):", ", ".join(f"{n} {c}" for n, c in zip(names, counts, strict=True)))
            print(f"samples: train {len(train)}, val {len(splits['val'])}, test {len(test)}")
        m = result.summary["metrics"]
        rows.append((label, m["test/accuracy"], m["test/f1"], wall, result.run_dir))
    print(f"\n{'model':<34}{'test acc':>10}{'macro F1':>10}{'wall s':>9}  run")
    for label, acc, f1, wall, path in rows:
        print(f"{label:<34}{acc:>10.4f}{f1:>10.4f}{wall:>9.1f}  {path}")
    print(f"{'majority-class baseline':<34}{majority:>10.4f}")


if __name__ == "__main__":
    main()
