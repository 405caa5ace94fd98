"""Unit tests for reference.llm: validation, fakes, provider selection, retries, key safety."""

from __future__ import annotations

import json

import httpx
import pytest

from reference.config import Settings
from reference.errors import (
    AuthenticationError,
    ConfigurationError,
    EmptyInputError,
    InputError,
    ModelNotFoundError,
    ProviderTimeoutError,
    ProviderUnavailableError,
    RateLimitError,
)
from reference.llm import (
    FakeChatModel,
    OpenAIChatModel,
    forced_tool_schema,
    get_chat_model,
    json_schema_from_response_format,
    redact,
    validate_messages,
)

SECRET = "sk-test-THISISASECRETKEY1234567890"
USER = [{"role": "user", "content": "hi"}]


def completion(text: str = "hello", **extra: object) -> dict:
    body = {
        "id": "chatcmpl-1", "object": "chat.completion", "created": 0, "model": "m",
        "choices": [{"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 5, "completion_tokens": 1, "total_tokens": 6},
    }
    body.update(extra)
    return body


def remote(handler, **kw) -> OpenAIChatModel:
    client = httpx.Client(transport=httpx.MockTransport(handler))
    model = OpenAIChatModel("m", api_key=SECRET, http_client=client, max_retries=kw.pop("max_retries", 2), **kw)
    model.retry_base_delay_s = 0.0
    return model


@pytest.mark.parametrize(
    ("messages", "error"),
    [
        ([], EmptyInputError),
        ("hello", InputError),
        ([{"role": "robot", "content": "x"}], InputError),
        ([{"role": "user"}], InputError),
        ([{"role": "user", "content": 3}], InputError),
        ([{"role": "user", "content": "   "}], EmptyInputError),
    ],
)
def test_bad_messages_raise_clear_errors(messages, error):
    with pytest.raises(error):
        validate_messages(messages)


def test_fake_model_reports_usage_and_latency():
    llm = FakeChatModel(responses=["one two three"])
    r = llm.chat([{"role": "user", "content": "count to three"}], max_tokens=10)
    assert r.text == "one two three"
    assert (r.usage.prompt_tokens, r.usage.completion_tokens, r.usage.total_tokens) == (3, 3, 6)
    assert r.latency_s >= 0 and r.provider == "fake" and r.finish_reason == "stop"


def test_fake_model_truncates_at_max_tokens_and_raises_scripted_errors():
    llm = FakeChatModel(responses=["a b c d e", RateLimitError("slow down")])
    r = llm.chat(USER, max_tokens=2)
    assert r.text == "a b" and r.finish_reason == "length"
    with pytest.raises(RateLimitError):
        llm.chat(USER)


def test_chat_rejects_bad_arguments():
    llm = FakeChatModel()
    with pytest.raises(InputError):
        llm.chat(USER, max_tokens=0)
    with pytest.raises(InputError):
        llm.chat(USER, temperature=3.0)


def test_provider_selection_from_settings(monkeypatch):
    assert Settings(provider="auto").resolved_provider() == "local"
    assert Settings(openai_api_key="k").resolved_provider() == "openai"
    assert Settings(openai_api_key="k", openai_base_url="http://127.0.0.1:1/v1").resolved_provider() == "compatible"
    monkeypatch.setenv("LAB_PROVIDER", "fake")
    assert get_chat_model().provider == "fake"
    with pytest.raises(ConfigurationError):
        get_chat_model("nonsense")


def test_describe_never_shows_the_key():
    text = Settings(openai_api_key=SECRET).describe()
    assert SECRET not in text and "not shown" in text
    assert SECRET not in repr(Settings(openai_api_key=SECRET))


def test_remote_success_carries_usage():
    seen = {}

    def handler(request: httpx.Request) -> httpx.Response:
        seen.update(json.loads(request.content))
        return httpx.Response(200, json=completion("bonjour"))

    r = remote(handler).chat(USER, max_tokens=7)
    assert r.text == "bonjour" and r.usage.total_tokens == 6 and r.provider == "openai"
    assert seen["max_tokens"] == 7 and seen["temperature"] == 0.0


def test_remote_retries_429_then_succeeds():
    calls = []

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(1)
        if len(calls) < 3:
            return httpx.Response(429, json={"error": {"message": "slow"}}, headers={"retry-after": "0"})
        return httpx.Response(200, json=completion())

    assert remote(handler).chat(USER).text == "hello"
    assert len(calls) == 3


@pytest.mark.parametrize(
    ("status", "error", "attempts"),
    [(429, RateLimitError, 3), (503, ProviderUnavailableError, 3), (401, AuthenticationError, 1),
     (404, ModelNotFoundError, 1), (400, InputError, 1)],
)
def test_remote_errors_map_to_lab_errors_without_leaking_the_key(status, error, attempts):
    calls = []

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(1)
        return httpx.Response(status, json={"error": {"message": f"bad key {SECRET}"}})

    with pytest.raises(error) as info:
        remote(handler).chat(USER)
    assert len(calls) == attempts
    chain = []
    exc: BaseException | None = info.value
    while exc is not None:
        chain.append(str(exc))
        exc = exc.__cause__
    assert all(SECRET not in text for text in chain)


def test_remote_timeout_becomes_provider_timeout():
    def handler(request: httpx.Request) -> httpx.Response:
        raise httpx.ReadTimeout("too slow", request=request)

    with pytest.raises(ProviderTimeoutError, match="timeout"):
        remote(handler, max_retries=1).chat(USER)


def test_missing_key_is_a_clear_error(monkeypatch):
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    monkeypatch.delenv("OPENAI_BASE_URL", raising=False)
    with pytest.raises(AuthenticationError, match="OPENAI_API_KEY"):
        OpenAIChatModel("gpt-4o-mini")


def test_redact_removes_secrets():
    assert redact(f"key={SECRET}", SECRET) == "key=***"
    assert "sk-***" in redact("leaked sk-abcdefghijkl", None)


def test_response_format_schemas():
    assert json_schema_from_response_format(None) is None
    assert json_schema_from_response_format({"type": "json_object"}) == {"type": "object"}
    schema = {"type": "object", "properties": {"a": {"type": "integer"}}}
    assert json_schema_from_response_format({"type": "json_schema", "json_schema": {"schema": schema}}) == schema
    with pytest.raises(InputError):
        json_schema_from_response_format({"type": "xml"})


def test_forced_tool_schema():
    tools = [
        {"type": "function", "function": {"name": "a", "parameters": {"type": "object", "properties": {}}}},
        {"type": "function", "function": {"name": "b"}},
    ]
    assert forced_tool_schema(tools, "auto") is None
    schema, name = forced_tool_schema(tools, {"type": "function", "function": {"name": "b"}})
    assert name == "b" and schema["type"] == "object"
    schema, name = forced_tool_schema(tools, "required")
    assert name is None and len(schema["anyOf"]) == 2
    with pytest.raises(InputError, match="not among"):
        forced_tool_schema(tools, {"type": "function", "function": {"name": "zzz"}})
