"""Fault-injection tests for reference.resilience: timeouts, retries, fallback, breaker, user answer."""

from __future__ import annotations

import time

import httpx
import pytest

from reference.errors import (
    AuthenticationError,
    ConfigurationError,
    InputError,
    ProviderTimeoutError,
    ProviderUnavailableError,
    RateLimitError,
)
from reference.llm import FakeChatModel, OpenAIChatModel
from reference.resilience import (
    CircuitBreaker,
    ResilientChat,
    RetryPolicy,
    call_with_timeout,
    json_object_validator,
)

USER = [{"role": "user", "content": "Status of order NB-ORD-41234?"}]
NO_WAIT = RetryPolicy(max_attempts=3, base_delay_s=0.0)


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def openai_model(handler, name="remote") -> OpenAIChatModel:
    client = httpx.Client(transport=httpx.MockTransport(handler))
    return OpenAIChatModel(name, api_key="sk-test-not-a-real-key-123456", http_client=client, max_retries=0)


def completion(text: str) -> dict:
    return {"id": "c1", "object": "chat.completion", "created": 0, "model": "remote",
            "choices": [{"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}],
            "usage": {"prompt_tokens": 5, "completion_tokens": 2, "total_tokens": 7}}


def test_timeout_turns_a_hang_into_a_clear_error():
    start = time.perf_counter()
    with pytest.raises(ProviderTimeoutError, match="0.05"):
        call_with_timeout(lambda: time.sleep(1.0), timeout_s=0.05)
    assert time.perf_counter() - start < 0.5
    assert call_with_timeout(lambda: "fast", timeout_s=1.0) == "fast"


def test_retries_transient_errors_with_backoff_then_succeeds():
    delays = []
    llm = FakeChatModel(responses=[RateLimitError("429"), ProviderUnavailableError("503"), "shipped"])
    chat = ResilientChat([llm], retry=RetryPolicy(max_attempts=3, base_delay_s=1.0, jitter=False), sleep=delays.append)
    reply = chat.chat(USER)
    assert reply.ok and reply.text == "shipped" and not reply.degraded
    assert delays == [1.0, 2.0]  # exponential
    assert [a.outcome for a in reply.attempts] == ["RateLimitError", "ProviderUnavailableError", "ok"]


def test_jittered_delays_stay_within_the_cap():
    policy = RetryPolicy(base_delay_s=1.0, max_delay_s=5.0)
    assert all(0 <= policy.delay(n) <= min(5.0, 2**n) for n in range(10) for _ in range(20))


def test_falls_back_to_the_second_model():
    primary = FakeChatModel(responses=[RateLimitError("429")], model="primary")
    backup = FakeChatModel(responses=["from backup"], model="backup")
    reply = ResilientChat([primary, backup], retry=NO_WAIT, sleep=lambda s: None).chat(USER)
    assert reply.ok and reply.model == "backup" and reply.degraded
    assert len(primary.calls) == 3 and len(backup.calls) == 1


def test_permanent_errors_skip_retries():
    primary = FakeChatModel(responses=[AuthenticationError("401")], model="primary")
    backup = FakeChatModel(responses=["ok"], model="backup")
    reply = ResilientChat([primary, backup], retry=NO_WAIT, sleep=lambda s: None).chat(USER)
    assert len(primary.calls) == 1 and reply.model == "backup"


def test_bad_input_is_raised_not_retried():
    llm = FakeChatModel(responses=[InputError("prompt too long")])
    backup = FakeChatModel(responses=["never"])
    with pytest.raises(InputError):
        ResilientChat([llm, backup], retry=NO_WAIT, sleep=lambda s: None).chat(USER)
    assert len(llm.calls) == 1 and not backup.calls


def test_malformed_json_is_retried_then_falls_back():
    primary = FakeChatModel(responses=['{"status": "shipped"'], model="primary")  # truncated JSON
    backup = FakeChatModel(responses=['{"status": "shipped"}'], model="backup")
    chat = ResilientChat([primary, backup], retry=RetryPolicy(max_attempts=2, base_delay_s=0),
                         validate=json_object_validator, sleep=lambda s: None)
    reply = chat.chat(USER)
    assert reply.ok and reply.model == "backup"
    assert [a.outcome for a in reply.attempts] == ["OutputParseError", "OutputParseError", "ok"]


def test_every_model_failing_gives_a_clear_answer():
    a = FakeChatModel(responses=[ProviderTimeoutError("slow")], model="a")
    b = FakeChatModel(responses=[RateLimitError("429")], model="b")
    chat = ResilientChat([a, b], retry=NO_WAIT, sleep=lambda s: None)
    reply = chat.chat(USER)
    assert not reply.ok and reply.response is None
    assert "try again" in reply.text and "Traceback" not in reply.text and "429" not in reply.text
    assert "a: ProviderTimeoutError" in reply.summary()
    with pytest.raises(ProviderUnavailableError, match="every model failed"):
        chat.chat(USER, raise_on_failure=True)


def test_circuit_breaker_states():
    clock = Clock()
    b = CircuitBreaker(failure_threshold=2, reset_after_s=10, clock=clock)
    assert b.state == "closed" and b.allow()
    b.record_failure()
    assert b.state == "closed"
    b.record_failure()
    assert b.state == "open" and not b.allow()
    clock.now = 10
    assert b.state == "half_open"
    assert b.allow() and not b.allow()  # one trial at a time
    b.record_failure()
    assert b.state == "open"
    clock.now = 25
    assert b.allow()
    b.record_success()
    assert b.state == "closed"
    assert b.transitions == [("closed", "open"), ("open", "half_open"), ("half_open", "open"),
                             ("open", "half_open"), ("half_open", "closed")]
    with pytest.raises(ConfigurationError):
        CircuitBreaker(failure_threshold=0)


def test_open_circuit_skips_the_broken_model():
    clock = Clock()
    primary = FakeChatModel(responses=[ProviderUnavailableError("500")], model="primary")
    backup = FakeChatModel(responses=["ok"], model="backup")
    breakers = [CircuitBreaker(failure_threshold=3, reset_after_s=30, clock=clock), CircuitBreaker(clock=clock)]
    chat = ResilientChat([primary, backup], retry=NO_WAIT, breakers=breakers, sleep=lambda s: None)
    chat.chat(USER)  # 3 failures open the primary's circuit
    assert breakers[0].state == "open"
    reply = chat.chat(USER)
    assert reply.attempts[0].outcome == "skipped: circuit open" and reply.model == "backup"
    assert len(primary.calls) == 3  # not called again while open


def test_http_faults_through_the_openai_client():
    script = iter([
        httpx.Response(429, json={"error": {"message": "slow down"}}),
        httpx.Response(500, json={"error": {"message": "boom"}}),
        httpx.Response(200, json=completion("delivered")),
    ])
    seen = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request.url.path)
        return next(script)

    reply = ResilientChat([openai_model(handler)], retry=NO_WAIT, sleep=lambda s: None).chat(USER)
    assert reply.ok and reply.text == "delivered" and len(seen) == 3


def test_http_timeout_and_malformed_body_fall_back():
    def hangs(request: httpx.Request) -> httpx.Response:
        raise httpx.ReadTimeout("timed out", request=request)

    def garbled(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json=completion("not json at all"))

    backup = FakeChatModel(responses=['{"ok": true}'], model="backup")
    chat = ResilientChat([openai_model(hangs, "a"), openai_model(garbled, "b"), backup],
                         retry=RetryPolicy(max_attempts=2, base_delay_s=0), validate=json_object_validator,
                         sleep=lambda s: None)
    reply = chat.chat(USER)
    assert reply.ok and reply.model == "backup"
    assert [a.outcome for a in reply.attempts][:4] == ["ProviderTimeoutError"] * 2 + ["OutputParseError"] * 2
