"""Tracing LLM applications with OpenTelemetry and the OpenInference conventions.

Every model, embedding and retrieval call becomes a span with the attribute names
of the OpenInference semantic conventions (``llm.model_name``,
``llm.token_count.prompt``, ``llm.cost.total``, ``retrieval.documents.0.document.id``
...), so the same spans open in Arize Phoenix, Langfuse or any OTLP backend. By
default they go to a local SQLite file (and optionally a JSONL file), which
:func:`load_spans` reads back for analysis.

Three promises, each tested:

* **Secrets and personal data never reach storage.** Every string attribute and
  feedback comment passes through :func:`redact` (API keys, bearer tokens, e-mail
  addresses, phone numbers, IBAN-like numbers) when it is recorded, and the
  exporters redact again before writing.
* **Tracing never breaks the application.** Exporter failures (a read-only disk, a
  locked file) and instrumentation errors are swallowed and counted
  (:attr:`Tracer.export_failures`); exceptions *of the application* still propagate.
* **Cheap.** Spans are exported in the background (``BatchSpanProcessor``) by default.

Example:
    >>> from reference.llm import FakeChatModel
    >>> tracer = Tracer(":memory:")
    >>> r = tracer.chat(FakeChatModel(responses=["4"]), [{"role": "user", "content": "2+2?"}])
    >>> tracer.flush(); [s["name"] for s in tracer.spans()]
    ['llm.chat']
"""

from __future__ import annotations

import json
import logging
import re
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from openinference.semconv.trace import (
    DocumentAttributes,
    EmbeddingAttributes,
    MessageAttributes,
    OpenInferenceSpanKindValues,
    SpanAttributes,
)
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import (
    BatchSpanProcessor,
    SimpleSpanProcessor,
    SpanExporter,
    SpanExportResult,
)
from opentelemetry.trace import Span, Status, StatusCode

from reference.errors import InputError

log = logging.getLogger(__name__)

#: Custom attributes (outside OpenInference) the lab records.
CACHE_HIT = "lab.cache.hit"
CACHE_KIND = "lab.cache.kind"
CACHE_SIMILARITY = "lab.cache.similarity"
#: Longest string attribute kept; longer values are cut (and say so).
MAX_ATTRIBUTE_CHARS = 4000

# --------------------------------------------------------------------------- redaction

_REDACTIONS: tuple[tuple[re.Pattern[str], str | Callable[[re.Match[str]], str]], ...] = (
    (re.compile(r"(?i)\bbearer\s+[A-Za-z0-9._~+/=-]{8,}"), "Bearer [REDACTED_TOKEN]"),
    (re.compile(r"\b(?:sk|pk|rk)-[A-Za-z0-9_-]{8,}"), "[REDACTED_KEY]"),
    (re.compile(r"\bAKIA[0-9A-Z]{16}\b"), "[REDACTED_KEY]"),
    (re.compile(r"\bgh[pousr]_[A-Za-z0-9]{20,}\b"), "[REDACTED_KEY]"),
    (re.compile(r"(?i)\b(api[_-]?key|access[_-]?token|secret|password|passwd)(\"?\s*[:=]\s*\"?)[^\s\"',;]+"),
     lambda m: f"{m.group(1)}{m.group(2)}[REDACTED]"),
    (re.compile(r"[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}"), "[EMAIL]"),
    (re.compile(r"\b[A-Z]{2}\d{2}(?:[ ]?[A-Z0-9]{4}){2,7}(?:[ ]?[A-Z0-9]{1,3})?\b"), "[IBAN]"),
)
_PHONE = re.compile(r"(?<![\w+])(?:\+\d{1,3}|\b0)(?:[ .-]?\(?\d{1,5}\)?){2,6}")


def _phone(match: re.Match[str]) -> str:
    digits = sum(ch.isdigit() for ch in match.group(0))
    return "[PHONE]" if digits >= 9 else match.group(0)


def redact(text: str) -> str:
    """Replace secrets and personal data in ``text`` with placeholders.

    Covers OpenAI-style keys (``sk-...``), bearer tokens, ``api_key=...``-style
    assignments, AWS and GitHub tokens, e-mail addresses, phone numbers (9+ digits,
    international or starting with 0) and IBAN-like account numbers.

    Example:
        >>> redact("mail ann@example.com, key sk-abcdefghijkl, call +44 7700 900123")
        'mail [EMAIL], key [REDACTED_KEY], call [PHONE]'
    """
    if not isinstance(text, str):
        return text
    for pattern, repl in _REDACTIONS:
        text = pattern.sub(repl, text)
    return _PHONE.sub(_phone, text)


def _clean(value: Any) -> Any:
    """An attribute value OpenTelemetry accepts, redacted and size-limited."""
    if isinstance(value, str):
        value = redact(value)
        if len(value) > MAX_ATTRIBUTE_CHARS:
            value = value[:MAX_ATTRIBUTE_CHARS] + f"... [truncated {len(value) - MAX_ATTRIBUTE_CHARS} chars]"
        return value
    if isinstance(value, (bool, int, float)):
        return value
    if isinstance(value, (list, tuple)):
        items = [_clean(v) for v in value]
        return items if all(isinstance(v, (str, bool, int, float)) for v in items) else json.dumps(items, default=str)
    return _clean(json.dumps(value, default=str))


# --------------------------------------------------------------------------- exporters


def _span_record(span: ReadableSpan) -> dict[str, Any]:
    ctx = span.get_span_context()
    attrs = {k: _clean(v) for k, v in (span.attributes or {}).items()}
    start, end = span.start_time or 0, span.end_time or 0
    return {
        "trace_id": f"{ctx.trace_id:032x}",
        "span_id": f"{ctx.span_id:016x}",
        "parent_id": f"{span.parent.span_id:016x}" if span.parent else None,
        "name": span.name,
        "kind": attrs.get(SpanAttributes.OPENINFERENCE_SPAN_KIND, "UNKNOWN"),
        "start_ns": start,
        "end_ns": end,
        "duration_ms": (end - start) / 1e6,
        "status": span.status.status_code.name,
        "status_message": redact(span.status.description or ""),
        "attributes": attrs,
        "events": [{"name": e.name, "attributes": {k: _clean(v) for k, v in (e.attributes or {}).items()}}
                   for e in span.events],
        "service": str((span.resource.attributes or {}).get("service.name", "")),
    }


class SQLiteSpanExporter(SpanExporter):
    """Write spans (and feedback) to a SQLite file; ``:memory:`` keeps them in process.

    The connection is opened on first use, so a bad path fails at export time, where
    :class:`SafeExporter` absorbs it, never at start-up.
    """

    def __init__(self, path: str | Path) -> None:
        self.path = str(path)
        self._conn: sqlite3.Connection | None = None
        self._lock = threading.Lock()

    def _connection(self) -> sqlite3.Connection:
        if self._conn is None:
            conn = sqlite3.connect(self.path, check_same_thread=False)
            conn.executescript(
                """
                CREATE TABLE IF NOT EXISTS spans (
                    trace_id TEXT, span_id TEXT PRIMARY KEY, parent_id TEXT, name TEXT, kind TEXT,
                    start_ns INTEGER, end_ns INTEGER, duration_ms REAL, status TEXT, status_message TEXT,
                    attributes TEXT, events TEXT, service TEXT);
                CREATE INDEX IF NOT EXISTS spans_trace ON spans (trace_id);
                CREATE TABLE IF NOT EXISTS feedback (
                    id INTEGER PRIMARY KEY AUTOINCREMENT, trace_id TEXT, span_id TEXT, name TEXT,
                    score REAL, comment TEXT, user_id TEXT, created_at REAL);
                """
            )
            self._conn = conn
        return self._conn

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        rows = [_span_record(s) for s in spans]
        with self._lock:
            conn = self._connection()
            conn.executemany(
                "INSERT OR REPLACE INTO spans VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)",
                [(r["trace_id"], r["span_id"], r["parent_id"], r["name"], r["kind"], r["start_ns"], r["end_ns"],
                  r["duration_ms"], r["status"], r["status_message"], json.dumps(r["attributes"]),
                  json.dumps(r["events"]), r["service"]) for r in rows],
            )
            conn.commit()
        return SpanExportResult.SUCCESS

    def add_feedback(self, row: Mapping[str, Any]) -> None:
        with self._lock:
            conn = self._connection()
            conn.execute(
                "INSERT INTO feedback (trace_id, span_id, name, score, comment, user_id, created_at) "
                "VALUES (?,?,?,?,?,?,?)",
                (row["trace_id"], row.get("span_id"), row["name"], row["score"], row.get("comment"),
                 row.get("user_id"), row["created_at"]),
            )
            conn.commit()

    def read(self) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        """All stored spans (oldest first) and feedback rows."""
        with self._lock:
            conn = self._connection()
            conn.row_factory = sqlite3.Row
            try:
                spans = [dict(r) for r in conn.execute("SELECT * FROM spans ORDER BY start_ns")]
                feedback = [dict(r) for r in conn.execute("SELECT * FROM feedback ORDER BY id")]
            finally:
                conn.row_factory = None
        for s in spans:
            s["attributes"] = json.loads(s["attributes"])
            s["events"] = json.loads(s["events"])
        return spans, feedback

    def shutdown(self) -> None:
        with self._lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None


class JSONLSpanExporter(SpanExporter):
    """Append one JSON object per span to a file (easy to grep, ship or load with pandas)."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._lock = threading.Lock()

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        lines = "".join(json.dumps(_span_record(s), ensure_ascii=False) + "\n" for s in spans)
        with self._lock, self.path.open("a", encoding="utf-8") as fh:
            fh.write(lines)
        return SpanExportResult.SUCCESS


class SafeExporter(SpanExporter):
    """Wrap an exporter so that its failures are counted and logged once, never raised."""

    def __init__(self, inner: SpanExporter) -> None:
        self.inner = inner
        self.failures = 0
        self.last_error: str | None = None

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        try:
            return self.inner.export(spans)
        except Exception as exc:  # noqa: BLE001 - tracing must never take the app down
            self.failures += 1
            self.last_error = redact(f"{type(exc).__name__}: {exc}")
            if self.failures == 1:
                log.warning("trace export to %s failed (%s); spans are dropped, the app goes on",
                            type(self.inner).__name__, self.last_error)
            return SpanExportResult.FAILURE

    def shutdown(self) -> None:
        try:
            self.inner.shutdown()
        except Exception:  # noqa: BLE001
            pass

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return True


# --------------------------------------------------------------------------- tracer


class SpanHandle:
    """What ``with tracer.span(...)`` yields: set attributes safely, read the ids."""

    def __init__(self, span: Span | None) -> None:
        self._span = span

    @property
    def trace_id(self) -> str:
        if self._span is None:
            return ""
        return f"{self._span.get_span_context().trace_id:032x}"

    @property
    def span_id(self) -> str:
        if self._span is None:
            return ""
        return f"{self._span.get_span_context().span_id:016x}"

    def set(self, key: str, value: Any) -> None:
        """Set one attribute (redacted); errors are swallowed."""
        if self._span is None or value is None:
            return
        try:
            self._span.set_attribute(key, _clean(value))
        except Exception:  # noqa: BLE001
            log.debug("could not set span attribute %s", key, exc_info=True)

    def set_many(self, attributes: Mapping[str, Any]) -> None:
        for key, value in attributes.items():
            self.set(key, value)


class Tracer:
    """Trace an LLM application to a local store, OpenInference-style.

    Args:
        path: SQLite file for spans and feedback (``":memory:"`` for a throwaway store,
            ``None`` for no SQLite store).
        jsonl_path: also append spans to this JSONL file.
        service_name: the ``service.name`` resource attribute.
        batch: export in a background thread (``True``, the production setting) or
            synchronously at the end of every span (``False``).
        price_for: ``model name -> ModelPrice`` used to record ``llm.cost.*``; defaults
            to :func:`reference.cost.get_price` (unknown models get no cost).
        extra_exporters: more exporters, e.g. an OTLP exporter for Phoenix or Langfuse.
    """

    def __init__(self, path: str | Path | None = ":memory:", *, jsonl_path: str | Path | None = None,
                 service_name: str = "ai-engineering-lab", batch: bool = True,
                 price_for: Callable[[str], Any] | None = None,
                 extra_exporters: Sequence[SpanExporter] = ()) -> None:
        self.provider = TracerProvider(resource=Resource.create({"service.name": service_name}))
        self._sqlite = SQLiteSpanExporter(path) if path is not None else None
        exporters: list[SpanExporter] = []
        if self._sqlite is not None:
            exporters.append(self._sqlite)
        if jsonl_path is not None:
            exporters.append(JSONLSpanExporter(jsonl_path))
        exporters.extend(extra_exporters)
        self.exporters = [SafeExporter(e) for e in exporters]
        for exporter in self.exporters:
            processor = (BatchSpanProcessor(exporter, schedule_delay_millis=500) if batch
                         else SimpleSpanProcessor(exporter))
            self.provider.add_span_processor(processor)
        self._tracer = self.provider.get_tracer("reference.tracing")
        self._price_for = price_for
        self.instrumentation_errors = 0
        self.feedback_failures = 0

    @property
    def export_failures(self) -> int:
        """Export calls that failed (spans dropped) across all exporters."""
        return sum(e.failures for e in self.exporters)

    # -- spans ---------------------------------------------------------------------

    @contextmanager
    def span(self, name: str, kind: str = "CHAIN", *, attributes: Mapping[str, Any] | None = None,
             user_id: str | None = None, session_id: str | None = None) -> Iterator[SpanHandle]:
        """A span around a block; the block's exceptions are recorded and re-raised.

        Args:
            kind: an OpenInference span kind: CHAIN, LLM, EMBEDDING, RETRIEVER, TOOL ...
        """
        try:
            cm = self._tracer.start_as_current_span(name, record_exception=False, set_status_on_exception=False)
            span = cm.__enter__()
        except Exception:  # noqa: BLE001 - no tracing, but the block still runs
            self.instrumentation_errors += 1
            yield SpanHandle(None)
            return
        handle = SpanHandle(span)
        handle.set(SpanAttributes.OPENINFERENCE_SPAN_KIND, kind.upper())
        handle.set(SpanAttributes.USER_ID, user_id)
        handle.set(SpanAttributes.SESSION_ID, session_id)
        handle.set_many(attributes or {})
        try:
            yield handle
        except BaseException as exc:
            try:
                span.set_status(Status(StatusCode.ERROR, redact(f"{type(exc).__name__}: {exc}")))
                span.add_event("exception", {"exception.type": type(exc).__name__,
                                             "exception.message": redact(str(exc))})
            except Exception:  # noqa: BLE001
                self.instrumentation_errors += 1
            cm.__exit__(None, None, None)
            raise
        else:
            try:
                span.set_status(Status(StatusCode.OK))
            except Exception:  # noqa: BLE001
                self.instrumentation_errors += 1
            cm.__exit__(None, None, None)

    def chat(self, llm: Any, messages: Sequence[Mapping[str, Any]], *, name: str = "llm.chat",
             price: Any | None = None, **kwargs: Any) -> Any:
        """``llm.chat(messages, **kwargs)`` inside an LLM span with tokens, cost and I/O.

        Args:
            price: a :class:`reference.cost.ModelPrice` to price the call as (e.g. to see what
                the local call would cost on a hosted model); defaults to the model's own.
        """
        with self.span(name, "LLM") as span:
            span.set(SpanAttributes.INPUT_VALUE, json.dumps(list(messages), default=str))
            span.set(SpanAttributes.INPUT_MIME_TYPE, "application/json")
            for i, msg in enumerate(messages):
                prefix = f"{SpanAttributes.LLM_INPUT_MESSAGES}.{i}."
                span.set(prefix + MessageAttributes.MESSAGE_ROLE, msg.get("role"))
                span.set(prefix + MessageAttributes.MESSAGE_CONTENT, msg.get("content"))
            params = {k: v for k, v in kwargs.items() if k in ("max_tokens", "temperature", "stop", "seed")}
            span.set(SpanAttributes.LLM_INVOCATION_PARAMETERS, json.dumps(params, default=str))
            response = llm.chat(messages, **kwargs)
            self.record_llm_response(span, response, price=price)
            return response

    def record_llm_response(self, span: SpanHandle, response: Any, *, price: Any | None = None) -> None:
        """Put a :class:`ChatResponse`'s model, output, tokens and cost on ``span``."""
        try:
            span.set(SpanAttributes.LLM_MODEL_NAME, response.model)
            span.set(SpanAttributes.LLM_PROVIDER, response.provider)
            span.set(SpanAttributes.OUTPUT_VALUE, response.text)
            span.set(f"{SpanAttributes.LLM_OUTPUT_MESSAGES}.0.{MessageAttributes.MESSAGE_ROLE}", "assistant")
            span.set(f"{SpanAttributes.LLM_OUTPUT_MESSAGES}.0.{MessageAttributes.MESSAGE_CONTENT}", response.text)
            usage = response.usage
            span.set(SpanAttributes.LLM_TOKEN_COUNT_PROMPT, usage.prompt_tokens)
            span.set(SpanAttributes.LLM_TOKEN_COUNT_COMPLETION, usage.completion_tokens)
            span.set(SpanAttributes.LLM_TOKEN_COUNT_TOTAL, usage.total_tokens)
            model_price = price if price is not None else self._lookup_price(response.model)
            if model_price is not None:
                prompt_cost = usage.prompt_tokens * model_price.input_per_mtok / 1e6
                completion_cost = usage.completion_tokens * model_price.output_per_mtok / 1e6
                span.set(SpanAttributes.LLM_COST_PROMPT, prompt_cost)
                span.set(SpanAttributes.LLM_COST_COMPLETION, completion_cost)
                span.set(SpanAttributes.LLM_COST_TOTAL, prompt_cost + completion_cost)
                span.set("lab.cost.priced_as", model_price.model)
        except Exception:  # noqa: BLE001
            self.instrumentation_errors += 1

    def _lookup_price(self, model: str) -> Any | None:
        try:
            if self._price_for is not None:
                return self._price_for(model)
            from reference.cost import get_price  # noqa: PLC0415

            return get_price(model)
        except Exception:  # noqa: BLE001 - an unknown price means no cost attribute, not an error
            return None

    def embed(self, embedder: Any, texts: Sequence[str], *, name: str = "embedding", **kwargs: Any) -> Any:
        """``embedder.embed(texts)`` inside an EMBEDDING span (texts recorded, vectors not)."""
        with self.span(name, "EMBEDDING") as span:
            span.set(SpanAttributes.EMBEDDING_MODEL_NAME, getattr(embedder, "model", type(embedder).__name__))
            for i, text in enumerate(list(texts)[:16]):
                span.set(f"{SpanAttributes.EMBEDDING_EMBEDDINGS}.{i}.{EmbeddingAttributes.EMBEDDING_TEXT}", text)
            span.set("lab.embedding.count", len(texts))
            return embedder.embed(texts, **kwargs)

    def record_retrieval(self, span: SpanHandle, documents: Sequence[Mapping[str, Any]]) -> None:
        """Record retrieved documents (``id``, ``score``, ``content``) on a RETRIEVER span."""
        try:
            for i, doc in enumerate(documents):
                prefix = f"{SpanAttributes.RETRIEVAL_DOCUMENTS}.{i}."
                span.set(prefix + DocumentAttributes.DOCUMENT_ID, doc.get("id"))
                span.set(prefix + DocumentAttributes.DOCUMENT_SCORE, doc.get("score"))
                span.set(prefix + DocumentAttributes.DOCUMENT_CONTENT, doc.get("content"))
        except Exception:  # noqa: BLE001
            self.instrumentation_errors += 1

    def record_cache(self, span: SpanHandle, *, hit: bool, kind: str | None = None,
                     similarity: float | None = None) -> None:
        """Record a cache lookup's outcome on ``span``."""
        span.set(CACHE_HIT, bool(hit))
        span.set(CACHE_KIND, kind)
        span.set(CACHE_SIMILARITY, similarity)

    # -- wrapping existing components ------------------------------------------------------

    def wrap_chat_model(self, llm: Any, *, price: Any | None = None, name: str = "llm.chat") -> Any:
        """A drop-in stand-in for ``llm`` whose every ``chat`` call is traced.

        Use it to trace code you do not want to edit, e.g.
        ``RAGPipeline(retriever, tracer.wrap_chat_model(llm))``.
        """
        return _TracedChatModel(self, llm, price, name)

    def wrap_embedder(self, embedder: Any, *, name: str = "embedding") -> Any:
        """A drop-in stand-in for ``embedder`` whose every ``embed`` call is traced."""
        return _TracedEmbedder(self, embedder, name)

    # -- feedback and reading back ----------------------------------------------------

    def feedback(self, trace_id: str, score: float, *, name: str = "user_feedback", comment: str | None = None,
                 user_id: str | None = None, span_id: str | None = None) -> bool:
        """Attach a user's score (e.g. 1 thumbs-up, 0 thumbs-down) to a trace.

        Phoenix calls these span annotations, Langfuse calls them scores. The comment is
        redacted. Returns ``False`` (and never raises) if it could not be stored.
        """
        if not isinstance(trace_id, str) or not re.fullmatch(r"[0-9a-f]{32}", trace_id):
            raise InputError(f"trace_id must be 32 hex characters, got {trace_id!r}")
        if self._sqlite is None:
            return False
        try:
            self._sqlite.add_feedback({"trace_id": trace_id, "span_id": span_id, "name": name, "score": float(score),
                                       "comment": redact(comment) if comment else None,
                                       "user_id": redact(user_id) if user_id else None, "created_at": time.time()})
            return True
        except Exception as exc:  # noqa: BLE001
            self.feedback_failures += 1
            log.warning("feedback not stored: %s", redact(str(exc)))
            return False

    def flush(self, timeout_millis: int = 10_000) -> None:
        """Export everything still queued (call before reading spans back)."""
        try:
            self.provider.force_flush(timeout_millis)
        except Exception:  # noqa: BLE001
            self.instrumentation_errors += 1

    def spans(self) -> list[dict[str, Any]]:
        """Spans stored in the SQLite store so far (flush first)."""
        if self._sqlite is None:
            return []
        try:
            return self._sqlite.read()[0]
        except Exception:  # noqa: BLE001
            return []

    def feedback_rows(self) -> list[dict[str, Any]]:
        """Feedback stored so far."""
        if self._sqlite is None:
            return []
        try:
            return self._sqlite.read()[1]
        except Exception:  # noqa: BLE001
            return []

    def shutdown(self) -> None:
        """Flush and close every exporter."""
        try:
            self.provider.shutdown()
        except Exception:  # noqa: BLE001
            self.instrumentation_errors += 1

    def __enter__(self) -> Tracer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.shutdown()


class _TracedChatModel:
    def __init__(self, tracer: Tracer, llm: Any, price: Any | None, name: str) -> None:
        self._tracer, self._llm, self._price, self._name = tracer, llm, price, name

    def chat(self, messages: Sequence[Mapping[str, Any]], **kwargs: Any) -> Any:
        return self._tracer.chat(self._llm, messages, name=self._name, price=self._price, **kwargs)

    def __getattr__(self, item: str) -> Any:
        return getattr(self._llm, item)


class _TracedEmbedder:
    def __init__(self, tracer: Tracer, embedder: Any, name: str) -> None:
        self._tracer, self._embedder, self._name = tracer, embedder, name

    def embed(self, texts: Sequence[str], **kwargs: Any) -> Any:
        return self._tracer.embed(self._embedder, texts, name=self._name, **kwargs)

    def embed_one(self, text: str) -> Any:
        return self.embed([text])[0]

    def __getattr__(self, item: str) -> Any:
        return getattr(self._embedder, item)


def load_spans(path: str | Path) -> list[dict[str, Any]]:
    """Read spans from a SQLite store or a JSONL file written by this module.

    Example:
        >>> load_spans("missing.jsonl")
        Traceback (most recent call last):
        ...
        reference.errors.DataFileError: missing.jsonl: no trace file there
    """
    from reference.errors import DataFileError  # noqa: PLC0415

    p = Path(path)
    if not p.is_file():
        raise DataFileError(f"{path}: no trace file there")
    if p.suffix == ".jsonl":
        return [json.loads(line) for line in p.read_text(encoding="utf-8").splitlines() if line.strip()]
    try:
        return SQLiteSpanExporter(p).read()[0]
    except sqlite3.DatabaseError as exc:
        raise DataFileError(f"{path} is not a trace store: {exc}") from None


def spans_table(spans: Sequence[Mapping[str, Any]]) -> Any:
    """Spans as a pandas DataFrame with the usual columns lifted out of the attributes."""
    import pandas as pd  # noqa: PLC0415

    rows = []
    for s in spans:
        a = s.get("attributes", {})
        rows.append({
            "trace_id": s["trace_id"], "span_id": s["span_id"], "parent_id": s["parent_id"], "name": s["name"],
            "kind": s["kind"], "status": s["status"], "start_ns": s["start_ns"], "duration_ms": s["duration_ms"],
            "model": a.get(SpanAttributes.LLM_MODEL_NAME) or a.get(SpanAttributes.EMBEDDING_MODEL_NAME),
            "prompt_tokens": a.get(SpanAttributes.LLM_TOKEN_COUNT_PROMPT),
            "completion_tokens": a.get(SpanAttributes.LLM_TOKEN_COUNT_COMPLETION),
            "cost_usd": a.get(SpanAttributes.LLM_COST_TOTAL),
            "cache_hit": a.get(CACHE_HIT),
            "user_id": a.get(SpanAttributes.USER_ID),
        })
    return pd.DataFrame(rows)
