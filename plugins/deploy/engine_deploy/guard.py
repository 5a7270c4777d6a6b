"""The limits a server reachable by others needs, enforced below the app: header size, read time, connections.

uvicorn's own parsers differ (httptools accepts a 64 MB header, h11 answers 400) and neither
times out a client that sends half a request head and waits (slowloris). `Limits` states
every limit once; `make_server` applies them with uvicorn's options (connections, keep-alive)
and a protocol subclass (the request head must arrive whole, within ``read_timeout_s`` and
``max_header_bytes``: 408 / 431 otherwise). The body's limits (size, read time) are applied by
the app as it reads it (`engine_deploy.server.Front`).

uvicorn counts every open connection against ``max_connections``, so 520 sockets holding half a
head made every request, ``/health`` included, a 503 until the read timeout: connections still
sending a request have their own budget (`Pending`), ``/health`` and ``/ready`` are answered
whatever the load, and every refusal made here is counted in ``engine_rejected_total``.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any

import httptools
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from engine import EngineError


@dataclass(frozen=True)
class Limits:
    """What one server accepts (``engine serve`` flags of the same names)."""

    max_body_bytes: int = 1_048_576  # a request body (413 above)
    max_header_bytes: int = 16_384  # the request line and headers together (431 above)
    read_timeout_s: float = 10.0  # to receive a request's head, and then its body (408 after)
    keep_alive_s: float = 5.0  # an idle keep-alive connection is closed after this
    max_connections: int = 512  # open connections and requests in progress (503 above; /health, /ready exempt)
    max_pending: int | None = None  # connections still sending a request or idle (None: max_connections // 2)
    max_pending_per_client: int = 64  # of those, from one client address (over either: the oldest is closed)
    max_queue: int = 1024  # samples waiting for the model (503 + Retry-After above)
    max_samples: int = 256  # samples in one request (422 above)
    max_depth: int = 32  # nesting of a request's JSON (422 deeper)
    max_text_chars: int = 4096  # characters of one text input of a text run (422 above)
    max_new_tokens: int = 256  # tokens a text run generates per input (422 above; the default when not asked)

    def check(self) -> Limits:
        """Refuse limits that cannot work, naming the flag."""
        for name, low in (
            ("max_body_bytes", 64),
            ("max_header_bytes", 1024),
            ("max_connections", 1),
            ("max_pending", 1),
            ("max_pending_per_client", 1),
            ("max_queue", 1),
            ("max_samples", 1),
            ("max_depth", 3),
            ("max_text_chars", 1),
            ("max_new_tokens", 1),
        ):
            if getattr(self, name) is not None and getattr(self, name) < low:
                raise EngineError(f"--{name.replace('_', '-')} must be at least {low}, got {getattr(self, name)}")
        for name in ("read_timeout_s", "keep_alive_s"):
            if getattr(self, name) <= 0:
                flag = name.removesuffix("_s").replace("_", "-")
                raise EngineError(f"--{flag} must be a positive number of seconds, got {getattr(self, name)}")
        if self.max_pending is not None and self.max_pending >= self.max_connections:
            raise EngineError(
                f"--max-pending ({self.max_pending}) must be below --max-connections ({self.max_connections}): "
                "connections still sending a request must leave room for complete ones"
            )
        return self

    @property
    def pending(self) -> tuple[int, int]:
        """The budget of connections still sending a request: in total, and per client address."""
        total = self.max_pending if self.max_pending is not None else max(1, self.max_connections // 2)
        return total, min(self.max_pending_per_client, total)


_408 = b"HTTP/1.1 408 Request Timeout\r\ncontent-type: text/plain\r\ncontent-length: %d\r\nconnection: close\r\n\r\n%s"
_431 = (
    b"HTTP/1.1 431 Request Header Fields Too Large\r\ncontent-type: text/plain\r\ncontent-length: %d\r\n"
    b"connection: close\r\n\r\n%s"
)


class Pending:
    """Connections still sending a request (its head or body) or idle between requests, oldest first.

    Each client address has a budget of them and the server one in total (`Limits.pending`); a
    connection that would exceed either makes room by closing the oldest (``evicted``). A client holding
    half-sent requests open thus keeps at most its budget of connections, never the capacity complete
    requests use, and a new request (a health probe) gets in: its head arrives at once, the flood's never.
    """

    def __init__(self, limits: Limits, count: Any) -> None:
        self.total, self.per_client = limits.pending
        self.count = count
        self.all: dict[Any, str] = {}  # connection -> client address, in the order they started waiting
        self.by_client: dict[str, dict[Any, None]] = {}

    def add(self, conn: Any, client: str) -> None:
        self.remove(conn)
        self.all[conn] = client
        mine = self.by_client.setdefault(client, {})
        mine[conn] = None
        if len(mine) > self.per_client:
            next(iter(mine)).evict()
        if len(self.all) > self.total:
            next(iter(self.all)).evict()
        self.count(None)

    def remove(self, conn: Any) -> None:
        client = self.all.pop(conn, None)
        if client is not None:
            mine = self.by_client[client]
            del mine[conn]
            if not mine:
                del self.by_client[client]
            self.count(None)


#: Answered whatever the load: a failing liveness probe gets a container restarted.
PROBES = (b"/health", b"/ready")


def guarded_protocol(limits: Limits, metrics: Any = None) -> type[asyncio.Protocol]:
    """uvicorn's httptools protocol, made to close request heads that are too slow or too large, to give
    connections still sending a request their own budget (`Pending`), and to count every refusal
    it makes in ``metrics`` (`engine_deploy.metrics.ServerMetrics`, ``engine_rejected_total``)."""

    def count(reason: str | None) -> None:
        if metrics is not None:
            if reason is not None:
                metrics.rejected.labels(reason).inc()
            metrics.pending.set(len(pending.all))

    pending = Pending(limits, count)

    class GuardedProtocol(HttpToolsProtocol):  # type: ignore[misc]
        def connection_made(self, transport: Any) -> None:
            super().connection_made(transport)
            self._head_timer: asyncio.TimerHandle | None = None
            self._address = str(self.client[0]) if self.client else "?"
            if metrics is not None:
                metrics.connections.inc()
            self._arm()

        def _arm(self) -> None:
            """A request head (or, between requests, the next one) must arrive within the read timeout."""
            self._reading_head, self._head_bytes, self._tail = True, 0, b""
            if self._head_timer is not None:
                self._head_timer.cancel()
            self._head_timer = self.loop.call_later(limits.read_timeout_s, self._head_too_slow)
            pending.add(self, self._address)

        def _close(self, reason: str, reply: bytes = b"") -> None:
            """Close the connection (after ``reply``), counted under ``reason``."""
            pending.remove(self)
            if not self.transport.is_closing():
                if reply:
                    self.transport.write(reply)
                self.transport.close()
                count(reason)

        def evict(self) -> None:
            """Make room for a newer connection (see `Pending`)."""
            msg = b"request not completed in time: the server needed the connection"
            answered = self.cycle is not None and self.cycle.response_started and not self._reading_head
            partial = (self._head_bytes or not self._reading_head) and not answered
            self._close("evicted", _408 % (len(msg), msg) if partial else b"")

        def _head_too_slow(self) -> None:
            if self._reading_head:
                if self._head_bytes:  # half a request: say why; an idle connection is just closed
                    msg = b"request head not received in time"
                    self._close("head_timeout", _408 % (len(msg), msg))
                else:
                    self._close("idle")

        def data_received(self, data: bytes) -> None:
            if self._reading_head:
                # Count the head only (a body may come in the same chunk): up to the blank line ending it.
                end = (self._tail + data).find(b"\r\n\r\n")
                seen = len(data) if end < 0 else end + 4 - len(self._tail)
                self._head_bytes += seen
                self._tail = (self._tail + data)[-3:]
                if self._head_bytes > limits.max_header_bytes and not self.transport.is_closing():
                    msg = b"request line and headers exceed %d bytes" % limits.max_header_bytes
                    self._close("header_too_large", _431 % (len(msg), msg))
                    return
            super().data_received(data)

        def on_headers_complete(self) -> None:
            self._reading_head = False
            if self._head_timer is not None:
                self._head_timer.cancel()
                self._head_timer = None
            limit = self.limit_concurrency
            if limit is not None and (len(self.connections) >= limit or len(self.tasks) >= limit):
                try:
                    probe = httptools.parse_url(self.url).path in PROBES
                except httptools.HttpParserInvalidURLError:
                    probe = False
                if probe:  # answered whatever the load (uvicorn would say 503)
                    self.limit_concurrency = None
                    try:
                        super().on_headers_complete()
                    finally:
                        self.limit_concurrency = limit
                    return
                count("connections")  # uvicorn answers 503
            super().on_headers_complete()

        def on_message_complete(self) -> None:
            pending.remove(self)  # the whole request is here: no longer the budget's
            super().on_message_complete()

        def on_response_complete(self) -> None:
            idle = not self.pipeline  # else the next pipelined request starts now
            super().on_response_complete()
            if idle and not self.transport.is_closing():
                self._arm()

        def timeout_keep_alive_handler(self) -> None:
            self._close("idle")

        def send_400_response(self, msg: str) -> None:
            pending.remove(self)
            if not self.transport.is_closing():
                count("bad_request")
            super().send_400_response(msg)

        def connection_lost(self, exc: Exception | None) -> None:
            pending.remove(self)
            if self._head_timer is not None:
                self._head_timer.cancel()
            if metrics is not None:
                metrics.connections.dec()
            super().connection_lost(exc)

    return GuardedProtocol


def make_server(app: Any, host: str, port: int, limits: Limits, log_level: str = "warning") -> Any:
    """A uvicorn server for ``app`` with ``limits`` applied."""
    import uvicorn

    config = uvicorn.Config(
        app,
        host=host,
        port=port,
        log_level=log_level,
        access_log=False,
        lifespan="on",
        http=guarded_protocol(limits, getattr(app, "metrics", None)),
        limit_concurrency=limits.max_connections,
        timeout_keep_alive=limits.keep_alive_s,
        h11_max_incomplete_event_size=limits.max_header_bytes,
    )
    return uvicorn.Server(config)
