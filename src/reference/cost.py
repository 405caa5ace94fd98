"""Tokens and money: count tokens offline, price calls, project a month, stop runaway jobs.

* **Token counts** come from the model's own tokenizer: llama.cpp's for the local
  SmolLM2 (pass the loaded model), tiktoken for OpenAI models (its encoding files ship
  inside llama-index, and ``import reference`` points tiktoken at them, so nothing is
  downloaded).
* **Prices** come from the ``genai-prices`` package (a maintained table bundled with
  the wheel; it makes no network call unless you start its updater, which the lab
  never does). A small dated fallback table in ``reference/data/prices.json`` covers
  the lab's named models when the package is missing. The local model has no per-token
  price: it runs on hardware you already pay for (see :func:`self_hosted_price`).
* **Costs** of one call, of a run, and of a month of traffic.
* A :class:`BudgetGuard` that refuses the call that would push a job over its budget.

Example:
    >>> from reference.llm import Usage
    >>> round(usage_cost(Usage(1_000_000, 0), get_price("gpt-4o-mini")), 4)
    0.15
"""

from __future__ import annotations

import importlib.util
import json
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from importlib import resources
from typing import Any

from reference.config import LOCAL_CHAT_MODEL, LOCAL_EMBED_MODEL
from reference.errors import ConfigurationError, InputError, LabError
from reference.llm import ChatModel, ChatResponse, Message, Usage, _content_text

#: Models that run on the lab's own CPU: no per-token list price.
LOCAL_MODELS = frozenset({LOCAL_CHAT_MODEL, LOCAL_EMBED_MODEL})
#: Tokens OpenAI adds per chat message, and to prime the reply (their published recipe).
TOKENS_PER_MESSAGE = 3
TOKENS_REPLY_PRIMING = 3


class BudgetExceededError(LabError):
    """The next call would take a job over its budget; nothing was sent."""


class UnknownModelPriceError(InputError):
    """No price is known for this model (neither genai-prices nor the fallback table)."""


# --------------------------------------------------------------------------- tokens


@lru_cache(maxsize=8)
def _tiktoken_encoding(model: str) -> Any:
    import tiktoken  # noqa: PLC0415

    try:
        return tiktoken.encoding_for_model(model)
    except KeyError:
        # Newer or non-OpenAI model names: o200k_base is what current OpenAI models use.
        return tiktoken.get_encoding("o200k_base")


def count_tokens(text: str, model: str = "gpt-4o-mini", *, llm: ChatModel | None = None) -> int:
    """Tokens of ``text`` for ``model``, counted offline.

    Args:
        text: the text to count.
        model: an OpenAI model name (tiktoken) or the local model's name.
        llm: the loaded local model; required when ``model`` is the local one, because
            only its own tokenizer gives the true count.

    Raises:
        InputError: ``text`` is not a string, or the local model was named without ``llm``.

    Example:
        >>> count_tokens("Hello world", "gpt-4o-mini")
        2
    """
    if not isinstance(text, str):
        raise InputError(f"count_tokens takes a string, got {type(text).__name__}")
    if model in LOCAL_MODELS or (llm is not None and getattr(llm, "provider", "") == "local"):
        if llm is None or not hasattr(llm, "count_tokens"):
            raise InputError(
                f"counting tokens for {model!r} needs its tokenizer: pass llm=get_chat_model('local')"
            )
        return int(llm.count_tokens(text))
    return len(_tiktoken_encoding(model).encode(text, disallowed_special=()))


def count_message_tokens(messages: Sequence[Message], model: str = "gpt-4o-mini", *,
                         llm: ChatModel | None = None) -> int:
    """Prompt tokens of a chat request, including the per-message overhead.

    For the local model this renders the real chat template and counts it; for
    OpenAI models it adds OpenAI's published overhead (3 tokens per message, 3 to
    prime the reply), which matches their ``usage.prompt_tokens`` for plain text.

    Example:
        >>> count_message_tokens([{"role": "user", "content": "Hello world"}])
        9
    """
    if llm is not None and hasattr(llm, "prompt_tokens"):
        return int(llm.prompt_tokens(list(messages)))
    total = TOKENS_REPLY_PRIMING
    for msg in messages:
        total += TOKENS_PER_MESSAGE + count_tokens(_content_text(msg), model)
        total += count_tokens(str(msg.get("role", "")), model)
    return total


# --------------------------------------------------------------------------- prices


@dataclass(frozen=True)
class ModelPrice:
    """List price of one model in US dollars per million tokens, and where it came from."""

    model: str
    provider: str
    input_per_mtok: float
    output_per_mtok: float
    cached_input_per_mtok: float | None = None
    source: str = ""
    as_of: str = ""

    def cost(self, prompt_tokens: int, completion_tokens: int, cached_prompt_tokens: int = 0) -> float:
        """Dollars for these token counts (cached prompt tokens are part of ``prompt_tokens``)."""
        if min(prompt_tokens, completion_tokens, cached_prompt_tokens) < 0:
            raise InputError("token counts cannot be negative")
        if cached_prompt_tokens > prompt_tokens:
            raise InputError("cached_prompt_tokens cannot exceed prompt_tokens")
        cached_rate = self.cached_input_per_mtok if self.cached_input_per_mtok is not None else self.input_per_mtok
        fresh = prompt_tokens - cached_prompt_tokens
        return (fresh * self.input_per_mtok + cached_prompt_tokens * cached_rate
                + completion_tokens * self.output_per_mtok) / 1_000_000


@lru_cache(maxsize=1)
def _fallback_table() -> dict[str, Any]:
    text = resources.files("reference").joinpath("data/prices.json").read_text(encoding="utf-8")
    return json.loads(text)


def genai_prices_available() -> bool:
    """True when the ``genai-prices`` package is importable."""
    return importlib.util.find_spec("genai_prices") is not None


def price_table_info() -> dict[str, str]:
    """Which price table is in use and the date it reflects.

    genai-prices does not stamp its bundled data with a date, so the date is the one
    recorded in the fallback file when the versions match (the day its data were read),
    and says "unknown" otherwise.

    Example:
        >>> sorted(price_table_info())
        ['as_of', 'source']
    """
    table = _fallback_table()
    if genai_prices_available():
        import genai_prices  # noqa: PLC0415

        source = f"genai-prices {genai_prices.__version__} bundled snapshot"
        as_of = table["as_of"] if table["source"] == source else f"unknown (package {genai_prices.__version__})"
        return {"source": source, "as_of": as_of}
    return {"source": f"reference/data/prices.json ({table['source']})", "as_of": table["as_of"]}


def self_hosted_price(model: str = LOCAL_CHAT_MODEL) -> ModelPrice:
    """The local model's price: zero per token (you pay for the machine, not the call)."""
    return ModelPrice(model, "local", 0.0, 0.0, 0.0, source="self-hosted: no per-token price", as_of="")


@lru_cache(maxsize=64)
def get_price(model: str, provider: str | None = None) -> ModelPrice:
    """List price of ``model`` (per million tokens), from genai-prices or the fallback table.

    Args:
        model: e.g. ``"gpt-4o-mini"``; the local model names give a zero price.
        provider: optional provider id (``"openai"``, ``"anthropic"``) to disambiguate.

    Raises:
        UnknownModelPriceError: the model is in neither table.

    Example:
        >>> get_price("gpt-4o").output_per_mtok
        10.0
    """
    if not model or not isinstance(model, str):
        raise InputError("model must be a non-empty string")
    if model in LOCAL_MODELS:
        return self_hosted_price(model)
    info = price_table_info()
    if genai_prices_available():
        found = _price_from_genai_prices(model, provider, info)
        if found is not None:
            return found
    table = _fallback_table()
    row = table["models"].get(model)
    if row is None:
        raise UnknownModelPriceError(
            f"no price known for model {model!r}: pass a ModelPrice yourself, or one of "
            f"{sorted(table['models'])}"
        )
    return ModelPrice(model, row["provider"], float(row["input_per_mtok"]), float(row["output_per_mtok"]),
                      row.get("cached_input_per_mtok"), source=f"reference/data/prices.json ({table['source']})",
                      as_of=table["as_of"])


def _price_from_genai_prices(model: str, provider: str | None, info: dict[str, str]) -> ModelPrice | None:
    from genai_prices import Usage as GUsage  # noqa: PLC0415
    from genai_prices import calc_price  # noqa: PLC0415

    try:
        million = 1_000_000
        result = calc_price(GUsage(input_tokens=million, output_tokens=million), model, provider_id=provider)
        cached = calc_price(GUsage(input_tokens=million, cache_read_tokens=million, output_tokens=0), model,
                            provider_id=provider)
    except LookupError:
        return None
    except Exception:  # noqa: BLE001 - the package raises its own errors for unknown models
        return None
    return ModelPrice(
        model=model, provider=result.provider.id, input_per_mtok=float(result.input_price),
        output_per_mtok=float(result.output_price), cached_input_per_mtok=float(cached.input_price),
        source=info["source"], as_of=info["as_of"],
    )


# --------------------------------------------------------------------------- costs


def usage_cost(usage: Usage, price: ModelPrice, cached_prompt_tokens: int = 0) -> float:
    """Dollars for one call's token usage at ``price``.

    Example:
        >>> usage_cost(Usage(0, 1_000_000), get_price("gpt-4o-mini"))
        0.6
    """
    return price.cost(usage.prompt_tokens, usage.completion_tokens, cached_prompt_tokens)


def call_cost(response: ChatResponse, price: ModelPrice | str | None = None) -> float:
    """Dollars for one :class:`ChatResponse`, priced as ``price`` (default: its own model).

    Pricing a local response as a hosted model (``price="gpt-4o-mini"``) answers "what
    would this exact call cost there?" (token counts differ a little between tokenizers).

    Example:
        >>> from reference.llm import FakeChatModel
        >>> r = FakeChatModel(responses=["ok"]).chat([{"role": "user", "content": "hi"}])
        >>> call_cost(r, "gpt-4o-mini") > 0
        True
    """
    p = price if isinstance(price, ModelPrice) else get_price(price or response.model)
    return usage_cost(response.usage, p)


@dataclass
class RunCost:
    """Running totals of a job: calls, tokens, dollars and latency, per model.

    Example:
        >>> run = RunCost(price=get_price("gpt-4o-mini"))
        >>> _ = run.add(Usage(1000, 100)); run.calls
        1
    """

    price: ModelPrice | None = None
    calls: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost_usd: float = 0.0
    latency_s: float = 0.0
    by_model: dict[str, dict[str, float]] = field(default_factory=dict)

    def add(self, item: ChatResponse | Usage, *, model: str | None = None, latency_s: float = 0.0,
            price: ModelPrice | None = None) -> float:
        """Record one call; returns its cost in dollars."""
        if isinstance(item, ChatResponse):
            usage, model, latency_s = item.usage, model or item.model, item.latency_s
        elif isinstance(item, Usage):
            usage = item
        else:
            raise InputError(f"RunCost.add takes a ChatResponse or Usage, got {type(item).__name__}")
        p = price or self.price or get_price(model or "")
        cost = usage_cost(usage, p)
        self.calls += 1
        self.prompt_tokens += usage.prompt_tokens
        self.completion_tokens += usage.completion_tokens
        self.cost_usd += cost
        self.latency_s += latency_s
        row = self.by_model.setdefault(p.model, {"calls": 0, "prompt_tokens": 0, "completion_tokens": 0,
                                                 "cost_usd": 0.0})
        row["calls"] += 1
        row["prompt_tokens"] += usage.prompt_tokens
        row["completion_tokens"] += usage.completion_tokens
        row["cost_usd"] += cost
        return cost

    @property
    def cost_per_call(self) -> float:
        return self.cost_usd / self.calls if self.calls else 0.0


@dataclass(frozen=True)
class TrafficProfile:
    """Expected traffic of an application, for a monthly projection.

    Attributes:
        requests_per_day: requests that reach the application.
        prompt_tokens: average prompt tokens per model call (system + context + question).
        completion_tokens: average generated tokens per call.
        cache_hit_rate: share of requests answered from a cache (no model call).
        cached_prompt_share: share of prompt tokens billed at the provider's cached rate.
        days: days in the month.
    """

    requests_per_day: float
    prompt_tokens: float
    completion_tokens: float
    cache_hit_rate: float = 0.0
    cached_prompt_share: float = 0.0
    days: int = 30

    def __post_init__(self) -> None:
        if self.requests_per_day < 0 or self.prompt_tokens < 0 or self.completion_tokens < 0:
            raise InputError("requests and token averages cannot be negative")
        for name in ("cache_hit_rate", "cached_prompt_share"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise InputError(f"{name} must be in [0, 1], got {getattr(self, name)}")
        if self.days < 1:
            raise InputError("days must be >= 1")


def monthly_cost(profile: TrafficProfile, price: ModelPrice) -> dict[str, float]:
    """Projected model calls, tokens and dollars per month for ``profile`` at ``price``.

    Example:
        >>> p = TrafficProfile(requests_per_day=1000, prompt_tokens=1000, completion_tokens=100)
        >>> round(monthly_cost(p, get_price("gpt-4o-mini"))["cost_usd"], 2)
        6.3
    """
    calls = profile.requests_per_day * profile.days * (1.0 - profile.cache_hit_rate)
    prompt = calls * profile.prompt_tokens
    cached = prompt * profile.cached_prompt_share
    completion = calls * profile.completion_tokens
    cached_rate = price.cached_input_per_mtok if price.cached_input_per_mtok is not None else price.input_per_mtok
    cost = ((prompt - cached) * price.input_per_mtok + cached * cached_rate
            + completion * price.output_per_mtok) / 1_000_000
    return {"model_calls": calls, "prompt_tokens": prompt, "completion_tokens": completion, "cost_usd": cost}


# --------------------------------------------------------------------------- budget


class BudgetGuard:
    """Stop a job before the call that would take it over ``limit_usd``.

    Before each call, :meth:`reserve` prices the worst case (the prompt plus
    ``max_tokens`` of output) and raises :class:`BudgetExceededError` if that could
    overshoot; after the call, :meth:`settle` books what it really cost. Thread-safe.

    Example:
        >>> guard = BudgetGuard(0.001, get_price("gpt-4o-mini"))
        >>> guard.reserve(prompt_tokens=1000, max_tokens=100)
        0.00021
    """

    def __init__(self, limit_usd: float, price: ModelPrice, *, max_calls: int | None = None) -> None:
        if limit_usd <= 0:
            raise ConfigurationError(f"budget must be positive, got {limit_usd}")
        if max_calls is not None and max_calls < 1:
            raise ConfigurationError("max_calls must be >= 1")
        self.limit_usd = float(limit_usd)
        self.price = price
        self.max_calls = max_calls
        self.spent_usd = 0.0
        self.calls = 0
        self._reserved = 0.0
        self._lock = threading.Lock()

    @property
    def remaining_usd(self) -> float:
        return self.limit_usd - self.spent_usd

    def reserve(self, *, prompt_tokens: int, max_tokens: int) -> float:
        """Reserve the worst-case cost of the next call, or raise if it would not fit."""
        worst = self.price.cost(prompt_tokens, max_tokens)
        with self._lock:
            if self.max_calls is not None and self.calls >= self.max_calls:
                raise BudgetExceededError(
                    f"budget guard: {self.calls} calls made, the limit is {self.max_calls}; job stopped"
                )
            if self.spent_usd + self._reserved + worst > self.limit_usd:
                raise BudgetExceededError(
                    f"budget guard: next call could cost up to ${worst:.6f}; ${self.spent_usd:.6f} of "
                    f"${self.limit_usd:.6f} already spent after {self.calls} calls; job stopped"
                )
            self._reserved += worst
        return worst

    def settle(self, reserved_usd: float, usage: Usage) -> float:
        """Replace a reservation with the call's real cost; returns that cost."""
        cost = usage_cost(usage, self.price)
        with self._lock:
            self._reserved = max(0.0, self._reserved - reserved_usd)
            self.spent_usd += cost
            self.calls += 1
        return cost

    def release(self, reserved_usd: float) -> None:
        """Drop a reservation for a call that failed before using tokens."""
        with self._lock:
            self._reserved = max(0.0, self._reserved - reserved_usd)

    def chat(self, llm: ChatModel, messages: Sequence[Message], *, max_tokens: int = 64,
             **kwargs: Any) -> ChatResponse:
        """``llm.chat`` behind the guard: priced before, booked after.

        Raises:
            BudgetExceededError: the call could take the job over budget (it is not sent).
        """
        msgs = list(messages)
        prompt = count_message_tokens(msgs, self.price.model,
                                      llm=llm if getattr(llm, "provider", "") == "local" else None)
        reserved = self.reserve(prompt_tokens=prompt, max_tokens=max_tokens)
        try:
            response = llm.chat(msgs, max_tokens=max_tokens, **kwargs)
        except BaseException:
            self.release(reserved)
            raise
        self.settle(reserved, response.usage)
        return response
