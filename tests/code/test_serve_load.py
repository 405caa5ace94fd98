"""The server under load: admission control, 429s, timeouts, readiness, metrics, logs, drain.

A scripted model that sleeps per token stands in for llama.cpp, so every timing here is
known in advance and the file runs in a few seconds.
"""

from __future__ import annotations

import asyncio
import json
import logging
import threading
import time

import httpx
import numpy as np
import pytest

from reference.embeddings import FakeEmbedder
from reference.errors import ConfigurationError, InputError
from reference.loadgen import (
    LoadResult,
    chat_body,
    check_loopback,
    find_knee,
    percentile,
    replicas_needed,
    run_load_sync,
)
from reference.serve import FairQueue, LabServer, ServerLimits, create_app, kv_cache_bytes_per_token


class SlowModel:
    """What the server needs from a chat model; one token every ``delay_s`` seconds."""

    n_ctx = 2048

    def __init__(self, delay_s: float = 0.01) -> None:
        self.delay_s = delay_s
        self.started = threading.Event()
        self.running = 0
        self.max_running = 0

    def prompt_tokens(self, messages):
        return sum(len(str(m.get("content", "")).split()) for m in messages)

    def iter_tokens(self, messages, *, cancel=None, max_tokens=16, **opts):
        self.running += 1
        self.max_running = max(self.max_running, self.running)
        self.started.set()
        self._last_finish = "length"
        try:
            for i in range(max_tokens):
                if cancel is not None and cancel.is_set():
                    self._last_finish = "cancelled"
                    return
                time.sleep(self.delay_s)
                yield f"t{i} "
        finally:
            self.running -= 1


def serve(limits: ServerLimits, model: SlowModel | None = None, **kw) -> LabServer:
    return LabServer(create_app(model or SlowModel(), FakeEmbedder(dim=8), limits=limits, **kw))


CHAT = "/chat/completions"


def test_overload_sheds_with_429_and_every_request_is_answered():
    limits = ServerLimits(max_concurrency=1, max_queue=2)
    model = SlowModel(0.01)
    with serve(limits, model) as server:
        r = run_load_sync(server.base_url + CHAT, chat_body(max_tokens=5), concurrency=12, n_requests=36,
                          max_duration_s=20)
    assert r.sent == 36 and r.answered == 36, f"some requests got no answer: {r.statuses}"
    assert set(r.statuses) <= {200, 429}, r.statuses
    assert r.statuses[429] > 0 and r.statuses[200] >= 3
    assert r.retry_after_s and all(s >= 1 for s in r.retry_after_s), "429 without a usable Retry-After"
    assert model.max_running == 1, "more generations ran at once than max_concurrency"


def test_p99_of_admitted_requests_stays_bounded_while_an_unbounded_queue_grows():
    body = chat_body(max_tokens=5)  # ~50 ms of work each
    with serve(ServerLimits(max_concurrency=1, max_queue=2)) as server:
        bounded = run_load_sync(server.base_url + CHAT, body, concurrency=16, n_requests=48, max_duration_s=20)
    with serve(ServerLimits(max_concurrency=1, max_queue=1000)) as server:
        unbounded = run_load_sync(server.base_url + CHAT, body, concurrency=16, n_requests=48, max_duration_s=20)
    # admitted requests wait behind at most 2 others: about 3 x 50 ms, far from the unbounded pile-up
    assert bounded.p99_s < 0.6, bounded.row()
    assert unbounded.statuses == {200: 48}
    assert unbounded.p99_s > 2 * bounded.p99_s, (bounded.row(), unbounded.row())


def test_waiting_too_long_is_503_and_generating_too_long_is_504():
    limits = ServerLimits(max_concurrency=1, max_queue=4, queue_timeout_s=0.1, request_timeout_s=0.25)
    with serve(limits, SlowModel(0.01)) as server:
        r = run_load_sync(server.base_url + CHAT, chat_body(max_tokens=100), concurrency=2, n_requests=2)
        assert r.statuses == {504: 1, 503: 1}, r.statuses
        quick = httpx.post(server.base_url + CHAT, json=chat_body(max_tokens=3), timeout=5)
        assert quick.status_code == 200


def test_waiting_requests_are_served_round_robin_across_clients():
    async def scenario() -> list[str]:
        q = FairQueue(max_active=1, max_waiting=10)
        assert q.enter("a").done()
        futures = [("a1", q.enter("a")), ("a2", q.enter("a")), ("a3", q.enter("a")), ("b1", q.enter("b"))]
        order = []
        for _ in futures:
            q.release()
            order += [name for name, f in futures if f.done() and name not in order]
        return order

    assert asyncio.run(scenario()) == ["a1", "b1", "a2", "a3"]


def test_fair_queue_full_abandon_and_release_accounting():
    async def scenario() -> None:
        q = FairQueue(max_active=1, max_waiting=1)
        q.enter("a")
        waiting = q.enter("b")
        assert q.enter("c") is None, "a full queue must refuse"
        q.abandon(waiting)
        assert q.waiting == 0 and q.enter("c") is not None
        q.release()
        q.release()
        assert (q.active, q.waiting) == (0, 0)

    asyncio.run(scenario())


def test_readiness_follows_model_loading_and_draining():
    unloaded = create_app(None, FakeEmbedder(dim=8))  # would load llama.cpp lazily: not ready yet
    with LabServer(unloaded) as server:
        r = httpx.get(server.root_url + "/ready")
        assert r.status_code == 503 and r.json()["chat_model_loaded"] is False
        assert httpx.get(server.root_url + "/health").status_code == 200
    with serve(ServerLimits()) as server:
        assert httpx.get(server.root_url + "/ready").status_code == 200
        server.state.draining = True
        assert httpx.get(server.root_url + "/ready").status_code == 503
        refused = httpx.post(server.base_url + CHAT, json=chat_body(), timeout=5)
        assert refused.status_code == 503 and refused.json()["error"]["code"] == "draining"
        assert "retry-after" in refused.headers


def test_metrics_expose_requests_latency_tokens_queue_and_rejections():
    with serve(ServerLimits(max_concurrency=1, max_queue=0)) as server:
        run_load_sync(server.base_url + CHAT, chat_body(max_tokens=4), concurrency=4, n_requests=8)
        text = httpx.get(server.root_url + "/metrics").text
    assert 'lab_requests_total{path="/v1/chat/completions",status="200"}' in text
    assert 'lab_rejections_total{reason="queue_full"}' in text
    assert "lab_request_latency_seconds_bucket" in text and "lab_queue_depth" in text
    completion = [line for line in text.splitlines() if line.startswith('lab_tokens_total{kind="completion"}')]
    ok = [line for line in text.splitlines()
          if line.startswith('lab_requests_total{path="/v1/chat/completions",status="200"}')]
    assert float(completion[0].split()[-1]) == 4 * float(ok[0].split()[-1])


def test_access_log_is_one_json_line_per_request_without_key_or_content(caplog):
    secret = "sk-lab-very-secret-key-123"
    # caplog's level outlives the server: the access line is written after the response is
    # sent, so the server must stop (and finish logging) before the capture level is reset.
    with caplog.at_level(logging.INFO, "reference.serve.access"), serve(ServerLimits(), api_key=secret) as server:
        r = httpx.post(server.base_url + CHAT, json=chat_body("my password is hunter2", max_tokens=3),
                       headers={"Authorization": f"Bearer {secret}", "X-Request-Id": "req-42"}, timeout=5)
        assert r.headers["x-request-id"] == "req-42"
        httpx.post(server.base_url + CHAT, json=chat_body(), timeout=5)  # no key: 401
    lines = [rec.getMessage() for rec in caplog.records if rec.name == "reference.serve.access"]
    records = [json.loads(line) for line in lines]
    assert [(x["id"], x["status"]) for x in records][0] == ("req-42", 200)
    assert records[1]["status"] == 401 and len(records) == 2
    assert records[0]["prompt_tokens"] == 4 and records[0]["completion_tokens"] == 3
    assert records[0]["latency_ms"] > 0
    assert not any(secret in line or "hunter2" in line for line in lines)


def test_graceful_shutdown_finishes_in_flight_and_refuses_new_work():
    model = SlowModel(0.01)
    server = serve(ServerLimits(), model).start()
    box = {}

    def slow_request():
        box["r"] = httpx.post(server.base_url + CHAT, json=chat_body(max_tokens=40), timeout=10)

    t = threading.Thread(target=slow_request)
    t.start()
    assert model.started.wait(5)
    stopper = threading.Thread(target=lambda: box.setdefault("waited", server.stop()))
    stopper.start()
    time.sleep(0.05)
    during = httpx.post(server.base_url + CHAT, json=chat_body(max_tokens=2), timeout=5)
    t.join(10)
    stopper.join(20)
    assert during.status_code == 503
    assert box["r"].status_code == 200 and box["r"].json()["usage"]["completion_tokens"] == 40
    assert box["waited"] > 0.1, "stop() did not wait for the in-flight request"


def test_embedding_requests_are_batched_and_answers_match_unbatched():
    emb = FakeEmbedder(dim=16)
    limits = ServerLimits(embed_batch_window_s=0.02)
    texts = [f"robot number {i} arm" for i in range(16)]
    app = create_app(SlowModel(), emb, limits=limits)
    with LabServer(app) as server:
        r = run_load_sync(server.base_url + "/embeddings",
                          lambda i: {"model": "all-minilm-l6-v2", "input": texts[i]}, concurrency=16, n_requests=16)
        one = httpx.post(server.base_url + "/embeddings", json={"model": "all-minilm-l6-v2", "input": texts[3]},
                         timeout=5).json()
    assert r.statuses == {200: 16}
    assert app.state.embed_batcher.batches < 12, "concurrent requests were not grouped"
    np.testing.assert_allclose(one["data"][0]["embedding"], emb.embed([texts[3]])[0], rtol=1e-5)


def test_limits_and_helpers_reject_nonsense():
    with pytest.raises(ConfigurationError):
        ServerLimits(max_concurrency=0)
    with pytest.raises(InputError):
        check_loopback("http://10.0.0.1:8000/v1")
    with pytest.raises(InputError):
        check_loopback("http://example.com/v1")
    assert check_loopback("http://[::1]:8000/v1")
    with pytest.raises(InputError):
        run_load_sync("http://127.0.0.1:1/v1/x", {}, n_requests=10**6)
    assert kv_cache_bytes_per_token(30, 3, 64) == 23040
    assert kv_cache_bytes_per_token(32, 8, 128) == 131072  # an 8B-class model with GQA in fp16
    with pytest.raises(InputError):
        kv_cache_bytes_per_token(0, 3, 64)


def test_knee_replicas_and_percentiles():
    runs = [LoadResult(c, 10, 10, 0, 0, 10 / rps) for c, rps in [(1, 4.0), (2, 7.8), (4, 8.2), (8, 8.1)]]
    assert find_knee(runs).concurrency == 2
    assert replicas_needed(1000, 8.0, headroom=0.3) == 179
    assert percentile([1.0] * 99 + [10.0], 99) > 1.0 and np.isnan(percentile([], 50))
