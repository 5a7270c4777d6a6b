"""One client cannot starve the server: connections still sending a request have their own budget (per client
address and in total), /health and /ready answer through a flood, and every refusal below the app is counted
in /metrics. Servers run in-process on 127.0.0.1 and a free port, with short timeouts, and stop at the end."""

from __future__ import annotations

import json
import re
import socket
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

GOOD = json.dumps({"inputs": [0.1] * 12}).encode()
HALF_HEAD = b"POST /predict HTTP/1.1\r\nhost: x\r\n"
HALF_BODY = b"POST /predict HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\ncontent-length: 100\r\n\r\n{"


def _get(url: str, body: bytes | None = None, timeout: float = 5.0) -> tuple[int, bytes]:
    req = urllib.request.Request(url, data=body, headers={"content-type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as err:
        return err.code, err.read()


def _metric(url: str, name: str, **labels: str) -> float:
    """The value of one sample of /metrics (0 when absent)."""
    text = _get(f"{url}/metrics")[1].decode()
    inner = ",".join(f'{k}="{v}"' for k, v in labels.items())
    pattern = re.escape(name + (f"{{{inner}}}" if labels else "")) + r" ([0-9.e+-]+)"
    found = re.search(r"^" + pattern + "$", text, re.M)
    return float(found.group(1)) if found else 0.0


@pytest.fixture(scope="module")
def predictor(mlp_run: Path) -> Any:
    from engine_deploy.predictor import Predictor

    return Predictor(mlp_run)


@contextmanager
def _serving(predictor: Any, **limits: Any) -> Iterator[tuple[str, int, Any]]:
    from engine_deploy.guard import Limits
    from engine_deploy.server import BackgroundServer, create_app

    app = create_app(predictor, max_batch_size=1, limits=Limits(**limits))
    server = BackgroundServer(app)
    with server as url:
        yield url, server.port, app


@contextmanager
def _sockets(port: int, count: int, data: bytes) -> Iterator[list[socket.socket]]:
    """``count`` connections that each sent ``data`` and hold; all closed at the end."""
    held: list[socket.socket] = []
    try:
        for _ in range(count):
            s = socket.create_connection(("127.0.0.1", port), timeout=5)
            s.sendall(data)
            held.append(s)
        yield held
    finally:
        for s in held:
            s.close()


def _closed_by_server(s: socket.socket, within: float) -> bytes | None:
    """What the server sent before closing ``s`` (None: still open after ``within`` seconds)."""
    s.settimeout(within)
    chunks = []
    try:
        while chunk := s.recv(4096):
            chunks.append(chunk)
    except TimeoutError:
        return None
    except ConnectionError:
        pass
    return b"".join(chunks)


def test_half_sent_requests_cannot_starve_health_ready_or_predict(predictor: Any) -> None:
    # more half-sent heads and bodies than --max-connections, all from this one address
    with _serving(predictor, max_connections=40, read_timeout_s=5.0) as (url, port, _):
        with _sockets(port, 30, HALF_HEAD), _sockets(port, 30, HALF_BODY):
            time.sleep(0.3)  # the server has accepted them all
            started = time.monotonic()
            assert _get(f"{url}/health", timeout=3)[0] == 200
            assert _get(f"{url}/ready", timeout=3)[0] == 200
            status, body = _get(f"{url}/predict", GOOD, timeout=3)
            assert status == 200 and b"predictions" in body, body
            assert time.monotonic() - started < 3, "answered only once the read timeout freed connections"
            assert _metric(url, "engine_pending_connections") <= 20  # half of --max-connections
            assert _metric(url, "engine_rejected_total", reason="evicted") >= 40
            assert _metric(url, "engine_open_connections") >= 1
        # a half-sent body closed to make room is no answer of the server's: not a 500
        assert _metric(url, "engine_requests_total", route="/predict", status="500") == 0


def test_the_oldest_slow_request_of_a_client_makes_room(predictor: Any) -> None:
    with _serving(predictor, read_timeout_s=5.0, max_pending=8, max_pending_per_client=3) as (url, port, _):
        with _sockets(port, 3, HALF_HEAD) as held:
            time.sleep(0.2)
            with _sockets(port, 1, HALF_HEAD):
                reply = _closed_by_server(held[0], within=2)
                assert reply is not None and reply.startswith(b"HTTP/1.1 408"), reply
                assert _closed_by_server(held[2], within=0.3) is None  # the newer ones stay
            assert _get(f"{url}/health", timeout=3)[0] == 200


@pytest.mark.parametrize(
    ("limits", "message"),
    [
        ({"max_pending": 0}, "--max-pending must be at least 1"),
        ({"max_pending": 512}, "--max-pending (512) must be below --max-connections (512)"),
        ({"max_pending_per_client": 0}, "--max-pending-per-client must be at least 1"),
    ],
)
def test_pending_budget_settings_are_checked(limits: dict[str, int], message: str) -> None:
    from engine_deploy.guard import Limits

    from engine import EngineError

    with pytest.raises(EngineError, match=re.escape(message)):
        Limits(**limits).check()


def test_health_answers_while_every_connection_is_busy(predictor: Any) -> None:
    gate, entered = threading.Event(), threading.Event()
    real = predictor.predict

    def predict(batch: Any, top_k: int = 3) -> Any:
        if bool((batch == 777).any()):
            entered.set()
            gate.wait(20)  # the model is busy until the test lets it go
        return real(batch, top_k)

    stuck = json.dumps({"inputs": [777.0] * 12, "preprocessed": True}).encode()  # the marker reaches the model
    predictor.predict = predict
    try:
        with _serving(predictor, max_connections=4, read_timeout_s=5.0) as (url, _, app):
            with ThreadPoolExecutor(4) as pool:
                busy = [pool.submit(_get, f"{url}/predict", stuck, 20) for _ in range(3)]  # uvicorn admits 3 of 4
                try:
                    batcher = app.app.state.batcher
                    deadline = time.monotonic() + 10
                    while not (entered.is_set() and batcher.queued == 2):  # one in the model, two waiting
                        assert time.monotonic() < deadline, "the stuck requests never reached the model"
                        time.sleep(0.02)
                    assert _get(f"{url}/metadata", timeout=3)[0] == 503  # every connection slot is taken
                    assert _get(f"{url}/predict", GOOD, timeout=3)[0] == 503
                    assert _get(f"{url}/health", timeout=3)[0] == 200
                    assert _get(f"{url}/ready", timeout=3)[0] == 200
                finally:
                    gate.set()
                assert [f.result()[0] for f in busy] == [200] * 3
            assert _metric(url, "engine_rejected_total", reason="connections") >= 1
    finally:
        predictor.predict = real


def test_refusals_below_the_app_are_counted(predictor: Any) -> None:
    limits = {"read_timeout_s": 0.5, "keep_alive_s": 0.5, "max_header_bytes": 1024}
    with _serving(predictor, **limits) as (url, port, _):
        with _sockets(port, 1, b"GET /health HTTP/1.1\r\nhost: x\r\nx-junk: " + b"j" * 4000 + b"\r\n\r\n") as (s,):
            assert (_closed_by_server(s, 3) or b"").startswith(b"HTTP/1.1 431")
        with _sockets(port, 1, HALF_HEAD) as (s,):
            assert (_closed_by_server(s, 3) or b"").startswith(b"HTTP/1.1 408")
        with _sockets(port, 1, b"") as (s,):
            assert _closed_by_server(s, 3) == b""  # nothing sent: closed without a word
        with _sockets(port, 1, b"GET /health HTTP/1.1\r\nhost: x\r\n\r\n") as (s,):
            reply = _closed_by_server(s, 3)  # answered, then idle on keep-alive: closed
            assert reply is not None and reply.startswith(b"HTTP/1.1 200"), reply
        with _sockets(port, 1, b"NOT HTTP AT ALL\x00\r\n\r\n") as (s,):
            assert (_closed_by_server(s, 3) or b"").startswith(b"HTTP/1.1 400")
        time.sleep(0.1)
        assert _metric(url, "engine_rejected_total", reason="header_too_large") == 1
        assert _metric(url, "engine_rejected_total", reason="head_timeout") == 1
        assert _metric(url, "engine_rejected_total", reason="idle") == 2
        assert _metric(url, "engine_rejected_total", reason="bad_request") == 1
