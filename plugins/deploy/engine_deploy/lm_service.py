"""Generation behind ``engine serve``'s OpenAI-compatible routes: a scheduler thread with continuous batching.

Requests become jobs (prompt ids, decoding options, an asyncio queue for their tokens). One worker thread owns
the model: it admits the jobs waiting (the ones that arrived within ``max_wait_ms`` of each other share one
batch), then advances every admitted batch by one token per round, so a request arriving while others generate
joins at the next token rather than after them (continuous batching). The task decodes (`DecodesInSteps`:
``task.decoder(network, prompts, options)``, then ``step()`` / ``cancel(i)``); a task with only
``generate_stream`` (`StreamsTokens`) is advanced a token per round per request, unbatched. A job whose client
went away is cancelled: its row leaves the batch at the next step and its slot is free at once.

The worker starts with the first request and ends after ``idle_s`` without work (a server stopping leaves no
thread behind for long).
"""

from __future__ import annotations

import asyncio
import queue
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

from prometheus_client import Counter, Gauge, Histogram

from engine.protocols import implements

TTFT_BUCKETS = (0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0, 2.0, 5.0, 10.0)
RATE_BUCKETS = (1, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000)


@runtime_checkable
class DecodesInSteps(Protocol):
    """A `Generates` task that decodes several prompts a token at a time (continuous batching in a server)."""

    def decoder(self, network: Callable[..., Any], inputs: list[list[int]], options: list[dict[str, Any]]) -> Any:
        """An object with ``step() -> [(new ids, finished)]`` per prompt, ``cancel(i)`` and ``finished``."""
        ...


class _StreamDecoder:
    """`DecodesInSteps`'s interface over one ``generate_stream`` (a task without a batched decoder)."""

    def __init__(self, tokens: Iterator[int]) -> None:
        self.tokens, self.finished = tokens, False

    def cancel(self, i: int) -> None:
        self.finished = True

    def step(self) -> list[tuple[list[int], bool]]:
        if self.finished:
            return [([], True)]
        try:
            return [([next(self.tokens)], False)]
        except StopIteration:
            self.finished = True
            return [([], True)]


@dataclass
class Job:
    """One request's generation: its tokens arrive on ``queue`` as ``(ids, finished)`` from the worker thread."""

    ids: list[int]
    options: dict[str, Any]
    loop: asyncio.AbstractEventLoop
    queue: asyncio.Queue = field(default_factory=asyncio.Queue)
    cancelled: bool = False
    created: float = field(default_factory=time.perf_counter)
    first: float | None = None
    count: int = 0


class GenerationMetrics:
    """What ``/metrics`` gains: ``engine_generated_tokens_total``, ``engine_time_to_first_token_seconds``,
    ``engine_generation_tokens_per_second`` (per request, after its first token), ``engine_active_generations``."""

    def __init__(self, registry: Any) -> None:
        self.tokens = Counter("engine_generated_tokens", "tokens generated", registry=registry)
        self.ttft = Histogram(
            "engine_time_to_first_token_seconds", "request to first token", buckets=TTFT_BUCKETS, registry=registry
        )
        self.rate = Histogram(
            "engine_generation_tokens_per_second", "tokens/s of a request", buckets=RATE_BUCKETS, registry=registry
        )
        self.active = Gauge("engine_active_generations", "requests generating", registry=registry)


class Generator:
    """The scheduler: ``submit(job)`` from the event loop; the worker thread generates and fills job queues."""

    def __init__(
        self,
        task: Any,
        network: Callable[..., Any],
        metrics: GenerationMetrics,
        max_batch_size: int = 8,
        max_wait_ms: float = 5.0,
        idle_s: float = 2.0,
    ) -> None:
        self.task, self.network, self.metrics = task, network, metrics
        self.max_batch_size, self.max_wait_s, self.idle_s = max_batch_size, max_wait_ms / 1000, idle_s
        self.incoming: queue.Queue[Job] = queue.Queue()
        self.lock = threading.Lock()
        self.thread: threading.Thread | None = None
        self.batches: list[int] = []  # rows per admitted batch (tests, the bench)

    def check(self, ids: list[int], options: dict[str, Any]) -> None:
        """Raise the task's ConfigError for a prompt or options it refuses, before a job is queued."""
        if implements(self.task, DecodesInSteps):
            self.task.decoder(self.network, [ids], [options])
        else:
            self.task.generate_stream(self.network, ids, **options)

    def submit(self, job: Job) -> None:
        self.metrics.active.inc()
        self.incoming.put(job)
        with self.lock:
            if self.thread is None or not self.thread.is_alive():
                self.thread = threading.Thread(target=self._work, name="engine-generate", daemon=True)
                self.thread.start()

    # ------------------------------------------------------------------ the worker thread
    def _admit(self, block: bool) -> list[Job]:
        jobs: list[Job] = []
        try:
            jobs.append(self.incoming.get(timeout=self.idle_s) if block else self.incoming.get_nowait())
        except queue.Empty:
            return jobs
        deadline = time.monotonic() + self.max_wait_s
        while len(jobs) < self.max_batch_size:
            try:
                jobs.append(self.incoming.get(timeout=max(0.0, deadline - time.monotonic())))
            except queue.Empty:
                break
        return [j for j in jobs if not self._drop_cancelled(j)]

    def _drop_cancelled(self, job: Job) -> bool:
        if job.cancelled:
            self._finish(job)
        return job.cancelled

    def _decoder(self, jobs: list[Job]) -> Any:
        if implements(self.task, DecodesInSteps):
            return self.task.decoder(self.network, [j.ids for j in jobs], [j.options for j in jobs])
        return _StreamDecoder(self.task.generate_stream(self.network, jobs[0].ids, **jobs[0].options))

    def _work(self) -> None:
        running: list[tuple[Any, list[Job]]] = []
        while True:
            jobs = self._admit(block=not running)
            if not jobs and not running and self.incoming.empty():
                with self.lock:  # idle: end, unless a job arrived meanwhile
                    if self.incoming.empty():
                        self.thread = None
                        return
                continue
            batched = implements(self.task, DecodesInSteps)
            for group in [jobs] if batched and jobs else [[j] for j in jobs]:
                try:
                    running.append((self._decoder(group), group))
                    self.batches.append(len(group))
                except Exception as exc:  # checked at submit; a failure here answers the jobs, never hangs them
                    for j in group:
                        self._push(j, exc, True)
            for decoder, group in list(running):
                for i, j in enumerate(group):
                    if j.cancelled:
                        decoder.cancel(i)
                try:
                    results = decoder.step()
                except Exception as exc:
                    results = [(exc, True)] * len(group)
                for j, (tokens, done) in zip(group, results, strict=True):
                    if not j.cancelled or done:
                        self._push(j, tokens, done)
                if decoder.finished or all(done for _, done in results):
                    running.remove((decoder, group))

    def _push(self, job: Job, tokens: Any, done: bool) -> None:
        if isinstance(tokens, list) and tokens:
            now = time.perf_counter()
            if job.first is None:
                job.first = now
                self.metrics.ttft.observe(now - job.created)
            job.count += len(tokens)
            self.metrics.tokens.inc(len(tokens))
        if done:
            self._finish(job)
        if tokens or done:
            job.loop.call_soon_threadsafe(job.queue.put_nowait, (tokens, done))

    def _finish(self, job: Job) -> None:
        self.metrics.active.dec()
        if job.first is not None and job.count > 1:
            self.metrics.rate.observe((job.count - 1) / max(time.perf_counter() - job.first, 1e-9))
