"""An OpenAI-compatible HTTP server for the lab's local models.

Endpoints: ``GET /v1/models``, ``POST /v1/chat/completions`` (streaming with SSE),
``POST /v1/embeddings`` and ``GET /health``. The official ``openai`` SDK, LangChain's
``ChatOpenAI``/``OpenAIEmbeddings`` and LlamaIndex's ``OpenAILike`` work against it
unchanged: point them at :attr:`LabServer.base_url`.

What it does that a naive wrapper does not:

* accepts both ``max_tokens`` and ``max_completion_tokens`` (LangChain sends the
  latter) and caps generation at :data:`DEFAULT_MAX_TOKENS` when neither is given;
* enforces ``response_format`` (``json_object``/``json_schema``) and a forced
  ``tool_choice`` with grammar-constrained decoding, so structured output parses;
* stops generating as soon as the client disconnects (streaming or not);
* answers errors in OpenAI's JSON shape with the right status codes.

Example:
    >>> with LabServer() as server:                       # doctest: +SKIP
    ...     client = openai.OpenAI(base_url=server.base_url, api_key="unused")
    ...     client.chat.completions.create(model="smollm2-135m-instruct", messages=[...])
"""

from __future__ import annotations

import asyncio
import json
import secrets
import socket
import threading
import time
import uuid
from collections.abc import AsyncIterator, Callable
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, StreamingResponse
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from reference.config import LOCAL_CHAT_MODEL, LOCAL_EMBED_MODEL
from reference.errors import InputError, InputTooLargeError, LabError
from reference.llm import (
    LlamaCppChatModel,
    ChatModel,
    _tool_call_from_text,
    forced_tool_schema,
    json_schema_from_response_format,
    validate_messages,
)

DEFAULT_MAX_TOKENS = 512
MAX_BODY_BYTES = 4 * 1024 * 1024


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


def _error(status: int, message: str, kind: str, code: str | None = None) -> JSONResponse:
    return JSONResponse({"error": {"message": message, "type": kind, "code": code}}, status_code=status)


def create_app(
    chat_model: ChatModel | None = None,
    embedder: Any | None = None,
    *,
    chat_model_name: str = LOCAL_CHAT_MODEL,
    embed_model_name: str = LOCAL_EMBED_MODEL,
    api_key: str | None = None,
) -> FastAPI:
    """Build the server app. Models load lazily on first use unless passed in.

    Args:
        chat_model: a local chat model; defaults to :class:`LlamaCppChatModel`.
        embedder: an :class:`reference.embeddings.Embedder`; defaults to the local one.
        chat_model_name: the name clients must send as ``model`` for chat.
        embed_model_name: the name clients must send as ``model`` for embeddings.
        api_key: when set, requests need ``Authorization: Bearer <api_key>``.
    """
    app = FastAPI(title="AI Engineering Lab model server", version="1")
    app.add_middleware(_GuardMiddleware, api_key=api_key, max_body_bytes=MAX_BODY_BYTES)
    state: dict[str, Any] = {"chat": chat_model, "embedder": embedder}
    load_lock = threading.Lock()

    def get_chat() -> ChatModel:
        with load_lock:
            if state["chat"] is None:
                state["chat"] = LlamaCppChatModel()
            return state["chat"]

    def get_embedder() -> Any:
        with load_lock:
            if state["embedder"] is None:
                from reference.embeddings import LocalEmbedder  # noqa: PLC0415

                state["embedder"] = LocalEmbedder()
            return state["embedder"]

    @app.get("/health")
    def health() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/v1/models")
    def models() -> dict[str, Any]:
        now = int(time.time())
        return {
            "object": "list",
            "data": [
                {"id": chat_model_name, "object": "model", "created": now, "owned_by": "lab"},
                {"id": embed_model_name, "object": "model", "created": now, "owned_by": "lab"},
            ],
        }

    @app.post("/v1/chat/completions", response_model=None)
    async def chat(request: Request) -> Any:
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
        if n_prompt + max_tokens > model.n_ctx:  # type: ignore[attr-defined]
            return _error(400, str(InputTooLargeError(
                f"prompt is {n_prompt} tokens and max_tokens is {max_tokens}, but the context window "
                f"holds {model.n_ctx}")), "invalid_request_error", "context_length_exceeded")  # type: ignore[attr-defined]
        if req.stream:
            include_usage = bool((req.stream_options or {}).get("include_usage"))
            return StreamingResponse(
                _stream(request, model, messages, opts, cid, created, chat_model_name, n_prompt,
                        include_usage, forced),
                media_type="text/event-stream",
            )
        cancel = threading.Event()
        pieces: list[str] = []
        watcher = asyncio.create_task(_watch_disconnect(request, cancel))
        try:
            await asyncio.to_thread(_collect, model, messages, opts, cancel, pieces)
        except InputError as exc:
            return _error(400, str(exc), "invalid_request_error")
        finally:
            watcher.cancel()
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
        emb = await asyncio.to_thread(get_embedder)
        try:
            vectors = await asyncio.to_thread(emb.embed, texts)
        except LabError as exc:
            return _error(400, str(exc), "invalid_request_error")
        n_tokens = sum(emb.count_tokens(t) for t in texts) if hasattr(emb, "count_tokens") else 0
        return {
            "object": "list", "model": embed_model_name,
            "data": [{"object": "embedding", "index": i, "embedding": v.tolist()} for i, v in enumerate(vectors)],
            "usage": {"prompt_tokens": n_tokens, "total_tokens": n_tokens},
        }

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


class _GuardMiddleware:
    """Plain ASGI middleware (not BaseHTTPMiddleware, which hides client disconnects):
    bearer-token check in constant time and a request-size limit on ``/v1/`` paths."""

    def __init__(self, app: Any, *, api_key: str | None, max_body_bytes: int) -> None:
        self.app = app
        self.expected = f"Bearer {api_key}".encode() if api_key is not None else None
        self.max_body_bytes = max_body_bytes

    async def __call__(self, scope: dict, receive: Callable, send: Callable) -> None:
        if scope["type"] == "http" and scope["path"].startswith("/v1/"):
            headers = dict(scope.get("headers") or [])
            if self.expected is not None and not secrets.compare_digest(
                headers.get(b"authorization", b""), self.expected
            ):
                await _error(401, "missing or wrong API key", "authentication_error", "invalid_api_key")(
                    scope, receive, send)
                return
            length = headers.get(b"content-length", b"")
            if length.isdigit() and int(length) > self.max_body_bytes:
                await _error(413, f"request body over {self.max_body_bytes} bytes",
                             "invalid_request_error")(scope, receive, send)
                return
        await self.app(scope, receive, send)


async def _stream(
    request: Request, model: Any, messages: list, opts: dict, cid: str, created: int, name: str,
    n_prompt: int, include_usage: bool, forced: tuple[dict, str | None] | None,
) -> AsyncIterator[str]:
    """Server-sent events, one chunk per token; generation stops when the client leaves."""
    cancel = threading.Event()
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
            text.append(item)
            if forced is None:
                yield chunk({"content": item})
            if await request.is_disconnected():
                cancel.set()
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


def free_port() -> int:
    """A TCP port on 127.0.0.1 that is free right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class LabServer:
    """Run the app with uvicorn in a background thread; use as a context manager.

    Attributes:
        base_url: ``http://127.0.0.1:<port>/v1``, what OpenAI clients take as ``base_url``.
    """

    def __init__(self, app: FastAPI | None = None, *, port: int | None = None, host: str = "127.0.0.1") -> None:
        import uvicorn  # noqa: PLC0415

        self.app = app or create_app()
        self.host = host
        self.port = port or free_port()
        config = uvicorn.Config(self.app, host=host, port=self.port, log_level="warning", lifespan="off")
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._server.run, name="lab-server", daemon=True)

    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.port}/v1"

    def start(self, timeout_s: float = 30.0) -> LabServer:
        """Start serving and wait until the port answers."""
        self._thread.start()
        deadline = time.monotonic() + timeout_s
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError(f"the lab server did not start on port {self.port}")
            time.sleep(0.02)
        return self

    def stop(self) -> None:
        """Ask uvicorn to finish in-flight requests and exit; wait for the thread."""
        self._server.should_exit = True
        if self._thread.is_alive():
            self._thread.join(timeout=15)

    def __enter__(self) -> LabServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
