"""P5: served throughput with dynamic batching on vs off (target >= 3x, zero errors), p50/p99 latency.

    python plugins/deploy/bench/p5_serve_throughput.py [--run RUN] [--requests 3000] [--clients 32] [--repeats 3]

Starts two `engine serve` processes on 127.0.0.1 (free ports), one with batching off
(--max-batch-size 1) and one on (--max-batch-size 32), and sends each the same bounded number
of single-sample requests (real test inputs) from 32 concurrent clients on loopback (aiohttp).
The off and on phases alternate, --repeats times each, so a change in machine load hits both
alike; P5 is the ratio of the median throughputs. Every phase is bounded in requests and time,
and both servers are stopped at the end.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

from _common import get_run


async def load(url: str, bodies: list[bytes], clients: int, requests: int, deadline_s: float) -> dict[str, float]:
    import aiohttp

    latencies: list[float] = []
    errors = 0
    counter = iter(range(requests))
    stop = time.monotonic() + deadline_s

    async def client(session: aiohttp.ClientSession) -> None:
        nonlocal errors
        for i in counter:
            if time.monotonic() > stop:
                return
            t0 = time.perf_counter()
            try:
                async with session.post(
                    url, data=bodies[i % len(bodies)], headers={"content-type": "application/json"}
                ) as r:
                    await r.read()
                    ok = r.status == 200
            except aiohttp.ClientError:
                ok = False
            latencies.append((time.perf_counter() - t0) * 1000)
            errors += not ok

    connector = aiohttp.TCPConnector(limit=clients)
    async with aiohttp.ClientSession(connector=connector) as session:
        t0 = time.perf_counter()
        await asyncio.gather(*(client(session) for _ in range(clients)))
        wall = time.perf_counter() - t0
    ordered = sorted(latencies)
    return {
        "requests": len(latencies),
        "errors": errors,
        "throughput": len(latencies) / wall,
        "p50": statistics.median(ordered),
        "p99": ordered[min(len(ordered) - 1, int(0.99 * len(ordered)))],
        "wall": wall,
    }


def serve(run_dir: Path, port: int, batch: int, wait_ms: float, threads: int) -> subprocess.Popen[bytes]:
    exe = Path(sys.executable).with_name("engine")
    cmd = [
        str(exe),
        "serve",
        str(run_dir),
        "--port",
        str(port),
        "--max-batch-size",
        str(batch),
        "--max-wait-ms",
        str(wait_ms),
        "--log-level",
        "warning",
        "--threads",
        str(threads),
    ]
    env = {k: v for k, v in os.environ.items() if k != "ENGINE_API_KEY"}
    return subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)


def wait_up(url: str, proc: subprocess.Popen[bytes], timeout: float = 120) -> None:
    import urllib.request

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit("engine serve exited early")
        try:
            with urllib.request.urlopen(f"{url}/health", timeout=2):
                return
        except OSError:
            time.sleep(0.25)
    raise SystemExit("engine serve did not come up")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--run", help="a trained run directory (default: train the digits model)")
    ap.add_argument("--requests", type=int, default=3000, help="requests per phase (bounded)")
    ap.add_argument("--clients", type=int, default=32)
    ap.add_argument("--repeats", type=int, default=3, help="alternating off/on phases per setting")
    ap.add_argument("--max-batch-size", type=int, default=32)
    ap.add_argument("--max-wait-ms", type=float, default=5.0)
    ap.add_argument("--threads", type=int, default=1, help="torch threads in the server")
    ap.add_argument("--epochs", type=int, default=15, help="epochs when training the model here")
    args = ap.parse_args()

    from engine_deploy import common
    from engine_deploy.server import free_port

    t_start = time.perf_counter()
    run_dir = get_run(args.run, args.epochs)
    run = common.open_trained(run_dir)
    inputs, _, _ = common.split_inputs(run.datamodule(), 256)
    bodies = [json.dumps({"inputs": x.tolist(), "top_k": 1}).encode() for x in inputs]
    print(f"\nmodel: {run.config['model']['name']}  input {list(inputs.shape[1:])}  run {run_dir}")
    print(
        f"{args.clients} concurrent clients on 127.0.0.1, {args.requests} single-sample requests per phase, "
        f"{args.repeats} alternating phases each\n"
    )
    settings = {"off": (1, 0.0), "on": (args.max_batch_size, args.max_wait_ms)}
    procs, urls = {}, {}
    results: dict[str, list[dict[str, float]]] = {label: [] for label in settings}
    try:
        for label, (batch, wait) in settings.items():
            port = free_port()
            procs[label] = serve(run_dir, port, batch, wait, args.threads)
            urls[label] = f"http://127.0.0.1:{port}"
        for label, proc in procs.items():
            wait_up(urls[label], proc)
            asyncio.run(load(f"{urls[label]}/predict", bodies, args.clients, min(500, args.requests), 60))  # warm-up
        for _ in range(args.repeats):
            for label in settings:
                result = asyncio.run(load(f"{urls[label]}/predict", bodies, args.clients, args.requests, 300))
                results[label].append(result)
    finally:
        for proc in procs.values():
            proc.terminate()
        for proc in procs.values():
            proc.wait(timeout=30)
    print(
        f"{'batching':>8}  {'max batch':>9}  {'requests':>8}  {'errors':>6}  {'req/s':>8}  {'p50 ms':>7}  {'p99 ms':>7}"
    )
    for i in range(args.repeats):
        for label, (batch, _) in settings.items():
            r = results[label][i]
            print(
                f"{label:>8}  {batch:>9}  {r['requests']:>8}  {r['errors']:>6}  {r['throughput']:>8.1f}  "
                f"{r['p50']:>7.2f}  {r['p99']:>7.2f}"
            )
    median = {label: statistics.median(r["throughput"] for r in rs) for label, rs in results.items()}
    speedup = median["on"] / median["off"]
    errors = sum(r["errors"] for rs in results.values() for r in rs)
    ratios = [on["throughput"] / off["throughput"] for off, on in zip(results["off"], results["on"], strict=True)]
    pairs = " ".join(f"{r:.2f}" for r in ratios)
    verdict = "PASS" if speedup >= 3 and errors == 0 else "FAIL"
    print(f"\nmedian req/s: off {median['off']:.1f}, on {median['on']:.1f}; per-pair ratios {pairs}")
    print(f"P5 = {speedup:.2f}x throughput with batching (target >= 3x, zero errors: {errors} errors) {verdict}")
    print(f"wall time {time.perf_counter() - t_start:.1f} s")


if __name__ == "__main__":
    main()
