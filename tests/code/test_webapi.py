"""Tests for reference.webapi: the status codes the notebooks promise, bad input first."""

from __future__ import annotations

import asyncio
import json

import httpx
import pytest
from fastapi.testclient import TestClient

from reference import webapi
from reference.errors import (
    ConfigurationError,
    EmptyInputError,
    InputTooLargeError,
    ProviderError,
    ProviderTimeoutError,
    RateLimitError,
)
from reference.llm import FakeChatModel
from reference.webapi import (
    BodySizeLimitMiddleware,
    RateLimiter,
    create_app,
    generate_api_key,
    serve_in_thread,
    verify_api_key,
)

KEY = "test-key-" + "a" * 32
OTHER = "other-key-" + "b" * 32


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def make_client(model: FakeChatModel | None = None, **kwargs) -> TestClient:
    kwargs.setdefault("api_keys", [KEY])
    app = create_app(model or FakeChatModel(["A short summary."]), **kwargs)
    return TestClient(app, raise_server_exceptions=False)


def post(client: TestClient, body=None, key: str | None = KEY, **kw) -> httpx.Response:
    headers = {"X-API-Key": key} if key is not None else {}
    headers.update(kw.pop("headers", {}))
    if body is None:
        body = {"text": "The quick brown fox jumps over the lazy dog."}
    return client.post("/v1/summarise", json=body, headers=headers, **kw)


# --------------------------------------------------------------------------- happy path


def test_summarise_returns_summary_usage_and_calls_model_with_text():
    model = FakeChatModel(["  A short summary.  "])
    r = post(make_client(model), {"text": "Alpha beta gamma.", "max_tokens": 16})
    assert r.status_code == 200
    body = r.json()
    assert body["summary"] == "A short summary."
    assert body["provider"] == "fake" and body["model"] == "fake-model"
    assert set(body["usage"]) == {"prompt_tokens", "completion_tokens"}
    assert body["latency_ms"] >= 0 and len(body["request_id"]) == 32
    sent = model.calls[0]
    assert sent[0]["role"] == "system" and "Alpha beta gamma." in sent[-1]["content"]


def test_healthz_needs_no_key():
    r = make_client().get("/healthz")
    assert r.status_code == 200 and r.json() == {"status": "ok"}


def test_openapi_documents_endpoint_and_key_header():
    spec = make_client().get("/openapi.json").json()
    assert "/v1/summarise" in spec["paths"]
    schemes = spec["components"]["securitySchemes"]
    assert any(s.get("in") == "header" and s.get("name") == "X-API-Key" for s in schemes.values())
    assert {"401", "413", "429"} <= set(spec["paths"]["/v1/summarise"]["post"]["responses"])


# --------------------------------------------------------------------------- auth


def test_missing_key_is_401():
    r = post(make_client(), key=None)
    assert r.status_code == 401
    assert "missing" in r.json()["detail"]


def test_wrong_key_is_401_and_body_never_echoes_key():
    r = post(make_client(), key="wrong-key-" + "c" * 30)
    assert r.status_code == 401
    assert r.json()["detail"] == "invalid API key"
    assert KEY not in r.text


def test_empty_key_header_is_401():
    assert post(make_client(), key="").status_code == 401


def test_any_of_several_keys_is_accepted():
    client = make_client(api_keys=[KEY, OTHER])
    assert post(client, key=OTHER).status_code == 200
    assert post(client, key=KEY).status_code == 200


def test_verify_api_key_handles_non_ascii_and_none():
    assert verify_api_key("ключ-" * 5, [KEY]) is False
    assert verify_api_key(None, [KEY]) is False
    assert verify_api_key(KEY, [OTHER, KEY]) is True


def test_verify_api_key_uses_constant_time_compare_on_every_key(monkeypatch):
    calls = []
    real = webapi.hmac.compare_digest

    def spy(a, b):
        calls.append((a, b))
        return real(a, b)

    monkeypatch.setattr(webapi.hmac, "compare_digest", spy)
    assert verify_api_key(KEY, [KEY, OTHER]) is True
    # no early exit: both keys compared even though the first matched
    assert len(calls) == 2
    assert all(isinstance(a, bytes) and isinstance(b, bytes) for a, b in calls)


def test_no_keys_or_short_keys_refused():
    with pytest.raises(ConfigurationError, match="no API keys"):
        create_app(FakeChatModel(), api_keys=[])
    with pytest.raises(ConfigurationError, match="shorter"):
        create_app(FakeChatModel(), api_keys=["secret"])


def test_generated_keys_are_long_and_distinct():
    a, b = generate_api_key(), generate_api_key()
    assert a != b and len(a) >= webapi.MIN_KEY_LENGTH


# --------------------------------------------------------------------------- validation


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"text": ""},
        {"text": "   \n"},
        {"text": 42},
        {"text": "ok", "max_tokens": 0},
        {"text": "ok", "max_tokens": webapi.MAX_TOKENS_LIMIT + 1},
        {"text": "ok", "unexpected": True},
        {"text": "x" * (webapi.MAX_INPUT_CHARS + 1)},
    ],
)
def test_invalid_bodies_are_422(body):
    assert post(make_client(), body).status_code == 422


def test_malformed_json_is_422_and_does_not_echo_input():
    client = make_client()
    r = client.post("/v1/summarise", content=b'{"text": "secret-ish', headers={
        "X-API-Key": KEY, "content-type": "application/json"})
    assert r.status_code == 422
    assert "secret-ish" not in r.text


def test_validation_error_does_not_echo_long_input():
    r = post(make_client(), {"text": "y" * (webapi.MAX_INPUT_CHARS + 1)})
    assert r.status_code == 422 and len(r.content) < 1000


def test_auth_checked_before_body_validation_is_reported():
    # a bad body without a key still says 401 or 422, never 500
    r = post(make_client(), {"text": ""}, key=None)
    assert r.status_code in (401, 422)


# --------------------------------------------------------------------------- body limit


def test_oversized_body_is_413():
    client = make_client(max_body_bytes=1024)
    r = post(client, {"text": "z" * 5000})
    assert r.status_code == 413
    assert "limit is 1024" in r.json()["detail"]


def test_body_at_limit_passes_and_one_byte_over_fails():
    payload = json.dumps({"text": "w" * 100}).encode()
    ok = make_client(max_body_bytes=len(payload))
    assert ok.post("/v1/summarise", content=payload, headers={"X-API-Key": KEY,
                   "content-type": "application/json"}).status_code == 200
    tight = make_client(max_body_bytes=len(payload) - 1)
    assert tight.post("/v1/summarise", content=payload, headers={"X-API-Key": KEY,
                      "content-type": "application/json"}).status_code == 413


def test_chunked_body_without_content_length_is_counted():
    def chunks():
        for _ in range(20):
            yield b"x" * 1000

    client = make_client(max_body_bytes=4096)
    r = client.post("/v1/summarise", content=chunks(), headers={"X-API-Key": KEY,
                    "content-type": "application/json"})
    assert r.status_code == 413
    assert "at least" in r.json()["detail"]


def test_oversized_body_refused_before_auth():
    r = post(make_client(max_body_bytes=100), {"text": "z" * 500}, key=None)
    assert r.status_code == 413


def test_limit_off_lets_large_body_reach_validation():
    r = post(make_client(max_body_bytes=None), {"text": "z" * (webapi.MAX_INPUT_CHARS + 1)})
    assert r.status_code == 422


def test_middleware_rejects_malformed_content_length():
    sent = []

    async def app(scope, receive, send):  # pragma: no cover - must not be reached
        raise AssertionError("app called")

    async def receive():
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message):
        sent.append(message)

    mw = BodySizeLimitMiddleware(app, 10)
    scope = {"type": "http", "headers": [(b"content-length", b"abc")]}
    asyncio.run(mw(scope, receive, send))
    assert sent[0]["status"] == 400


def test_invalid_max_body_bytes_refused():
    with pytest.raises(ConfigurationError):
        create_app(FakeChatModel(), api_keys=[KEY], max_body_bytes=0)


# --------------------------------------------------------------------------- rate limit


def test_rate_limit_429_with_retry_after_then_recovers():
    clock = FakeClock()
    client = make_client(rate_limit_per_minute=3, clock=clock)
    assert [post(client).status_code for _ in range(3)] == [200, 200, 200]
    r = post(client)
    assert r.status_code == 429
    assert r.headers["Retry-After"] == "20"
    clock.now += 20
    assert post(client).status_code == 200


def test_rate_limit_is_per_key():
    clock = FakeClock()
    client = make_client(api_keys=[KEY, OTHER], rate_limit_per_minute=1, clock=clock)
    assert post(client, key=KEY).status_code == 200
    assert post(client, key=KEY).status_code == 429
    assert post(client, key=OTHER).status_code == 200


def test_unauthenticated_requests_do_not_use_up_the_budget():
    clock = FakeClock()
    client = make_client(rate_limit_per_minute=1, clock=clock)
    for _ in range(5):
        assert post(client, key="nope-" + "d" * 30).status_code == 401
    assert post(client).status_code == 200


def test_rate_limiter_refill_and_bad_config():
    clock = FakeClock()
    rl = RateLimiter(60, clock=clock)
    assert all(rl.acquire("a") == 0.0 for _ in range(60))
    assert rl.acquire("a") == pytest.approx(1.0)
    clock.now += 0.5
    assert rl.acquire("a") == pytest.approx(0.5)
    with pytest.raises(ConfigurationError):
        RateLimiter(0)


# --------------------------------------------------------------------------- provider errors


@pytest.mark.parametrize(
    ("exc", "status"),
    [
        (ProviderTimeoutError("slow"), 504),
        (RateLimitError("busy"), 503),
        (ProviderError("boom"), 502),
        (InputTooLargeError("too long for context"), 413),
        (EmptyInputError("empty"), 422),
    ],
)
def test_provider_errors_map_to_statuses(exc, status):
    r = post(make_client(FakeChatModel([exc])))
    assert r.status_code == status
    if status in (502, 503, 504):
        assert str(exc) not in r.text  # internals are not leaked


def test_unexpected_error_is_500_without_traceback():
    r = post(make_client(FakeChatModel([KeyError("internal detail")])))
    assert r.status_code == 500
    assert "internal detail" not in r.text


# --------------------------------------------------------------------------- app_from_env


def test_app_from_env_requires_keys(monkeypatch):
    monkeypatch.delenv("LAB_API_KEYS", raising=False)
    with pytest.raises(ConfigurationError, match="LAB_API_KEYS"):
        webapi.app_from_env()


def test_app_from_env_reads_keys_and_limits(monkeypatch):
    monkeypatch.setenv("LAB_API_KEYS", f" {KEY} , {OTHER} ")
    monkeypatch.setenv("LAB_PROVIDER", "fake")
    monkeypatch.setenv("LAB_MAX_BODY_BYTES", "200")
    client = TestClient(webapi.app_from_env())
    assert post(client, key=OTHER, body={"text": "hi"}).status_code == 200
    assert post(client, key=KEY, body={"text": "q" * 400}).status_code == 413


def test_app_from_env_rejects_bad_numbers(monkeypatch):
    monkeypatch.setenv("LAB_API_KEYS", KEY)
    monkeypatch.setenv("LAB_RATE_LIMIT_PER_MINUTE", "lots")
    with pytest.raises(ConfigurationError):
        webapi.app_from_env()


# --------------------------------------------------------------------------- real server


def test_serve_in_thread_serves_and_stops():
    app = create_app(FakeChatModel(["Served."]), api_keys=[KEY])
    with serve_in_thread(app) as server:
        assert server.url.startswith("http://127.0.0.1:")
        with httpx.Client(base_url=server.url, timeout=10) as client:
            assert client.get("/healthz").json() == {"status": "ok"}
            r = client.post("/v1/summarise", json={"text": "Hello there."}, headers={"X-API-Key": KEY})
            assert r.status_code == 200 and r.json()["summary"] == "Served."
            big = client.post("/v1/summarise", content=b"x" * (webapi.DEFAULT_MAX_BODY_BYTES + 1),
                              headers={"X-API-Key": KEY, "content-type": "application/json"})
            assert big.status_code == 413
    assert not server.thread.is_alive()
    with pytest.raises(httpx.ConnectError):
        httpx.get(server.url + "/healthz", timeout=2)


def test_real_server_answers_413_to_large_uploads_reliably():
    # the body is drained before the 413 is sent, so the client reads the response
    # instead of a connection reset (repeat: the failure was a race)
    body = b"x" * 3_000_000
    app = create_app(FakeChatModel(["ok"]), api_keys=[KEY], max_body_bytes=16_384)
    with serve_in_thread(app) as server, httpx.Client(base_url=server.url, timeout=30) as client:
        for _ in range(5):
            r = client.post("/v1/summarise", content=body, headers={"X-API-Key": KEY,
                            "content-type": "application/json"})
            assert r.status_code == 413
        assert client.post("/v1/summarise", json={"text": "hi"}, headers={"X-API-Key": KEY}).status_code == 200


def test_middleware_closes_connection_past_drain_limit():
    sent = []
    chunks = iter([b"a" * 100] * 10)

    async def app(scope, receive, send):  # pragma: no cover - must not be reached
        raise AssertionError("app called")

    async def receive():
        return {"type": "http.request", "body": next(chunks), "more_body": True}

    async def send(message):
        sent.append(message)

    mw = BodySizeLimitMiddleware(app, 10, drain_limit_bytes=250)
    asyncio.run(mw({"type": "http", "headers": [(b"content-length", b"100000")]}, receive, send))
    assert sent[0]["status"] == 413
    assert (b"connection", b"close") in sent[0]["headers"]
