"""engine serve under hostile clients: every bad request is a 4xx (never a 5xx), slow clients are cut off,
the queue is bounded, metrics are exposed; and a storm of good and bad requests leaves it healthy."""

from __future__ import annotations

import asyncio
import json
import random
import socket
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

KEY = "s3cret"
JSON = {"content-type": "application/json", "x-api-key": KEY}


def _rss_kb(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError("no VmRSS")


@pytest.fixture(scope="module")
def served(mlp_run: Path) -> Any:
    """``engine serve`` in its own process (its memory measured alone), short timeouts, stopped at the end."""
    from engine_deploy.server import free_port

    port = free_port()
    exe = Path(sys.executable).with_name("engine")
    cmd = [str(exe), "serve", str(mlp_run), "--port", str(port), "--api-key", KEY, "--read-timeout", "2"]
    cmd += ["--keep-alive", "2", "--max-body-bytes", "65536", "--max-header-bytes", "8192", "--log-level", "error"]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 120
    import urllib.request

    while True:
        try:
            with urllib.request.urlopen(f"{url}/ready", timeout=2) as r:
                if r.status == 200:
                    break
        except OSError:
            pass
        if proc.poll() is not None or time.monotonic() > deadline:
            raise AssertionError(f"engine serve did not come up: {proc.stderr.read() if proc.stderr else ''}")
        time.sleep(0.2)
    try:
        yield url, port, proc
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def _raw(port: int, data: bytes, wait: float = 5.0) -> bytes:
    """Send raw bytes and read until the server closes (or ``wait`` seconds pass)."""
    with socket.create_connection(("127.0.0.1", port), timeout=wait) as s:
        s.sendall(data)
        chunks = []
        try:
            while chunk := s.recv(65536):
                chunks.append(chunk)
        except TimeoutError:
            chunks.append(b"<still open>")
        return b"".join(chunks)


def _post(port: int, body: bytes, headers: dict[str, str] | None = None) -> tuple[int, dict]:
    heads = {"content-type": "application/json", "x-api-key": KEY, **(headers or {})}
    lines = [f"POST /predict HTTP/1.1\r\nhost: x\r\ncontent-length: {len(body)}\r\nconnection: close\r\n"]
    lines += [f"{k}: {v}\r\n" for k, v in heads.items()]
    reply = _raw(port, ("".join(lines) + "\r\n").encode() + body)
    head, _, payload = reply.partition(b"\r\n\r\n")
    return int(head.split()[1]), json.loads(payload) if payload.startswith(b"{") else {}


@pytest.mark.slow
@pytest.mark.parametrize(
    ("body", "headers", "status", "message"),
    [
        (b'{"inputs": ' + b"[" * 5000 + b"]" * 5000 + b"}", {}, 422, "nested deeper"),
        (json.dumps({"inputs": [0.1] * 12}).encode(), {"content-type": "text/plain"}, 415, "application/json"),
        (json.dumps({"inputs": [True] * 12}).encode(), {}, 422, "booleans"),
        (json.dumps({"inputs": [0.1] * 11 + [False]}).encode(), {}, 422, "booleans"),
        (json.dumps({"inputs": ["a"] * 12}).encode(), {}, 422, "numbers"),
        (b'{"inputs": [' + b"NaN, " * 11 + b"0.1]}", {}, 400, "NaN is not a JSON number"),
        (b'{"inputs": [' + b"1e999, " * 11 + b"0.1]}", {}, 422, "finite"),
        (json.dumps({"inputs": [[0.1] * 12] * 300}).encode(), {}, 422, "at most 256"),
    ],
)
def test_hostile_bodies_get_4xx(served: Any, body: bytes, headers: dict, status: int, message: str) -> None:
    _, port, _ = served
    got, out = _post(port, body, headers)
    assert got == status and message in out.get("detail", ""), (got, out)


@pytest.mark.slow
def test_the_api_key_sent_twice_is_refused(served: Any) -> None:
    _, port, _ = served
    body = json.dumps({"inputs": [0.1] * 12}).encode()
    head = f"POST /predict HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\ncontent-length: {len(body)}\r\n"
    twice = f"{head}x-api-key: wrong\r\nx-api-key: {KEY}\r\nconnection: close\r\n\r\n".encode() + body
    assert b" 401 " in _raw(port, twice).split(b"\r\n")[0] + b" "
    both = f"{head}x-api-key: {KEY}\r\nauthorization: Bearer {KEY}\r\nconnection: close\r\n\r\n".encode() + body
    assert b"more than once" in _raw(port, both)


@pytest.mark.slow
def test_sizes_and_slow_clients_are_bounded(served: Any) -> None:
    _, port, _ = served
    huge = b"GET /health HTTP/1.1\r\nhost: x\r\nx-junk: " + b"a" * 100_000 + b"\r\n\r\n"
    assert _raw(port, huge).startswith(b"HTTP/1.1 431")
    status, out = _post(port, b"{" + b" " * 100_000 + b"}")
    assert status == 413 and "exceeds the limit" in out["detail"]
    padded = json.dumps({"inputs": [0.1] * 12}).encode() + b" " * 60_000  # a big body in the head's packet
    assert _post(port, padded)[0] == 200  # counts against the body limit, not the header limit
    t0 = time.monotonic()
    assert _raw(port, b"POST /predict HTTP/1.1\r\nhost: x\r\n").startswith(b"HTTP/1.1 408")  # half a head
    assert time.monotonic() - t0 < 4.5
    half_body = b"POST /predict HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\ncontent-length: 100\r\n\r\n{"
    assert _raw(port, half_body).startswith(b"HTTP/1.1 408")  # half a body
    assert _raw(port, b"") == b""  # an idle connection is closed, not kept


@pytest.mark.slow
def test_ready_health_and_metrics(served: Any) -> None:
    import urllib.request

    url, _, _ = served
    with urllib.request.urlopen(f"{url}/ready", timeout=5) as r:
        assert r.status == 200 and json.loads(r.read()) == {"ready": True}
    with urllib.request.urlopen(f"{url}/metrics", timeout=5) as r:
        text = r.read().decode()
    for name in ("engine_requests_total", "engine_request_seconds_bucket", "engine_batch_size_bucket"):
        assert name in text, name
    assert 'engine_rejected_total{reason="bad_input"}' in text and "engine_queue_samples" in text
    assert 'engine_model_info{backend="eager"' in text


def test_a_full_queue_answers_503_instead_of_growing() -> None:
    import numpy as np
    from engine_deploy.batching import Batcher, Overloaded

    def slow(batch: Any, top_k: int) -> list[dict]:
        time.sleep(0.2)
        return [{"value": 0.0} for _ in range(len(batch))]

    async def main() -> tuple[int, int]:
        batcher = Batcher(slow, max_batch_size=4, max_wait_ms=1, max_queue=8)
        batcher.start()
        x = np.zeros((2, 3), dtype=np.float32)
        results = await asyncio.gather(*(batcher.submit(x) for _ in range(20)), return_exceptions=True)
        await batcher.stop()
        return sum(isinstance(r, Overloaded) for r in results), sum(isinstance(r, list) for r in results)

    refused, answered = asyncio.run(main())
    assert refused == 16 and answered == 4  # 8 samples may wait; the rest is refused at once


def test_adaptive_batching_runs_a_lone_request_at_once() -> None:
    import numpy as np
    from engine_deploy.batching import Batcher

    async def main() -> float:
        batcher = Batcher(lambda b, k: [{}] * len(b), max_batch_size=32, max_wait_ms=200)
        batcher.start()
        x = np.zeros((1, 3), dtype=np.float32)
        await batcher.submit(x)
        t0 = time.perf_counter()
        for _ in range(5):
            await batcher.submit(x)  # one client: nothing else queued, nothing to wait for
        await batcher.stop()
        return (time.perf_counter() - t0) / 5

    assert asyncio.run(main()) < 0.05  # far below the 200 ms a full wait would cost


# --------------------------------------------------------------------------- the storm


def _hostile(rng: random.Random, good: list[bytes]) -> tuple[bytes, dict[str, str]]:
    kind = rng.randrange(8)
    if kind == 0:
        return b'{"inputs": [0.1, ', JSON  # malformed
    if kind == 1:
        return b'{"inputs": ' + b"[" * 3000 + b"]" * 3000 + b"}", JSON  # deep nesting
    if kind == 2:
        return json.dumps({"inputs": [[0.1] * 5]}).encode(), JSON  # wrong shape
    if kind == 3:
        return json.dumps({"inputs": [["x"] * 12]}).encode(), JSON  # wrong dtype
    if kind == 4:
        return b'{"inputs": [' + b"Infinity, " * 11 + b"0]}", JSON  # non-finite
    if kind == 5:
        return rng.choice(good), {"content-type": "application/json", "x-api-key": "wrong"}  # bad key
    if kind == 6:
        return rng.choice(good), {**JSON, "x-junk": "j" * 20_000}  # huge header
    return b"{" + b" " * 200_000 + b"}", JSON  # too large a body


def _same(got: list[dict], want: list[dict]) -> bool:
    """The same labels in the same order, probabilities equal to rounding (a batch sums in another order)."""
    return len(got) == len(want) and all(
        [t["label"] for t in g["top"]] == [t["label"] for t in w["top"]]
        and all(abs(a["probability"] - b["probability"]) < 1e-4 for a, b in zip(g["top"], w["top"], strict=True))
        for g, w in zip(got, want, strict=True)
    )


async def _storm(url: str, port: int, good: list[bytes], expected: list[Any], n: int, clients: int) -> Counter:
    import aiohttp

    rng = random.Random(0)
    plan = [(i % len(good)) if rng.random() >= 0.2 else -1 for i in range(n)]
    codes: Counter = Counter()
    wrong: list[Any] = []
    work = iter(plan)

    async def client(session: aiohttp.ClientSession) -> None:
        for item in work:
            body, headers = (good[item], JSON) if item >= 0 else _hostile(rng, good)
            try:
                async with session.post(f"{url}/predict", data=body, headers=headers) as r:
                    payload = await r.read()
                    codes[r.status] += 1
                    if item >= 0 and (r.status != 200 or not _same(json.loads(payload)["predictions"], expected[item])):
                        wrong.append((r.status, payload[:200]))
            except aiohttp.ClientError:
                codes["disconnected"] += 1  # the server closed a hostile request's connection (431, 413)
                if item >= 0:
                    wrong.append(("disconnected", body[:80]))

    async def slowloris() -> None:
        # a few clients that send half a request head and stall: cut off by the read timeout
        for _ in range(3):
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.write(b"POST /predict HTTP/1.1\r\nhost: x\r\n")
            await writer.drain()
            data = await asyncio.wait_for(reader.read(), timeout=10)
            codes["slow client cut off" if data.startswith(b"HTTP/1.1 408") else "slow client?"] += 1
            writer.close()

    timeout = aiohttp.ClientTimeout(total=60)
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=clients), timeout=timeout) as session:
        await asyncio.gather(slowloris(), *(client(session) for _ in range(clients)))
    assert not wrong, wrong[:5]
    return codes


@pytest.mark.slow
def test_storm_of_good_and_hostile_requests(served: Any, mlp_run: Path) -> None:
    import urllib.request

    from engine_deploy import common

    url, port, proc = served
    inputs, _, _ = common.split_inputs(common.open_trained(mlp_run).datamodule(), 64)
    good = [json.dumps({"inputs": x.tolist(), "top_k": 2}).encode() for x in inputs]
    expected = []
    for body in good:
        req = urllib.request.Request(f"{url}/predict", data=body, headers=JSON)
        with urllib.request.urlopen(req, timeout=10) as r:
            expected.append(json.loads(r.read())["predictions"])
    before = _rss_kb(proc.pid)
    codes = asyncio.run(_storm(url, port, good, expected, 5000, 32))
    after = _rss_kb(proc.pid)
    print(f"\nstorm: {dict(sorted(codes.items(), key=str))}; server RSS {before / 1024:.1f} -> {after / 1024:.1f} MB")
    assert not [c for c in codes if isinstance(c, int) and c >= 500 and c != 503], codes
    assert codes[200] >= 3800 and codes["slow client cut off"] == 3
    assert proc.poll() is None and (after - before) < 50 * 1024
    with urllib.request.urlopen(f"{url}/health", timeout=5) as r:
        assert r.status == 200
