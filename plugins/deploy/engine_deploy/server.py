"""``engine serve``: a FastAPI app over a :class:`Predictor`, with dynamic batching, an API key and a body limit.

Why FastAPI + uvicorn rather than LitServe (both install here): one process, started in
well under a second (tests start it in-process on a free port), with the request checks
(size limit, API key, JSON, shape) written as plain code returning 4xx with a message; the
OpenAPI schema comes from pydantic models. LitServe adds inference worker processes fed
through queues, which on a small CPU machine costs more than it gives. Dynamic batching
here is a small asyncio loop (:class:`Batcher`); the model and its post-processing run once
per batch in one worker thread, so the event loop keeps accepting requests while a batch computes.

The hot path is kept off FastAPI: :class:`Front`, the ASGI entry, enforces the body limit
and answers ``POST /predict`` itself (FastAPI's routing and middleware cost about 0.13 ms a
request, as much as a sample of the digits model in a batch). Everything else (health,
metadata, docs, the OpenAPI schema) is FastAPI's. Requests are checked in numpy on the
event loop; torch runs only in the model thread, so the two threads do not trade the GIL
on every request.
"""

from __future__ import annotations

import hmac
import json
import logging
import threading
import time
from collections.abc import Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

from fastapi import FastAPI, HTTPException, Request
from fastapi.responses import Response

from engine.errors import EngineError
from engine_deploy.batching import Batcher
from engine_deploy.inputs import InputError
from engine_deploy.predictor import Predictor
from engine_deploy.schemas import ErrorResponse, PredictRequest, PredictResponse

log = logging.getLogger("uvicorn.error")

# --------------------------------------------------------------------------- POST /predict


def _json(payload: Any) -> bytes:
    return json.dumps(payload, ensure_ascii=False, allow_nan=False, separators=(",", ":")).encode()


@dataclass
class PredictEndpoint:
    """``POST /predict`` and the API key check, on plain bytes and headers (no framework in the way)."""

    predictor: Predictor
    batcher: Batcher
    api_key: str | None = None
    max_samples: int = 256

    def check_key(self, headers: Mapping[str, str]) -> None:
        """Raise a 401 ``HTTPException`` unless the request carries the API key (when one is set)."""
        if not self.api_key:
            return
        given = headers.get("x-api-key")
        auth = headers.get("authorization", "")
        if given is None and auth.lower().startswith("bearer "):
            given = auth[7:].strip()
        if not given:
            raise HTTPException(401, "missing API key: send it in the X-API-Key header (or Authorization: Bearer)")
        if not hmac.compare_digest(given.encode(), self.api_key.encode()):
            raise HTTPException(401, "wrong API key")

    async def __call__(self, body: bytes, headers: Mapping[str, str]) -> tuple[int, bytes]:
        """The status and JSON body answering a request (``headers`` with lower-case names)."""
        try:
            self.check_key(headers)
            try:
                payload = json.loads(body)
            except (ValueError, UnicodeDecodeError) as exc:
                raise HTTPException(400, f"malformed JSON: {exc}") from None
            if not isinstance(payload, dict) or "inputs" not in payload:
                raise HTTPException(422, 'expected a JSON object {"inputs": [...], "top_k": 3}')
            top_k = payload.get("top_k", 3)
            if not isinstance(top_k, int) or isinstance(top_k, bool) or top_k < 1:
                raise HTTPException(422, f"top_k must be a positive integer, got {top_k!r}")
            try:
                x = self.predictor.array(payload["inputs"])
            except InputError as exc:
                raise HTTPException(422, exc.message) from None
            if len(x) > self.max_samples:
                raise HTTPException(422, f"{len(x)} samples in one request; at most {self.max_samples}")
            return 200, _json({"predictions": await self.batcher.submit(x, top_k)})
        except HTTPException as exc:
            return exc.status_code, _json({"detail": exc.detail})
        except Exception as exc:  # the model failed: say so, keep serving
            log.exception("POST /predict failed")
            return 500, _json({"detail": f"prediction failed: {type(exc).__name__}: {exc}"})


# --------------------------------------------------------------------------- the ASGI entry


class Front:
    """The ASGI entry: a body-size limit on every request; ``POST /predict`` answered here, the rest by ``app``.

    A body larger than ``max_bytes`` (declared or streamed) gets 413 before it is read whole.
    """

    def __init__(self, app: Any, endpoint: PredictEndpoint, max_bytes: int) -> None:
        self.app, self.endpoint, self.max_bytes = app, endpoint, max_bytes

    @staticmethod
    async def _send(send: Any, status: int, body: bytes) -> None:
        headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": body})

    async def _reject(self, send: Any, status: int, detail: str) -> None:
        await self._send(send, status, _json({"detail": detail}))

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = {k.decode("latin-1"): v.decode("latin-1") for k, v in scope.get("headers") or []}
        declared = headers.get("content-length")
        if declared is not None:
            try:
                size = int(declared)
            except ValueError:
                await self._reject(send, 400, "invalid Content-Length header")
                return
            if size > self.max_bytes:
                await self._reject(send, 413, f"request body of {size} bytes exceeds the limit of {self.max_bytes}")
                return
        chunks: list[bytes] = []
        total = 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            chunk = message.get("body", b"")
            total += len(chunk)
            if total > self.max_bytes:
                await self._reject(send, 413, f"request body exceeds the limit of {self.max_bytes} bytes")
                return
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        body = b"".join(chunks)
        if scope["path"] == "/predict" and scope["method"] == "POST":
            await self._send(send, *await self.endpoint(body, headers))
            return
        sent = False

        async def replay() -> Any:
            nonlocal sent
            if not sent:
                sent = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        await self.app(scope, replay, send)


# --------------------------------------------------------------------------- the app


def create_app(
    predictor: Predictor,
    max_batch_size: int = 32,
    max_wait_ms: float = 5.0,
    api_key: str | None = None,
    max_body_bytes: int = 1_048_576,
) -> Front:
    """The ASGI app serving ``predictor``: :class:`Front` over the FastAPI app (its ``.app``)."""
    if max_batch_size < 1:
        raise EngineError(f"--max-batch-size must be >= 1, got {max_batch_size}")
    if max_wait_ms < 0:
        raise EngineError(f"--max-wait-ms must be >= 0, got {max_wait_ms}")
    if max_body_bytes < 64:
        raise EngineError(f"--max-body-bytes must be at least 64, got {max_body_bytes}")
    batcher = Batcher(predictor.predict, max_batch_size, max_wait_ms)
    max_samples = max(max_batch_size, 256)
    endpoint = PredictEndpoint(predictor, batcher, api_key, max_samples)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> Any:
        batcher.start()
        yield
        await batcher.stop()

    app = FastAPI(
        title="engine model server",
        description=f"Predictions from run {predictor.run.path.name} ({predictor.backend}).",
        version=str(predictor.metadata()["versions"].get("engine-deploy", "")),
        lifespan=lifespan,
    )
    app.state.batcher = batcher
    errors = {
        400: {"model": ErrorResponse, "description": "malformed JSON"},
        401: {"model": ErrorResponse, "description": "missing or wrong API key"},
        413: {"model": ErrorResponse, "description": "request body too large"},
        422: {"model": ErrorResponse, "description": "inputs of the wrong shape or type"},
    }

    @app.get("/health", summary="liveness check")
    async def health() -> dict[str, Any]:
        return {"status": "ok", "backend": predictor.backend}

    @app.get("/metadata", summary="input signature, class names, preprocessing, batching", responses=errors)
    async def metadata(request: Request) -> dict[str, Any]:
        endpoint.check_key(request.headers)
        info = predictor.metadata()
        info["batching"] = {"max_batch_size": max_batch_size, "max_wait_ms": max_wait_ms}
        info["limits"] = {"max_body_bytes": max_body_bytes, "max_samples_per_request": max_samples}
        info["stats"] = {"model_calls": batcher.calls, "samples": batcher.samples}
        if predictor.manifest is not None:
            info["deployment"] = {
                k: predictor.manifest.get(k) for k in ("target", "options", "created", "verification")
            }
        return info

    # Front answers POST /predict before FastAPI sees it; this route puts it in the OpenAPI
    # schema and serves it when the FastAPI app is mounted on its own.
    @app.post(
        "/predict",
        summary="labels and probabilities for one sample or a batch",
        response_model=None,
        responses={200: {"model": PredictResponse}, **errors},
        openapi_extra={
            "requestBody": {
                "required": True,
                "content": {"application/json": {"schema": PredictRequest.model_json_schema()}},
            }
        },
    )
    async def predict(request: Request) -> Response:
        status, body = await endpoint(await request.body(), request.headers)
        return Response(body, status, media_type="application/json")

    return Front(app, endpoint, max_body_bytes)


# --------------------------------------------------------------------------- running


def make_server(app: Any, host: str, port: int, log_level: str = "warning") -> Any:
    import uvicorn

    config = uvicorn.Config(app, host=host, port=port, log_level=log_level, access_log=False, lifespan="on")
    return uvicorn.Server(config)


class BackgroundServer:
    """Run an app with uvicorn in a thread (tests, benchmarks): ``with BackgroundServer(app) as url: ...``."""

    def __init__(self, app: Any, host: str = "127.0.0.1", port: int = 0, log_level: str = "warning") -> None:
        self.host, self.port = host, port or free_port(host)
        self.server = make_server(app, self.host, self.port, log_level)
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def __enter__(self) -> str:
        self.thread.start()
        deadline = time.monotonic() + 30
        while not self.server.started:
            if not self.thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("the server did not start")
            time.sleep(0.02)
        return self.url

    def __exit__(self, *exc: Any) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)


def free_port(host: str = "127.0.0.1") -> int:
    import socket

    with socket.socket() as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])
