"""Recipe ``vision/shapes-detect`` over 3 seeds: test mAP@0.5 and mAP@[.5:.95], wall time, ONNX parity.

Each seed changes the generated images, the train/val/test split, the augmentation and the
initialisation. After training, each run is deployed with ``engine deploy RUN --target onnx``
(unless ``--no-onnx``): the max abs difference of the network's outputs on the test images,
whether predict would give the same boxes, and the test mAP@0.5 from eager and ONNX outputs.

    .venv/bin/python plugins/vision/bench/detect_seeds.py [--seeds 0 1 2] [--threads 0] [--keep DIR] [k=v ...]

``--threads 0`` (default) leaves torch its default thread count, as a user's run would.
Prints one row per seed and the mean ± std; the target is mAP@0.5 >= 0.9 on every seed.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--recipe", default="vision/shapes-detect")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--threads", type=int, default=0, help="torch intra-op threads (0: torch's default)")
    parser.add_argument("--no-onnx", action="store_true", help="skip the ONNX deployment and its parity check")
    parser.add_argument("--keep", metavar="DIR", help="keep the run directories in DIR (default: a temporary one)")
    parser.add_argument("overrides", nargs="*", help="extra key=value overrides for the recipe")
    args = parser.parse_args()

    import warnings

    import torch

    import engine

    warnings.filterwarnings("ignore")
    if args.threads:
        torch.set_num_threads(args.threads)
    rows = []
    with tempfile.TemporaryDirectory(prefix="detect-bench-") as tmp:
        root = Path(args.keep) if args.keep else Path(tmp)
        for seed in args.seeds:
            overrides = [
                f"seed={seed}",
                f"run.dir={root}",
                f"run.name=seed{seed}",
                "trainer.enable_progress_bar=false",
                *args.overrides,
            ]
            plan = engine.plan(engine.compose(args.recipe, overrides=overrides))
            started = time.time()
            result = engine.train(plan)
            wall = time.time() - started
            metrics = result.summary["metrics"]
            row = {"seed": seed, "map_50": float(metrics["test/map_50"]), "map": float(metrics["test/map"])}
            row["wall"] = wall
            if not args.no_onnx:
                from engine_deploy.deploy import deploy

                v = deploy(result.run_dir, "onnx", samples=1024, timing=False)["verification"]
                row.update(
                    diff=v["max_abs_diff"],
                    same=v["described"]["same_records"],
                    onnx_map_50=v["metric"]["artifact"],
                    eager_map_50=v["metric"]["eager"],
                )
            rows.append(row)
            print(f"seed {seed}: test mAP@0.5 {row['map_50']:.4f}, mAP {row['map']:.4f} in {wall:.1f} s", flush=True)

    print()
    threads = args.threads or torch.get_num_threads()
    print(f"recipe {args.recipe} {' '.join(args.overrides)}".rstrip() + f"  (torch threads: {threads})")
    header = f"{'seed':>4}  {'mAP@0.5':>7}  {'mAP':>6}  {'wall (s)':>8}"
    if not args.no_onnx:
        header += f"  {'onnx max diff':>13}  {'same boxes':>10}  {'mAP@0.5 eager/onnx':>18}"
    print(header)
    for r in rows:
        line = f"{r['seed']:>4}  {r['map_50']:>7.4f}  {r['map']:>6.4f}  {r['wall']:>8.1f}"
        if "diff" in r:
            pair = f"{r['eager_map_50']:.4f}/{r['onnx_map_50']:.4f}"
            line += f"  {r['diff']:>13.2e}  {r['same']:>10.4f}  {pair:>18}"
        print(line)

    def ms(values: list[float]) -> str:
        std = statistics.stdev(values) if len(values) > 1 else 0.0
        return f"{statistics.mean(values):.4f} ± {std:.4f}"

    maps50, maps = [r["map_50"] for r in rows], [r["map"] for r in rows]
    print(f"mean  mAP@0.5 {ms(maps50)}  mAP {ms(maps)}  wall {statistics.mean(r['wall'] for r in rows):.1f} s/run")
    print(f"target mAP@0.5 >= 0.9 on every seed: {'met' if min(maps50) >= 0.9 else 'NOT met'}")


if __name__ == "__main__":
    main()
