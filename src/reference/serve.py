"""An OpenAI-compatible HTTP server for the lab's local models, built to survive load.

Endpoints: ``GET /v1/models``, ``POST /v1/chat/completions`` (streaming with SSE),
``POST /v1/embeddings``, ``GET /health`` (liveness), ``GET /ready`` (readiness) and
``GET /metrics`` (Prometheus). The official ``openai`` SDK, LangChain's
``ChatOpenAI``/``OpenAIEmbeddings`` and LlamaIndex's ``OpenAILike`` work against it
unchanged: point them at :attr:`LabServer.base_url`.

What it does that a naive wrapper does not:

* accepts both ``max_tokens`` and ``max_completion_tokens`` (LangChain sends the
  latter) and caps generation at :data:`DEFAULT_MAX_TOKENS` when neither is given;
* enforces ``response_format`` (``json_object``/``json_schema``) and a forced
  ``tool_choice`` with grammar-constrained decoding, so structured output parses;
* stops generating as soon as the client disconnects (streaming or not);
* answers errors in OpenAI's JSON shape with the right status codes.

And under load (see :class:`ServerLimits`):

* **admission control**: at most ``max_concurrency`` generations run at once (llama.cpp
  decodes one sequence at a time, so the default is 1) and at most ``max_queue`` wait;
  past that a request gets ``429`` with ``Retry-After`` at once instead of piling up;
* **fairness**: waiting chat requests are served round-robin across clients (the
  ``X-Client-Id`` header, else the peer address), so one busy client cannot starve others;
* **timeouts**: a request that cannot start within ``queue_timeout_s`` gets ``503``; a
  generation still running at ``request_timeout_s`` is stopped and answered ``504``;
* **graceful shutdown**: :meth:`LabServer.stop` first turns ``/ready`` to 503 and refuses
  new work with 503, lets in-flight requests finish, then exits;
* **dynamic batching for embeddings**: requests that arrive within ``embed_batch_window_s``
  of each other are embedded in one call (chat cannot be batched: llama-cpp-python
  serves a single sequence; see notebook 07/01 for what vLLM/TGI do instead);
* **observability**: one JSON log line per request (id, path, status, latency, queue
  time, tokens; never the API key or message contents) and Prometheus metrics.

Example:
    >>> with LabServer() as server:                       # doctest: +SKIP
    ...     client = openai.OpenAI(base_url=server.base_url, api_key="unused")
    ...     client.chat.completions.create(model="smollm2-135m-instruct", messages=[...])
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import json
import logging
import math
import os
import secrets
import socket
import threading
import time
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response, StreamingResponse
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from reference.config import LOCAL_CHAT_MODEL, LOCAL_EMBED_MODEL
from reference.errors import ConfigurationError, InputError, InputTooLargeError, LabError
from reference.llm import (
    ChatModel,
    LlamaCppChatModel,
    _tool_call_from_text,
    forced_tool_schema,
    json_schema_from_response_format,
    validate_messages,
)

__all__ = [
    "DEFAULT_MAX_TOKENS", "MAX_BODY_BYTES", "ServerLimits", "FairQueue", "create_app", "LabServer",
    "free_port", "kv_cache_bytes_per_token", "build_parser", "main",
]

DEFAULT_MAX_TOKENS = 512
MAX_BODY_BYTES = 4 * 1024 * 1024
ACCESS_LOGGER = "reference.serve.access"
_log = logging.getLogger(ACCESS_LOGGER)


@dataclass(frozen=True)
class ServerLimits:
    """How much work the server accepts, and for how long it waits.

    Attributes:
        max_concurrency: chat generations running at once (llama.cpp: 1 is all it can do).
        max_queue: chat requests allowed to wait for a slot; one more gets ``429``.
        queue_timeout_s: longest wait for a slot before ``503``.
        request_timeout_s: longest generation before it is stopped and answered ``504``.
        embed_batch_window_s: how long the first embedding request waits for company
            (``0`` turns dynamic batching off: each request is embedded alone).
        embed_max_batch: most texts embedded in one call.
        embed_max_pending: most texts waiting to be embedded; more gets ``429``.

    Example:
        >>> ServerLimits(max_queue=4).max_queue
        4
    """

    max_concurrency: int = 1
    max_queue: int = 16
    queue_timeout_s: float = 30.0
    request_timeout_s: float = 120.0
    embed_batch_window_s: float = 0.005
    embed_max_batch: int = 64
    embed_max_pending: int = 4096

    def __post_init__(self) -> None:
        if self.max_concurrency < 1:
            raise ConfigurationError(f"max_concurrency must be >= 1, got {self.max_concurrency}")
        if self.max_queue < 0:
            raise ConfigurationError(f"max_queue must be >= 0, got {self.max_queue}")
        if self.queue_timeout_s <= 0 or self.request_timeout_s <= 0:
            raise ConfigurationError("queue_timeout_s and request_timeout_s must be > 0")
        if self.embed_batch_window_s < 0 or self.embed_max_batch < 1 or self.embed_max_pending < 1:
            raise ConfigurationError("embed_batch_window_s must be >= 0; embed_max_batch/_pending >= 1")


def kv_cache_bytes_per_token(n_layers: int, n_kv_heads: int, head_dim: int, bytes_per_value: float = 2) -> int:
    """Memory one token occupies in the KV cache: keys and values in every layer.

    ``n_layers * n_kv_heads * head_dim * 2 (K and V) * bytes_per_value`` (2 for fp16).

    Example:
        >>> kv_cache_bytes_per_token(30, 3, 64)   # SmolLM2-135M in fp16
        23040
    """
    for name, value in (("n_layers", n_layers), ("n_kv_heads", n_kv_heads), ("head_dim", head_dim)):
        if int(value) != value or value < 1:
            raise InputError(f"{name} must be a positive integer, got {value!r}")
    if bytes_per_value <= 0:
        raise InputError(f"bytes_per_value must be > 0, got {bytes_per_value}")
    return int(n_layers * n_kv_heads * head_dim * 2 * bytes_per_value)


# --------------------------------------------------------------------------- admission control


class FairQueue:
    """A concurrency limit with a bounded, per-client round-robin wait queue (event-loop only).

    ``enter(client)`` returns a future that resolves when the caller holds a slot, or
    ``None`` when the queue is full (the caller should answer ``429``). Every holder must
    call :meth:`release` once; a waiter that gives up calls :meth:`abandon`.

    Example:
        >>> async def demo():
        ...     q = FairQueue(max_active=1, max_waiting=0)
        ...     first, second = q.enter("a"), q.enter("b")
        ...     return first.done(), second
        >>> asyncio.run(demo())
        (True, None)
    """

    def __init__(self, max_active: int, max_waiting: int) -> None:
        self.max_active = max_active
        self.max_waiting = max_waiting
        self.active = 0
        self.waiting = 0
        self._queues: collections.OrderedDict[str, collections.deque[asyncio.Future]] = collections.OrderedDict()

    def enter(self, client: str) -> asyncio.Future | None:
        loop = asyncio.get_running_loop()
        fut: asyncio.Future = loop.create_future()
        if self.active < self.max_active and self.waiting == 0:
            self.active += 1
            fut.set_result(True)
            return fut
        if self.waiting >= self.max_waiting:
            return None
        self._queues.setdefault(client, collections.deque()).append(fut)
        self.waiting += 1
        return fut

    def abandon(self, fut: asyncio.Future) -> None:
        """Give up waiting (timeout, disconnect); releases the slot if it was granted meanwhile."""
        if fut.done() and not fut.cancelled():
            self.release()
            return
        fut.cancel()
        for client, queue in list(self._queues.items()):
            if fut in queue:
                queue.remove(fut)
                self.waiting -= 1
                if not queue:
                    del self._queues[client]
                return

    def release(self) -> None:
        """Hand the slot to the next waiting client in round-robin order, or free it."""
        while self._queues:
            client, queue = next(iter(self._queues.items()))
            fut = queue.popleft()
            self.waiting -= 1
            del self._queues[client]
            if queue:
                self._queues[client] = queue  # back of the rotation
            if not fut.done():
                fut.set_result(True)  # the slot passes on; self.active unchanged
                return
        self.active = max(0, self.active - 1)


class _Rejected(Exception):
    def __init__(self, status: int, reason: str, message: str) -> None:
        super().__init__(message)
        self.status, self.reason = status, reason


class _EmbedBatcher:
    """Collect embedding requests for a few milliseconds and embed them in one call."""

    def __init__(self, get_embedder: Callable[[], Any], limits: ServerLimits, metrics: _Metrics) -> None:
        self.get_embedder = get_embedder
        self.limits = limits
        self.metrics = metrics
        self.pending: list[tuple[list[str], asyncio.Future]] = []
        self.pending_texts = 0
        self.batches = 0
        self._runner: asyncio.Task | None = None

    async def embed(self, texts: list[str]) -> Any:
        if self.pending_texts + len(texts) > self.limits.embed_max_pending:
            raise _Rejected(429, "embed_queue_full", "too many embedding requests waiting; retry shortly")
        fut: asyncio.Future = asyncio.get_running_loop().create_future()
        self.pending.append((texts, fut))
        self.pending_texts += len(texts)
        if self._runner is None or self._runner.done():
            self._runner = asyncio.create_task(self._run())
        return await asyncio.shield(fut)

    async def _run(self) -> None:
        import numpy as np  # noqa: PLC0415

        while self.pending:
            if self.limits.embed_batch_window_s > 0:
                await asyncio.sleep(self.limits.embed_batch_window_s)
                take, size = [], 0
                while self.pending and (not take or size + len(self.pending[0][0]) <= self.limits.embed_max_batch):
                    item = self.pending.pop(0)
                    take.append(item)
                    size += len(item[0])
            else:
                take = [self.pending.pop(0)]
            texts = [t for item, _ in take for t in item]
            self.pending_texts -= len(texts)
            self.batches += 1
            self.metrics.embed_batch.observe(len(texts))
            try:
                emb = await asyncio.to_thread(self.get_embedder)
                vectors = await asyncio.to_thread(emb.embed, texts)
            except BaseException as exc:  # noqa: BLE001 - every waiter gets the error
                for _, fut in take:
                    if not fut.done():
                        fut.set_exception(exc)
                continue
            start = 0
            for item, fut in take:
                if not fut.done():
                    fut.set_result(np.asarray(vectors[start:start + len(item)]))
                start += len(item)


# --------------------------------------------------------------------------- metrics and state


class _Metrics:
    """Prometheus metrics in a registry of their own (several apps can live in one process)."""

    def __init__(self) -> None:
        from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram  # noqa: PLC0415

        self.registry = CollectorRegistry()
        self.requests = Counter("lab_requests_total", "HTTP requests answered", ["path", "status"],
                                registry=self.registry)
        self.latency = Histogram("lab_request_latency_seconds", "time from request to last byte", ["path"],
                                 buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120),
                                 registry=self.registry)
        self.queue_wait = Histogram("lab_queue_wait_seconds", "time a chat request waited for a slot",
                                    buckets=(0.001, 0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
                                    registry=self.registry)
        self.tokens = Counter("lab_tokens_total", "tokens processed", ["kind"], registry=self.registry)
        self.queue_depth = Gauge("lab_queue_depth", "chat requests waiting for a slot", registry=self.registry)
        self.in_flight = Gauge("lab_in_flight_requests", "requests being handled", registry=self.registry)
        self.rejections = Counter("lab_rejections_total", "requests refused by admission control", ["reason"],
                                  registry=self.registry)
        self.embed_batch = Histogram("lab_embed_batch_texts", "texts per embedding call",
                                     buckets=(1, 2, 4, 8, 16, 32, 64, 128), registry=self.registry)
        self.ready = Gauge("lab_ready", "1 when the chat model is loaded and the server is not draining",
                           registry=self.registry)


class ServerState:
    """What the running app knows about itself: load, readiness, recent log lines."""

    def __init__(self, limits: ServerLimits) -> None:
        self.limits = limits
        self.metrics = _Metrics()
        self.draining = False
        self.in_flight = 0
        self.chat_queue: FairQueue | None = None  # created on the event loop's first use
        self.recent_logs: collections.deque[dict[str, Any]] = collections.deque(maxlen=1000)
        self.service_s = 0.0  # moving average of one generation's duration (for Retry-After)
        self.models_loaded: Callable[[], bool] = lambda: False
        self.warm_up: Callable[[], None] = lambda: None

    def queue(self) -> FairQueue:
        if self.chat_queue is None:
            self.chat_queue = FairQueue(self.limits.max_concurrency, self.limits.max_queue)
        return self.chat_queue

    def retry_after_s(self) -> int:
        """Seconds until a slot is likely free: waiting work times average service time."""
        q = self.queue()
        per_slot = (q.waiting + 1) * (self.service_s or 1.0) / self.limits.max_concurrency
        return max(1, min(60, math.ceil(per_slot)))

    def is_ready(self) -> bool:
        return not self.draining and self.models_loaded()


# --------------------------------------------------------------------------- requests


class ChatRequest(BaseModel):
    """The subset of OpenAI's chat-completions request the lab honours (extras ignored)."""

    model_config = ConfigDict(extra="ignore")

    model: str
    messages: list[dict[str, Any]]
    max_tokens: int | None = Field(default=None, ge=1)
    max_completion_tokens: int | None = Field(default=None, ge=1)
    temperature: float | None = Field(default=None, ge=0, le=2)
    stop: str | list[str] | None = None
    stream: bool = False
    stream_options: dict[str, Any] | None = None
    response_format: dict[str, Any] | None = None
    tools: list[dict[str, Any]] | None = None
    tool_choice: str | dict[str, Any] | None = None
    seed: int | None = None
    n: int = 1


class EmbeddingRequest(BaseModel):
    model_config = ConfigDict(extra="ignore")

    model: str
    input: str | list[str] | list[int] | list[list[int]]
    encoding_format: str | None = None


def _error(status: int, message: str, kind: str, code: str | None = None,
           headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse({"error": {"message": message, "type": kind, "code": code}}, status_code=status,
                        headers=headers)


def _rejection(exc: _Rejected, state: ServerState) -> JSONResponse:
    state.metrics.rejections.labels(exc.reason).inc()
    kind = "rate_limit_error" if exc.status == 429 else "server_error"
    return _error(exc.status, str(exc), kind, exc.reason, headers={"Retry-After": str(state.retry_after_s())})


def create_app(
    chat_model: ChatModel | None = None,
    embedder: Any | None = None,
    *,
    chat_model_name: str = LOCAL_CHAT_MODEL,
    embed_model_name: str = LOCAL_EMBED_MODEL,
    api_key: str | None = None,
    limits: ServerLimits | None = None,
    log_prompts: bool = False,
) -> FastAPI:
    """Build the server app. Models load lazily on first use unless passed in.

    Args:
        chat_model: a local chat model; defaults to :class:`LlamaCppChatModel`.
        embedder: an :class:`reference.embeddings.Embedder`; defaults to the local one.
        chat_model_name: the name clients must send as ``model`` for chat.
        embed_model_name: the name clients must send as ``model`` for embeddings.
        api_key: when set, requests need ``Authorization: Bearer <api_key>``.
        limits: concurrency, queue, timeout and batching limits (:class:`ServerLimits`).
        log_prompts: add the first 80 characters of the last message to the access log
            (off by default: prompts can hold personal data).

    The app's :class:`ServerState` is ``app.state.lab`` (``recent_logs``, ``metrics``,
    ``warm_up()``, ``draining``).
    """
    limits = limits or ServerLimits()
    app = FastAPI(title="AI Engineering Lab model server", version="2")
    lab = ServerState(limits)
    app.state.lab = lab
    app.add_middleware(_GuardMiddleware, api_key=api_key, max_body_bytes=MAX_BODY_BYTES, state=lab)
    models: dict[str, Any] = {"chat": chat_model, "embedder": embedder}
    load_lock = threading.Lock()

    def get_chat() -> ChatModel:
        with load_lock:
            if models["chat"] is None:
                models["chat"] = LlamaCppChatModel()
            return models["chat"]

    def get_embedder() -> Any:
        with load_lock:
            if models["embedder"] is None:
                from reference.embeddings import LocalEmbedder  # noqa: PLC0415

                models["embedder"] = LocalEmbedder()
            return models["embedder"]

    def warm_up() -> None:
        get_chat()
        get_embedder()

    lab.models_loaded = lambda: models["chat"] is not None
    lab.warm_up = warm_up
    batcher = _EmbedBatcher(get_embedder, limits, lab.metrics)

    @app.get("/health")
    def health() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/ready", response_model=None)
    def ready() -> Any:
        ok = lab.is_ready()
        lab.metrics.ready.set(1 if ok else 0)
        body = {"ready": ok, "chat_model_loaded": models["chat"] is not None,
                "embedder_loaded": models["embedder"] is not None, "draining": lab.draining}
        return JSONResponse(body, status_code=200 if ok else 503)

    @app.get("/metrics")
    def metrics() -> Response:
        from prometheus_client import CONTENT_TYPE_LATEST, generate_latest  # noqa: PLC0415

        q = lab.queue()
        lab.metrics.queue_depth.set(q.waiting)
        lab.metrics.ready.set(1 if lab.is_ready() else 0)
        return Response(generate_latest(lab.metrics.registry), media_type=CONTENT_TYPE_LATEST)

    @app.get("/v1/models")
    def list_models() -> dict[str, Any]:
        now = int(time.time())
        return {
            "object": "list",
            "data": [
                {"id": chat_model_name, "object": "model", "created": now, "owned_by": "lab"},
                {"id": embed_model_name, "object": "model", "created": now, "owned_by": "lab"},
            ],
        }

    async def admit(request: Request, client: str, cancel: threading.Event) -> float:
        """Wait for a chat slot; returns the seconds waited. Raises _Rejected."""
        q = lab.queue()
        fut = q.enter(client)
        if fut is None:
            raise _Rejected(429, "queue_full", f"server busy: {q.active} running and {q.waiting} waiting; "
                                               "retry after the Retry-After seconds")
        lab.metrics.queue_depth.set(q.waiting)
        started = time.perf_counter()
        if not fut.done():
            watcher = asyncio.create_task(_watch_disconnect(request, cancel))
            try:
                done, _ = await asyncio.wait({fut, watcher}, timeout=limits.queue_timeout_s,
                                             return_when=asyncio.FIRST_COMPLETED)
            finally:
                watcher.cancel()
            if fut not in done:
                q.abandon(fut)
                lab.metrics.queue_depth.set(q.waiting)
                if cancel.is_set():
                    raise _Rejected(499, "client_gone", "client disconnected while queued")
                raise _Rejected(503, "queue_timeout", f"no slot within {limits.queue_timeout_s:g} s; retry later")
        lab.metrics.queue_depth.set(q.waiting)
        waited = time.perf_counter() - started
        lab.metrics.queue_wait.observe(waited)
        return waited

    def finished(seconds: float) -> None:
        lab.service_s = seconds if lab.service_s == 0 else 0.8 * lab.service_s + 0.2 * seconds
        lab.queue().release()

    @app.post("/v1/chat/completions", response_model=None)
    async def chat(request: Request) -> Any:
        info = request.scope.setdefault("lab", {})
        try:
            req = ChatRequest.model_validate(await request.json())
        except (ValidationError, json.JSONDecodeError, UnicodeDecodeError) as exc:
            return _error(400, f"invalid request: {_short(exc)}", "invalid_request_error")
        if req.model != chat_model_name:
            return _error(404, f"model {req.model!r} not found; this server serves {chat_model_name!r}",
                          "invalid_request_error", "model_not_found")
        if req.n != 1:
            return _error(400, "only n=1 is supported", "invalid_request_error")
        model = await asyncio.to_thread(get_chat)
        try:
            messages = validate_messages(req.messages)
            forced = forced_tool_schema(req.tools or [], req.tool_choice)
            schema = forced[0] if forced else json_schema_from_response_format(req.response_format)
        except LabError as exc:
            return _error(400, str(exc), "invalid_request_error")
        if log_prompts:
            info["prompt_preview"] = str(messages[-1].get("content", ""))[:80]
        max_tokens = req.max_completion_tokens or req.max_tokens or DEFAULT_MAX_TOKENS
        stop = [req.stop] if isinstance(req.stop, str) else list(req.stop or [])
        opts = {
            "max_tokens": max_tokens, "temperature": req.temperature or 0.0, "stop": stop,
            "schema": schema, "seed": req.seed if req.seed is not None else 0,
        }
        cid = f"chatcmpl-{uuid.uuid4().hex[:24]}"
        created = int(time.time())
        try:
            n_prompt = await asyncio.to_thread(model.prompt_tokens, messages)  # type: ignore[attr-defined]
        except LabError as exc:
            return _error(400, str(exc), "invalid_request_error")
        info["prompt_tokens"] = n_prompt
        if n_prompt + max_tokens > model.n_ctx:  # type: ignore[attr-defined]
            return _error(400, str(InputTooLargeError(
                f"prompt is {n_prompt} tokens and max_tokens is {max_tokens}, but the context window "
                f"holds {model.n_ctx}")), "invalid_request_error", "context_length_exceeded")  # type: ignore[attr-defined]
        cancel = threading.Event()
        try:
            info["queue_ms"] = round(1000 * await admit(request, info.get("client", "?"), cancel), 1)
        except _Rejected as exc:
            return _rejection(exc, lab)
        lab.metrics.tokens.labels("prompt").inc(n_prompt)
        started = time.perf_counter()
        timed_out = threading.Event()
        timer = asyncio.get_running_loop().call_later(
            limits.request_timeout_s, lambda: (timed_out.set(), cancel.set()))
        if req.stream:
            include_usage = bool((req.stream_options or {}).get("include_usage"))
            release = _Once(lambda: (timer.cancel(), finished(time.perf_counter() - started)))
            return _ReleasingStreamingResponse(
                _stream(request, model, messages, opts, cid, created, chat_model_name, n_prompt,
                        include_usage, forced, cancel, timed_out, info, lab, release),
                media_type="text/event-stream", on_close=release,
            )
        pieces: list[str] = []
        watcher = asyncio.create_task(_watch_disconnect(request, cancel))
        try:
            await asyncio.to_thread(_collect, model, messages, opts, cancel, pieces)
        except InputError as exc:
            return _error(400, str(exc), "invalid_request_error")
        finally:
            watcher.cancel()
            timer.cancel()
            finished(time.perf_counter() - started)
        info["completion_tokens"] = len(pieces)
        lab.metrics.tokens.labels("completion").inc(len(pieces))
        if timed_out.is_set():
            lab.metrics.rejections.labels("generation_timeout").inc()
            return _error(504, f"generation stopped after {limits.request_timeout_s:g} s (request timeout); "
                               f"{len(pieces)} tokens were generated", "server_error", "timeout")
        text = "".join(pieces)
        finish = getattr(model, "_last_finish", "stop")
        message: dict[str, Any] = {"role": "assistant", "content": text}
        if forced is not None:
            call = _tool_call_from_text(text, forced[1])
            message = {"role": "assistant", "content": None, "tool_calls": [
                {"id": call.id, "type": "function", "function": {"name": call.name, "arguments": call.arguments}}
            ]}
            finish = "tool_calls" if finish == "stop" else finish
        return {
            "id": cid, "object": "chat.completion", "created": created, "model": chat_model_name,
            "choices": [{"index": 0, "message": message, "finish_reason": finish}],
            "usage": {"prompt_tokens": n_prompt, "completion_tokens": len(pieces),
                      "total_tokens": n_prompt + len(pieces)},
        }

    @app.post("/v1/embeddings", response_model=None)
    async def embeddings(request: Request) -> Any:
        from reference.embeddings import _check_texts  # noqa: PLC0415

        info = request.scope.setdefault("lab", {})
        try:
            req = EmbeddingRequest.model_validate(await request.json())
        except (ValidationError, json.JSONDecodeError, UnicodeDecodeError) as exc:
            return _error(400, f"invalid request: {_short(exc)}", "invalid_request_error")
        if req.model != embed_model_name:
            return _error(404, f"model {req.model!r} not found; this server embeds with {embed_model_name!r}",
                          "invalid_request_error", "model_not_found")
        texts = [req.input] if isinstance(req.input, str) else req.input
        if not texts or not all(isinstance(t, str) for t in texts):
            return _error(400, "input must be a non-empty string or list of strings (token arrays are not supported)",
                          "invalid_request_error")
        try:
            _check_texts(texts)  # refuse bad input before it can spoil a shared batch
            vectors = await asyncio.wait_for(batcher.embed(texts), timeout=limits.request_timeout_s)
        except _Rejected as exc:
            return _rejection(exc, lab)
        except asyncio.TimeoutError:
            lab.metrics.rejections.labels("embed_timeout").inc()
            return _error(504, f"embedding took over {limits.request_timeout_s:g} s", "server_error", "timeout")
        except LabError as exc:
            return _error(400, str(exc), "invalid_request_error")
        emb = await asyncio.to_thread(get_embedder)
        n_tokens = sum(emb.count_tokens(t) for t in texts) if hasattr(emb, "count_tokens") else 0
        info["prompt_tokens"] = n_tokens
        lab.metrics.tokens.labels("embedding").inc(n_tokens)
        return {
            "object": "list", "model": embed_model_name,
            "data": [{"object": "embedding", "index": i, "embedding": v.tolist()} for i, v in enumerate(vectors)],
            "usage": {"prompt_tokens": n_tokens, "total_tokens": n_tokens},
        }

    app.state.embed_batcher = batcher
    return app


def _short(exc: Exception) -> str:
    if isinstance(exc, ValidationError):
        e = exc.errors()[0]
        return f"{'.'.join(str(x) for x in e['loc'])}: {e['msg']}"
    return str(exc)


def _collect(model: Any, messages: list, opts: dict, cancel: threading.Event, out: list[str]) -> None:
    for piece in model.iter_tokens(messages, cancel=cancel, **opts):
        out.append(piece)


async def _watch_disconnect(request: Request, cancel: threading.Event) -> None:
    """Wait for the ASGI ``http.disconnect`` message (the body was already read)."""
    while not cancel.is_set():
        message = await request.receive()
        if message.get("type") == "http.disconnect":
            cancel.set()
            return


class _Once:
    """Call ``fn`` at most once, however many paths try to (release a slot exactly once)."""

    def __init__(self, fn: Callable[[], Any]) -> None:
        self.fn, self.done = fn, False

    def __call__(self) -> None:
        if not self.done:
            self.done = True
            self.fn()


class _ReleasingStreamingResponse(StreamingResponse):
    """A streaming response that releases its chat slot even if the body never starts."""

    def __init__(self, content: Any, *, on_close: Callable[[], None], **kw: Any) -> None:
        super().__init__(content, **kw)
        self._on_close = on_close

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        try:
            await super().__call__(scope, receive, send)
        finally:
            self._on_close()


class _GuardMiddleware:
    """Plain ASGI middleware (not BaseHTTPMiddleware, which hides client disconnects).

    On every HTTP request: a request id (``X-Request-Id``, echoed back), the access log
    line and request metrics. On ``/v1/`` paths also: refusal while draining, the
    bearer-token check in constant time and the request-size limit.
    """

    def __init__(self, app: Any, *, api_key: str | None, max_body_bytes: int, state: ServerState) -> None:
        self.app = app
        self.expected = f"Bearer {api_key}".encode() if api_key is not None else None
        self.max_body_bytes = max_body_bytes
        self.state = state

    async def __call__(self, scope: dict, receive: Callable, send: Callable) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = dict(scope.get("headers") or [])
        rid = headers.get(b"x-request-id", b"").decode("latin-1")[:64] or uuid.uuid4().hex[:16]
        peer = (scope.get("client") or ("?", 0))[0]
        client = headers.get(b"x-client-id", b"").decode("latin-1")[:64] or peer
        info: dict[str, Any] = {"client": client}
        scope["lab"] = info
        status = {"code": 500}
        started = time.perf_counter()

        async def send_wrapper(message: dict) -> None:
            if message["type"] == "http.response.start":
                status["code"] = message["status"]
                message.setdefault("headers", [])
                message["headers"] = [*message["headers"], (b"x-request-id", rid.encode("latin-1"))]
            await send(message)

        path = scope["path"]
        self.state.in_flight += 1
        self.state.metrics.in_flight.inc()
        try:
            refusal = self._refuse(path, headers)
            if refusal is not None:
                await refusal(scope, receive, send_wrapper)
            else:
                await self.app(scope, receive, send_wrapper)
        finally:
            self.state.in_flight -= 1
            self.state.metrics.in_flight.dec()
            latency = time.perf_counter() - started
            label = path if path in _KNOWN_PATHS else "other"
            self.state.metrics.requests.labels(label, str(status["code"])).inc()
            self.state.metrics.latency.labels(label).observe(latency)
            if path not in ("/health", "/ready", "/metrics"):
                record = {"event": "request", "id": rid, "method": scope.get("method"), "path": path,
                          "status": status["code"], "latency_ms": round(latency * 1000, 1), "client": client}
                record.update({k: v for k, v in info.items() if k != "client"})
                self.state.recent_logs.append(record)
                _log.info(json.dumps(record))

    def _refuse(self, path: str, headers: dict[bytes, bytes]) -> JSONResponse | None:
        if not path.startswith("/v1/"):
            return None
        if self.state.draining:
            self.state.metrics.rejections.labels("draining").inc()
            return _error(503, "server is shutting down; retry on another replica", "server_error", "draining",
                          headers={"Retry-After": "1"})
        if self.expected is not None and not secrets.compare_digest(
            headers.get(b"authorization", b""), self.expected
        ):
            return _error(401, "missing or wrong API key", "authentication_error", "invalid_api_key")
        length = headers.get(b"content-length", b"")
        if length.isdigit() and int(length) > self.max_body_bytes:
            return _error(413, f"request body over {self.max_body_bytes} bytes", "invalid_request_error")
        return None


_KNOWN_PATHS = {"/health", "/ready", "/metrics", "/v1/models", "/v1/chat/completions", "/v1/embeddings"}


async def _stream(
    request: Request, model: Any, messages: list, opts: dict, cid: str, created: int, name: str,
    n_prompt: int, include_usage: bool, forced: tuple[dict, str | None] | None, cancel: threading.Event,
    timed_out: threading.Event, info: dict[str, Any], lab: ServerState, release: Callable[[], None],
) -> AsyncIterator[str]:
    """Server-sent events, one chunk per token; generation stops when the client leaves."""
    queue: asyncio.Queue[str | None | BaseException] = asyncio.Queue()
    loop = asyncio.get_running_loop()

    def produce() -> None:
        try:
            for piece in model.iter_tokens(messages, cancel=cancel, **opts):
                loop.call_soon_threadsafe(queue.put_nowait, piece)
        except BaseException as exc:  # noqa: BLE001 - forwarded to the response
            loop.call_soon_threadsafe(queue.put_nowait, exc)
        finally:
            loop.call_soon_threadsafe(queue.put_nowait, None)

    def chunk(delta: dict[str, Any], finish: str | None = None) -> str:
        body = {"id": cid, "object": "chat.completion.chunk", "created": created, "model": name,
                "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]}
        return f"data: {json.dumps(body)}\n\n"

    worker = threading.Thread(target=produce, daemon=True)
    worker.start()
    n = 0
    text: list[str] = []
    started = time.perf_counter()
    try:
        yield chunk({"role": "assistant", "content": ""})
        while True:
            item = await queue.get()
            if item is None:
                break
            if isinstance(item, BaseException):
                err = {"error": {"message": str(item), "type": "server_error"}}
                yield f"data: {json.dumps(err)}\n\n"
                return
            n += 1
            if n == 1:
                info["ttft_ms"] = round(1000 * (time.perf_counter() - started), 1)
            text.append(item)
            if forced is None:
                yield chunk({"content": item})
            if await request.is_disconnected():
                cancel.set()
                return
        if timed_out.is_set():
            lab.metrics.rejections.labels("generation_timeout").inc()
            err = {"error": {"message": f"generation stopped after {lab.limits.request_timeout_s:g} s",
                             "type": "server_error", "code": "timeout"}}
            yield f"data: {json.dumps(err)}\n\n"
            return
        finish = getattr(model, "_last_finish", "stop")
        if forced is not None:
            call = _tool_call_from_text("".join(text), forced[1])
            yield chunk({"tool_calls": [{"index": 0, "id": call.id, "type": "function",
                                         "function": {"name": call.name, "arguments": call.arguments}}]})
            finish = "tool_calls"
        yield chunk({}, finish)
        if include_usage:
            usage = {"prompt_tokens": n_prompt, "completion_tokens": n, "total_tokens": n_prompt + n}
            body = {"id": cid, "object": "chat.completion.chunk", "created": created, "model": name,
                    "choices": [], "usage": usage}
            yield f"data: {json.dumps(body)}\n\n"
        yield "data: [DONE]\n\n"
    finally:
        cancel.set()
        info["completion_tokens"] = n
        lab.metrics.tokens.labels("completion").inc(n)
        release()


def free_port() -> int:
    """A TCP port on 127.0.0.1 that is free right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class LabServer:
    """Run the app with uvicorn in a background thread; use as a context manager.

    Attributes:
        base_url: ``http://127.0.0.1:<port>/v1``, what OpenAI clients take as ``base_url``.
        root_url: ``http://127.0.0.1:<port>``, where ``/health``, ``/ready`` and ``/metrics`` live.
    """

    def __init__(self, app: FastAPI | None = None, *, port: int | None = None, host: str = "127.0.0.1") -> None:
        import uvicorn  # noqa: PLC0415

        self.app = app or create_app()
        self.host = host
        self.port = port or free_port()
        # asyncio + h11 explicitly: the same behaviour whether or not uvloop/httptools are installed.
        config = uvicorn.Config(self.app, host=host, port=self.port, log_level="warning", lifespan="off",
                                loop="asyncio", http="h11", timeout_graceful_shutdown=30)
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._server.run, name="lab-server", daemon=True)

    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.port}/v1"

    @property
    def root_url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def state(self) -> ServerState | None:
        """The app's :class:`ServerState` (``None`` for an app not built by :func:`create_app`)."""
        return getattr(self.app.state, "lab", None)

    def start(self, timeout_s: float = 30.0) -> LabServer:
        """Start serving and wait until the port answers."""
        self._thread.start()
        deadline = time.monotonic() + timeout_s
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError(f"the lab server did not start on port {self.port}")
            time.sleep(0.02)
        return self

    def stop(self, drain_timeout_s: float = 15.0) -> float:
        """Drain, then exit: ``/ready`` turns 503 and new ``/v1`` requests get 503 at once,
        in-flight requests finish (up to ``drain_timeout_s``), then uvicorn shuts down.

        Returns:
            seconds spent waiting for in-flight requests.
        """
        started = time.monotonic()
        state = self.state
        if state is not None and self._thread.is_alive():
            state.draining = True
            while state.in_flight > 0 and time.monotonic() - started < drain_timeout_s:
                time.sleep(0.01)
        waited = time.monotonic() - started
        self._server.should_exit = True
        if self._thread.is_alive():
            self._thread.join(timeout=15)
        return waited

    def __enter__(self) -> LabServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def build_parser() -> argparse.ArgumentParser:
    """The command-line options of ``python -m reference.serve`` (deploy manifests use them)."""
    parser = argparse.ArgumentParser(prog="python -m reference.serve")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument("--max-concurrency", type=int, default=1)
    parser.add_argument("--max-queue", type=int, default=16)
    parser.add_argument("--request-timeout-s", type=float, default=120.0)
    parser.add_argument("--no-preload", action="store_true", help="load models on first request instead")
    return parser


def main(argv: list[str] | None = None) -> int:
    """``python -m reference.serve``: the server as a container runs it.

    Loads the models in the background (``/ready`` turns 200 when done), reads the API
    key from ``LAB_SERVER_API_KEY`` (never from the command line, where ``ps`` shows it),
    logs one JSON line per request to stdout. On SIGTERM uvicorn stops accepting
    connections and lets in-flight requests finish (up to 30 s); in Kubernetes a short
    ``preStop`` sleep covers the moment before the endpoint is removed.
    """
    parser = build_parser()
    args = parser.parse_args(argv)
    import uvicorn  # noqa: PLC0415

    logging.basicConfig(level=logging.INFO, format="%(message)s")
    key = os.environ.get("LAB_SERVER_API_KEY") or None
    limits = ServerLimits(max_concurrency=args.max_concurrency, max_queue=args.max_queue,
                          request_timeout_s=args.request_timeout_s)
    app = create_app(api_key=key, limits=limits)
    if not args.no_preload:
        threading.Thread(target=app.state.lab.warm_up, name="warm-up", daemon=True).start()
    print(json.dumps({"event": "start", "url": f"http://{args.host}:{args.port}/v1", "auth": bool(key)}), flush=True)
    uvicorn.run(app, host=args.host, port=args.port, log_level="warning", loop="asyncio", http="h11",
                timeout_graceful_shutdown=30)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
