"""``engine serve``: a FastAPI app over a `Predictor`, with dynamic batching, an API key and a body limit.

Why FastAPI + uvicorn rather than LitServe (both install here): one process, started in
well under a second (tests start it in-process on a free port), with the request checks
(size limit, API key, JSON, shape) written as plain code returning 4xx with a message; the
OpenAPI schema comes from pydantic models. LitServe adds inference worker processes fed
through queues, which on a small CPU machine costs more than it gives. Dynamic batching
here is a small asyncio loop (`Batcher`); the model and its post-processing run once
per batch in one worker thread, so the event loop keeps accepting requests while a batch computes.

Limits (`engine_deploy.guard.Limits`, one ``engine serve`` flag each) hold under hostile
clients: the request head's size and read time, and the budget of connections still sending a
request (per client and in total), are enforced by the protocol (`engine_deploy.guard`),
connections by uvicorn, the body's size and read time by `Front`, and everything a request
body holds by `engine_deploy.endpoint.PredictEndpoint` (4xx with a reason, never a 500); a
full queue answers 503 with ``Retry-After``. ``GET /metrics`` is Prometheus, ``/health`` liveness,
``/ready`` readiness.

The hot path is kept off FastAPI: `Front`, the ASGI entry, enforces the body limit
and answers ``POST /predict`` itself (FastAPI's routing and middleware cost about 0.13 ms a
request, as much as a sample of the digits model in a batch). Everything else (health,
metadata, docs, the OpenAPI schema) is FastAPI's. Requests are checked in numpy on the
event loop; torch runs only in the model thread, so the two threads do not trade the GIL
on every request.
"""

from __future__ import annotations

import asyncio
import json
import logging
import threading
import time
from contextlib import asynccontextmanager
from dataclasses import asdict, replace
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import Response

from engine import EngineError
from engine_deploy.batching import Batcher
from engine_deploy.endpoint import Headers, PredictEndpoint, Refused, to_json
from engine_deploy.guard import Limits, make_server
from engine_deploy.metrics import REASONS, ServerMetrics
from engine_deploy.openai_routes import mount_openai
from engine_deploy.predictor import Predictor
from engine_deploy.schemas import ErrorResponse, PredictRequest, PredictResponse

log = logging.getLogger("uvicorn.error")

# --------------------------------------------------------------------------- the ASGI entry


class Front:
    """The ASGI entry: body limits, metrics and the access log for every request; ``POST /predict`` here.

    A body larger than ``max_body_bytes`` (declared or streamed) gets 413 before it is read
    whole; one that does not arrive within ``read_timeout_s`` gets 408 and the connection is
    closed. Every answer is counted in `ServerMetrics`; with ``access_log`` each request
    is also one JSON line on the server's log.
    """

    def __init__(self, app: Any, endpoint: PredictEndpoint, metrics: ServerMetrics, access_log: bool = False) -> None:
        self.app, self.endpoint, self.metrics, self.access_log = app, endpoint, metrics, access_log
        self.limits = endpoint.limits

    async def _send(self, send: Any, status: int, body: bytes, extra: tuple[tuple[bytes, bytes], ...] = ()) -> None:
        headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()), *extra]
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": body})

    async def _read_body(self, receive: Any) -> bytes | tuple[int, str] | None:
        """The whole body; ``(status, detail)`` when refused; None when the client went away."""
        chunks: list[bytes] = []
        total = 0
        deadline = time.monotonic() + self.limits.read_timeout_s
        while True:
            try:
                message = await asyncio.wait_for(receive(), max(0.0, deadline - time.monotonic()))
            except asyncio.TimeoutError:
                return 408, f"request body not received within {self.limits.read_timeout_s:g} s"
            if message["type"] == "http.disconnect":
                return None
            chunk = message.get("body", b"")
            total += len(chunk)
            if total > self.limits.max_body_bytes:
                return 413, f"request body exceeds the limit of {self.limits.max_body_bytes} bytes"
            chunks.append(chunk)
            if not message.get("more_body", False):
                return b"".join(chunks)

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        path = scope["path"]
        route = path if path in ROUTES else "other"
        status = 500
        started_response = False

        async def counted(message: Any) -> None:
            nonlocal status, started_response
            if message["type"] == "http.response.start":
                status, started_response = message["status"], True
            await send(message)

        try:
            await self._handle(scope, receive, counted)
            if not started_response:
                status = 499  # the client went away (or was closed to make room) before an answer: not a 500
        finally:
            seconds = time.perf_counter() - started
            self.metrics.answered(route, status, seconds)
            if status in REASONS and status != 200:
                self.metrics.rejected.labels(REASONS[status]).inc()
            if self.access_log:
                log.info(
                    json.dumps(
                        {
                            "method": scope["method"],
                            "path": path,
                            "status": status,
                            "ms": round(seconds * 1000, 3),
                            "client": (scope.get("client") or ["-"])[0],
                        }
                    )
                )

    async def _handle(self, scope: Any, receive: Any, send: Any) -> None:
        headers = Headers(scope.get("headers") or [])
        declared = headers.get("content-length")
        if declared is not None:
            try:
                size = int(declared)
            except ValueError:
                await self._send(send, 400, to_json({"detail": "invalid Content-Length header"}))
                return
            if size > self.limits.max_body_bytes:
                detail = f"request body of {size} bytes exceeds the limit of {self.limits.max_body_bytes}"
                await self._send(send, 413, to_json({"detail": detail}), ((b"connection", b"close"),))
                return
        body = await self._read_body(receive)
        if body is None:
            return
        if isinstance(body, tuple):
            await self._send(send, body[0], to_json({"detail": body[1]}), ((b"connection", b"close"),))
            return
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


ROUTES = ("/predict", "/health", "/ready", "/metadata", "/metrics", "/docs", "/openapi.json")


# --------------------------------------------------------------------------- the app


def create_app(
    predictor: Predictor,
    max_batch_size: int = 32,
    max_wait_ms: float = 5.0,
    api_key: str | None = None,
    max_body_bytes: int | None = None,
    limits: Limits | None = None,
    access_log: bool = False,
) -> Front:
    """The ASGI app serving ``predictor``: `Front` over the FastAPI app (its ``.app``)."""
    limits = limits or Limits()
    if max_body_bytes is not None:
        limits = replace(limits, max_body_bytes=max_body_bytes)
    limits.check()
    if max_batch_size < 1:
        raise EngineError(f"--max-batch-size must be >= 1, got {max_batch_size}")
    if max_wait_ms < 0:
        raise EngineError(f"--max-wait-ms must be >= 0, got {max_wait_ms}")
    if predictor.text is not None:  # a text run: the server's limit on one input's characters
        predictor.text.max_text_chars = limits.max_text_chars
    meta = predictor.metadata()
    metrics = ServerMetrics(
        {
            "run": predictor.run.path.name,
            "backend": predictor.backend,
            "task": str(predictor.run.config.get("task", {}).get("name", "")),
            "model": str(predictor.run.config.get("model", {}).get("name", "")),
        }
    )
    batcher = Batcher(predictor.predict, max_batch_size, max_wait_ms, limits.max_queue, metrics.batch.observe)
    endpoint = PredictEndpoint(predictor, batcher, limits, api_key)
    state: dict[str, Any] = {"ready": False, "reason": "starting"}

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> Any:
        batcher.start()
        try:  # the first model call (lazy init, allocations) happens before traffic; a model failing it is not ready
            warm = predictor.warmup()
            if warm is not None:
                await batcher.submit(warm[0], 1, warm[1])
            state.update(ready=True, reason=None)
        except Exception as exc:
            state["reason"] = f"the warm-up prediction failed: {type(exc).__name__}: {str(exc)[:200]}"
            log.error("%s; /ready answers 503 (POST /predict is still answered)", state["reason"])
        yield
        state["ready"] = False
        await batcher.stop()

    app = FastAPI(
        title="engine model server",
        description=f"Predictions from run {predictor.run.path.name} ({predictor.backend}).",
        version=str(meta["versions"].get("engine-deploy", "")),
        lifespan=lifespan,
    )
    app.state.batcher = batcher
    # what routes mounted on the app use (helper routes for text runs: the predictor's `.text` path, the batcher's
    # `submit(ids, 1, options)`, the API key check, the limits, the metrics)
    app.state.predictor, app.state.endpoint, app.state.limits, app.state.metrics = predictor, endpoint, limits, metrics
    errors = {
        400: {"model": ErrorResponse, "description": "malformed JSON"},
        401: {"model": ErrorResponse, "description": "missing, repeated or wrong API key"},
        413: {"model": ErrorResponse, "description": "request body too large"},
        415: {"model": ErrorResponse, "description": "body not sent as application/json"},
        422: {"model": ErrorResponse, "description": "inputs of the wrong shape or type"},
        503: {"model": ErrorResponse, "description": "overloaded: retry after the Retry-After seconds"},
    }

    @app.get("/health", summary="liveness: the process answers")
    async def health() -> dict[str, Any]:
        return {"status": "ok", "backend": predictor.backend}

    @app.get("/ready", summary="readiness: the model is loaded and has answered once")
    async def ready() -> Response:
        ok = bool(state["ready"]) and batcher.running
        answer = {"ready": ok} if ok else {"ready": False, "reason": state["reason"] or "the model thread stopped"}
        return Response(to_json(answer), 200 if ok else 503, media_type="application/json")

    @app.get("/metrics", summary="Prometheus metrics (text format)")
    async def prometheus() -> Response:
        metrics.queue.set(batcher.queued)
        return Response(metrics.render(), media_type=metrics.content_type)

    @app.get("/metadata", summary="input signature, class names, preprocessing, batching", responses=errors)
    async def metadata(request: Request) -> Response:
        try:
            endpoint.check_key(Headers(request.scope.get("headers") or []))
        except Refused as exc:
            return Response(to_json({"detail": exc.detail}), exc.status, media_type="application/json")
        info = predictor.metadata()
        info["batching"] = {"max_batch_size": max_batch_size, "max_wait_ms": max_wait_ms, "adaptive": True}
        info["limits"] = asdict(limits)
        info["stats"] = {"model_calls": batcher.calls, "samples": batcher.samples, "queued": batcher.queued}
        if predictor.manifest is not None:
            info["deployment"] = {
                k: predictor.manifest.get(k) for k in ("target", "options", "created", "verification")
            }
        return Response(to_json(info), media_type="application/json")

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
        status, body, extra = await endpoint(await request.body(), Headers(request.scope.get("headers") or []))
        return Response(body, status, media_type="application/json", headers={k.decode(): v.decode() for k, v in extra})

    mount_openai(app, predictor, endpoint.check_key, metrics.registry)  # /v1/… when the run generates text
    return Front(app, endpoint, metrics, access_log)


# --------------------------------------------------------------------------- running


class BackgroundServer:
    """Run an app with uvicorn in a thread (tests, benchmarks): ``with BackgroundServer(app) as url: ...``."""

    def __init__(self, app: Any, host: str = "127.0.0.1", port: int = 0, log_level: str = "warning") -> None:
        self.host, self.port = host, port or free_port(host)
        limits = app.limits if isinstance(app, Front) else Limits()
        self.server = make_server(app, self.host, self.port, limits, log_level)
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
