"""Resilience for model calls: timeouts, retries, fallback, circuit breaker, a clear answer.

:class:`ResilientChat` tries a list of models in order. For each model it:

1. skips the model while its :class:`CircuitBreaker` is open (it failed repeatedly
   just now; hammering it helps nobody);
2. calls it with a timeout (:func:`call_with_timeout`);
3. checks the reply with an optional ``validate`` function (e.g. "must be JSON");
4. retries transient failures (429, 5xx, timeouts, malformed output) with exponential
   backoff and jitter (:class:`RetryPolicy`), and gives up at once on permanent ones
   (bad input, bad credentials, unknown model);
5. falls back to the next model.

When every model fails, the user gets a clear, polite answer (``ok=False``) rather
than a traceback, and the log of attempts says what happened.

Example:
    >>> from reference.errors import RateLimitError
    >>> from reference.llm import FakeChatModel
    >>> primary = FakeChatModel(responses=[RateLimitError("429")], model="primary")
    >>> backup = FakeChatModel(responses=["Paris"], model="backup")
    >>> chat = ResilientChat([primary, backup], retry=RetryPolicy(max_attempts=2, base_delay_s=0))
    >>> reply = chat.chat([{"role": "user", "content": "Capital of France?"}])
    >>> (reply.text, reply.model, len(reply.attempts))
    ('Paris', 'backup', 3)
"""

from __future__ import annotations

import json
import random
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass, field
from typing import Any

from reference.errors import (
    AuthenticationError,
    ConfigurationError,
    InputError,
    ModelNotFoundError,
    OutputParseError,
    ProviderError,
    ProviderTimeoutError,
    ProviderUnavailableError,
    RateLimitError,
)
from reference.llm import ChatModel, ChatResponse, Message

#: Failures worth another try: the same request may well succeed in a moment.
TRANSIENT_ERRORS: tuple[type[BaseException], ...] = (
    RateLimitError, ProviderTimeoutError, ProviderUnavailableError, OutputParseError,
)
#: Failures no retry can fix: stop and report (or fall back, for model-specific ones).
PERMANENT_ERRORS: tuple[type[BaseException], ...] = (InputError, AuthenticationError, ModelNotFoundError)

DEFAULT_FALLBACK_MESSAGE = (
    "Sorry, the assistant cannot answer right now: every model we use is unavailable or "
    "failing. Nothing was charged. Please try again in a few minutes; if it keeps "
    "happening, contact the IT service desk and quote reference {ref}."
)


class CircuitOpenError(ProviderUnavailableError):
    """The model's circuit breaker is open: the call was not attempted."""


# --------------------------------------------------------------------------- timeouts

_TIMEOUT_POOL = ThreadPoolExecutor(max_workers=8, thread_name_prefix="lab-timeout")


def call_with_timeout(fn: Callable[[], Any], timeout_s: float | None) -> Any:
    """Run ``fn()`` and give up waiting after ``timeout_s`` seconds.

    The call runs in a worker thread; on timeout the caller gets
    :class:`ProviderTimeoutError` at once, while the abandoned call finishes in the
    background (Python cannot kill a thread). Prefer a client-side timeout (the
    ``openai`` SDK's ``timeout``) where there is one, and use this as the backstop.

    Example:
        >>> call_with_timeout(lambda: 42, timeout_s=1.0)
        42
    """
    if timeout_s is None:
        return fn()
    if timeout_s <= 0:
        raise ConfigurationError(f"timeout_s must be positive, got {timeout_s}")
    future = _TIMEOUT_POOL.submit(fn)
    try:
        return future.result(timeout=timeout_s)
    except FutureTimeout:
        future.cancel()
        raise ProviderTimeoutError(f"no answer within {timeout_s:g} s") from None


# --------------------------------------------------------------------------- retries


@dataclass
class RetryPolicy:
    """How often and how patiently to retry transient failures.

    Delay before retry ``n`` (0-based) is drawn uniformly from
    ``[0, min(max_delay_s, base_delay_s * 2**n)]`` ("full jitter"), so many clients
    that failed together do not retry together.

    Example:
        >>> RetryPolicy(base_delay_s=1.0, jitter=False).delay(2)
        4.0
    """

    max_attempts: int = 3
    base_delay_s: float = 0.5
    max_delay_s: float = 20.0
    jitter: bool = True
    retry_on: tuple[type[BaseException], ...] = TRANSIENT_ERRORS
    rng: random.Random = field(default_factory=lambda: random.Random(0))

    def __post_init__(self) -> None:
        if self.max_attempts < 1:
            raise ConfigurationError("max_attempts must be >= 1")
        if self.base_delay_s < 0 or self.max_delay_s < 0:
            raise ConfigurationError("delays cannot be negative")

    def delay(self, retry_number: int) -> float:
        cap = min(self.max_delay_s, self.base_delay_s * 2**retry_number)
        return self.rng.uniform(0, cap) if self.jitter else cap

    def is_transient(self, exc: BaseException) -> bool:
        return isinstance(exc, self.retry_on) and not isinstance(exc, CircuitOpenError)


# --------------------------------------------------------------------------- breaker


class CircuitBreaker:
    """Closed → open after ``failure_threshold`` failures in a row → half-open after ``reset_after_s``.

    * **closed**: calls go through; consecutive failures are counted.
    * **open**: calls are refused at once (:meth:`allow` is ``False``) until
      ``reset_after_s`` has passed.
    * **half-open**: one trial call goes through; success closes the circuit, failure
      opens it again for another ``reset_after_s``.

    Example:
        >>> b = CircuitBreaker(failure_threshold=2, reset_after_s=60)
        >>> b.record_failure(); b.record_failure(); b.state
        'open'
    """

    def __init__(self, *, failure_threshold: int = 3, reset_after_s: float = 30.0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        if failure_threshold < 1:
            raise ConfigurationError("failure_threshold must be >= 1")
        if reset_after_s < 0:
            raise ConfigurationError("reset_after_s cannot be negative")
        self.failure_threshold = failure_threshold
        self.reset_after_s = reset_after_s
        self.clock = clock
        self._state = "closed"
        self._failures = 0
        self._opened_at = 0.0
        self._trial_in_flight = False
        self._lock = threading.Lock()
        self.transitions: list[tuple[str, str]] = []

    def _move(self, new: str) -> None:
        if new != self._state:
            self.transitions.append((self._state, new))
            self._state = new

    @property
    def state(self) -> str:
        with self._lock:
            if self._state == "open" and self.clock() - self._opened_at >= self.reset_after_s:
                self._move("half_open")
                self._trial_in_flight = False
            return self._state

    def allow(self) -> bool:
        """May a call go through now? (In half-open, only one trial at a time.)"""
        state = self.state
        with self._lock:
            if state == "closed":
                return True
            if state == "half_open" and not self._trial_in_flight:
                self._trial_in_flight = True
                return True
            return False

    def record_success(self) -> None:
        with self._lock:
            self._failures = 0
            self._trial_in_flight = False
            self._move("closed")

    def record_failure(self) -> None:
        with self._lock:
            self._failures += 1
            self._trial_in_flight = False
            if self._state == "half_open" or self._failures >= self.failure_threshold:
                self._opened_at = self.clock()
                self._move("open")


# --------------------------------------------------------------------------- the wrapper


@dataclass(frozen=True)
class Attempt:
    """One try at one model: what happened and how long it took."""

    model: str
    outcome: str  # "ok", "skipped: circuit open", or the error class name
    detail: str
    latency_s: float


@dataclass(frozen=True)
class ResilientReply:
    """The answer shown to the user, and how it was obtained."""

    text: str
    ok: bool
    model: str | None
    response: ChatResponse | None
    attempts: tuple[Attempt, ...]
    degraded: bool  # answered, but not by the first model

    def summary(self) -> str:
        return "; ".join(f"{a.model}: {a.outcome}" for a in self.attempts)


def json_object_validator(response: ChatResponse) -> None:
    """Raise :class:`OutputParseError` unless the reply is a JSON object."""
    try:
        value = json.loads(response.text)
    except json.JSONDecodeError as exc:
        raise OutputParseError(f"reply is not valid JSON: {exc.msg} at char {exc.pos}", raw=response.text) from None
    if not isinstance(value, dict):
        raise OutputParseError("reply is JSON but not an object", raw=response.text)


class ResilientChat:
    """Call models with timeouts, retries, circuit breakers and fallback.

    Args:
        models: tried in order; the first is the primary.
        retry: retry policy per model.
        timeout_s: per-attempt timeout (``None``: rely on the client's own).
        breakers: one per model (by default a fresh ``CircuitBreaker()`` each).
        validate: called on each reply; raise :class:`OutputParseError` to reject it.
        fallback_message: the text for the user when everything fails (``{ref}`` is
            filled with a short reference to find the attempts in the logs).
        sleep: the sleep function (tests pass a recorder).
    """

    def __init__(self, models: Sequence[ChatModel], *, retry: RetryPolicy | None = None,
                 timeout_s: float | None = None, breakers: Sequence[CircuitBreaker] | None = None,
                 validate: Callable[[ChatResponse], None] | None = None,
                 fallback_message: str = DEFAULT_FALLBACK_MESSAGE,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        if not models:
            raise ConfigurationError("ResilientChat needs at least one model")
        if breakers is not None and len(breakers) != len(models):
            raise ConfigurationError("give one circuit breaker per model")
        self.models = list(models)
        self.retry = retry or RetryPolicy()
        self.timeout_s = timeout_s
        self.breakers = list(breakers) if breakers is not None else [CircuitBreaker() for _ in models]
        self.validate = validate
        self.fallback_message = fallback_message
        self.sleep = sleep
        self._refs = 0

    def chat(self, messages: Sequence[Message], *, raise_on_failure: bool = False, **kwargs: Any) -> ResilientReply:
        """Answer ``messages`` with the first model that succeeds.

        Raises:
            InputError: the request itself is bad (no model could answer it; not retried).
            ProviderError: only when ``raise_on_failure=True`` and every model failed.
        """
        attempts: list[Attempt] = []
        last_error: BaseException | None = None
        for index, (model, breaker) in enumerate(zip(self.models, self.breakers, strict=True)):
            for attempt_no in range(self.retry.max_attempts):
                if not breaker.allow():
                    attempts.append(Attempt(model.model, "skipped: circuit open", "", 0.0))
                    last_error = CircuitOpenError(f"{model.model}: circuit open")
                    break
                started = time.perf_counter()
                try:
                    response = call_with_timeout(lambda m=model: m.chat(messages, **kwargs), self.timeout_s)
                    if self.validate is not None:
                        self.validate(response)
                except InputError as exc:
                    # The request is at fault, not the model: another model will not help.
                    breaker.record_success()  # the model answered sensibly (with a refusal)
                    attempts.append(Attempt(model.model, type(exc).__name__, str(exc)[:200],
                                            time.perf_counter() - started))
                    raise
                except ProviderError as exc:
                    last_error = exc
                    breaker.record_failure()
                    attempts.append(Attempt(model.model, type(exc).__name__, str(exc)[:200],
                                            time.perf_counter() - started))
                    if isinstance(exc, PERMANENT_ERRORS) or not self.retry.is_transient(exc):
                        break  # this model cannot do it: next model
                    if attempt_no + 1 < self.retry.max_attempts:
                        self.sleep(self.retry.delay(attempt_no))
                    continue
                except OutputParseError as exc:
                    last_error = exc
                    breaker.record_failure()
                    attempts.append(Attempt(model.model, "OutputParseError", str(exc)[:200],
                                            time.perf_counter() - started))
                    if attempt_no + 1 < self.retry.max_attempts:
                        self.sleep(self.retry.delay(attempt_no))
                    continue
                breaker.record_success()
                attempts.append(Attempt(model.model, "ok", "", time.perf_counter() - started))
                return ResilientReply(response.text, True, model.model, response, tuple(attempts), index > 0)
        if raise_on_failure:
            summary = "; ".join(f"{a.model}: {a.outcome}" for a in attempts)
            raise ProviderUnavailableError(f"every model failed ({summary})") from last_error
        self._refs += 1
        ref = f"{int(time.time()) % 100000:05d}-{self._refs}"
        return ResilientReply(self.fallback_message.format(ref=ref), False, None, None, tuple(attempts), True)
