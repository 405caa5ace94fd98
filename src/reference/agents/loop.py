"""The plain agent loop: model -> tool calls -> results -> model, inside hard budgets.

:class:`Agent` runs one request to a final answer. It stops, always, on the first of:

* the model answers (``answered``);
* the step budget runs out (``max_steps``: the last step is spent on a forced answer);
* the wall-clock budget runs out (``timeout``) or the next call could exceed the cost
  budget (``budget``);
* the model keeps proposing calls that cannot run (``gave_up``);
* the model itself fails after retries (``model_error``).

Whatever the reason, the user gets a sentence, never a traceback, and the
:class:`AgentResult` keeps the full trajectory (every step, call, outcome, token and
dollar) for evaluation. A repeated identical call is not run again: the agent is told
to answer instead, which breaks the most common small-model loop.

Example:
    >>> from reference.agents.tools import Toolbox, tool
    >>> from reference.llm import FakeChatModel
    >>> @tool
    ... def calculate(expression: str) -> float:
    ...     '''Evaluate arithmetic.'''
    ...     return 391.0
    >>> llm = FakeChatModel(responses=['{"tool": "calculate", "arguments": {"expression": "17*23"}}',
    ...                                '{"answer": "17 * 23 = 391"}'])
    >>> result = Agent(llm, Toolbox([calculate])).run("What is 17 * 23?")
    >>> (result.status, result.answer, result.tools_called)
    ('answered', '17 * 23 = 391', ['calculate'])
"""

from __future__ import annotations

import json
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from reference.agents.deciders import Decider, Decision, default_decider
from reference.agents.executor import AgentTracer, ToolExecutor, ToolOutcome, canonical_arguments
from reference.agents.safety import UNTRUSTED_RULE, SideEffectPolicy, redact_secrets
from reference.agents.tools import Tool, Toolbox
from reference.errors import (
    ConfigurationError,
    InputError,
    LabError,
    OutputParseError,
    ProviderError,
    ProviderTimeoutError,
    ProviderUnavailableError,
    RateLimitError,
)
from reference.llm import ChatModel, Message

__all__ = ["Agent", "AgentResult", "Budget", "Step", "build_system_prompt", "resolve_price", "STATUSES"]

STATUSES = ("answered", "max_steps", "timeout", "budget", "gave_up", "model_error")
_TRANSIENT = (RateLimitError, ProviderTimeoutError, ProviderUnavailableError, OutputParseError)

DEFAULT_PERSONA = "You are the assistant of Northbeam Robotics Ltd."


def build_system_prompt(persona: str = DEFAULT_PERSONA) -> str:
    """The system prompt: the persona and the untrusted-data rule.

    The tools are not listed here: the decider describes them (prompted and constrained
    deciders in their instructions, native tool calling through ``tools=``), so the
    prompt a small, slow model must read stays short.
    """
    return f"{persona} {UNTRUSTED_RULE}"


def resolve_price(price: Any, model: str) -> Any:
    """A :class:`reference.cost.ModelPrice` for budgets: given, looked up, or zero when unknown."""
    from reference.cost import ModelPrice, UnknownModelPriceError, get_price  # noqa: PLC0415

    if isinstance(price, ModelPrice):
        return price
    try:
        return get_price(price or model)
    except (UnknownModelPriceError, InputError):
        return ModelPrice(model or "unknown", "unknown", 0.0, 0.0, source="no price known: cost counted as 0")


@dataclass(frozen=True)
class Budget:
    """Limits for one run; every one of them is enforced.

    Attributes:
        max_steps: model decisions, the final answer included.
        max_seconds: wall-clock limit for the whole run.
        max_cost_usd: dollar limit (``None``: no limit); the next call is refused when its
            worst case (prompt estimate plus ``max_tokens``) would cross it.
        max_invalid: consecutive invalid, refused or disallowed proposals before giving up.
        model_retries: extra attempts when the model fails transiently (429, timeout, 5xx).
    """

    max_steps: int = 6
    max_seconds: float = 120.0
    max_cost_usd: float | None = None
    max_invalid: int = 3
    model_retries: int = 1

    def __post_init__(self) -> None:
        if self.max_steps < 1:
            raise ConfigurationError("max_steps must be at least 1")
        if self.max_seconds <= 0:
            raise ConfigurationError("max_seconds must be positive")
        if self.max_cost_usd is not None and self.max_cost_usd < 0:
            raise ConfigurationError("max_cost_usd cannot be negative")
        if self.max_invalid < 1 or self.model_retries < 0:
            raise ConfigurationError("max_invalid must be >= 1 and model_retries >= 0")


@dataclass
class Step:
    """One model decision and what followed it."""

    index: int
    action: str  # tool | answer | invalid | model_error
    detail: str = ""
    outcomes: list[ToolOutcome] = field(default_factory=list)
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost_usd: float = 0.0
    latency_s: float = 0.0
    model_calls: int = 0
    raw: str = ""


@dataclass
class AgentResult:
    """The final answer, why the run stopped, and the full trajectory."""

    request: str
    status: str
    answer: str
    steps: list[Step] = field(default_factory=list)
    messages: list[Message] = field(default_factory=list)
    cost_usd: float = 0.0
    latency_s: float = 0.0
    run_id: str = ""
    trace_id: str = ""
    error: str = ""

    @property
    def outcomes(self) -> list[ToolOutcome]:
        return [o for s in self.steps for o in s.outcomes]

    @property
    def n_steps(self) -> int:
        return len(self.steps)

    @property
    def prompt_tokens(self) -> int:
        return sum(s.prompt_tokens for s in self.steps)

    @property
    def completion_tokens(self) -> int:
        return sum(s.completion_tokens for s in self.steps)

    @property
    def model_calls(self) -> int:
        return sum(s.model_calls for s in self.steps)

    @property
    def tools_called(self) -> list[str]:
        """Tools that ran successfully, in order (repeats kept)."""
        return [o.name for o in self.outcomes if o.ok]

    @property
    def side_effects(self) -> list[ToolOutcome]:
        """Side-effecting calls that actually ran."""
        return [o for o in self.outcomes if o.ok and o.side_effect]

    @property
    def refused(self) -> list[ToolOutcome]:
        return [o for o in self.outcomes if o.status in ("refused", "denied")]

    def summary(self) -> str:
        calls = ", ".join(f"{o.name}:{o.status}" for o in self.outcomes) or "no tool calls"
        return (f"{self.status} after {self.n_steps} step(s), {self.model_calls} model call(s), "
                f"{self.latency_s:.1f} s, ${self.cost_usd:.6f} | {calls}")


def _estimate_tokens(messages: Sequence[Message]) -> int:
    chars = sum(len(str(m.get("content") or "")) + len(json.dumps(m.get("tool_calls") or "")) for m in messages)
    return chars // 4 + 4 * len(messages)


def _assistant_message(decision: Decision) -> Message:
    return {"role": "assistant", "content": decision.text or None,
            "tool_calls": [{"id": c.id, "type": "function",
                            "function": {"name": c.name, "arguments": c.arguments}} for c in decision.calls]}


def fallback_answer(status: str, outcomes: Sequence[ToolOutcome], detail: str = "") -> str:
    """A plain sentence for the user when the run ended without a model answer."""
    reasons = {
        "max_steps": "it reached its step limit",
        "timeout": "it ran out of time",
        "budget": "the next step would exceed the cost budget",
        "gave_up": "the model kept proposing tool calls that could not run",
        "model_error": "the language model is not available right now",
    }
    text = f"Sorry, I could not complete this request: {reasons.get(status, status)}."
    if detail:
        text += f" ({detail})"
    done = [o for o in outcomes if o.ok and o.side_effect]
    if done:
        text += " Actions already completed: " + "; ".join(f"{o.name} ({_to_short(o.result)})" for o in done) + "."
    else:
        text += " No changes were made."
    return text


def _to_short(result: Any) -> str:
    text = result if isinstance(result, str) else json.dumps(result, default=str)
    return text[:120]


class Agent:
    """A tool-using agent as a plain loop, with budgets, retries, safety and tracing.

    Args:
        llm: any :class:`reference.llm.ChatModel`.
        toolbox: the tools the system has.
        allowlist: the tools this agent may use (``None``: all).
        decider: how the model chooses (default: :func:`default_decider`).
        budget: limits (default :class:`Budget`).
        policy: side-effect policy (default :class:`SideEffectPolicy`).
        tracer: a :class:`reference.tracing.Tracer` (every step becomes a span), or ``None``.
        price: a model name or :class:`reference.cost.ModelPrice` to count dollars with
            (default: the model's own price; zero for the local model).
        secrets: strings that must never reach the model or the trace.
        persona: first line of the system prompt.
        retry_delay_s: pause before retrying a failed model call.
        clock: injectable for tests of the time budget.
    """

    def __init__(self, llm: ChatModel, toolbox: Toolbox, *, allowlist: Iterable[str] | None = None,
                 decider: Decider | None = None, budget: Budget | None = None, policy: SideEffectPolicy | None = None,
                 tracer: Any | None = None, price: Any = None, secrets: Iterable[str] = (),
                 persona: str = DEFAULT_PERSONA, retry_delay_s: float = 0.0,
                 clock: Callable[[], float] = time.perf_counter, sleep: Callable[[float], None] = time.sleep) -> None:
        self.llm = llm
        self.secrets = tuple(secrets)
        self.tracer = tracer if isinstance(tracer, AgentTracer) else AgentTracer(tracer, secrets=self.secrets)
        self.executor = ToolExecutor(toolbox, allowlist=allowlist, policy=policy, secrets=self.secrets,
                                     tracer=self.tracer, sleep=sleep)
        self.decider = decider or default_decider(llm)
        self.budget = budget or Budget()
        self.price = resolve_price(price, llm.model)
        self.persona = persona
        self.retry_delay_s = retry_delay_s
        self.clock = clock
        self.sleep = sleep

    @property
    def tools(self) -> list[Tool]:
        return self.executor.allowed_tools

    def initial_messages(self, request: str) -> list[Message]:
        return [{"role": "system", "content": build_system_prompt(self.persona)},
                {"role": "user", "content": redact_secrets(request, self.secrets)}]

    # -- one decision, with retries on transient model failure -----------------------------

    def decide(self, messages: list[Message], *, force_answer: bool = False) -> Decision:
        """One decision (retried on transient model errors); raises the last error otherwise."""
        last: BaseException | None = None
        for attempt in range(self.budget.model_retries + 1):
            try:
                if force_answer:
                    return self.decider.final_answer(self.llm, messages, tracer=self.tracer)
                return self.decider.decide(self.llm, messages, self.tools, tracer=self.tracer)
            except _TRANSIENT as exc:
                last = exc
                if attempt < self.budget.model_retries:
                    self.sleep(self.retry_delay_s * 2**attempt)
        assert last is not None
        raise last

    def _cost(self, decision: Decision) -> float:
        return sum(self.price.cost(r.usage.prompt_tokens, r.usage.completion_tokens) for r in decision.responses)

    def _worst_case_cost(self, messages: list[Message]) -> float:
        return self.price.cost(_estimate_tokens(messages) * 2, self.decider.max_tokens_per_decision)

    # -- the loop ---------------------------------------------------------------------------

    def run(self, request: str, *, run_id: str | None = None) -> AgentResult:
        """Run ``request`` to a final answer within the budget (never raises for model or tool failures).

        Raises:
            InputError: ``request`` is empty or not a string.
        """
        if not isinstance(request, str) or not request.strip():
            raise InputError("request must be a non-empty string")
        run_id = run_id or "run-" + uuid.uuid4().hex[:12]
        started = self.clock()
        messages = self.initial_messages(request)
        result = AgentResult(request=redact_secrets(request, self.secrets), status="", answer="", run_id=run_id)
        with self.tracer.span("agent.run", "AGENT", attributes={"input.value": request, "session.id": run_id,
                                                                "lab.agent.decider": self.decider.name}) as root:
            result.trace_id = root.trace_id
            self._loop(request, messages, result, started, run_id)
            result.messages = messages
            result.latency_s = self.clock() - started
            root.set("output.value", result.answer)
            root.set("lab.agent.status", result.status)
            root.set("lab.agent.steps", result.n_steps)
            root.set("lab.agent.cost_usd", result.cost_usd)
            root.set("lab.agent.tools", ",".join(result.tools_called))
        return result

    def _loop(self, request: str, messages: list[Message], result: AgentResult, started: float, run_id: str) -> None:
        budget = self.budget
        bad_in_a_row = 0
        seen: Counter[tuple[str, str]] = Counter()
        force_answer = False
        for index in range(budget.max_steps):
            last_step = index == budget.max_steps - 1
            if self.clock() - started > budget.max_seconds:
                return self._stop(result, "timeout", f"limit {budget.max_seconds:g} s")
            if budget.max_cost_usd is not None and \
                    result.cost_usd + self._worst_case_cost(messages) > budget.max_cost_usd:
                return self._stop(result, "budget", f"spent ${result.cost_usd:.6f} of ${budget.max_cost_usd:g}")
            step = Step(index=index, action="")
            try:
                decision = self.decide(messages, force_answer=force_answer or last_step)
            except (LabError, Exception) as exc:  # noqa: BLE001 - the user gets a sentence, not a traceback
                step.action, step.detail = "model_error", type(exc).__name__
                result.steps.append(step)
                result.error = redact_secrets(f"{type(exc).__name__}: {exc}", self.secrets)
                detail = type(exc).__name__ if isinstance(exc, ProviderError) else f"unexpected {type(exc).__name__}"
                return self._stop(result, "model_error", detail)
            step.prompt_tokens, step.completion_tokens = decision.prompt_tokens, decision.completion_tokens
            step.latency_s, step.model_calls = decision.latency_s, len(decision.responses)
            step.cost_usd = self._cost(decision)
            result.cost_usd += step.cost_usd
            result.steps.append(step)
            step.action = decision.action
            step.raw = (decision.text or "")[:500]
            if decision.action == "answer":
                result.answer = decision.text or "(the model returned an empty answer)"
                result.status = "max_steps" if (last_step and not force_answer) else "answered"
                return None
            if decision.action == "invalid":
                step.detail = decision.error
                bad_in_a_row += 1
                messages.append({"role": "assistant", "content": decision.text or "(empty reply)"})
                messages.append({"role": "user",
                                 "content": f"That reply was not a valid tool call: {decision.error}. "
                                            "Reply again in the required format."})
                if bad_in_a_row >= budget.max_invalid:
                    return self._stop(result, "gave_up", decision.error)
                continue
            messages.append(_assistant_message(decision))
            step.detail = ",".join(c.name for c in decision.calls)
            for call in decision.calls:
                outcome = self._execute_once(call, request, run_id, seen)
                if outcome.status == "duplicate":
                    force_answer = True
                step.outcomes.append(outcome)
                messages.append(outcome.tool_message())
                bad_in_a_row = bad_in_a_row + 1 if outcome.status in ("invalid", "not_allowed", "refused") else 0
            if bad_in_a_row >= budget.max_invalid:
                return self._stop(result, "gave_up", step.outcomes[-1].error if step.outcomes else "")
        return self._stop(result, "max_steps", f"{budget.max_steps} steps")

    def _execute_once(self, call: Any, request: str, run_id: str, seen: Counter[tuple[str, str]]) -> ToolOutcome:
        try:
            key = (call.name, canonical_arguments(json.loads(call.arguments or "{}")))
        except (json.JSONDecodeError, TypeError, AttributeError):
            key = (call.name, call.arguments)
        if seen[key] >= 1:
            return ToolOutcome(call.id, call.name, call.arguments, "duplicate",
                               f"NOTE: {call.name} was already called with these arguments; its result is above. "
                               "Do not call it again: answer the user now.")
        outcome = self.executor.execute(call, user_request=request, run_id=run_id)
        if outcome.ok:
            seen[key] += 1  # only successful calls: a repeated bad call counts against max_invalid instead
        return outcome

    def _stop(self, result: AgentResult, status: str, detail: str = "") -> None:
        result.status = status
        result.answer = fallback_answer(status, result.outcomes, detail if status != "model_error" else detail)
        return None
