"""Dynamic batching for ``engine serve``: a small asyncio loop in front of one model thread."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch


class Overloaded(Exception):
    """The queue of samples waiting for the model is full: the request is refused (503), not queued."""


@dataclass
class _Item:
    x: np.ndarray
    top_k: int
    future: asyncio.Future[list[dict[str, Any]]]
    arrived: float  # time.monotonic() when queued
    key: tuple[tuple[str, Any], ...] | None = None  # options the batch is computed with: batches share them


@dataclass
class Batcher:
    """Collects queued requests into batches of at most ``max_batch_size`` samples, adaptively.

    Requests are numpy arrays ``[n, *sample_shape]``. In one worker thread, each batch is
    concatenated into one tensor and passed to ``predict(batch, top_k)``, which returns one
    JSON-ready record per sample: the model call *and* the post-processing (softmax, top-k,
    labels) are done once per batch, off the event loop.

    **Adaptive.** A batch waits for more requests only when there is reason to expect them: it
    aims at the size of the previous batch (the clients it just answered are likely to come
    back), up to ``max_wait_ms`` counted from its first request's arrival. A request arriving
    at an idle server after a batch of one (a single client) runs at once; under load, requests
    that queued while the model was busy go at once too, so the model is never idle while a
    request has waited its time. ``max_batch_size=1`` turns batching off.

    **Bounded.** At most ``max_queue`` samples wait; beyond that `submit` raises
    `Overloaded` (the server answers 503 with ``Retry-After``), so memory stays bounded
    under overload.
    """

    predict: Callable[..., list[dict[str, Any]]]
    max_batch_size: int = 32
    max_wait_ms: float = 5.0
    max_queue: int = 1024
    on_batch: Callable[[int], None] | None = None  # called with each batch's size (metrics)
    calls: int = 0
    samples: int = 0
    queued: int = 0  # samples waiting
    _queue: asyncio.Queue[_Item] | None = None
    _held: _Item | None = None
    _last_size: int = 1
    _task: asyncio.Task[None] | None = None
    _executor: ThreadPoolExecutor | None = field(default=None, repr=False)

    def start(self) -> None:
        self._queue = asyncio.Queue()
        self._executor = ThreadPoolExecutor(1, thread_name_prefix="model")
        self._task = asyncio.get_running_loop().create_task(self._loop())

    @property
    def running(self) -> bool:
        return self._task is not None and not self._task.done()

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                pass
        if self._executor is not None:
            self._executor.shutdown(wait=False)

    async def submit(
        self, x: np.ndarray, top_k: int = 3, key: tuple[tuple[str, Any], ...] | None = None
    ) -> list[dict[str, Any]]:
        """The records of the samples in ``x`` (computed with the batch they joined).

        ``key``: options passed to ``predict`` as keywords (a text run's decoding options); requests with other
        options go in other batches. ``x`` may be an object array of token id lists (a text run's inputs).
        """
        assert self._queue is not None, "Batcher.start() was not called"
        if self.queued + len(x) > self.max_queue:
            raise Overloaded(f"{self.queued} samples are waiting for the model (at most {self.max_queue})")
        future: asyncio.Future[list[dict[str, Any]]] = asyncio.get_running_loop().create_future()
        self.queued += len(x)
        self._queue.put_nowait(_Item(x, top_k, future, time.monotonic(), key))
        return await future

    async def _next(self) -> list[_Item]:
        assert self._queue is not None
        first = self._held or await self._queue.get()
        self._held = None
        items, size = [first], len(first.x)
        target = min(self.max_batch_size, self._last_size)  # adaptive: as many as were just answered
        deadline = first.arrived + self.max_wait_ms / 1000
        while size < self.max_batch_size:
            try:
                item = self._queue.get_nowait()
            except asyncio.QueueEmpty:
                remaining = deadline - time.monotonic()
                if size >= target or remaining <= 0:
                    break
                try:
                    item = await asyncio.wait_for(self._queue.get(), remaining)
                except asyncio.TimeoutError:
                    break
            if size + len(item.x) > self.max_batch_size or item.key != first.key:
                self._held = item  # starts the next batch
                break
            items.append(item)
            size += len(item.x)
        self._last_size = size
        return items

    def _compute(self, arrays: list[np.ndarray], top_k: int, key: Any = None) -> list[dict[str, Any]]:
        """In the model thread: one tensor for the whole batch (token id lists stay lists), its records."""
        batch = arrays[0] if len(arrays) == 1 else np.concatenate(arrays)
        if batch.dtype == object:
            return self.predict(list(batch), top_k, dict(key or ()))
        return self.predict(torch.from_numpy(batch), top_k)

    async def _loop(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            items = await self._next()
            self.queued -= sum(len(i.x) for i in items)
            live = [i for i in items if not i.future.done()]  # a client may have gone away
            if not live:
                continue
            top_k = max(i.top_k for i in live)
            try:
                arrays = [i.x for i in live]
                records = await loop.run_in_executor(self._executor, self._compute, arrays, top_k, live[0].key)
            except Exception as exc:
                for item in live:
                    if not item.future.done():
                        item.future.set_exception(exc)
                continue
            self.calls += 1
            self.samples += len(records)
            if self.on_batch is not None:
                self.on_batch(len(records))
            start = 0
            for item in live:
                n = len(item.x)
                if not item.future.done():
                    mine = records[start : start + n]
                    if item.top_k < top_k:  # this request asked for fewer labels than the batch computed
                        mine = [{**r, "top": r["top"][: item.top_k]} if "top" in r else r for r in mine]
                    item.future.set_result(mine)
                start += n
