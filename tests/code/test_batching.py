"""Unit tests for reference.batching: throughput measurement, micro-batcher, concurrency."""

from __future__ import annotations

import threading
import time

import pytest

from reference.batching import (
    BatcherClosedError,
    MicroBatcher,
    embedding_throughput,
    latency_summary,
    run_concurrent,
)
from reference.embeddings import FakeEmbedder
from reference.errors import ConfigurationError, InputError


def test_latency_summary_percentiles():
    s = latency_summary([float(i) for i in range(1, 101)])
    assert s["p50"] == pytest.approx(50.5) and s["p95"] == pytest.approx(95.05) and s["max"] == 100
    with pytest.raises(InputError):
        latency_summary([])


def test_embedding_throughput_uses_each_batch_size():
    class Counting(FakeEmbedder):
        def __init__(self):
            super().__init__(dim=8)
            self.batches = []

        def _encode(self, batch):
            self.batches.append(len(batch))
            return super()._encode(batch)

    emb = Counting()
    rows = embedding_throughput(emb, [f"text {i}" for i in range(10)], [1, 4, 10], warmup=False)
    assert [r["batch_size"] for r in rows] == [1, 4, 10]
    assert emb.batches == [1] * 10 + [4, 4, 2] + [10]
    assert all(r["texts_per_s"] > 0 and r["ms_per_text"] > 0 for r in rows)
    with pytest.raises(InputError):
        embedding_throughput(emb, [], [1])
    with pytest.raises(InputError):
        embedding_throughput(emb, ["a"], [0])


def test_micro_batcher_groups_concurrent_requests():
    seen = []

    def double(batch):
        seen.append(list(batch))
        time.sleep(0.01)
        return [x * 2 for x in batch]

    with MicroBatcher(double, max_batch_size=8, max_wait_ms=50) as mb:
        futures = [mb.submit(i) for i in range(20)]
        results = [f.result(timeout=5) for f in futures]
    assert results == [i * 2 for i in range(20)]
    assert max(mb.batch_sizes) <= 8 and sum(mb.batch_sizes) == 20
    assert len(mb.batch_sizes) < 20  # requests were actually grouped
    assert sorted(x for b in seen for x in b) == list(range(20))


def test_micro_batcher_waits_at_most_max_wait():
    with MicroBatcher(lambda xs: xs, max_batch_size=100, max_wait_ms=20) as mb:
        start = time.perf_counter()
        assert mb(7, timeout=5) == 7
        assert time.perf_counter() - start < 1.0  # a lone request is not held for a full batch
    assert mb.batch_sizes == [1]


def test_micro_batcher_propagates_errors_and_refuses_after_close():
    def boom(batch):
        raise RuntimeError("model crashed")

    mb = MicroBatcher(boom, max_batch_size=4, max_wait_ms=1)
    with pytest.raises(RuntimeError, match="crashed"):
        mb.submit(1).result(timeout=5)
    mb.close()
    with pytest.raises(BatcherClosedError):
        mb.submit(2)
    with pytest.raises(ConfigurationError):
        MicroBatcher(boom, max_batch_size=0)


def test_micro_batcher_rejects_wrong_result_count():
    with MicroBatcher(lambda xs: xs[:-1], max_batch_size=2, max_wait_ms=1) as mb:
        with pytest.raises(Exception, match="results"):
            mb.submit(1).result(timeout=5)


def test_run_concurrent_bounds_in_flight_and_records_errors():
    lock = threading.Lock()
    state = {"now": 0, "peak": 0}

    def work(x):
        with lock:
            state["now"] += 1
            state["peak"] = max(state["peak"], state["now"])
        time.sleep(0.01)
        with lock:
            state["now"] -= 1
        if x == 3:
            raise ValueError("bad item")
        return x * 10

    out = run_concurrent(work, list(range(12)), concurrency=3)
    assert state["peak"] <= 3
    assert out["results"][5] == 50 and out["results"][3] is None
    assert [i for i, _ in out["errors"]] == [3]
    assert all(lat > 0 for lat in out["latencies_s"]) and out["throughput_per_s"] > 0
