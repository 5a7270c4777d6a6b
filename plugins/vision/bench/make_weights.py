"""Reproduce the weights engine-vision ships for ``vision.cnn`` (``model.weights=digits``).

Trains recipe ``vision/digits`` as it is (its network: ``PARAMS`` below) on seed 0 with the engine
itself, writes the trained network's state dict (the model's own keys, best checkpoint) as
safetensors, then measures it the way a user would: ``engine run vision/digits`` loading the file
with ``trainer.max_epochs=0`` (no training), tested on the digits test split of seed 0 (360 images,
never seen in training). That is what ``engine run vision/digits model.weights=digits
trainer.max_epochs=0`` prints, the SHA-256 check aside. Another ``seed`` gives another split, whose
test images the weights may have been trained on.

    .venv/bin/python plugins/vision/bench/make_weights.py            # train, measure, compare with the shipped file
    .venv/bin/python plugins/vision/bench/make_weights.py --write    # also replace the shipped file

Prints the file's SHA-256, size and test accuracy, and whether it is byte-identical to the
shipped one. Same seed, same thread count (``--threads``, default 1) and same torch build give the
same file; another torch build or thread count can change the last bits of training, hence the
SHA-256, while the accuracy stays within a few tenths of a percent.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import shutil
import tempfile
from pathlib import Path

NAME = "digits"
RECIPE = "vision/digits"
#: The architecture the weights are for: declared as the Weights' params (filled in a run, a clash refused).
PARAMS = {"width": 32, "stages": 3, "upsample": 2, "norm": "batch"}  # the recipe's
SHIPPED = Path(__file__).resolve().parents[1] / "engine_vision" / "weights" / "cnn-digits.safetensors"


def _run(recipe: str | None, overrides: list[str]) -> dict:
    import engine

    quiet = ["trainer.enable_progress_bar=false", "trainer.enable_model_summary=false"]
    return engine.train(engine.plan(engine.compose(recipe, overrides=[*quiet, *overrides]))).summary


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=1, help="torch intra-op threads (default: 1)")
    parser.add_argument("--write", action="store_true", help=f"replace the shipped file {SHIPPED.name}")
    parser.add_argument("--out", type=Path, help="also write the file here")
    args = parser.parse_args()

    import warnings

    import torch
    from safetensors.torch import load_file, save_file

    import engine

    warnings.filterwarnings("ignore")
    torch.set_num_threads(args.threads)
    arch = [f"model.{k}={v}" for k, v in PARAMS.items()]
    with tempfile.TemporaryDirectory(prefix="vision-weights-") as tmp:
        trained = _run(RECIPE, [f"seed={args.seed}", *arch, f"run.dir={tmp}", "run.name=train"])
        state = load_file(str(Path(tmp) / "train" / trained["weights"]))
        own = {k.removeprefix("model."): v.contiguous() for k, v in sorted(state.items()) if k.startswith("model.")}
        recipe = f"{RECIPE} seed={args.seed} " + " ".join(arch)
        # One metadata entry: safetensors writes the entries of its metadata mapping in no fixed order,
        # which would change the file (and its SHA-256) from one run to the next.
        data = engine.open_run(Path(tmp) / "train").config["data"]  # the split: a run on another is warned about
        split = {k: data[k] for k in ("seed", "val_fraction", "test_fraction")}
        about = json.dumps({"model": "vision.cnn", "params": PARAMS, "recipe": recipe, "split": split}, sort_keys=True)
        out = Path(tmp) / SHIPPED.name
        save_file(own, str(out), metadata={"engine": about})
        load = [f"model.init_from={out}", "trainer.max_epochs=0"]  # the shipped weights, tested, not trained
        checked = _run(RECIPE, [f"seed={args.seed}", *arch, *load, f"run.dir={tmp}", "run.name=check"])
        data = out.read_bytes()
        sha = hashlib.sha256(data).hexdigest()
        shipped = SHIPPED.read_bytes() if SHIPPED.is_file() else None
        if args.out:
            shutil.copyfile(out, args.out)
        if args.write:
            SHIPPED.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(out, SHIPPED)

    acc = float(checked["metrics"]["test/accuracy"])
    print(f"recipe        {recipe}  (torch {torch.__version__}, {args.threads} thread(s))")
    print(f"trained       test/accuracy {float(trained['metrics']['test/accuracy']):.4f} (the training run's best)")
    print(f"loaded        test/accuracy {acc:.4f} ({RECIPE} seed={args.seed} init_from=FILE trainer.max_epochs=0)")
    print(f"file          {len(own)} tensors, {len(data) / 1024:.1f} KiB")
    print(f"sha256        {sha}")
    print(f"shipped file  {'absent' if shipped is None else 'identical' if shipped == data else 'differs'}: {SHIPPED}")
    if args.write:
        print(f"wrote         {SHIPPED}")
    print(
        f'declare:      "{NAME}": Weights("engine_vision:weights/{SHIPPED.name}", "{sha}", '
        f'"... test accuracy {acc:.4f} ...", {PARAMS})'
    )


if __name__ == "__main__":
    main()
