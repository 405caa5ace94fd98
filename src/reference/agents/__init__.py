"""Agents and tool use that fail safely.

* :mod:`~reference.agents.tools` - typed functions become tools: JSON schemas from the
  signature, validation before running, read-only vs side-effecting, allowlists.
* :mod:`~reference.agents.executor` - one proposed call through every check (allowlist,
  validation, policy, approval), run with timeout, retries and an idempotency key.
* :mod:`~reference.agents.deciders` - how the model picks the next step: prompted JSON,
  grammar-constrained two-stage decoding, or the provider's native tool calls.
* :mod:`~reference.agents.loop` - the plain agent loop with step, time and cost budgets.
* :mod:`~reference.agents.graph` - the same agent in LangGraph, with SQLite checkpoints,
  human approval before side effects and resumption after a crash.
* :mod:`~reference.agents.safety` - untrusted tool output, the side-effect policy,
  an injection detector (defence in depth) and secret redaction.
* :mod:`~reference.agents.lab_tools` - tools over the lab's data (corpus search, SQL log,
  arithmetic, prices, tickets, e-mail).
* :mod:`~reference.agents.tasks` - the task set with expected outcomes, failure injection
  and scoring.

Example:
    >>> from reference.agents import Agent, Toolbox, tool
    >>> from reference.llm import FakeChatModel
    >>> @tool
    ... def calculate(expression: str) -> int:
    ...     '''Do arithmetic.'''
    ...     return 391
    >>> llm = FakeChatModel(responses=['{"tool": "calculate", "arguments": {"expression": "17*23"}}',
    ...                                '{"answer": "391"}'])
    >>> Agent(llm, Toolbox([calculate])).run("What is 17 * 23?").answer
    '391'
"""

from reference.agents.deciders import (
    ConstrainedDecider,
    Decider,
    Decision,
    NativeDecider,
    PromptedDecider,
    default_decider,
    parse_tool_call_text,
)
from reference.agents.executor import AgentTracer, ToolExecutor, ToolOutcome, idempotency_key
from reference.agents.graph import GraphAgent, SimulatedCrash, sqlite_checkpointer
from reference.agents.lab_tools import CorpusSearch, LabEnvironment, Outbox, TicketDesk, safe_calculate
from reference.agents.loop import Agent, AgentResult, Budget, Step
from reference.agents.safety import (
    PolicyDecision,
    SideEffectPolicy,
    detect_injection,
    redact_secrets,
    wrap_untrusted,
)
from reference.agents.tasks import (
    AgentTask,
    TaskRun,
    TaskScore,
    load_agent_tasks,
    run_task,
    score_task,
    summarize_runs,
)
from reference.agents.testing import ScriptedToolModel
from reference.agents.tools import (
    Tool,
    ToolArgumentError,
    Toolbox,
    ToolError,
    ToolNotAllowedError,
    TransientToolError,
    UnknownToolError,
    tool,
)

__all__ = [
    "Agent", "AgentResult", "AgentTask", "AgentTracer", "Budget", "ConstrainedDecider", "CorpusSearch",
    "Decider", "Decision", "GraphAgent", "LabEnvironment", "NativeDecider", "Outbox", "PolicyDecision",
    "PromptedDecider", "ScriptedToolModel", "SideEffectPolicy", "SimulatedCrash", "Step", "TaskRun",
    "TaskScore", "TicketDesk", "Tool", "ToolArgumentError", "ToolError", "ToolExecutor",
    "ToolNotAllowedError", "ToolOutcome", "Toolbox", "TransientToolError", "UnknownToolError",
    "default_decider", "detect_injection", "idempotency_key", "load_agent_tasks", "parse_tool_call_text",
    "redact_secrets", "run_task", "safe_calculate", "score_task", "sqlite_checkpointer", "summarize_runs",
    "tool", "wrap_untrusted",
]
