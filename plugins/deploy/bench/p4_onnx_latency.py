"""P4: ONNX Runtime batch-1 p50 latency / eager PyTorch p50 on the digits model (target <= 0.6).

    python plugins/deploy/bench/p4_onnx_latency.py [--run RUN] [--threads 1] [--rounds 7]

Exports the run's model with the deploy plugin's onnx target (verified against eager), then
times eager PyTorch (inference mode) and ONNX Runtime on the same real test inputs, in
interleaved rounds so that load from other processes hits both alike; reports the median
over rounds of each round's p50 (and p95), at batch 1 and 32.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import torch
from _common import get_run


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--run", help="a trained run directory (default: train the digits model)")
    ap.add_argument("--threads", type=int, default=1, help="threads for both torch and onnxruntime (default 1)")
    ap.add_argument("--rounds", type=int, default=7)
    ap.add_argument("--calls", type=int, default=300, help="calls per round and backend")
    ap.add_argument("--epochs", type=int, default=15, help="epochs when training the model here")
    args = ap.parse_args()

    from engine_deploy import common
    from engine_deploy.deploy import deploy

    t_start = time.perf_counter()
    run_dir = get_run(args.run, args.epochs)
    torch.set_num_threads(args.threads)
    out = Path(tempfile.mkdtemp(prefix="p4-onnx-"))
    manifest = deploy(run_dir, "onnx", out=out, options={"threads": args.threads}, timing=False, threads=args.threads)
    v = manifest["verification"]
    artifact = common.load_artifact(out)
    run = common.open_trained(run_dir)
    dm = run.datamodule()
    model = common.eager_model(run, dm)
    inputs, _, _ = common.split_inputs(dm, 256)

    print(f"\nmodel: {manifest['model'].get('name')}  input {manifest['input']['shape']}  run {run_dir}")
    print(
        f"parity: max abs diff {v['max_abs_diff']:.2e} on {v['samples']} {v['split']} samples, "
        f"top-1 agreement {v['top1_agreement']:.4f}, {v['metric']['name']} {v['metric']['eager']:.4f}"
    )
    print(f"threads: {args.threads} (torch and onnxruntime); {args.rounds} interleaved rounds x {args.calls} calls\n")
    print(
        f"{'batch':>5}  {'eager p50 ms':>12}  {'eager p95 ms':>12}  {'onnx p50 ms':>11}  {'onnx p95 ms':>11}  "
        f"{'ratio p50':>9}  target"
    )
    ratios = {}
    for size in (1, 32):
        x = common.batch_of(inputs, size)
        e50, e95, o50, o95 = [], [], [], []
        for _ in range(args.rounds):
            e = common.latency(model, x, iterations=args.calls, budget_s=5)
            o = common.latency(artifact.fn, x, iterations=args.calls, budget_s=5)
            e50.append(e["p50_ms"]), e95.append(e["p95_ms"]), o50.append(o["p50_ms"]), o95.append(o["p95_ms"])
        me, mo = statistics.median(e50), statistics.median(o50)
        ratios[size] = mo / me
        target = ("<= 0.6 " + ("PASS" if ratios[size] <= 0.6 else "FAIL")) if size == 1 else "-"
        print(
            f"{size:>5}  {me:>12.4f}  {statistics.median(e95):>12.4f}  {mo:>11.4f}  "
            f"{statistics.median(o95):>11.4f}  {ratios[size]:>9.3f}  {target}"
        )
    print(f"\nP4 = {ratios[1]:.3f} (ONNX Runtime / eager PyTorch, batch-1 p50; target <= 0.6)")
    print(f"wall time {time.perf_counter() - t_start:.1f} s")


if __name__ == "__main__":
    main()
