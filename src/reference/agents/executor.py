"""Run one proposed tool call safely: look up, allow, validate, authorise, execute, label.

:class:`ToolExecutor` is the one place where a model's proposal turns into an action.
For every call, in this order:

1. **look up** the tool (unknown name -> ``invalid``);
2. **allowlist** for this task (-> ``not_allowed``);
3. **validate** the arguments against the tool's schema (-> ``invalid``, with every
   problem listed so the model can fix its call);
4. **authorise** side effects with the :class:`~reference.agents.safety.SideEffectPolicy`
   (-> ``refused``) and, where a human approves, honour a denial (-> ``denied``);
5. **execute** with a timeout and retries on transient failure; a side-effecting tool
   receives an **idempotency key** derived from the run and the arguments, so a
   retried or replayed call does not act twice (-> ``ok`` / ``error``);
6. **label** the output: secrets redacted, size capped, injection-checked, wrapped as
   untrusted data.

Nothing here raises into the agent loop: every outcome, good or bad, becomes a
:class:`ToolOutcome` whose ``content`` is the tool message the model reads next.

Example:
    >>> from reference.agents.tools import Toolbox, tool
    >>> from reference.llm import ToolCall
    >>> @tool
    ... def double(x: int) -> int:
    ...     '''Double a number.'''
    ...     return 2 * x
    >>> ex = ToolExecutor(Toolbox([double]))
    >>> ex.execute(ToolCall("c1", "double", '{"x": "two"}'), user_request="double two").status
    'invalid'
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from typing import Any

from reference.agents.safety import SideEffectPolicy, detect_injection, redact_secrets, wrap_untrusted
from reference.agents.tools import (
    Tool,
    ToolArgumentError,
    Toolbox,
    ToolError,
    TransientToolError,
    UnknownToolError,
)
from reference.errors import LabError, ProviderTimeoutError
from reference.llm import ToolCall
from reference.resilience import call_with_timeout

__all__ = ["ToolOutcome", "ToolExecutor", "AgentTracer", "idempotency_key", "canonical_arguments", "OK_STATUSES"]

#: Outcome statuses after which the tool actually ran to completion.
OK_STATUSES = frozenset({"ok"})


def canonical_arguments(arguments: Mapping[str, Any]) -> str:
    """Arguments as canonical JSON (sorted keys, no spaces): equal calls give equal text."""
    return json.dumps(dict(arguments), sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)


def idempotency_key(run_id: str, tool_name: str, arguments: Mapping[str, Any]) -> str:
    """A stable key for one intended action: same run, tool and arguments -> same key.

    It depends on nothing random (no call id, no clock), so a retry, a replay after a
    crash, or a second process resuming the run all produce the same key.

    Example:
        >>> idempotency_key("run-1", "create_ticket", {"a": 1}) == idempotency_key("run-1", "create_ticket", {"a": 1})
        True
    """
    raw = f"{run_id}|{tool_name}|{canonical_arguments(arguments)}"
    return "idem-" + hashlib.sha256(raw.encode("utf-8")).hexdigest()[:20]


@dataclass
class ToolOutcome:
    """What happened to one proposed call; ``content`` is what the model reads next.

    ``status`` is one of ``ok``, ``invalid`` (unknown tool or bad arguments),
    ``not_allowed`` (outside the task's allowlist), ``refused`` (safety policy),
    ``denied`` (a human said no), ``error`` (the tool failed, after retries),
    ``timeout`` or ``duplicate`` (the same call again; not re-run).
    """

    call_id: str
    name: str
    raw_arguments: str
    status: str
    content: str
    arguments: dict[str, Any] | None = None
    result: Any = None
    error: str = ""
    attempts: int = 0
    latency_s: float = 0.0
    side_effect: bool = False
    injection: list[str] = field(default_factory=list)
    idempotency_key: str | None = None

    @property
    def ok(self) -> bool:
        return self.status in OK_STATUSES

    def to_dict(self) -> dict[str, Any]:
        """A JSON-friendly copy (the raw result is turned into text)."""
        d = asdict(self)
        d["result"] = None if self.result is None else _to_text(self.result)
        return d

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> ToolOutcome:
        return cls(**dict(d))

    def tool_message(self) -> dict[str, Any]:
        """The OpenAI-format ``tool`` message for this outcome."""
        return {"role": "tool", "tool_call_id": self.call_id, "name": self.name or "unknown", "content": self.content}


def _to_text(result: Any) -> str:
    if isinstance(result, str):
        return result
    try:
        return json.dumps(result, ensure_ascii=False, default=str)
    except (TypeError, ValueError):
        return str(result)


# --------------------------------------------------------------------------- tracing adapter


class _NullHandle:
    trace_id = ""
    span_id = ""

    def set(self, key: str, value: Any) -> None:
        pass

    def set_many(self, attributes: Mapping[str, Any]) -> None:
        pass


class AgentTracer:
    """Thin adapter between the agent and :class:`reference.tracing.Tracer` (or no tracer).

    Every string value is passed through :func:`redact_secrets` with the run's secrets
    before the tracer sees it; the tracer then redacts personal data as well. Keeping
    this adapter small means the agent does not care which tracing backend is behind it.

    Example:
        >>> t = AgentTracer(None)
        >>> with t.span("agent.run", "AGENT") as span:
        ...     span.set("input.value", "hi")
    """

    def __init__(self, tracer: Any | None = None, *, secrets: Iterable[str] = ()) -> None:
        self.tracer = tracer
        self.secrets = tuple(secrets)

    def _clean(self, value: Any) -> Any:
        if isinstance(value, str):
            return redact_secrets(value, self.secrets)
        if isinstance(value, (list, tuple, dict)):
            return redact_secrets(json.dumps(value, default=str, ensure_ascii=False), self.secrets)
        return value

    @contextmanager
    def span(self, name: str, kind: str = "CHAIN", attributes: Mapping[str, Any] | None = None) -> Iterator[Any]:
        if self.tracer is None:
            yield _NullHandle()
            return
        clean = {k: self._clean(v) for k, v in (attributes or {}).items()}
        with self.tracer.span(name, kind, attributes=clean) as handle:
            yield _CleaningHandle(handle, self)

    def chat(self, llm: Any, messages: Sequence[Mapping[str, Any]], *, name: str = "llm.chat", **kwargs: Any) -> Any:
        """``llm.chat`` inside an LLM span (or directly, without a tracer)."""
        if self.tracer is None:
            return llm.chat(messages, **kwargs)
        clean = json.loads(self._clean(list(messages)))
        # The model gets the original messages: they were redacted before they were built.
        with self.span(name, "LLM") as span:
            span.set("input.value", json.dumps(clean, ensure_ascii=False))
            span.set("input.mime_type", "application/json")
            params = {k: v for k, v in kwargs.items() if k in ("max_tokens", "temperature", "tool_choice")}
            span.set("llm.invocation_parameters", json.dumps(params, default=str))
            response = llm.chat(messages, **kwargs)
            self.tracer.record_llm_response(getattr(span, "inner", span), response)
            if response.tool_calls:
                span.set("output.value", json.dumps(
                    [{"name": c.name, "arguments": c.arguments} for c in response.tool_calls]))
            return response

    def flush(self) -> None:
        if self.tracer is not None:
            self.tracer.flush()


class _CleaningHandle:
    def __init__(self, inner: Any, adapter: AgentTracer) -> None:
        self.inner = inner
        self._adapter = adapter

    @property
    def trace_id(self) -> str:
        return self.inner.trace_id

    @property
    def span_id(self) -> str:
        return self.inner.span_id

    def set(self, key: str, value: Any) -> None:
        self.inner.set(key, self._adapter._clean(value))

    def set_many(self, attributes: Mapping[str, Any]) -> None:
        for k, v in attributes.items():
            self.set(k, v)


# --------------------------------------------------------------------------- executor


class ToolExecutor:
    """Validate, authorise and run proposed tool calls; never raise into the agent loop.

    Args:
        toolbox: every tool the system knows.
        allowlist: names this task may use (``None``: all of ``toolbox``).
        policy: the side-effect policy (default :class:`SideEffectPolicy`).
        secrets: strings that must never reach the model or the trace.
        tracer: a :class:`reference.tracing.Tracer`, an :class:`AgentTracer`, or ``None``.
        max_output_chars: longer tool output is cut (and says so) before the model reads it.
        retry_delay_s: pause before a retry (doubles each time).
        sleep: injectable for tests.
    """

    def __init__(self, toolbox: Toolbox, *, allowlist: Iterable[str] | None = None,
                 policy: SideEffectPolicy | None = None, secrets: Iterable[str] = (), tracer: Any | None = None,
                 max_output_chars: int = 1200, retry_delay_s: float = 0.0,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        self.toolbox = toolbox
        self.allowed = set(toolbox.restrict(allowlist).names) if allowlist is not None else set(toolbox.names)
        self.policy = policy or SideEffectPolicy()
        self.secrets = tuple(secrets)
        self.tracer = tracer if isinstance(tracer, AgentTracer) else AgentTracer(tracer, secrets=self.secrets)
        self.max_output_chars = max_output_chars
        self.retry_delay_s = retry_delay_s
        self.sleep = sleep

    @property
    def allowed_tools(self) -> list[Tool]:
        return [t for t in self.toolbox if t.name in self.allowed]

    # -- checks before running ---------------------------------------------------------

    def precheck(self, call: ToolCall, *, user_request: str) -> ToolOutcome | tuple[Tool, dict[str, Any]]:
        """Steps 1-4 without running: a failed :class:`ToolOutcome`, or ``(tool, arguments)``."""
        def fail(status: str, message: str, tool: Tool | None = None,
                 args: dict[str, Any] | None = None) -> ToolOutcome:
            message = redact_secrets(message, self.secrets)
            hint = {"invalid": " Fix the call and try again, or answer.",
                    "not_allowed": " Use one of the allowed tools, or answer.",
                    "refused": " Do not retry; tell the user what you would need.",
                    "denied": " Do not retry; tell the user it was not approved."}.get(status, "")
            return ToolOutcome(call.id, call.name, call.arguments, status, f"ERROR ({status}): {message}.{hint}",
                               arguments=args, error=message, side_effect=bool(tool and tool.side_effect))

        if not call.name:
            return fail("invalid", "the reply did not name a tool")
        try:
            tool = self.toolbox.get(call.name)
        except UnknownToolError as exc:
            allowed = ", ".join(sorted(self.allowed))
            return fail("invalid", f"{call.name!r} is not a tool; available: {allowed}") if allowed else fail(
                "invalid", str(exc))
        if tool.name not in self.allowed:
            return fail("not_allowed", f"{tool.name} is not allowed for this task; allowed: "
                        f"{', '.join(sorted(self.allowed)) or 'none'}", tool)
        try:
            args = tool.validate(call.arguments)
        except ToolArgumentError as exc:
            return fail("invalid", str(exc), tool)
        decision = self.policy.check(tool, args, user_request)
        if not decision.allowed:
            return fail("refused", decision.reason, tool, args)
        return tool, args

    # -- running -----------------------------------------------------------------------

    def execute(self, call: ToolCall, *, user_request: str, run_id: str = "run",
                approved: bool | None = None) -> ToolOutcome:
        """Run one call through every check; the outcome's ``content`` goes back to the model.

        Args:
            call: what the model proposed.
            user_request: the user's own words (the policy checks intent against them).
            run_id: scopes idempotency keys (a conversation or graph thread id).
            approved: a human's verdict for a side-effecting call; ``False`` refuses it.
        """
        started = time.perf_counter()
        with self.tracer.span(f"tool.{call.name or 'unknown'}", "TOOL",
                              attributes={"tool.name": call.name, "tool.parameters": call.arguments}) as span:
            checked = self.precheck(call, user_request=user_request)
            if isinstance(checked, ToolOutcome):
                outcome = checked
            elif approved is False:
                tool, args = checked
                outcome = ToolOutcome(call.id, call.name, call.arguments, "denied",
                                      f"ERROR (denied): a human reviewer did not approve {tool.name}. Do not retry; "
                                      "tell the user it was not approved.", arguments=args,
                                      side_effect=tool.side_effect, error="not approved")
            else:
                tool, args = checked
                outcome = self._run(call, tool, args, run_id)
            outcome.latency_s = time.perf_counter() - started
            span.set("lab.tool.status", outcome.status)
            span.set("lab.tool.side_effect", outcome.side_effect)
            span.set("lab.tool.attempts", outcome.attempts)
            if outcome.idempotency_key:
                span.set("lab.tool.idempotency_key", outcome.idempotency_key)
            if outcome.injection:
                span.set("lab.tool.injection_rules", ",".join(outcome.injection))
            span.set("output.value", outcome.content)
        return outcome

    def _run(self, call: ToolCall, tool: Tool, args: dict[str, Any], run_id: str) -> ToolOutcome:
        hidden: dict[str, Any] = {}
        key = None
        if "idempotency_key" in tool.hidden:
            key = idempotency_key(run_id, tool.name, args)
            hidden["idempotency_key"] = key
        attempts = 0
        last_error = ""
        status = "error"
        for attempt in range(tool.retries + 1):
            attempts += 1
            try:
                result = call_with_timeout(lambda: tool.fn(**args, **hidden), tool.timeout_s)
            except ProviderTimeoutError:
                status, last_error = "timeout", f"{tool.name} did not answer within {tool.timeout_s:g} s"
            except TransientToolError as exc:
                status, last_error = "error", f"{tool.name} failed: {exc}"
            except (ToolError, LabError) as exc:
                # Permanent: the same arguments will fail the same way. Let the model see why.
                message = redact_secrets(f"{tool.name} failed: {exc}", self.secrets)
                return ToolOutcome(call.id, tool.name, call.arguments, "error",
                                   f"ERROR (error): {message}. Change the arguments or answer without this tool.",
                                   arguments=args, error=message, attempts=attempts, side_effect=tool.side_effect,
                                   idempotency_key=key)
            except Exception as exc:  # noqa: BLE001 - a bug in a tool must not kill the agent
                message = f"{tool.name} failed with an internal error ({type(exc).__name__})"
                return ToolOutcome(call.id, tool.name, call.arguments, "error",
                                   f"ERROR (error): {message}. Answer without this tool.", arguments=args,
                                   error=redact_secrets(f"{message}: {exc}", self.secrets), attempts=attempts,
                                   side_effect=tool.side_effect, idempotency_key=key)
            else:
                return self._success(call, tool, args, result, attempts, key)
            if attempt < tool.retries:
                self.sleep(self.retry_delay_s * 2**attempt)
        message = redact_secrets(last_error, self.secrets)
        return ToolOutcome(call.id, tool.name, call.arguments, status,
                           f"ERROR ({status}): {message} (tried {attempts} times). Try another tool or tell the user "
                           "this information is unavailable right now.", arguments=args, error=message,
                           attempts=attempts, side_effect=tool.side_effect, idempotency_key=key)

    def _success(self, call: ToolCall, tool: Tool, args: dict[str, Any], result: Any, attempts: int,
                 key: str | None) -> ToolOutcome:
        text = redact_secrets(_to_text(result), self.secrets)
        if len(text) > self.max_output_chars:
            text = text[: self.max_output_chars] + f" ... [cut {len(text) - self.max_output_chars} chars]"
        findings = detect_injection(text)
        content = wrap_untrusted(tool.name, text, flagged=bool(findings))
        return ToolOutcome(call.id, tool.name, call.arguments, "ok", content, arguments=args, result=result,
                           attempts=attempts, side_effect=tool.side_effect, injection=[f.rule for f in findings],
                           idempotency_key=key)
