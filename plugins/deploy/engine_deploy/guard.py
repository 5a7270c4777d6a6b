"""The limits a server reachable by others needs, enforced below the app: header size, read time, connections.

uvicorn's own parsers differ (httptools accepts a 64 MB header, h11 answers 400) and neither
times out a client that sends half a request head and waits (slowloris). :class:`Limits` states
every limit once; :func:`make_server` applies them with uvicorn's options (connections, keep-alive)
and a protocol subclass (the request head must arrive whole, within ``read_timeout_s`` and
``max_header_bytes``: 408 / 431 otherwise). The body's limits (size, read time) are applied by
the app as it reads it (:class:`engine_deploy.server.Front`).
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from engine import EngineError


@dataclass(frozen=True)
class Limits:
    """What one server accepts (``engine serve`` flags of the same names)."""

    max_body_bytes: int = 1_048_576  # a request body (413 above)
    max_header_bytes: int = 16_384  # the request line and headers together (431 above)
    read_timeout_s: float = 10.0  # to receive a request's head, and then its body (408 after)
    keep_alive_s: float = 5.0  # an idle keep-alive connection is closed after this
    max_connections: int = 512  # open connections and requests in progress (503 above)
    max_queue: int = 1024  # samples waiting for the model (503 + Retry-After above)
    max_samples: int = 256  # samples in one request (422 above)
    max_depth: int = 32  # nesting of a request's JSON (422 deeper)

    def check(self) -> Limits:
        """Refuse limits that cannot work, naming the flag."""
        for name, low in (
            ("max_body_bytes", 64),
            ("max_header_bytes", 1024),
            ("max_connections", 1),
            ("max_queue", 1),
            ("max_samples", 1),
            ("max_depth", 3),
        ):
            if getattr(self, name) < low:
                raise EngineError(f"--{name.replace('_', '-')} must be at least {low}, got {getattr(self, name)}")
        for name in ("read_timeout_s", "keep_alive_s"):
            if getattr(self, name) <= 0:
                flag = name.removesuffix("_s").replace("_", "-")
                raise EngineError(f"--{flag} must be a positive number of seconds, got {getattr(self, name)}")
        return self


_408 = b"HTTP/1.1 408 Request Timeout\r\ncontent-type: text/plain\r\ncontent-length: %d\r\nconnection: close\r\n\r\n%s"
_431 = (
    b"HTTP/1.1 431 Request Header Fields Too Large\r\ncontent-type: text/plain\r\ncontent-length: %d\r\n"
    b"connection: close\r\n\r\n%s"
)


def guarded_protocol(limits: Limits) -> type[asyncio.Protocol]:
    """uvicorn's httptools protocol, made to close request heads that are too slow or too large."""

    class GuardedProtocol(HttpToolsProtocol):  # type: ignore[misc]
        def connection_made(self, transport: Any) -> None:
            super().connection_made(transport)
            self._head_timer: asyncio.TimerHandle | None = None
            self._arm()

        def _arm(self) -> None:
            """A request head (or, between requests, the next one) must arrive within the read timeout."""
            self._reading_head, self._head_bytes, self._tail = True, 0, b""
            if self._head_timer is not None:
                self._head_timer.cancel()
            self._head_timer = self.loop.call_later(limits.read_timeout_s, self._head_too_slow)

        def _head_too_slow(self) -> None:
            if self._reading_head and not self.transport.is_closing():
                if self._head_bytes:  # half a request: say why; an idle connection is just closed
                    msg = b"request head not received in time"
                    self.transport.write(_408 % (len(msg), msg))
                self.transport.close()

        def data_received(self, data: bytes) -> None:
            if self._reading_head:
                # Count the head only (a body may come in the same chunk): up to the blank line ending it.
                end = (self._tail + data).find(b"\r\n\r\n")
                seen = len(data) if end < 0 else end + 4 - len(self._tail)
                self._head_bytes += seen
                self._tail = (self._tail + data)[-3:]
                if self._head_bytes > limits.max_header_bytes and not self.transport.is_closing():
                    msg = b"request line and headers exceed %d bytes" % limits.max_header_bytes
                    self.transport.write(_431 % (len(msg), msg))
                    self.transport.close()
                    return
            super().data_received(data)

        def on_headers_complete(self) -> None:
            self._reading_head = False
            if self._head_timer is not None:
                self._head_timer.cancel()
                self._head_timer = None
            super().on_headers_complete()

        def on_response_complete(self) -> None:
            super().on_response_complete()
            if not self.transport.is_closing():
                self._arm()

        def connection_lost(self, exc: Exception | None) -> None:
            if self._head_timer is not None:
                self._head_timer.cancel()
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
        http=guarded_protocol(limits),
        limit_concurrency=limits.max_connections,
        timeout_keep_alive=limits.keep_alive_s,
        h11_max_incomplete_event_size=limits.max_header_bytes,
    )
    return uvicorn.Server(config)
