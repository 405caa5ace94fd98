"""The OpenAI-compatible server: protocol details, errors and client disconnects.

These tests use a scripted model so they are fast and exact; tests/integration
checks the real local model through the official clients.
"""

from __future__ import annotations

import json
import threading
import time

import httpx
import pytest

from reference.embeddings import FakeEmbedder
from reference.serve import LabServer, create_app


class SlowModel:
    """Implements what the server needs from a local model; yields a token every 10 ms."""

    n_ctx = 2048

    def __init__(self, delay_s: float = 0.01) -> None:
        self.delay_s = delay_s
        self.generated = 0
        self.finished = threading.Event()
        self.last_opts: dict = {}

    def prompt_tokens(self, messages):
        return sum(len(str(m.get("content", "")).split()) for m in messages)

    def iter_tokens(self, messages, *, cancel=None, max_tokens=16, schema=None, **opts):
        self.last_opts = {"max_tokens": max_tokens, "schema": schema, **opts}
        self.generated = 0
        self._last_finish = "length"
        try:
            for i in range(max_tokens):
                if cancel is not None and cancel.is_set():
                    self._last_finish = "cancelled"
                    return
                time.sleep(self.delay_s)
                self.generated += 1
                yield '{"city": "Leeds"}' if schema is not None and i == 0 else f"t{i} "
                if schema is not None:
                    self._last_finish = "stop"
                    return
        finally:
            self.finished.set()


@pytest.fixture()
def served():
    model = SlowModel()
    app = create_app(model, FakeEmbedder(dim=8), api_key=None)
    with LabServer(app) as server:
        yield server, model


def post(server, path, body, **kw):
    return httpx.post(server.base_url + path, json=body, timeout=10, **kw)


def test_models_lists_chat_and_embedding_models(served):
    server, _ = served
    ids = [m["id"] for m in httpx.get(server.base_url + "/models").json()["data"]]
    assert ids == ["smollm2-135m-instruct", "all-minilm-l6-v2"]


@pytest.mark.parametrize("field", ["max_tokens", "max_completion_tokens"])
def test_both_max_token_fields_are_honoured(served, field):
    server, model = served
    r = post(server, "/chat/completions", {"model": "smollm2-135m-instruct",
                                           "messages": [{"role": "user", "content": "go"}], field: 5})
    assert r.status_code == 200
    body = r.json()
    assert body["usage"]["completion_tokens"] == 5 == model.last_opts["max_tokens"]
    assert body["choices"][0]["finish_reason"] == "length"


def test_default_cap_when_no_limit_is_sent(served):
    server, model = served
    model.delay_s = 0.0
    r = post(server, "/chat/completions", {"model": "smollm2-135m-instruct",
                                           "messages": [{"role": "user", "content": "go"}]})
    assert r.status_code == 200 and model.last_opts["max_tokens"] == 512


def test_unknown_model_is_404_in_openai_shape(served):
    server, _ = served
    r = post(server, "/chat/completions", {"model": "gpt-9", "messages": [{"role": "user", "content": "x"}]})
    assert r.status_code == 404
    assert r.json()["error"]["code"] == "model_not_found"


@pytest.mark.parametrize(
    "body",
    [{"model": "smollm2-135m-instruct"}, {"model": "smollm2-135m-instruct", "messages": []},
     {"model": "smollm2-135m-instruct", "messages": [{"role": "user", "content": "x"}], "max_tokens": 0},
     {"model": "smollm2-135m-instruct", "messages": [{"role": "user", "content": "x"}],
      "response_format": {"type": "yaml"}}],
)
def test_bad_requests_are_400(served, body):
    server, _ = served
    r = post(server, "/chat/completions", body)
    assert r.status_code == 400 and r.json()["error"]["type"] == "invalid_request_error"


def test_malformed_json_body_is_400(served):
    server, _ = served
    r = httpx.post(server.base_url + "/chat/completions", content=b"{not json", timeout=5,
                   headers={"content-type": "application/json"})
    assert r.status_code == 400


def test_context_overflow_is_a_clear_400(served):
    server, _ = served
    r = post(server, "/chat/completions", {"model": "smollm2-135m-instruct",
                                           "messages": [{"role": "user", "content": "word " * 2000}],
                                           "max_tokens": 100})
    assert r.status_code == 400 and r.json()["error"]["code"] == "context_length_exceeded"


def test_forced_tool_choice_returns_a_tool_call(served):
    server, model = served
    tools = [{"type": "function", "function": {"name": "weather", "parameters": {
        "type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}}]
    r = post(server, "/chat/completions", {
        "model": "smollm2-135m-instruct", "messages": [{"role": "user", "content": "weather in Leeds"}],
        "tools": tools, "tool_choice": {"type": "function", "function": {"name": "weather"}}})
    choice = r.json()["choices"][0]
    assert choice["finish_reason"] == "tool_calls"
    call = choice["message"]["tool_calls"][0]["function"]
    assert call["name"] == "weather" and json.loads(call["arguments"]) == {"city": "Leeds"}
    assert model.last_opts["schema"]["required"] == ["city"]


def test_streaming_sends_chunks_usage_and_done(served):
    server, _ = served
    body = {"model": "smollm2-135m-instruct", "messages": [{"role": "user", "content": "go"}],
            "max_tokens": 4, "stream": True, "stream_options": {"include_usage": True}}
    with httpx.stream("POST", server.base_url + "/chat/completions", json=body, timeout=10) as r:
        lines = [line for line in r.iter_lines() if line.startswith("data: ")]
    assert lines[-1] == "data: [DONE]"
    chunks = [json.loads(line[6:]) for line in lines[:-1]]
    text = "".join(c["choices"][0]["delta"].get("content", "") for c in chunks if c["choices"])
    assert text == "t0 t1 t2 t3 "
    assert chunks[-1]["usage"]["completion_tokens"] == 4


def test_streaming_stops_generating_when_the_client_disconnects(served):
    server, model = served
    body = {"model": "smollm2-135m-instruct", "messages": [{"role": "user", "content": "go"}],
            "max_tokens": 1000, "stream": True}
    with httpx.stream("POST", server.base_url + "/chat/completions", json=body, timeout=10) as r:
        for i, _ in enumerate(r.iter_lines()):
            if i >= 3:
                break
    assert model.finished.wait(5), "generation kept running after the client left"
    assert model.generated < 200


def test_non_streaming_request_stops_when_the_client_disconnects(served):
    server, model = served
    body = {"model": "smollm2-135m-instruct", "messages": [{"role": "user", "content": "go"}], "max_tokens": 1000}
    with pytest.raises(httpx.ReadTimeout):
        httpx.post(server.base_url + "/chat/completions", json=body, timeout=0.3)
    assert model.finished.wait(5), "generation kept running after the client left"
    assert model.generated < 200


def test_embeddings_endpoint(served):
    server, _ = served
    r = post(server, "/embeddings", {"model": "all-minilm-l6-v2", "input": ["a b", "c"]})
    data = r.json()["data"]
    assert [d["index"] for d in data] == [0, 1] and len(data[0]["embedding"]) == 8
    assert post(server, "/embeddings", {"model": "all-minilm-l6-v2", "input": []}).status_code == 400
    assert post(server, "/embeddings", {"model": "other", "input": "x"}).status_code == 404


def test_api_key_is_required_when_configured():
    app = create_app(SlowModel(), FakeEmbedder(dim=8), api_key="s3cret-value")
    with LabServer(app) as server:
        assert httpx.get(server.base_url + "/models").status_code == 401
        assert httpx.get(server.base_url + "/models", headers={"Authorization": "Bearer wrong"}).status_code == 401
        ok = httpx.get(server.base_url + "/models", headers={"Authorization": "Bearer s3cret-value"})
        assert ok.status_code == 200
        assert httpx.get(server.base_url.replace("/v1", "") + "/health").status_code == 200
