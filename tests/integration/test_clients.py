"""The official openai SDK, LangChain and LlamaIndex all get answers from the lab's server."""

from __future__ import annotations

import json

import numpy as np
import openai
import pytest

from reference.llm import llama_cpp_available
from reference.serve import LabServer

pytestmark = pytest.mark.skipif(not llama_cpp_available(), reason="llama-cpp-python not installed")
CHAT, EMBED = "smollm2-135m-instruct", "all-minilm-l6-v2"


@pytest.fixture(scope="module")
def server():
    with LabServer() as s:
        yield s


def test_openai_sdk_chat_stream_and_embeddings(server):
    client = openai.OpenAI(base_url=server.base_url, api_key="unused")
    assert {m.id for m in client.models.list()} == {CHAT, EMBED}
    r = client.chat.completions.create(model=CHAT, messages=[{"role": "user", "content": "Say hi."}],
                                       max_tokens=12)
    assert r.choices[0].message.content.strip() and 0 < r.usage.completion_tokens <= 12
    parts = [c.choices[0].delta.content or "" for c in client.chat.completions.create(
        model=CHAT, messages=[{"role": "user", "content": "Say hi."}], max_tokens=12, stream=True) if c.choices]
    assert "".join(parts) == r.choices[0].message.content
    e = client.embeddings.create(model=EMBED, input=["robot", "machine"])
    assert len(e.data) == 2 and len(e.data[0].embedding) == 384


def test_openai_sdk_structured_output_and_tools(server):
    client = openai.OpenAI(base_url=server.base_url, api_key="unused")
    schema = {"type": "object", "properties": {"answer": {"type": "string"}}, "required": ["answer"]}
    r = client.chat.completions.create(
        model=CHAT, messages=[{"role": "user", "content": "What colour is the sky?"}], max_tokens=40,
        response_format={"type": "json_schema", "json_schema": {"name": "a", "schema": schema}})
    assert isinstance(json.loads(r.choices[0].message.content)["answer"], str)
    tools = [{"type": "function", "function": {"name": "get_price", "parameters": {
        "type": "object", "properties": {"sku": {"type": "string"}}, "required": ["sku"]}}}]
    r = client.chat.completions.create(
        model=CHAT, messages=[{"role": "user", "content": "Price of NB-100?"}], max_tokens=32, tools=tools,
        tool_choice={"type": "function", "function": {"name": "get_price"}})
    call = r.choices[0].message.tool_calls[0]
    assert call.function.name == "get_price" and "sku" in json.loads(call.function.arguments)


def test_langchain_chat_and_embeddings(server):
    from langchain_openai import ChatOpenAI, OpenAIEmbeddings

    chat = ChatOpenAI(base_url=server.base_url, api_key="unused", model=CHAT, max_tokens=12, temperature=0)
    msg = chat.invoke("Say hi.")
    assert msg.content.strip()
    assert msg.usage_metadata["output_tokens"] <= 12, "max_completion_tokens was not honoured"
    emb = OpenAIEmbeddings(base_url=server.base_url, api_key="unused", model=EMBED,
                           check_embedding_ctx_length=False)
    vecs = np.array(emb.embed_documents(["robot", "warehouse robot", "banana bread"]))
    assert vecs.shape == (3, 384)
    assert vecs[0] @ vecs[1] > vecs[0] @ vecs[2]


def test_llamaindex_chat_and_embeddings(server):
    from llama_index.embeddings.openai import OpenAIEmbedding
    from llama_index.llms.openai_like import OpenAILike

    llm = OpenAILike(model=CHAT, api_base=server.base_url, api_key="unused", is_chat_model=True,
                     context_window=4096, max_tokens=12, temperature=0)
    assert llm.complete("Say hi.").text.strip()
    emb = OpenAIEmbedding(model_name=EMBED, api_base=server.base_url, api_key="unused")
    assert len(emb.get_text_embedding("robot")) == 384
