"""P5: served throughput and latency of `engine serve` with batching on vs off, and against LitServe and FastAPI.

    python plugins/deploy/bench/p5_serve_throughput.py [--run RUN] [--requests 3000] [--requests-c1 1000]
        [--clients 32] [--repeats 3] [--threads 1]

Starts four servers of the same model as separate processes on 127.0.0.1 (free ports):

- ``engine on``:  `engine serve` with dynamic batching (--max-batch-size 32 --max-wait-ms 5);
- ``engine off``: `engine serve` with batching off (--max-batch-size 1);
- ``LitServe``:   LitServe with its batching (max_batch_size 32, batch_timeout 5 ms), one
  inference worker on the CPU (``_litserve_server.py``);
- ``FastAPI``:    a naive FastAPI app, one model call per request (``_fastapi_server.py``).

All four load the model with the engine's own code (``engine_deploy.predictor.Predictor``,
eager PyTorch), check inputs with its ``.array()`` and answer with its ``.predict()`` records
(top_k=1), with the same torch threads (--threads, default 1): the same work per sample. A
parity check first sends the same samples to each, one at a time, and requires the same answers.

One client (aiohttp, keep-alive) sends each server a bounded number of single-sample requests
(real test inputs) at 32 concurrent clients and at 1. Servers alternate phase by phase,
--repeats rounds, so a change in machine load hits all alike; the figures are medians over the
rounds. While one server is measured the others are paused (SIGSTOP; --no-pause keeps them
running): idle, LitServe's worker polls its request queue every millisecond through a
multiprocessing manager process (about 0.15 of a core), time that would otherwise be charged
to whichever server is under load. Every phase is bounded in requests and time, and
every server (with its worker processes) is stopped at the end.

Figures: P5 (engine batching on/off req/s at 32 clients, target >= 3x, zero errors), engine/
FastAPI and engine/LitServe req/s at 32 clients (goal >= 2x LitServe), and the batching on/off
p50 at 1 client (goal <= 1.15x: batching must not cost a lone client its latency).
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.util
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from _common import get_run

HERE = Path(__file__).resolve().parent
NAMES = {"engine-on": "engine on", "engine-off": "engine off", "litserve": "LitServe", "fastapi": "FastAPI"}


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


@dataclass
class Server:
    """One server process (in its own process group, so its workers stop with it) and where it listens."""

    name: str
    cmd: list[str]
    port: int
    proc: subprocess.Popen[bytes] | None = None
    log: IO[bytes] | None = field(default=None, repr=False)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        hidden = ("ENGINE_API_KEY", "LIT_SERVER_API_KEY", "LIT_SHUTDOWN_API_KEY")
        env = {k: v for k, v in os.environ.items() if k not in hidden}
        self.log = tempfile.TemporaryFile()
        self.proc = subprocess.Popen(
            self.cmd, stdout=subprocess.DEVNULL, stderr=self.log, env=env, start_new_session=True, cwd=HERE
        )

    def log_tail(self, lines: int = 15) -> str:
        if self.log is None:
            return ""
        self.log.seek(0)
        return "\n".join(self.log.read().decode(errors="replace").splitlines()[-lines:])

    def wait_up(self, timeout: float = 180) -> None:
        assert self.proc is not None
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise SystemExit(f"{self.name} exited early (code {self.proc.returncode}):\n{self.log_tail()}")
            try:
                with urllib.request.urlopen(f"{self.url}/health", timeout=2):
                    return
            except OSError:  # not listening yet, or 503 while LitServe's worker loads the model
                time.sleep(0.25)
        raise SystemExit(f"{self.name} did not come up in {timeout:.0f} s:\n{self.log_tail()}")

    def signal(self, sig: int) -> None:
        if self.proc is not None:
            try:
                os.killpg(self.proc.pid, sig)
            except ProcessLookupError:
                pass

    def pause(self) -> None:
        self.signal(signal.SIGSTOP)

    def resume(self) -> None:
        self.signal(signal.SIGCONT)

    def stop(self) -> None:
        if self.proc is None:
            return
        self.resume()
        self.signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            pass
        self.signal(signal.SIGKILL)  # whatever is left of the group (LitServe's workers, a stuck server)
        self.proc.wait(timeout=15)
        if self.log is not None:
            self.log.close()


def servers(args: argparse.Namespace, run_dir: Path) -> dict[str, Server]:
    from engine_deploy.server import free_port

    py, engine = sys.executable, str(Path(sys.executable).with_name("engine"))
    threads = ["--threads", str(args.threads)]
    batching = ["--max-batch-size", str(args.max_batch_size), "--batch-timeout-ms", str(args.max_wait_ms), *threads]

    def engine_serve(batch: int, wait_ms: float) -> list[str]:
        flags = ["--max-batch-size", str(batch), "--max-wait-ms", str(wait_ms), *threads, "--log-level", "warning"]
        return [engine, "serve", str(run_dir), "--port", "{port}", *flags]

    cmds = {
        "engine-on": engine_serve(args.max_batch_size, args.max_wait_ms),
        "engine-off": engine_serve(1, 0.0),
        "litserve": [py, str(HERE / "_litserve_server.py"), "--run", str(run_dir), "--port", "{port}", *batching],
        "fastapi": [py, str(HERE / "_fastapi_server.py"), "--run", str(run_dir), "--port", "{port}", *threads],
    }
    out = {}
    for key, cmd in cmds.items():
        port = free_port()
        out[key] = Server(NAMES[key], [c.replace("{port}", str(port)) for c in cmd], port)
    return out


def post(url: str, body: bytes) -> Any:
    req = urllib.request.Request(url, data=body, headers={"content-type": "application/json"})
    with urllib.request.urlopen(req, timeout=30) as r:
        return json.loads(r.read())


def check_parity(procs: dict[str, Server], bodies: list[bytes]) -> None:
    """The same samples, one at a time, must get the same answers from every server."""
    answers = {key: [post(f"{s.url}/predict", b)["predictions"] for b in bodies] for key, s in procs.items()}
    ref = answers["engine-on"]
    for key, got in answers.items():
        for want, have in zip(ref, got, strict=True):
            same = len(want) == len(have) and all(
                w["index"] == h["index"] and abs(w["probability"] - h["probability"]) < 1e-5
                for w, h in zip(want, have, strict=True)
            )
            if not same:
                raise SystemExit(f"parity: {procs[key].name} answered {have}, engine serve {want}")
    print(f"parity: the {len(procs)} servers give the same top-1 label and probability on {len(bodies)} samples")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--run", help="a trained run directory (default: train the digits model)")
    ap.add_argument("--requests", type=int, default=3000, help="requests per phase at --clients (bounded)")
    ap.add_argument("--requests-c1", type=int, default=1000, help="requests per phase at 1 client (bounded)")
    ap.add_argument("--clients", type=int, default=32)
    ap.add_argument("--repeats", type=int, default=3, help="alternating rounds (one phase per server and setting)")
    ap.add_argument("--max-batch-size", type=int, default=32, help="engine on and LitServe")
    ap.add_argument("--max-wait-ms", type=float, default=5.0, help="engine on; LitServe batch_timeout")
    ap.add_argument("--threads", type=int, default=1, help="torch threads in every server")
    ap.add_argument("--epochs", type=int, default=15, help="epochs when training the model here")
    ap.add_argument("--no-pause", action="store_true", help="keep the servers not being measured running")
    args = ap.parse_args()
    if args.clients < 2:
        raise SystemExit("--clients must be at least 2 (the 1-client phases are always run)")
    if importlib.util.find_spec("litserve") is None:
        raise SystemExit("LitServe is not installed: pip install -e 'plugins/deploy[bench]'")

    from engine_deploy import common

    t_start = time.perf_counter()
    run_dir = get_run(args.run, args.epochs)
    run = common.open_trained(run_dir)
    inputs, _, _ = common.split_inputs(run.datamodule(), 256)
    bodies = [json.dumps({"inputs": x.tolist(), "top_k": 1}).encode() for x in inputs]
    concurrency = [args.clients, 1]
    budget = {args.clients: args.requests, 1: args.requests_c1}
    print(f"\nmodel: {run.config['model']['name']}  input {list(inputs.shape[1:])}  run {run_dir}")
    print(
        f"servers: engine on (batch {args.max_batch_size}, {args.max_wait_ms:g} ms), engine off (batch 1), "
        f"LitServe (batch {args.max_batch_size}, {args.max_wait_ms:g} ms, 1 CPU worker), FastAPI (no batching); "
        f"torch threads {args.threads}"
    )
    print(
        f"single-sample requests on 127.0.0.1 at {args.clients} clients ({args.requests} a phase) and 1 client "
        f"({args.requests_c1} a phase); {args.repeats} alternating rounds; idle servers "
        f"{'running' if args.no_pause else 'paused'}\n"
    )
    procs = servers(args, run_dir)
    results: dict[tuple[str, int], list[dict[str, float]]] = {(k, c): [] for k in procs for c in concurrency}
    try:
        for server in procs.values():
            server.start()
        for server in procs.values():
            server.wait_up()
        check_parity(procs, bodies[:16])
        for server in procs.values():
            if not args.no_pause:
                server.pause()
        for server in procs.values():  # warm-up
            server.resume()
            asyncio.run(load(f"{server.url}/predict", bodies, args.clients, min(500, args.requests), 60))
            if not args.no_pause:
                server.pause()
        for _ in range(args.repeats):
            for clients in concurrency:
                for key, server in procs.items():
                    server.resume()
                    time.sleep(0.1)
                    url = f"{server.url}/predict"
                    results[key, clients].append(asyncio.run(load(url, bodies, clients, budget[clients], 300)))
                    if not args.no_pause:
                        server.pause()
    finally:
        for server in procs.values():
            server.stop()

    def med(key: str, clients: int, what: str) -> float:
        return statistics.median(r[what] for r in results[key, clients])

    def errors(*keys: str, at: tuple[int, ...] = tuple(concurrency)) -> int:
        return int(sum(r["errors"] for k in keys for c in at for r in results[k, c]))

    print(f"{'server':<10}  {'clients':>7}  {'req/s':>8}  {'p50 ms':>7}  {'p99 ms':>7}  {'errors':>6}  req/s per round")
    for clients in concurrency:
        for key, server in procs.items():
            rounds = " ".join(f"{r['throughput']:.1f}" for r in results[key, clients])
            print(
                f"{server.name:<10}  {clients:>7}  {med(key, clients, 'throughput'):>8.1f}  "
                f"{med(key, clients, 'p50'):>7.2f}  {med(key, clients, 'p99'):>7.2f}  "
                f"{errors(key, at=(clients,)):>6}  {rounds}"
            )
    print("(medians over the rounds; errors: non-200 answers and failed requests, summed over the rounds)")

    c = args.clients
    on, off = results["engine-on", c], results["engine-off", c]
    speedup = med("engine-on", c, "throughput") / med("engine-off", c, "throughput")
    pairs = " ".join(f"{a['throughput'] / b['throughput']:.2f}" for a, b in zip(on, off, strict=True))
    p5_errors = errors("engine-on", "engine-off", at=(c,))
    vs_fastapi = med("engine-on", c, "throughput") / med("fastapi", c, "throughput")
    vs_litserve = med("engine-on", c, "throughput") / med("litserve", c, "throughput")
    litserve_errors = errors("engine-on", "litserve", at=(c,))
    c1 = med("engine-on", 1, "p50") / med("engine-off", 1, "p50")
    c1_errors = errors("engine-on", "engine-off", at=(1,))

    def verdict(ok: bool) -> str:
        return "PASS" if ok else "FAIL"

    print(f"\nper-round batching on/off req/s ratios at {c} clients: {pairs}")
    print(
        f"P5 = {speedup:.2f}x throughput with batching at {c} clients "
        f"(target >= 3x, zero errors: {p5_errors} errors) {verdict(speedup >= 3 and p5_errors == 0)}"
    )
    print(f"wall time {time.perf_counter() - t_start:.1f} s")
    print(f"P5 peer: engine/FastAPI req/s at {c} clients {vs_fastapi:.2f}x")
    print(
        f"P5 peer: engine/LitServe req/s at {c} clients {vs_litserve:.2f}x "
        f"(goal >= 2.0x, zero errors: {litserve_errors} errors) {verdict(vs_litserve >= 2 and litserve_errors == 0)}"
    )
    print(
        f"P5 c=1: batching on/off p50 {c1:.2f}x "
        f"(goal <= 1.15x, zero errors: {c1_errors} errors) {verdict(c1 <= 1.15 and c1_errors == 0)}"
    )


if __name__ == "__main__":
    main()
