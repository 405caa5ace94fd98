"""The real local model (llama.cpp): determinism, structure, limits. Seconds, not minutes."""

from __future__ import annotations

import json

import pytest

from reference.errors import InputTooLargeError
from reference.llm import LlamaCppChatModel, get_chat_model, llama_cpp_available

pytestmark = pytest.mark.skipif(not llama_cpp_available(), reason="llama-cpp-python not installed")

Q = [{"role": "user", "content": "Name three colours."}]


@pytest.fixture(scope="module")
def llm() -> LlamaCppChatModel:
    model = get_chat_model("local")
    assert isinstance(model, LlamaCppChatModel)
    return model


def test_greedy_decoding_is_deterministic(llm):
    a = llm.chat(Q, max_tokens=24)
    b = llm.chat(Q, max_tokens=24)
    assert a.text == b.text and a.text.strip()
    assert a.usage.prompt_tokens == llm.prompt_tokens(Q) > 10
    assert 0 < a.usage.completion_tokens <= 24


def test_chat_template_is_the_models_own(llm):
    prompt = llm.render_prompt(Q)
    assert prompt.startswith("<|im_start|>system\n")
    assert prompt.endswith("<|im_start|>user\nName three colours.<|im_end|>\n<|im_start|>assistant\n")


def test_json_schema_output_always_parses(llm):
    schema = {"type": "object", "properties": {"city": {"type": "string"}, "year": {"type": "integer"}},
              "required": ["city", "year"]}
    for question in ["Where and when were the first modern Olympics?", "Pick any city and year."]:
        r = llm.chat([{"role": "user", "content": question}], max_tokens=48,
                     response_format={"type": "json_schema", "json_schema": {"schema": schema}})
        data = json.loads(r.text)
        assert isinstance(data["city"], str) and isinstance(data["year"], int)


def test_forced_tool_call_is_valid(llm):
    tools = [{"type": "function", "function": {"name": "lookup_order", "parameters": {
        "type": "object", "properties": {"order_id": {"type": "string"}}, "required": ["order_id"]}}}]
    r = llm.chat([{"role": "user", "content": "Where is order A-1042?"}], max_tokens=32, tools=tools,
                 tool_choice={"type": "function", "function": {"name": "lookup_order"}})
    assert r.finish_reason == "tool_calls"
    assert r.tool_calls[0].name == "lookup_order"
    assert isinstance(r.tool_calls[0].parsed_arguments()["order_id"], str)


def test_context_overflow_is_a_clear_error(llm):
    long = [{"role": "user", "content": "robot " * 5000}]
    with pytest.raises(InputTooLargeError, match="context window"):
        llm.chat(long, max_tokens=16)


def test_streaming_yields_the_same_text(llm):
    assert "".join(llm.stream(Q, max_tokens=24)) == llm.chat(Q, max_tokens=24).text
