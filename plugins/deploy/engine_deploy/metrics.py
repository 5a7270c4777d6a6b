"""What ``GET /metrics`` exposes, in the Prometheus text format (``prometheus_client``).

One registry per app (several servers in one process, as tests run them, do not mix):

- ``engine_requests_total{route, status}`` and ``engine_request_seconds{route}`` (histogram);
- ``engine_batch_size`` (histogram of samples per model call) and ``engine_queue_samples``
  (samples waiting for the model);
- ``engine_rejected_total{reason}``: requests and connections refused. By the app: ``bad_json``,
  ``unauthorized``, ``body_too_large``, ``unsupported_media_type``, ``bad_input``, ``overloaded``
  (queue full), ``timeout`` (body not received in time). Below it (`engine_deploy.guard`):
  ``header_too_large`` (431), ``head_timeout`` (408: half a head), ``idle`` (closed without a
  request: nothing sent within the read timeout, or keep-alive expired), ``evicted`` (closed to
  make room: its client's or the server's budget of pending connections was full), ``bad_request``
  (400: not HTTP), ``connections`` (503: more than ``--max-connections`` in progress);
- ``engine_open_connections`` and ``engine_pending_connections`` (those still sending a request
  or idle between requests: the budget of `engine_deploy.guard.Pending`);
- ``engine_model_info{run, backend, task, model}``.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, Info, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

LATENCY_BUCKETS = (0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0, 2.0, 5.0)
BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256)


class ServerMetrics:
    """The server's counters and histograms, and their rendering for ``GET /metrics``."""

    content_type = CONTENT_TYPE_LATEST

    def __init__(self, info: dict[str, str]) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.requests = Counter("engine_requests", "HTTP requests answered", ["route", "status"], registry=r)
        self.latency = Histogram(
            "engine_request_seconds", "time to answer a request", ["route"], buckets=LATENCY_BUCKETS, registry=r
        )
        self.batch = Histogram("engine_batch_size", "samples per model call", buckets=BATCH_BUCKETS, registry=r)
        self.queue = Gauge("engine_queue_samples", "samples waiting for the model", registry=r)
        self.rejected = Counter("engine_rejected", "requests refused, by reason", ["reason"], registry=r)
        self.connections = Gauge("engine_open_connections", "open client connections", registry=r)
        self.pending = Gauge(
            "engine_pending_connections", "connections still sending a request, or idle between requests", registry=r
        )
        Info("engine_model", "the model being served", registry=r).info(info)

    def answered(self, route: str, status: int, seconds: float) -> None:
        self.requests.labels(route, str(status)).inc()
        self.latency.labels(route).observe(seconds)

    def render(self) -> bytes:
        return generate_latest(self.registry)


#: The reason label of each refusal status (the detail message says more).
REASONS: dict[int, str] = {
    400: "bad_json",
    401: "unauthorized",
    408: "timeout",
    413: "body_too_large",
    415: "unsupported_media_type",
    422: "bad_input",
    503: "overloaded",
}
