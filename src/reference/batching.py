"""Batching: more work per model call, and the latency it costs.

* :func:`embedding_throughput` measures texts per second of an embedder at several
  batch sizes (bigger batches use the CPU/GPU better, up to a point).
* :class:`MicroBatcher` collects concurrent single requests into batches (up to
  ``max_batch_size`` items or ``max_wait_ms`` milliseconds, whichever comes first) and
  hands each batch to one function call: the pattern behind dynamic batching in
  model servers.
* :func:`run_concurrent` fires requests with a bounded number in flight and records
  each one's latency; :func:`latency_summary` reduces those to p50/p95/p99.

Example:
    >>> with MicroBatcher(lambda xs: [x * 2 for x in xs], max_batch_size=8, max_wait_ms=5) as mb:
    ...     mb.submit(21).result()
    42
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

import numpy as np

from reference.errors import ConfigurationError, InputError, LabError

T = TypeVar("T")
R = TypeVar("R")


class BatcherClosedError(LabError):
    """A request was submitted to a micro-batcher that has been closed."""


def latency_summary(latencies_s: Sequence[float]) -> dict[str, float]:
    """p50, p95, p99, mean and max of a list of latencies (seconds), plus the count.

    Example:
        >>> latency_summary([1.0, 2.0, 3.0, 4.0])["p50"]
        2.5
    """
    values = np.asarray(list(latencies_s), dtype=float)
    if values.size == 0:
        raise InputError("no latencies to summarise")
    return {
        "n": float(values.size),
        "mean": float(values.mean()),
        "p50": float(np.percentile(values, 50)),
        "p95": float(np.percentile(values, 95)),
        "p99": float(np.percentile(values, 99)),
        "max": float(values.max()),
    }


def embedding_throughput(embedder: Any, texts: Sequence[str], batch_sizes: Iterable[int], *,
                         repeats: int = 1, warmup: bool = True,
                         clock: Callable[[], float] = time.perf_counter) -> list[dict[str, float]]:
    """Texts per second of ``embedder.embed`` at each batch size.

    Args:
        embedder: any :class:`reference.embeddings.Embedder`.
        texts: the texts to embed each time (use the same set for every size).
        batch_sizes: sizes to try, e.g. ``[1, 8, 32, 128]``.
        repeats: runs per size; the fastest is kept (less noise from other processes).
        warmup: embed a few texts first so one-time start-up cost is not counted.

    Returns:
        one row per batch size: ``batch_size``, ``seconds``, ``texts_per_s``, ``ms_per_text``.

    Example:
        >>> from reference.embeddings import FakeEmbedder
        >>> rows = embedding_throughput(FakeEmbedder(), ["a b", "c d"] * 4, [1, 4])
        >>> [r["batch_size"] for r in rows]
        [1, 4]
    """
    items = list(texts)
    sizes = list(batch_sizes)
    if not items:
        raise InputError("need at least one text to measure throughput")
    if not sizes or any(int(b) < 1 for b in sizes):
        raise InputError(f"batch sizes must be positive integers, got {sizes}")
    if repeats < 1:
        raise InputError("repeats must be >= 1")
    if warmup:
        embedder.embed(items[: min(8, len(items))])
    rows = []
    for size in sizes:
        best = float("inf")
        for _ in range(repeats):
            start = clock()
            embedder.embed(items, batch_size=int(size))
            best = min(best, clock() - start)
        best = max(best, 1e-9)
        rows.append({"batch_size": int(size), "seconds": best, "texts_per_s": len(items) / best,
                     "ms_per_text": 1000 * best / len(items)})
    return rows


@dataclass
class _Pending(Generic[T, R]):
    item: T
    future: Future
    enqueued: float = field(default_factory=time.perf_counter)


class MicroBatcher(Generic[T, R]):
    """Collect concurrent requests into batches for one call of ``fn``.

    A background thread waits for the first request, then keeps collecting until the
    batch holds ``max_batch_size`` items or ``max_wait_ms`` have passed since that
    first request, and calls ``fn(batch)``, which must return one result per item in
    order. Each caller gets a :class:`concurrent.futures.Future`.

    Trade-off: a longer wait fills bigger batches (higher throughput) but adds up to
    ``max_wait_ms`` to every request's latency.

    Args:
        fn: processes a list of items, returns a list of results of the same length.
        max_batch_size: the most items in one call.
        max_wait_ms: the longest a request waits for companions.

    Attributes:
        batch_sizes: the size of every batch sent so far (for analysis).
    """

    def __init__(self, fn: Callable[[list[T]], Sequence[R]], *, max_batch_size: int = 32,
                 max_wait_ms: float = 10.0) -> None:
        if max_batch_size < 1:
            raise ConfigurationError("max_batch_size must be >= 1")
        if max_wait_ms < 0:
            raise ConfigurationError("max_wait_ms must be >= 0")
        self.fn = fn
        self.max_batch_size = max_batch_size
        self.max_wait_s = max_wait_ms / 1000.0
        self.batch_sizes: list[int] = []
        self.queue_waits_s: list[float] = []
        self._queue: list[_Pending[T, R]] = []
        self._cond = threading.Condition()
        self._closed = False
        self._thread = threading.Thread(target=self._loop, name="micro-batcher", daemon=True)
        self._thread.start()

    def submit(self, item: T) -> Future:
        """Queue one request; returns a future for its result."""
        future: Future = Future()
        with self._cond:
            if self._closed:
                raise BatcherClosedError("this MicroBatcher is closed: create a new one")
            self._queue.append(_Pending(item, future))
            self._cond.notify()
        return future

    def __call__(self, item: T, timeout: float | None = None) -> R:
        """Submit and wait: the blocking form for request handlers."""
        return self.submit(item).result(timeout=timeout)

    def _take_batch(self) -> list[_Pending[T, R]] | None:
        with self._cond:
            while not self._queue and not self._closed:
                self._cond.wait()
            if not self._queue:
                return None  # closed and drained
            deadline = self._queue[0].enqueued + self.max_wait_s
            while len(self._queue) < self.max_batch_size and not self._closed:
                remaining = deadline - time.perf_counter()
                if remaining <= 0:
                    break
                self._cond.wait(timeout=remaining)
            batch = self._queue[: self.max_batch_size]
            del self._queue[: self.max_batch_size]
            return batch

    def _loop(self) -> None:
        while True:
            batch = self._take_batch()
            if batch is None:
                return
            now = time.perf_counter()
            self.batch_sizes.append(len(batch))
            self.queue_waits_s.extend(now - p.enqueued for p in batch)
            try:
                results = list(self.fn([p.item for p in batch]))
                if len(results) != len(batch):
                    raise LabError(f"batch function returned {len(results)} results for {len(batch)} items")
            except BaseException as exc:  # noqa: BLE001 - every waiting caller must hear about it
                for p in batch:
                    p.future.set_exception(exc)
                continue
            for p, result in zip(batch, results, strict=True):
                p.future.set_result(result)

    def close(self) -> None:
        """Stop accepting requests, finish the queued ones, and stop the thread."""
        with self._cond:
            self._closed = True
            self._cond.notify_all()
        self._thread.join(timeout=30)

    def __enter__(self) -> MicroBatcher[T, R]:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def run_concurrent(fn: Callable[[T], R], items: Sequence[T], *, concurrency: int = 4,
                   clock: Callable[[], float] = time.perf_counter) -> dict[str, Any]:
    """Call ``fn`` on every item with at most ``concurrency`` calls in flight.

    Returns:
        ``results`` (in input order), ``latencies_s`` (per item, in input order),
        ``errors`` (``(index, exception)`` pairs), ``wall_s`` and ``throughput_per_s``.

    Example:
        >>> out = run_concurrent(lambda x: x + 1, [1, 2, 3], concurrency=2)
        >>> out["results"]
        [2, 3, 4]
    """
    if concurrency < 1:
        raise InputError("concurrency must be >= 1")
    items = list(items)
    results: list[Any] = [None] * len(items)
    latencies = [0.0] * len(items)
    errors: list[tuple[int, BaseException]] = []

    def one(index: int) -> None:
        start = clock()
        try:
            results[index] = fn(items[index])
        except Exception as exc:  # noqa: BLE001 - reported, not raised, so one failure does not hide the rest
            errors.append((index, exc))
        latencies[index] = clock() - start

    started = clock()
    with ThreadPoolExecutor(max_workers=concurrency) as pool:
        list(pool.map(one, range(len(items))))
    wall = clock() - started
    return {"results": results, "latencies_s": latencies, "errors": sorted(errors, key=lambda e: e[0]),
            "wall_s": wall, "throughput_per_s": len(items) / wall if wall > 0 else 0.0}
