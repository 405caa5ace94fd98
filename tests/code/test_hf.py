"""Tests for reference.hf: the transformers chat model, token streaming, and serving a LoRA model.

They load the real SmolLM2-135M (a few seconds once its safetensors are cached) and
keep every generation short.
"""

from __future__ import annotations

import threading

import openai
import pytest

from reference import finetune as ft
from reference.errors import InputError, InputTooLargeError
from reference.hf import TransformersChatModel, load_hf_model
from reference.serve import LabServer, create_app

USER = [{"role": "user", "content": "What is the capital of France?"}]


@pytest.fixture(scope="module")
def chat():
    return TransformersChatModel()


def test_stream_pieces_are_tokens_and_match_chat(chat):
    pieces = list(chat.iter_tokens(USER, max_tokens=12))
    reply = chat.chat(USER, max_tokens=12)
    assert "".join(pieces) == reply.text and "Paris" in reply.text
    assert reply.usage.completion_tokens == len(pieces)
    assert reply.usage.prompt_tokens == chat.prompt_tokens(USER)
    _, tok = load_hf_model()
    assert len(tok(reply.text, add_special_tokens=False)["input_ids"]) == len(pieces)


def test_max_tokens_and_stop_strings(chat):
    short = chat.chat(USER, max_tokens=3)
    assert short.usage.completion_tokens == 3 and short.finish_reason == "length"
    stopped = chat.chat(USER, max_tokens=20, stop=["Paris"])
    assert "Paris" not in stopped.text and stopped.text.strip() and stopped.finish_reason == "stop"


def test_cancel_stops_generation(chat):
    cancel = threading.Event()
    got = []
    for piece in chat.iter_tokens([{"role": "user", "content": "Write a long story."}], max_tokens=200,
                                  cancel=cancel):
        got.append(piece)
        if len(got) == 3:
            cancel.set()
    assert len(got) <= 4 and chat._last_finish == "cancelled"


def test_schema_and_oversized_prompts_are_clear_errors(chat):
    with pytest.raises(InputError, match="constrained decoding is not available"):
        list(chat.iter_tokens(USER, max_tokens=4, schema={"type": "object"}))
    small = TransformersChatModel(n_ctx=40)
    with pytest.raises(InputTooLargeError, match="context"):
        list(small.iter_tokens(USER, max_tokens=30))
    with pytest.raises(InputError, match="both"):
        TransformersChatModel(hf_model=object())


def test_lora_model_round_trip_through_the_server_with_the_openai_sdk():
    base, tok = load_hf_model()
    tuned = ft.attach_lora(base, ft.LoraTrainConfig(rank=2))  # B starts at zero: same replies as the base
    name = ft.serve_name()
    model = TransformersChatModel(hf_model=tuned, tokenizer=tok, model=name)
    local = model.chat(USER, max_tokens=8).text
    with LabServer(create_app(chat_model=model, chat_model_name=name)) as server:
        client = openai.OpenAI(base_url=server.base_url, api_key="unused")
        assert name in [m.id for m in client.models.list().data]
        r = client.chat.completions.create(model=name, messages=USER, max_tokens=8, temperature=0)
        assert r.choices[0].message.content == local and r.usage.completion_tokens <= 8
        streamed = client.chat.completions.create(model=name, messages=USER, max_tokens=8, stream=True)
        assert "".join(c.choices[0].delta.content or "" for c in streamed if c.choices) == local
        with pytest.raises(openai.BadRequestError, match="constrained decoding"):
            client.chat.completions.create(model=name, messages=USER, max_tokens=8,
                                           response_format={"type": "json_object"})
