"""A small, production-shaped HTTP API around a chat model (FastAPI + pydantic).

:func:`create_app` builds the service that notebook ``01_rest_api`` runs and that
``04_docker`` packages::

    GET  /healthz        liveness probe, no auth (for Docker HEALTHCHECK, load balancers)
    POST /v1/summarise   {"text": "...", "max_tokens": 48} -> summary + usage + latency

What it does on purpose, each with the status code a client can rely on:

* 401: the ``X-API-Key`` header is missing or wrong. Keys are compared with
  :func:`hmac.compare_digest`, so the time taken does not reveal how many leading
  characters were right. There is no default key: pass ``api_keys`` explicitly, or
  set ``LAB_API_KEYS`` for :func:`app_from_env`.
* 413: the request body is larger than ``max_body_bytes``. Nothing over the limit
  is kept in memory: a declared ``Content-Length`` over the limit is refused without
  storing the body; a body without one (chunked) is counted as it arrives.
* 422: malformed JSON, a missing/extra field, empty text, ``max_tokens`` out of range.
* 429 + ``Retry-After``: more than ``rate_limit_per_minute`` requests for one key
  (token bucket, so short bursts up to the limit are fine).
* 502 / 503 / 504: the model provider failed, is rate limited, or timed out.

:func:`serve_in_thread` runs any ASGI app with uvicorn on ``127.0.0.1`` on a free
port in a background thread and stops it cleanly (used by notebooks and tests).

Example:
    >>> from reference.llm import FakeChatModel
    >>> from fastapi.testclient import TestClient
    >>> key = generate_api_key()
    >>> client = TestClient(create_app(FakeChatModel(["Short."]), api_keys=[key]))
    >>> r = client.post("/v1/summarise", json={"text": "A long text."}, headers={"X-API-Key": key})
    >>> r.status_code, r.json()["summary"]
    (200, 'Short.')
    >>> client.post("/v1/summarise", json={"text": "A long text."}).status_code
    401
"""

from __future__ import annotations

import hashlib
import hmac
import math
import os
import secrets
import socket
import threading
import time
import uuid
from collections.abc import Awaitable, Callable, Iterable, Iterator, MutableMapping
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from fastapi import Depends, FastAPI, HTTPException, Request, Security
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.security import APIKeyHeader
from pydantic import BaseModel, ConfigDict, Field, field_validator

from reference.errors import (
    ConfigurationError,
    InputError,
    InputTooLargeError,
    ProviderError,
    ProviderTimeoutError,
    RateLimitError,
)

#: Name of the header that carries the API key.
API_KEY_HEADER = "X-API-Key"
#: Shortest API key :func:`create_app` accepts (``secrets.token_urlsafe(32)`` gives 43).
MIN_KEY_LENGTH = 16
#: Longest text ``/v1/summarise`` accepts, in characters.
MAX_INPUT_CHARS = 8_000
#: Largest ``max_tokens`` a client may ask for (the lab's model is small and slow-ish on CPU).
MAX_TOKENS_LIMIT = 64
#: Default request-body limit: the text limit plus room for JSON escaping.
DEFAULT_MAX_BODY_BYTES = 64 * 1024
#: How much of an oversized upload is read and discarded before answering 413 (see
#: :class:`BodySizeLimitMiddleware`); past this the connection is just closed.
DRAIN_LIMIT_BYTES = 32 * 1024 * 1024

SYSTEM_PROMPT = "You summarise text in one or two short sentences. Reply with the summary only."

ASGIApp = Callable[[MutableMapping[str, Any], Callable[[], Awaitable[Any]], Callable[[Any], Awaitable[None]]],
                   Awaitable[None]]


# --------------------------------------------------------------------------- schemas


class SummariseRequest(BaseModel):
    """Body of ``POST /v1/summarise``; unknown fields are rejected (422)."""

    model_config = ConfigDict(extra="forbid")

    text: str = Field(min_length=1, max_length=MAX_INPUT_CHARS, description="Text to summarise.")
    max_tokens: int = Field(default=48, ge=1, le=MAX_TOKENS_LIMIT, description="Upper bound on summary tokens.")

    @field_validator("text")
    @classmethod
    def _not_blank(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("text must contain something other than whitespace")
        return value


class UsageOut(BaseModel):
    prompt_tokens: int
    completion_tokens: int


class SummariseResponse(BaseModel):
    """Body of a successful ``POST /v1/summarise``."""

    summary: str
    model: str
    provider: str
    usage: UsageOut
    latency_ms: float
    request_id: str


class Health(BaseModel):
    status: str


# --------------------------------------------------------------------------- auth


def generate_api_key() -> str:
    """A new random API key (256 bits, URL-safe); show it once, store only where needed."""
    return secrets.token_urlsafe(32)


def verify_api_key(provided: str | None, valid_keys: Iterable[str]) -> bool:
    """True when ``provided`` equals one of ``valid_keys``, compared in constant time.

    Every key is compared (no early exit) and the comparison is on UTF-8 bytes, so
    non-ASCII input is simply wrong rather than a crash.

    Example:
        >>> verify_api_key("k" * 20, ["k" * 20]), verify_api_key("x", ["k" * 20]), verify_api_key(None, ["k"])
        (True, False, False)
    """
    if not provided:
        return False
    candidate = provided.encode("utf-8")
    match = False
    for key in valid_keys:
        match |= hmac.compare_digest(candidate, key.encode("utf-8"))
    return match


def key_id(key: str) -> str:
    """A short, non-reversible label for a key (safe for logs and rate-limit buckets)."""
    return hashlib.sha256(key.encode("utf-8")).hexdigest()[:12]


# --------------------------------------------------------------------------- rate limit


class RateLimiter:
    """Token bucket per client: ``per_minute`` requests, refilled continuously.

    Args:
        per_minute: bucket size and refill rate (tokens per 60 s).
        clock: seconds as a float; inject a fake in tests.

    Example:
        >>> t = [0.0]
        >>> rl = RateLimiter(2, clock=lambda: t[0])
        >>> rl.acquire("a"), rl.acquire("a"), rl.acquire("a")
        (0.0, 0.0, 30.0)
        >>> t[0] = 30.0; rl.acquire("a")
        0.0
    """

    def __init__(self, per_minute: int, *, clock: Callable[[], float] = time.monotonic) -> None:
        if per_minute < 1:
            raise ConfigurationError(f"rate limit must be >= 1 request per minute, got {per_minute}")
        self.capacity = float(per_minute)
        self.rate = per_minute / 60.0
        self._clock = clock
        self._buckets: dict[str, tuple[float, float]] = {}
        self._lock = threading.Lock()

    def acquire(self, client: str) -> float:
        """Take one token for ``client``: 0.0 when allowed, else seconds until one is free."""
        with self._lock:
            now = self._clock()
            tokens, last = self._buckets.get(client, (self.capacity, now))
            tokens = min(self.capacity, tokens + (now - last) * self.rate)
            if tokens >= 1.0:
                self._buckets[client] = (tokens - 1.0, now)
                return 0.0
            self._buckets[client] = (tokens, now)
            return (1.0 - tokens) / self.rate


# --------------------------------------------------------------------------- body limit


class BodySizeLimitMiddleware:
    """ASGI middleware: refuse request bodies over ``max_body_bytes`` with 413.

    Nothing over the limit is ever held in memory. A body whose ``Content-Length`` is
    over the limit is refused without being stored; one without a length (chunked) is
    buffered up to the limit and refused as soon as it goes over.

    Before answering 413 the rest of the upload is read and thrown away (up to
    ``drain_limit_bytes``), the way nginx's "lingering close" does. Closing a socket
    that still has unread data makes TCP reset the connection, and the client then
    usually sees a connection error instead of the 413 it should read.
    """

    def __init__(self, app: ASGIApp, max_body_bytes: int, drain_limit_bytes: int = DRAIN_LIMIT_BYTES) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes
        self.drain_limit_bytes = drain_limit_bytes

    async def __call__(self, scope: MutableMapping[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope.get("headers") or []).get(b"content-length")
        if declared is not None:
            try:
                size = int(declared)
            except ValueError:
                await _send_json(send, 400, {"detail": "invalid Content-Length header"}, close=True)
                return
            if size > self.max_body_bytes:
                await self._refuse(receive, send, self._too_large(size), more_body=True)
                return
        chunks: list[bytes] = []
        received = 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            body = message.get("body", b"")
            received += len(body)
            more = message.get("more_body", False)
            if received > self.max_body_bytes:
                chunks.clear()
                await self._refuse(receive, send, self._too_large(received, at_least=True), more_body=more)
                return
            chunks.append(body)
            if not more:
                break
        replayed = False

        async def replay() -> dict[str, Any]:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": b"".join(chunks), "more_body": False}
            return await receive()

        await self.app(scope, replay, send)

    async def _refuse(self, receive: Any, send: Any, detail: str, *, more_body: bool) -> None:
        drained = 0
        while more_body and drained <= self.drain_limit_bytes:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            drained += len(message.get("body", b""))
            more_body = message.get("more_body", False)
        await _send_json(send, 413, {"detail": detail}, close=more_body)

    def _too_large(self, size: int, at_least: bool = False) -> str:
        qualifier = "at least " if at_least else ""
        return f"request body is {qualifier}{size} bytes; the limit is {self.max_body_bytes} bytes"


async def _send_json(send: Any, status: int, payload: dict[str, Any], *, close: bool = False) -> None:
    response = JSONResponse(payload, status_code=status)
    headers = [*response.raw_headers, *([(b"connection", b"close")] if close else [])]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": response.body})


# --------------------------------------------------------------------------- app


def create_app(
    chat_model: Any,
    *,
    api_keys: Iterable[str],
    max_body_bytes: int | None = DEFAULT_MAX_BODY_BYTES,
    rate_limit_per_minute: int | None = 60,
    clock: Callable[[], float] = time.monotonic,
    title: str = "AI Engineering Lab summariser",
) -> FastAPI:
    """Build the summariser service around ``chat_model``.

    Args:
        chat_model: anything with ``chat(messages, max_tokens=...)`` returning a
            :class:`reference.llm.ChatResponse` (e.g. ``get_chat_model()`` or ``FakeChatModel``).
        api_keys: accepted keys; at least one, each at least ``MIN_KEY_LENGTH`` characters.
        max_body_bytes: largest request body; ``None`` turns the limit off (don't, in production).
        rate_limit_per_minute: requests per key per minute; ``None`` turns it off.
        clock: time source for the rate limiter (inject a fake in tests).
        title: shown in the OpenAPI docs.

    Raises:
        ConfigurationError: no keys, a key that is too short, or a non-positive limit.

    The auth dependency is exposed as ``app.state.require_api_key`` so tests can
    override it (``app.dependency_overrides``).
    """
    keys = tuple(api_keys)
    if not keys:
        raise ConfigurationError("no API keys configured: pass api_keys=[...] (e.g. generate_api_key())")
    short = [i for i, k in enumerate(keys) if not isinstance(k, str) or len(k) < MIN_KEY_LENGTH]
    if short:
        raise ConfigurationError(
            f"API key(s) at position {short} are shorter than {MIN_KEY_LENGTH} characters: "
            "use generate_api_key()"
        )
    if max_body_bytes is not None and max_body_bytes < 1:
        raise ConfigurationError(f"max_body_bytes must be positive or None, got {max_body_bytes}")
    limiter = RateLimiter(rate_limit_per_minute, clock=clock) if rate_limit_per_minute else None

    app = FastAPI(
        title=title,
        version="1.0.0",
        description=(
            "Summarises text with the lab's chat model. Send your key in the "
            f"`{API_KEY_HEADER}` header. Limits: {MAX_INPUT_CHARS} characters of text, "
            f"{max_body_bytes if max_body_bytes else 'unlimited'} bytes of body, "
            f"{rate_limit_per_minute or 'unlimited'} requests per minute per key."
        ),
    )
    header_scheme = APIKeyHeader(name=API_KEY_HEADER, auto_error=False, description="Your API key.")

    def require_api_key(provided: str | None = Security(header_scheme)) -> str:
        if not provided:
            raise HTTPException(401, detail=f"missing API key: send it in the {API_KEY_HEADER} header",
                                headers={"WWW-Authenticate": "ApiKey"})
        if not verify_api_key(provided, keys):
            raise HTTPException(401, detail="invalid API key", headers={"WWW-Authenticate": "ApiKey"})
        return key_id(provided)

    def rate_limited(client: str = Depends(require_api_key)) -> str:
        if limiter is not None:
            wait = limiter.acquire(client)
            if wait > 0:
                raise HTTPException(
                    429,
                    detail=f"rate limit exceeded: {rate_limit_per_minute} requests per minute per key",
                    headers={"Retry-After": str(max(1, math.ceil(wait)))},
                )
        return client

    app.state.require_api_key = require_api_key
    app.state.rate_limiter = limiter

    @app.get("/healthz", response_model=Health, tags=["ops"])
    def healthz() -> Health:
        """Liveness: the process is up and serving HTTP (does not call the model)."""
        return Health(status="ok")

    @app.post(
        "/v1/summarise",
        response_model=SummariseResponse,
        tags=["summarise"],
        responses={
            401: {"description": "Missing or invalid API key"},
            413: {"description": "Request body too large"},
            429: {"description": "Rate limit exceeded; see Retry-After"},
            502: {"description": "The model provider failed"},
            503: {"description": "The model provider is rate limiting us"},
            504: {"description": "The model provider timed out"},
        },
    )
    def summarise(req: SummariseRequest, client: str = Depends(rate_limited)) -> SummariseResponse:
        """Summarise `text` in one or two sentences."""
        messages = [
            {"role": "system", "content": SYSTEM_PROMPT},
            {"role": "user", "content": f"Summarise:\n\n{req.text}"},
        ]
        r = chat_model.chat(messages, max_tokens=req.max_tokens)
        return SummariseResponse(
            summary=r.text.strip(),
            model=r.model,
            provider=r.provider,
            usage=UsageOut(prompt_tokens=r.usage.prompt_tokens, completion_tokens=r.usage.completion_tokens),
            latency_ms=round(r.latency_s * 1000, 3),
            request_id=uuid.uuid4().hex,
        )

    _install_error_handlers(app)
    if max_body_bytes is not None:
        app.add_middleware(BodySizeLimitMiddleware, max_body_bytes=max_body_bytes)
    return app


def _install_error_handlers(app: FastAPI) -> None:
    """Map the lab's exceptions to HTTP statuses; messages never include internals."""

    def handler(status: int, detail: str, headers: dict[str, str] | None = None) -> Any:
        async def _h(request: Request, exc: Exception) -> JSONResponse:
            return JSONResponse({"detail": detail or str(exc)}, status_code=status, headers=headers)
        return _h

    async def validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
        # FastAPI's default echoes each bad field's value back ("input"): for a 10 MB
        # text that is a 10 MB error body, and it reflects whatever the client sent.
        errors = [{"loc": list(e.get("loc", ())), "msg": e.get("msg", ""), "type": e.get("type", "")}
                  for e in exc.errors()]
        return JSONResponse({"detail": errors}, status_code=422)

    app.add_exception_handler(RequestValidationError, validation_error)
    app.add_exception_handler(InputTooLargeError, handler(413, ""))
    app.add_exception_handler(InputError, handler(422, ""))
    app.add_exception_handler(RateLimitError, handler(503, "the model provider is rate limiting us; retry later",
                                                      {"Retry-After": "5"}))
    app.add_exception_handler(ProviderTimeoutError, handler(504, "the model did not answer in time"))
    app.add_exception_handler(ProviderError, handler(502, "the model provider failed"))


def app_from_env() -> FastAPI:
    """The service configured from the environment (``uvicorn ... --factory``).

    Reads ``LAB_API_KEYS`` (comma-separated, required: there is no default key),
    ``LAB_MAX_BODY_BYTES`` and ``LAB_RATE_LIMIT_PER_MINUTE``; the model comes from
    :func:`reference.llm.get_chat_model` (``LAB_PROVIDER`` etc.).

    Raises:
        ConfigurationError: ``LAB_API_KEYS`` is unset or empty, or a number is malformed.
    """
    from reference.llm import get_chat_model  # noqa: PLC0415 - keep the import light for tests

    raw = os.environ.get("LAB_API_KEYS", "")
    keys = [k.strip() for k in raw.split(",") if k.strip()]
    if not keys:
        raise ConfigurationError(
            "LAB_API_KEYS is not set: pass one or more keys, comma-separated, at run time "
            "(e.g. `docker run -e LAB_API_KEYS=...`); the service has no default key"
        )
    try:
        max_body = int(os.environ.get("LAB_MAX_BODY_BYTES", DEFAULT_MAX_BODY_BYTES))
        per_minute = int(os.environ.get("LAB_RATE_LIMIT_PER_MINUTE", 60))
    except ValueError as exc:
        raise ConfigurationError(f"LAB_MAX_BODY_BYTES / LAB_RATE_LIMIT_PER_MINUTE must be integers: {exc}") from exc
    return create_app(get_chat_model(), api_keys=keys, max_body_bytes=max_body,
                      rate_limit_per_minute=per_minute or None)


# --------------------------------------------------------------------------- serving


@dataclass
class RunningServer:
    """A uvicorn server started by :func:`serve_in_thread`."""

    url: str
    host: str
    port: int
    thread: threading.Thread


@contextmanager
def serve_in_thread(
    app: Any, *, host: str = "127.0.0.1", port: int = 0, startup_timeout_s: float = 15.0,
    log_level: str = "warning",
) -> Iterator[RunningServer]:
    """Run ``app`` with uvicorn in a daemon thread; stop it when the block ends.

    The listening socket is bound here (port 0 = a free port chosen by the OS), so
    there is no race between finding a port and using it.

    Example:
        >>> with serve_in_thread(app) as server:          # doctest: +SKIP
        ...     httpx.get(server.url + "/healthz").json()
        {'status': 'ok'}
    """
    import uvicorn  # noqa: PLC0415

    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    actual_port = sock.getsockname()[1]
    config = uvicorn.Config(app, host=host, port=actual_port, log_level=log_level, lifespan="off",
                            access_log=False)
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True,
                              name=f"uvicorn-{actual_port}")
    thread.start()
    deadline = time.monotonic() + startup_timeout_s
    try:
        while not server.started:
            if not thread.is_alive():
                raise RuntimeError(f"uvicorn exited during startup on {host}:{actual_port}")
            if time.monotonic() > deadline:
                raise TimeoutError(f"uvicorn did not start within {startup_timeout_s} s")
            time.sleep(0.01)
        yield RunningServer(url=f"http://{host}:{actual_port}", host=host, port=actual_port, thread=thread)
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        sock.close()
