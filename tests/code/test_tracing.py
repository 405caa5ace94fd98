"""Unit tests for reference.tracing: OpenInference attributes, redaction, failure safety, feedback."""

from __future__ import annotations

import json

import pytest

from reference.embeddings import FakeEmbedder
from reference.errors import DataFileError, InputError, RateLimitError
from reference.llm import FakeChatModel
from reference.tracing import CACHE_HIT, Tracer, load_spans, redact, spans_table

SECRET = "sk-proj-ABCDEFGHIJKLMNOPQRSTUVWX1234"
USER = [{"role": "user", "content": "Capital of France?"}]


@pytest.mark.parametrize(("text", "leak", "placeholder"), [
    (f"my key is {SECRET}", SECRET, "[REDACTED_KEY]"),
    ("Authorization: Bearer eyJhbGciOiJIUzI1NiJ9.abc.def", "eyJhbGciOiJIUzI1NiJ9", "[REDACTED_TOKEN]"),
    ("api_key=abcd1234efgh5678", "abcd1234efgh5678", "[REDACTED]"),
    ("write to testina.voorbeeld@example.com today", "testina.voorbeeld@example.com", "[EMAIL]"),
    ("Mobile: +31 6 00000000", "6 00000000", "[PHONE]"),
    ("Emergency contact: Jan Proef, +44 7700 900123", "7700 900123", "[PHONE]"),
    ("call 07700 900456 now", "07700 900456", "[PHONE]"),
    ("IBAN: NL00 FAKE 0123 4567 89", "FAKE 0123", "[IBAN]"),
    ("IBAN GB33BUKB20201555555555", "GB33BUKB20201555555555", "[IBAN]"),
])
def test_redaction_removes_secrets_and_pii(text, leak, placeholder):
    out = redact(text)
    assert leak not in out and placeholder in out


@pytest.mark.parametrize("text", [
    "Order NB-ORD-41234 ships on 2025-04-22", "Error E-214 on the NB-300", "12,000 sq ft and 22,000 totes a day",
    "Hotel cap is £150 a night", "Ticket SUP-10082",
])
def test_redaction_keeps_ordinary_numbers(text):
    assert redact(text) == text


def test_llm_span_has_openinference_attributes_and_cost():
    tracer = Tracer(":memory:", batch=False)
    r = tracer.chat(FakeChatModel(responses=["Paris"], model="gpt-4o-mini"), USER, max_tokens=8)
    assert r.text == "Paris"
    (span,) = tracer.spans()
    a = span["attributes"]
    assert span["kind"] == "LLM" and span["status"] == "OK" and span["duration_ms"] >= 0
    assert a["openinference.span.kind"] == "LLM" and a["llm.model_name"] == "gpt-4o-mini"
    assert a["llm.token_count.prompt"] == r.usage.prompt_tokens and a["llm.token_count.completion"] == 1
    assert a["llm.cost.total"] == pytest.approx(r.usage.prompt_tokens * 0.15e-6 + 0.6e-6)
    assert a["llm.input_messages.0.message.content"] == "Capital of France?" and a["output.value"] == "Paris"
    assert json.loads(a["llm.invocation_parameters"]) == {"max_tokens": 8}


def test_nested_pipeline_spans_share_a_trace(tmp_path):
    tracer = Tracer(tmp_path / "t.sqlite", jsonl_path=tmp_path / "t.jsonl", batch=True)
    with tracer.span("rag", "CHAIN", user_id="u1", session_id="s1") as root:
        tracer.embed(FakeEmbedder(), ["hello"])
        with tracer.span("retrieve", "RETRIEVER") as ret:
            tracer.record_retrieval(ret, [{"id": "doc-1", "score": 0.9, "content": "text"}])
        tracer.record_cache(root, hit=False, kind="semantic", similarity=0.42)
        tracer.chat(FakeChatModel(responses=["ok"]), USER)
    tracer.flush()
    spans = tracer.spans()
    assert {s["trace_id"] for s in spans} == {root.trace_id}
    by_name = {s["name"]: s for s in spans}
    assert by_name["retrieve"]["parent_id"] == root.span_id
    assert by_name["retrieve"]["attributes"]["retrieval.documents.0.document.id"] == "doc-1"
    assert by_name["rag"]["attributes"][CACHE_HIT] is False
    assert by_name["rag"]["attributes"]["user.id"] == "u1"
    assert len(load_spans(tmp_path / "t.jsonl")) == 4 and len(load_spans(tmp_path / "t.sqlite")) == 4
    table = spans_table(spans)
    assert set(table["kind"]) == {"CHAIN", "EMBEDDING", "RETRIEVER", "LLM"}


def test_secrets_and_pii_never_reach_storage(tmp_path):
    tracer = Tracer(tmp_path / "t.sqlite", jsonl_path=tmp_path / "t.jsonl", batch=False)
    leaky = [{"role": "user", "content": f"use {SECRET}, mail testina.voorbeeld@example.com, IBAN NL00 FAKE 0123 4567 89"}]
    with tracer.span("request", attributes={"http.header": f"Bearer {SECRET}"}) as root:
        tracer.chat(FakeChatModel(responses=[f"Sure, I sent it to testina.voorbeeld@example.com with {SECRET}"]),
                    leaky)
    assert tracer.feedback(root.trace_id, 0, comment="wrong! call me on +44 7700 900123")
    tracer.shutdown()
    stored = (tmp_path / "t.jsonl").read_text() + (tmp_path / "t.sqlite").read_bytes().decode("latin-1")
    for leak in (SECRET, "testina.voorbeeld@example.com", "FAKE 0123", "7700 900123"):
        assert leak not in stored
    assert "[REDACTED_KEY]" in stored and "[EMAIL]" in stored


def test_application_errors_propagate_and_are_recorded():
    tracer = Tracer(":memory:", batch=False)
    with pytest.raises(RateLimitError):
        tracer.chat(FakeChatModel(responses=[RateLimitError(f"429 for key {SECRET}")]), USER)
    (span,) = tracer.spans()
    assert span["status"] == "ERROR" and SECRET not in span["status_message"]
    assert span["events"][0]["attributes"]["exception.type"] == "RateLimitError"


def test_read_only_disk_never_breaks_the_app(tmp_path, monkeypatch):
    import errno
    import pathlib
    import sqlite3

    def read_only_connect(*args, **kwargs):
        raise sqlite3.OperationalError("attempt to write a readonly database")

    real_open = pathlib.Path.open

    def read_only_open(self, mode="r", *args, **kwargs):
        if "a" in mode or "w" in mode:
            raise OSError(errno.EROFS, "Read-only file system", str(self))
        return real_open(self, mode, *args, **kwargs)

    monkeypatch.setattr("reference.tracing.sqlite3.connect", read_only_connect)
    monkeypatch.setattr(pathlib.Path, "open", read_only_open)
    for batch in (False, True):
        tracer = Tracer(tmp_path / "traces.sqlite", jsonl_path=tmp_path / "traces.jsonl", batch=batch)
        r = tracer.chat(FakeChatModel(responses=["still works"]), USER)
        tracer.flush()
        assert r.text == "still works"
        assert tracer.export_failures >= 2  # both exporters failed, quietly
        assert tracer.feedback("0" * 32, 1) is False
        assert tracer.spans() == []
        tracer.shutdown()


def test_unwritable_path_never_breaks_the_app(tmp_path):
    # a folder that does not exist fails the same way as a read-only disk, also for root
    missing = tmp_path / "no" / "such" / "dir"
    for batch in (False, True):
        tracer = Tracer(missing / "traces.sqlite", jsonl_path=missing / "traces.jsonl", batch=batch)
        with tracer.span("request") as root:
            r = tracer.chat(FakeChatModel(responses=["still works"]), USER)
        tracer.flush()
        assert r.text == "still works" and tracer.export_failures >= 2
        assert tracer.feedback(root.trace_id, 1) is False and tracer.feedback_failures == 1
        tracer.shutdown()


def test_feedback_is_stored_and_validated(tmp_path):
    tracer = Tracer(tmp_path / "t.sqlite", batch=False)
    with tracer.span("request") as root:
        pass
    assert tracer.feedback(root.trace_id, 1, comment="great")
    rows = tracer.feedback_rows()
    assert rows[0]["trace_id"] == root.trace_id and rows[0]["score"] == 1.0 and rows[0]["comment"] == "great"
    with pytest.raises(InputError):
        tracer.feedback("not-a-trace-id", 1)


def test_load_spans_errors(tmp_path):
    with pytest.raises(DataFileError):
        load_spans(tmp_path / "missing.sqlite")
    bad = tmp_path / "bad.sqlite"
    bad.write_bytes(b"garbage" * 200)
    with pytest.raises(DataFileError):
        load_spans(bad)


def test_wrapped_components_trace_code_you_do_not_edit():
    tracer = Tracer(":memory:", batch=False)
    llm = tracer.wrap_chat_model(FakeChatModel(responses=["ok"], model="gpt-4o-mini"))
    emb = tracer.wrap_embedder(FakeEmbedder(dim=16))

    def pipeline(question):  # stands for any code that takes a model and an embedder
        emb.embed([question])
        return llm.chat([{"role": "user", "content": question}], max_tokens=5).text

    assert pipeline("hi") == "ok" and llm.model == "gpt-4o-mini" and emb.dim == 16
    assert [s["kind"] for s in tracer.spans()] == ["EMBEDDING", "LLM"]
