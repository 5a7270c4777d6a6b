"""engine serve: a real server on 127.0.0.1 and a free port, good and bad requests, then stopped."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

KEY = "s3cret"


def call(url: str, body: bytes | None = None, headers: dict[str, str] | None = None) -> tuple[int, Any]:
    req = urllib.request.Request(url, data=body, headers={"content-type": "application/json", **(headers or {})})
    try:
        with urllib.request.urlopen(req, timeout=30) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as err:
        return err.code, json.loads(err.read())


@pytest.fixture(scope="module")
def server(mlp_run: Path, onnx_dir: Path) -> Any:
    from engine_deploy.predictor import Predictor
    from engine_deploy.server import BackgroundServer, create_app

    app = create_app(Predictor(mlp_run, onnx_dir), max_batch_size=16, max_wait_ms=20, api_key=KEY, max_body_bytes=4096)
    with BackgroundServer(app) as url:
        yield url, app


def test_good_requests(server: Any) -> None:
    url, _ = server
    auth = {"X-API-Key": KEY}
    assert call(f"{url}/health") == (200, {"status": "ok", "backend": "deploy.onnx"})
    status, meta = call(f"{url}/metadata", headers=auth)
    assert status == 200 and meta["input"] == {"shape": ["batch", 12], "dtype": "float32"}
    assert meta["class_names"][0] == "class_0" and meta["batching"]["max_batch_size"] == 16
    assert meta["deployment"]["verification"]["passed"] is True
    one = json.dumps({"inputs": [0.1] * 12}).encode()
    status, out = call(f"{url}/predict", one, auth)
    assert status == 200 and len(out["predictions"]) == 1
    p = out["predictions"][0]
    assert p["label"].startswith("class_") and len(p["top"]) == 3 and 0 < p["probability"] <= 1
    batch = json.dumps({"inputs": [[0.1] * 12, [-0.5] * 12], "top_k": 1}).encode()
    status, out = call(f"{url}/predict", batch, {"Authorization": f"Bearer {KEY}"})
    assert status == 200 and len(out["predictions"]) == 2 and len(out["predictions"][0]["top"]) == 1
    status, schema = call(f"{url}/openapi.json")
    assert status == 200 and "/predict" in schema["paths"] and "/metadata" in schema["paths"]
    body = schema["paths"]["/predict"]["post"]["requestBody"]["content"]["application/json"]["schema"]
    assert "inputs" in body["properties"]


@pytest.mark.parametrize(
    ("body", "headers", "status", "message"),
    [
        (b'{"inputs": [0.1, ', {"X-API-Key": KEY}, 400, "malformed JSON"),
        (b'{"inputs": [0.1, 0.2]}', {"X-API-Key": KEY}, 422, "expected one sample of shape [12]"),
        (b'{"inputs": [["a", "b"]]}', {"X-API-Key": KEY}, 422, "nested list of numbers"),
        (b'{"data": [0.1]}', {"X-API-Key": KEY}, 422, "inputs"),
        (b"[1, 2]", {"X-API-Key": KEY}, 422, "inputs"),
        (json.dumps({"inputs": [0.1] * 12, "top_k": 0}).encode(), {"X-API-Key": KEY}, 422, "top_k"),
        (json.dumps({"inputs": [[0.1] * 12] * 200}).encode(), {"X-API-Key": KEY}, 413, "exceeds the limit"),
        (json.dumps({"inputs": [0.1] * 12}).encode(), {}, 401, "missing API key"),
        (json.dumps({"inputs": [0.1] * 12}).encode(), {"X-API-Key": "wrong"}, 401, "wrong API key"),
    ],
)
def test_bad_requests_get_4xx_and_the_server_keeps_serving(
    server: Any, body: bytes, headers: dict[str, str], status: int, message: str
) -> None:
    url, _ = server
    got, out = call(f"{url}/predict", body, headers)
    assert got == status and message in out["detail"]
    good = json.dumps({"inputs": [0.1] * 12}).encode()
    assert call(f"{url}/predict", good, {"X-API-Key": KEY})[0] == 200


def test_concurrent_requests_are_batched(server: Any) -> None:
    url, app = server
    batcher = app.app.state.batcher
    calls_before, samples_before = batcher.calls, batcher.samples
    body = json.dumps({"inputs": [0.2] * 12}).encode()
    with ThreadPoolExecutor(16) as pool:
        results = list(pool.map(lambda _: call(f"{url}/predict", body, {"X-API-Key": KEY}), range(48)))
    assert all(status == 200 for status, _ in results)
    assert len({r["predictions"][0]["label"] for _, r in results}) == 1
    calls, samples = batcher.calls - calls_before, batcher.samples - samples_before
    assert samples == 48 and calls < 48  # several requests shared a model call


@pytest.mark.slow
def test_serve_command_starts_and_stops(mlp_run: Path) -> None:
    from engine_deploy.server import free_port

    port = free_port()
    exe = Path(sys.executable).with_name("engine")
    proc = subprocess.Popen(
        [str(exe), "serve", str(mlp_run), "--port", str(port), "--log-level", "warning"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "ENGINE_API_KEY": KEY},
    )
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                status, body = call(f"http://127.0.0.1:{port}/health")
                break
            except (urllib.error.URLError, ConnectionError):
                assert proc.poll() is None, proc.stderr.read() if proc.stderr else ""
                assert time.monotonic() < deadline, "engine serve did not come up"
                time.sleep(0.2)
        assert status == 200 and body["backend"] == "eager"
        good = json.dumps({"inputs": [0.1] * 12}).encode()
        assert call(f"http://127.0.0.1:{port}/predict", good)[0] == 401  # key from ENGINE_API_KEY
        assert call(f"http://127.0.0.1:{port}/predict", good, {"X-API-Key": KEY})[0] == 200
    finally:
        proc.terminate()
        proc.wait(timeout=30)
    assert "127.0.0.1" in (proc.stdout.read() if proc.stdout else "")


def test_a_failing_model_is_a_500_with_a_message_and_the_fastapi_app_alone_serves_too(mlp_run: Path) -> None:
    from engine_deploy.predictor import Predictor
    from engine_deploy.server import BackgroundServer, create_app

    predictor = Predictor(mlp_run)
    real = predictor.predict

    def predict(batch: Any, top_k: int = 3) -> Any:
        if bool((batch == 999).any()):
            raise RuntimeError("the model cannot take 999")
        return real(batch, top_k)

    predictor.predict = predict  # type: ignore[method-assign]
    front = create_app(predictor, max_batch_size=1, api_key=KEY)
    good = json.dumps({"inputs": [0.1] * 12}).encode()
    bad = json.dumps({"inputs": [999.0] * 12, "preprocessed": True}).encode()  # the marker reaches the model
    # the whole app (Front answers POST /predict), then the FastAPI app on its own (its /predict route)
    for app in (front, front.app):
        with BackgroundServer(app) as url:
            status, out = call(f"{url}/predict", bad, {"X-API-Key": KEY})
            assert status == 500 and out["detail"] == "prediction failed: RuntimeError: the model cannot take 999"
            status, out = call(f"{url}/predict", good, {"X-API-Key": KEY})
            assert status == 200 and out["predictions"][0]["label"].startswith("class_")
            status, out = call(f"{url}/predict", good)
            assert status == 401 and "missing API key" in out["detail"]


def test_a_request_queued_behind_a_busy_model_does_not_wait_again() -> None:
    """max_wait_ms counts from a request's arrival: once the model is free, a request that
    already waited that long while the previous batch computed goes at once."""
    import asyncio
    import threading

    import numpy as np
    from engine_deploy.batching import Batcher

    gate = threading.Event()
    sizes: list[int] = []

    def predict(batch: Any, top_k: int) -> list[dict[str, Any]]:
        if not sizes:
            gate.wait(30)  # the first batch holds the model until the test lets it go
        sizes.append(len(batch))
        return [{"value": float(v)} for v in batch[:, 0].tolist()]

    async def scenario() -> float:
        batcher = Batcher(predict, max_batch_size=2, max_wait_ms=1000)
        batcher.start()
        loop = asyncio.get_running_loop()
        first = [asyncio.ensure_future(batcher.submit(np.full((1, 3), v, np.float32))) for v in (1, 2)]
        await asyncio.sleep(0.1)  # a full batch: the model has it now
        late = asyncio.ensure_future(batcher.submit(np.full((1, 3), 3, np.float32)))
        await asyncio.sleep(1.2)  # longer than max_wait_ms, while the model is busy
        released = loop.time()
        gate.set()
        assert await late == [{"value": 3.0}]
        took = loop.time() - released
        assert [r[0]["value"] for r in await asyncio.gather(*first)] == [1.0, 2.0]
        await batcher.stop()
        return took

    took = asyncio.run(scenario())
    assert sizes == [2, 1]
    assert took < 0.8, f"the late request waited {took:.2f} s more after the model was free (max_wait_ms is 1 s)"
