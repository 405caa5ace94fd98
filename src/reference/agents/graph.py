"""The same agent as a LangGraph graph: state, conditional edges, SQLite checkpoints, approval.

The graph has three nodes and the same parts as :class:`~reference.agents.loop.Agent`
(decider, executor, policy, budgets, tracing)::

    START -> agent --(answer / stop)--------------------------> END
               |  --(only read-only calls)--> tools --> agent
               |  --(a side-effecting call)--> approve --> tools --> agent

* **State** (:class:`GraphState`) is plain JSON-friendly data: messages, the pending
  calls, step records, tool outcomes, status and answer.
* **Checkpoints**: compiled with a :class:`langgraph.checkpoint.sqlite.SqliteSaver`, the
  graph saves its state after every node into a SQLite file, keyed by ``thread_id``.
  A new process that builds a new :class:`GraphAgent` on the same file can resume a
  thread where it stopped, after a human's answer or after a crash.
* **Human in the loop**: before a side-effecting call runs, the ``approve`` node calls
  :func:`langgraph.types.interrupt`; the graph stops and waits. Resume with
  :meth:`GraphAgent.resume` and the reviewer's verdict. Calls the safety policy already
  refuses never reach a human: people should not have to spot prompt injections.
* **Crash safety**: if the process dies inside ``tools``, the resumed graph runs that
  node again. The side-effecting tool receives the same idempotency key as before
  (run id + tool + arguments), so a ticket filed just before the crash is not filed twice.

Example:
    >>> from reference.agents.testing import ScriptedToolModel
    >>> from reference.agents.deciders import NativeDecider
    >>> from reference.agents.tools import Toolbox, tool
    >>> @tool
    ... def calculate(expression: str) -> int:
    ...     '''Do arithmetic.'''
    ...     return 391
    >>> llm = ScriptedToolModel([{"tool": "calculate", "arguments": {"expression": "17*23"}}, "391"])
    >>> agent = GraphAgent(llm, Toolbox([calculate]), decider=NativeDecider())
    >>> agent.run("What is 17 * 23?", thread_id="t1").answer
    '391'
"""

from __future__ import annotations

import json
import operator
import sqlite3
import time
import uuid
from collections.abc import Callable, Iterable
from dataclasses import asdict
from pathlib import Path
from typing import Annotated, Any, TypedDict

from reference.agents.deciders import Decider
from reference.agents.executor import ToolOutcome, canonical_arguments
from reference.agents.loop import Agent, AgentResult, Budget, Step, _assistant_message, fallback_answer
from reference.agents.safety import SideEffectPolicy, redact_secrets
from reference.agents.tools import Toolbox
from reference.errors import ConfigurationError, InputError
from reference.llm import ChatModel, ToolCall

__all__ = ["GraphAgent", "GraphState", "sqlite_checkpointer", "SimulatedCrash"]


class SimulatedCrash(BaseException):  # noqa: N818 - it stands for a process dying, not an error to handle
    """Raised by a test or notebook tool to stand for the process dying mid-step.

    It derives from ``BaseException`` so that no ``except Exception`` on the way
    (executor, LangGraph) treats it as an ordinary tool failure.
    """


class GraphState(TypedDict, total=False):
    """The graph's state; list fields with ``operator.add`` accumulate across nodes."""

    request: str
    run_id: str
    messages: Annotated[list[dict[str, Any]], operator.add]
    pending: list[dict[str, Any]]
    approvals: dict[str, bool]
    steps: Annotated[list[dict[str, Any]], operator.add]
    outcomes: Annotated[list[dict[str, Any]], operator.add]
    seen: list[str]
    bad_in_a_row: int
    force_answer: bool
    cost_usd: float
    elapsed_s: float
    status: str
    answer: str


def sqlite_checkpointer(path: str | Path = ":memory:") -> Any:
    """A LangGraph ``SqliteSaver`` on ``path`` (a file survives the process; ``:memory:`` does not).

    Raises:
        ConfigurationError: ``langgraph-checkpoint-sqlite`` is not installed.
    """
    try:
        from langgraph.checkpoint.sqlite import SqliteSaver  # noqa: PLC0415
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise ConfigurationError("install langgraph-checkpoint-sqlite for SQLite checkpoints") from exc
    conn = sqlite3.connect(str(path), check_same_thread=False)
    saver = SqliteSaver(conn)
    saver.setup()
    return saver


class GraphAgent:
    """A tool-using agent as a LangGraph ``StateGraph`` with checkpoints and human approval.

    Takes the same arguments as :class:`~reference.agents.loop.Agent`, plus:

    Args:
        checkpointer: a LangGraph checkpointer, or a path for a SQLite one (default: in memory).
        approval: ``"side_effects"`` (default) interrupts before every side-effecting call that
            the policy allows; ``"never"`` runs them without asking (the policy still applies).
    """

    def __init__(self, llm: ChatModel, toolbox: Toolbox, *, checkpointer: Any = ":memory:",
                 allowlist: Iterable[str] | None = None, decider: Decider | None = None,
                 budget: Budget | None = None, policy: SideEffectPolicy | None = None, tracer: Any | None = None,
                 price: Any = None, secrets: Iterable[str] = (), approval: str = "side_effects") -> None:
        if approval not in ("side_effects", "never"):
            raise InputError("approval must be 'side_effects' or 'never'")
        self.core = Agent(llm, toolbox, allowlist=allowlist, decider=decider, budget=budget, policy=policy,
                          tracer=tracer, price=price, secrets=secrets)
        self.approval = approval
        self.checkpointer = (sqlite_checkpointer(checkpointer) if isinstance(checkpointer, (str, Path))
                             else checkpointer)
        self.graph = self._build().compile(checkpointer=self.checkpointer)

    @property
    def budget(self) -> Budget:
        return self.core.budget

    # -- nodes ------------------------------------------------------------------------------

    def _agent_node(self, state: GraphState) -> dict[str, Any]:
        core, budget = self.core, self.core.budget
        index = len(state.get("steps", []))
        started = time.perf_counter()
        if state.get("elapsed_s", 0.0) > budget.max_seconds:
            return self._stop(state, "timeout", f"limit {budget.max_seconds:g} s")
        messages = list(state["messages"])
        if budget.max_cost_usd is not None and \
                state.get("cost_usd", 0.0) + core._worst_case_cost(messages) > budget.max_cost_usd:
            return self._stop(state, "budget", f"spent ${state.get('cost_usd', 0.0):.6f} of ${budget.max_cost_usd:g}")
        last_step = index >= budget.max_steps - 1
        force = bool(state.get("force_answer")) or last_step
        try:
            decision = core.decide(messages, force_answer=force)
        except Exception as exc:  # noqa: BLE001 - the user gets a sentence, not a traceback
            step = asdict(Step(index, "model_error", type(exc).__name__))
            update = self._stop(state, "model_error", type(exc).__name__)
            update["steps"] = [step]
            return update
        cost = core._cost(decision)
        step = Step(index, decision.action, decision.error or ",".join(c.name for c in decision.calls),
                    prompt_tokens=decision.prompt_tokens, completion_tokens=decision.completion_tokens,
                    cost_usd=cost, latency_s=decision.latency_s, model_calls=len(decision.responses),
                    raw=(decision.text or "")[:500])
        update: dict[str, Any] = {"steps": [asdict(step)], "cost_usd": state.get("cost_usd", 0.0) + cost,
                                  "elapsed_s": state.get("elapsed_s", 0.0) + time.perf_counter() - started}
        if decision.action == "answer":
            update["answer"] = decision.text or "(the model returned an empty answer)"
            update["status"] = "max_steps" if (last_step and not state.get("force_answer")) else "answered"
            return update
        if decision.action == "invalid":
            bad = state.get("bad_in_a_row", 0) + 1
            update["bad_in_a_row"] = bad
            update["messages"] = [
                {"role": "assistant", "content": decision.text or "(empty reply)"},
                {"role": "user", "content": f"That reply was not a valid tool call: {decision.error}. "
                                            "Reply again in the required format."}]
            if bad >= budget.max_invalid:
                update.update(self._stop(state, "gave_up", decision.error))
            return update
        update["messages"] = [_assistant_message(decision)]
        update["pending"] = [{"id": c.id, "name": c.name, "arguments": c.arguments} for c in decision.calls]
        update["approvals"] = {}
        return update

    def _approve_node(self, state: GraphState) -> dict[str, Any]:
        from langgraph.types import interrupt  # noqa: PLC0415

        approvals = dict(state.get("approvals") or {})
        for call in state.get("pending", []):
            tool_call = ToolCall(call["id"], call["name"], call["arguments"])
            checked = self.core.executor.precheck(tool_call, user_request=state["request"])
            if isinstance(checked, ToolOutcome) or not checked[0].side_effect:
                continue  # refused or invalid calls are handled by the executor; no human needed
            tool, args = checked
            verdict = interrupt({"tool": tool.name, "arguments": args, "request": state["request"],
                                 "thread_id": state["run_id"], "call_id": call["id"]})
            approvals[call["id"]] = bool(verdict.get("approved")) if isinstance(verdict, dict) else bool(verdict)
        return {"approvals": approvals}

    def _tools_node(self, state: GraphState) -> dict[str, Any]:
        started = time.perf_counter()
        seen = list(state.get("seen", []))
        approvals = state.get("approvals") or {}
        index = len(state.get("steps", [])) - 1
        messages, outcomes = [], []
        bad = state.get("bad_in_a_row", 0)
        force = bool(state.get("force_answer"))
        for call in state.get("pending", []):
            tool_call = ToolCall(call["id"], call["name"], call["arguments"])
            try:
                key = json.dumps([call["name"], canonical_arguments(json.loads(call["arguments"] or "{}"))])
            except (json.JSONDecodeError, TypeError, AttributeError):
                key = json.dumps([call["name"], call["arguments"]])
            if key in seen:
                outcome = ToolOutcome(call["id"], call["name"], call["arguments"], "duplicate",
                                      f"NOTE: {call['name']} was already called with these arguments; its result is "
                                      "above. Do not call it again: answer the user now.")
                force = True
            else:
                outcome = self.core.executor.execute(tool_call, user_request=state["request"], run_id=state["run_id"],
                                                     approved=approvals.get(call["id"]))
                if outcome.ok:
                    seen.append(key)
            bad = bad + 1 if outcome.status in ("invalid", "not_allowed", "refused") else 0
            messages.append(outcome.tool_message())
            outcomes.append({**outcome.to_dict(), "step": index})
        update: dict[str, Any] = {"messages": messages, "outcomes": outcomes, "pending": [], "seen": seen,
                                  "bad_in_a_row": bad, "force_answer": force,
                                  "elapsed_s": state.get("elapsed_s", 0.0) + time.perf_counter() - started}
        if bad >= self.core.budget.max_invalid:
            update.update(self._stop({**state, "outcomes": state.get("outcomes", []) + outcomes}, "gave_up",
                                     outcomes[-1]["error"] if outcomes else ""))
        return update

    def _stop(self, state: GraphState, status: str, detail: str) -> dict[str, Any]:
        outcomes = [ToolOutcome.from_dict({k: v for k, v in o.items() if k != "step"})
                    for o in state.get("outcomes", [])]
        return {"status": status, "answer": fallback_answer(status, outcomes, detail)}

    # -- edges ------------------------------------------------------------------------------

    def _after_agent(self, state: GraphState) -> str:
        if state.get("status"):
            return "end"
        pending = state.get("pending") or []
        if not pending:
            return "agent"  # an invalid reply: ask again
        if self.approval == "side_effects":
            box = self.core.executor.toolbox
            if any(call["name"] in box and box.get(call["name"]).side_effect for call in pending):
                return "approve"
        return "tools"

    def _after_tools(self, state: GraphState) -> str:
        return "end" if state.get("status") else "agent"

    def _build(self) -> Any:
        from langgraph.graph import END, START, StateGraph  # noqa: PLC0415

        g = StateGraph(GraphState)
        g.add_node("agent", self._agent_node)
        g.add_node("approve", self._approve_node)
        g.add_node("tools", self._tools_node)
        g.add_edge(START, "agent")
        g.add_conditional_edges("agent", self._after_agent,
                                {"end": END, "agent": "agent", "approve": "approve", "tools": "tools"})
        g.add_edge("approve", "tools")
        g.add_conditional_edges("tools", self._after_tools, {"end": END, "agent": "agent"})
        return g

    # -- running ----------------------------------------------------------------------------

    def _config(self, thread_id: str) -> dict[str, Any]:
        return {"configurable": {"thread_id": thread_id}, "recursion_limit": 4 * self.budget.max_steps + 10}

    def start(self, request: str, *, thread_id: str | None = None) -> str:
        """Start a thread; runs until the answer or the first approval request. Returns the thread id."""
        if not isinstance(request, str) or not request.strip():
            raise InputError("request must be a non-empty string")
        thread_id = thread_id or "thread-" + uuid.uuid4().hex[:12]
        state: GraphState = {"request": request, "run_id": thread_id,
                             "messages": self.core.initial_messages(request), "pending": [], "approvals": {},
                             "steps": [], "outcomes": [], "seen": [], "bad_in_a_row": 0, "force_answer": False,
                             "cost_usd": 0.0, "elapsed_s": 0.0, "status": "", "answer": ""}
        self._invoke(state, thread_id)
        return thread_id

    def resume(self, thread_id: str, approved: bool | None = None) -> str:
        """Continue a thread: with a reviewer's verdict if it waits for one, else from its last checkpoint."""
        from langgraph.types import Command  # noqa: PLC0415

        snapshot = self.graph.get_state(self._config(thread_id))
        if not snapshot.values:
            raise InputError(f"no checkpoint for thread {thread_id!r}")
        if snapshot.interrupts:
            if approved is None:
                raise InputError(f"thread {thread_id!r} waits for approval: pass approved=True or False")
            self._invoke(Command(resume={"approved": approved}), thread_id)
        elif snapshot.next:
            self._invoke(None, thread_id)
        return thread_id

    def _invoke(self, payload: Any, thread_id: str) -> None:
        with self.core.tracer.span("agent.graph.invoke", "AGENT",
                                   attributes={"session.id": thread_id}) as span:
            # "sync": each step's checkpoint is on disk before the next step starts. LangGraph's
            # default ("async") writes it while the next step runs, so a process that dies in a
            # tool call can lose the step before it (e.g. the human approval).
            self.graph.invoke(payload, self._config(thread_id), durability="sync")
            values = self.graph.get_state(self._config(thread_id)).values
            span.set("lab.agent.status", values.get("status") or "waiting")

    def pending_approval(self, thread_id: str) -> dict[str, Any] | None:
        """What a waiting thread asks a human to approve (``None`` when it is not waiting)."""
        snapshot = self.graph.get_state(self._config(thread_id))
        return snapshot.interrupts[0].value if snapshot.interrupts else None

    def is_finished(self, thread_id: str) -> bool:
        snapshot = self.graph.get_state(self._config(thread_id))
        return bool(snapshot.values) and not snapshot.next

    def result(self, thread_id: str) -> AgentResult:
        """The thread's state as an :class:`AgentResult` (status ``waiting`` while paused)."""
        values = self.graph.get_state(self._config(thread_id)).values
        if not values:
            raise InputError(f"no checkpoint for thread {thread_id!r}")
        steps = [Step(**{k: v for k, v in s.items() if k != "outcomes"}) for s in values.get("steps", [])]
        for o in values.get("outcomes", []):
            outcome = ToolOutcome.from_dict({k: v for k, v in o.items() if k != "step"})
            if 0 <= o.get("step", -1) < len(steps):
                steps[o["step"]].outcomes.append(outcome)
        status = values.get("status") or ("waiting" if not self.is_finished(thread_id) else "unknown")
        return AgentResult(request=redact_secrets(values.get("request", ""), self.core.secrets), status=status,
                           answer=values.get("answer", ""), steps=steps, messages=list(values.get("messages", [])),
                           cost_usd=values.get("cost_usd", 0.0), latency_s=values.get("elapsed_s", 0.0),
                           run_id=thread_id)

    def run(self, request: str, *, thread_id: str | None = None,
            approve: Callable[[dict[str, Any]], bool] | None = None) -> AgentResult:
        """Run to the end, asking ``approve(request_for_approval)`` whenever the graph waits.

        Without ``approve`` every approval request is denied (the safe default for unattended runs).
        """
        started = time.perf_counter()
        thread_id = self.start(request, thread_id=thread_id)
        for _ in range(4 * self.budget.max_steps + 10):
            pending = self.pending_approval(thread_id)
            if pending is None:
                break
            self.resume(thread_id, approved=bool(approve(pending)) if approve else False)
        result = self.result(thread_id)
        result.latency_s = time.perf_counter() - started
        return result
