"""How a model chooses the next step: a tool call or the final answer.

Three strategies behind one interface (:class:`Decider`):

* :class:`PromptedDecider` - **unconstrained**: the tools and a JSON reply format are
  described in the prompt and the reply text is parsed. Works with any model; a small
  model often writes prose, broken JSON or made-up tool names.
* :class:`ConstrainedDecider` - **grammar-constrained, two stages**. Stage 1 asks for
  ``{"next": <one of the allowed tool names | "final_answer">}`` with a JSON-schema
  ``response_format``; stage 2 asks for the chosen tool's arguments with a *named*
  ``tool_choice``, which the local llama.cpp backend enforces with a grammar built
  from the tool's schema. The output always parses and always names a real tool;
  whether it is the *right* tool is still the model's judgement. Splitting the
  decision lets stage 2 show the model only the chosen tool's documentation, keeps
  each grammar small, and means the final answer is free text, not JSON.
* :class:`NativeDecider` - the provider's own tool calling (``tools=`` with
  ``tool_choice="auto"``), for OpenAI and compatible servers.

Example:
    >>> from reference.llm import FakeChatModel
    >>> parse_tool_call_text('Sure! {"tool": "calculate", "arguments": {"expression": "2+2"}}')
    ('tool', 'calculate', '{"expression": "2+2"}')
"""

from __future__ import annotations

import json
import uuid
from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from reference.agents.tools import Tool
from reference.llm import ChatModel, ChatResponse, Message, ToolCall

__all__ = [
    "Decision", "Decider", "PromptedDecider", "ConstrainedDecider", "NativeDecider", "default_decider",
    "parse_tool_call_text", "grammar_parameters", "max_json_tokens", "with_note", "user_question", "FINAL_ANSWER",
]

#: The pseudo-option a constrained decision uses to say "I can answer now".
FINAL_ANSWER = "final_answer"


@dataclass
class Decision:
    """The model's next step: ``tool`` (with calls), ``answer`` (with text) or ``invalid``."""

    action: str
    calls: list[ToolCall] = field(default_factory=list)
    text: str = ""
    error: str = ""
    responses: list[ChatResponse] = field(default_factory=list)

    @property
    def prompt_tokens(self) -> int:
        return sum(r.usage.prompt_tokens for r in self.responses)

    @property
    def completion_tokens(self) -> int:
        return sum(r.usage.completion_tokens for r in self.responses)

    @property
    def latency_s(self) -> float:
        return sum(r.latency_s for r in self.responses)


def _new_id() -> str:
    return "call_" + uuid.uuid4().hex[:12]


def _chat(tracer: Any, llm: ChatModel, messages: list[Message], name: str, **kwargs: Any) -> ChatResponse:
    if tracer is None:
        return llm.chat(messages, **kwargs)
    return tracer.chat(llm, messages, name=name, **kwargs)


class Decider(ABC):
    """Chooses the next step from the conversation so far."""

    name = "base"
    #: the most completion tokens one decision may use (for cost budgets)
    max_tokens_per_decision = 128

    @abstractmethod
    def decide(self, llm: ChatModel, messages: list[Message], tools: Sequence[Tool], *, tracer: Any = None,
               require_tool: bool = False) -> Decision:
        """Next step given the messages; ``require_tool`` rules out answering directly."""

    @abstractmethod
    def final_answer(self, llm: ChatModel, messages: list[Message], *, tracer: Any = None) -> Decision:
        """An answer with no further tool calls (used at the step limit or after a loop)."""


def with_note(messages: list[Message], note: str) -> list[Message]:
    """A copy of ``messages`` with ``note`` appended to the leading system message (or a new one first).

    Small models follow an instruction best at the start of the prompt; the history
    itself is not changed.
    """
    out = [dict(m) for m in messages]
    if out and out[0].get("role") == "system":
        out[0]["content"] = f"{out[0].get('content') or ''}\n\n{note}".strip()
        return out
    return [{"role": "system", "content": note}, *out]


def user_question(messages: list[Message]) -> str:
    """The first user message's text (the request the agent is working on)."""
    for m in messages:
        if m.get("role") == "user" and isinstance(m.get("content"), str):
            return m["content"]
    return ""


def _answer(llm: ChatModel, messages: list[Message], tracer: Any, max_tokens: int) -> Decision:
    # Measured on SmolLM2-135M: restating the question in a last user turn gives answers
    # that use the tool results; an instruction in the system prompt does not.
    msgs = [*messages, {"role": "user", "content": "Using the tool results above, answer in one or two sentences "
                                                   f"(no tool calls): {user_question(messages)}"}]
    r = _chat(tracer, llm, msgs, "agent.answer", max_tokens=max_tokens)
    return Decision("answer", text=r.text.strip(), responses=[r])


# --------------------------------------------------------------------------- unconstrained


def _first_json_object(text: str) -> Any:
    decoder = json.JSONDecoder()
    start = text.find("{")
    while start != -1:
        try:
            obj, _ = decoder.raw_decode(text[start:])
            return obj
        except json.JSONDecodeError:
            start = text.find("{", start + 1)
    return None


def parse_tool_call_text(text: str) -> tuple[str, str, str]:
    """Parse a prompted reply into ``("tool", name, arguments_json)``, ``("answer", "", text)``
    or ``("invalid", "", why)``.

    Accepts the first JSON object in the text (code fences and chatter around it are
    ignored) with ``tool`` (or ``name``) and ``arguments``, or with ``answer``.
    Text with no JSON object at all is ``invalid``; callers that accept prose as an
    answer decide that themselves.

    Example:
        >>> parse_tool_call_text('{"answer": "391"}')
        ('answer', '', '391')
        >>> parse_tool_call_text("17 * 23 = 381")[0]
        'invalid'
    """
    obj = _first_json_object(text or "")
    if obj is None:
        return "invalid", "", "the reply contains no JSON object"
    if not isinstance(obj, dict):
        return "invalid", "", "the JSON is not an object"
    if "answer" in obj and not ({"tool", "name"} & set(obj)):
        return "answer", "", str(obj["answer"])
    name = obj.get("tool", obj.get("name"))
    if not isinstance(name, str) or not name:
        return "invalid", "", "the JSON has no 'tool' name and no 'answer'"
    args = obj.get("arguments", obj.get("args", {}))
    if isinstance(args, str):
        return "tool", name, args
    return "tool", name, json.dumps(args, ensure_ascii=False)


class PromptedDecider(Decider):
    """Unconstrained: describe the JSON format in the prompt, parse whatever comes back.

    Args:
        max_tokens: completion limit for one reply.
        prose_is_answer: treat a reply with no JSON as the final answer (lenient, and
            what many agent frameworks do); with ``False`` such a reply is ``invalid``.
    """

    name = "prompted"

    def __init__(self, max_tokens: int = 96, *, prose_is_answer: bool = True) -> None:
        self.max_tokens = self.max_tokens_per_decision = max_tokens
        self.prose_is_answer = prose_is_answer

    @staticmethod
    def instruction(tools: Sequence[Tool], require_tool: bool) -> str:
        lines = ["Tools you can call:"] + [f"- {t.signature_line()}" for t in tools]
        lines.append('To call a tool, reply with JSON only: {"tool": "<tool name>", "arguments": {...}}')
        if not require_tool:
            lines.append('When the tool results answer the question, reply with JSON only: {"answer": "<answer>"}')
        return "\n".join(lines)

    def decide(self, llm: ChatModel, messages: list[Message], tools: Sequence[Tool], *, tracer: Any = None,
               require_tool: bool = False) -> Decision:
        msgs = with_note(messages, self.instruction(tools, require_tool))
        r = _chat(tracer, llm, msgs, "agent.decide", max_tokens=self.max_tokens)
        kind, name, payload = parse_tool_call_text(r.text)
        if kind == "tool":
            return Decision("tool", calls=[ToolCall(_new_id(), name, payload)], text=r.text, responses=[r])
        if kind == "answer" and not require_tool:
            return Decision("answer", text=payload, responses=[r])
        if kind == "invalid" and self.prose_is_answer and not require_tool and r.text.strip():
            return Decision("answer", text=r.text.strip(), responses=[r])
        why = payload if kind == "invalid" else "a tool call was required, the reply was an answer"
        return Decision("invalid", text=r.text, error=why, responses=[r])

    def final_answer(self, llm: ChatModel, messages: list[Message], *, tracer: Any = None) -> Decision:
        return _answer(llm, messages, tracer, self.max_tokens)


# --------------------------------------------------------------------------- constrained


def grammar_parameters(schema: dict[str, Any], *, max_string: int = 200) -> dict[str, Any]:
    """Tighten a parameters schema for grammar decoding, where the grammar cannot enforce bounds.

    llama.cpp's schema-to-grammar ignores ``minimum``/``maximum``, so a bounded integer
    with at most 20 values becomes an ``enum``; string lengths are capped at
    ``max_string`` so a small model cannot ramble on (every extra token costs time), and
    the decider can size ``max_tokens`` so the JSON always closes.

    Example:
        >>> grammar_parameters({"properties": {"k": {"type": "integer", "minimum": 1, "maximum": 3}}})
        {'properties': {'k': {'enum': [1, 2, 3]}}}
    """
    def walk(node: Any) -> Any:
        if isinstance(node, dict):
            node = {k: walk(v) for k, v in node.items()}
            if node.get("type") == "integer" and "minimum" in node and "maximum" in node:
                lo, hi = int(node["minimum"]), int(node["maximum"])
                if 0 <= hi - lo < 20:
                    extra = {k: v for k, v in node.items()
                             if k not in ("type", "minimum", "maximum", "default", "exclusiveMinimum",
                                          "exclusiveMaximum")}
                    return {**extra, "enum": list(range(lo, hi + 1))}
            if node.get("type") == "string" and "enum" not in node and "pattern" not in node:
                node["maxLength"] = min(int(node.get("maxLength", max_string)), max_string)
            return node
        if isinstance(node, list):
            return [walk(v) for v in node]
        return node

    return walk(schema)


def max_json_tokens(schema: dict[str, Any]) -> int:
    """An upper bound on the tokens of any JSON the grammar of ``schema`` allows (one token per
    string character at worst, a few per key, number and bracket).

    Example:
        >>> max_json_tokens({"properties": {"q": {"type": "string", "maxLength": 40}}})
        52
    """
    total = 6
    for name, prop in (schema.get("properties") or {}).items():
        total += len(name) // 2 + 6
        if prop.get("type") == "string" and "pattern" in prop:
            total += 200  # a pattern bounds the length, but not by maxLength: leave room
        elif prop.get("type") == "string" and "maxLength" in prop:
            total += int(prop["maxLength"])
        elif "enum" in prop:
            total += max(len(str(v)) for v in prop["enum"]) + 2
        else:
            total += 24
    return total


class ConstrainedDecider(Decider):
    """Two-stage grammar-constrained decisions: choose (tool or answer), then fill the arguments.

    Args:
        choice_max_tokens: limit for stage 1 (the choice JSON is short).
        args_max_tokens: minimum limit for stage 2; raised to :func:`max_json_tokens` of the
            tool's schema so that the longest output the grammar allows still closes.
        answer_max_tokens: limit for the final answer.
        max_string: cap on the length of string arguments while decoding (stricter than
            the tool's own schema, never looser).
    """

    name = "constrained"

    def __init__(self, choice_max_tokens: int = 24, args_max_tokens: int = 32, answer_max_tokens: int = 64, *,
                 max_string: int = 80) -> None:
        self.choice_max_tokens = choice_max_tokens
        self.args_max_tokens = args_max_tokens
        self.answer_max_tokens = answer_max_tokens
        self.max_string = max_string
        self.max_tokens_per_decision = choice_max_tokens + max(args_max_tokens, answer_max_tokens, max_string)

    @staticmethod
    def choice_schema(options: Sequence[str]) -> dict[str, Any]:
        return {"type": "object", "properties": {"next": {"type": "string", "enum": list(options)}},
                "required": ["next"], "additionalProperties": False}

    def choose(self, llm: ChatModel, messages: list[Message], tools: Sequence[Tool], *, tracer: Any = None,
               require_tool: bool = False) -> tuple[str | None, ChatResponse | None, str]:
        """Stage 1: ``(option, response, error)``; skipped (no call) when only one option exists."""
        options = [t.name for t in tools] + ([] if require_tool else [FINAL_ANSWER])
        if len(options) == 1:
            return options[0], None, ""
        lines = ["Choose the next step for the user's question. Options:"]
        lines += [f"- {t.name}: {t.description}" for t in tools]
        if not require_tool:
            lines.append(f"- {FINAL_ANSWER}: the tool results already answer the question")
        msgs = with_note(messages, "\n".join(lines))
        fmt = {"type": "json_schema", "json_schema": {"name": "next_step", "schema": self.choice_schema(options)}}
        r = _chat(tracer, llm, msgs, "agent.choose", max_tokens=self.choice_max_tokens, response_format=fmt)
        try:
            choice = json.loads(r.text)["next"]
        except (json.JSONDecodeError, KeyError, TypeError):
            return None, r, f"the choice is not valid JSON: {r.text[:80]!r}"
        if choice not in options:
            return None, r, f"{choice!r} is not one of the options"
        return choice, r, ""

    def arguments(self, llm: ChatModel, messages: list[Message], tool: Tool, *, tracer: Any = None) -> tuple[
            ToolCall | None, ChatResponse, str]:
        """Stage 2: the chosen tool's arguments, decoded under its schema's grammar."""
        docs = "; ".join(f"{k}: {v}" for k, v in tool.arg_docs.items() if k not in tool.hidden)
        note = f"Call the tool {tool.name} ({tool.description}) with the right arguments to answer the user."
        msgs = with_note(messages, note + (f" Arguments: {docs}" if docs else ""))
        schema = tool.openai_schema()
        params = grammar_parameters(schema["function"]["parameters"], max_string=self.max_string)
        schema["function"]["parameters"] = params
        # Enough tokens for the longest output the grammar allows, so the JSON always closes.
        max_tokens = max(self.args_max_tokens, max_json_tokens(params))
        r = _chat(tracer, llm, msgs, "agent.arguments", max_tokens=max_tokens, tools=[schema],
                  tool_choice={"type": "function", "function": {"name": tool.name}})
        if r.tool_calls:
            call = r.tool_calls[0]
            return ToolCall(call.id or _new_id(), call.name or tool.name, call.arguments), r, ""
        obj = _first_json_object(r.text)
        if isinstance(obj, dict):
            return ToolCall(_new_id(), tool.name, json.dumps(obj)), r, ""
        return None, r, f"no arguments could be read from {r.text[:80]!r}"

    def decide(self, llm: ChatModel, messages: list[Message], tools: Sequence[Tool], *, tracer: Any = None,
               require_tool: bool = False) -> Decision:
        if not tools:
            return self.final_answer(llm, messages, tracer=tracer)
        choice, r1, error = self.choose(llm, messages, tools, tracer=tracer, require_tool=require_tool)
        responses = [r1] if r1 is not None else []
        if choice is None:
            return Decision("invalid", text=r1.text if r1 else "", error=error, responses=responses)
        if choice == FINAL_ANSWER:
            d = self.final_answer(llm, messages, tracer=tracer)
            d.responses = responses + d.responses
            return d
        tool = next(t for t in tools if t.name == choice)
        call, r2, error = self.arguments(llm, messages, tool, tracer=tracer)
        responses.append(r2)
        if call is None:
            return Decision("invalid", text=r2.text, error=error, responses=responses)
        return Decision("tool", calls=[call], responses=responses)

    def final_answer(self, llm: ChatModel, messages: list[Message], *, tracer: Any = None) -> Decision:
        return _answer(llm, messages, tracer, self.answer_max_tokens)


# --------------------------------------------------------------------------- native


class NativeDecider(Decider):
    """The provider's own tool calling: ``tools=[...]`` with ``tool_choice="auto"`` (or ``"required"``)."""

    name = "native"

    def __init__(self, max_tokens: int = 256) -> None:
        self.max_tokens = self.max_tokens_per_decision = max_tokens

    def decide(self, llm: ChatModel, messages: list[Message], tools: Sequence[Tool], *, tracer: Any = None,
               require_tool: bool = False) -> Decision:
        if not tools:
            return self.final_answer(llm, messages, tracer=tracer)
        r = _chat(tracer, llm, messages, "agent.decide", max_tokens=self.max_tokens,
                  tools=[t.openai_schema() for t in tools], tool_choice="required" if require_tool else "auto")
        if r.tool_calls:
            calls = [ToolCall(c.id or _new_id(), c.name, c.arguments) for c in r.tool_calls]
            return Decision("tool", calls=calls, text=r.text, responses=[r])
        if require_tool:
            return Decision("invalid", text=r.text, error="a tool call was required, the reply was text",
                            responses=[r])
        return Decision("answer", text=r.text.strip(), responses=[r])

    def final_answer(self, llm: ChatModel, messages: list[Message], *, tracer: Any = None) -> Decision:
        return _answer(llm, messages, tracer, min(self.max_tokens, 128))


def default_decider(llm: ChatModel) -> Decider:
    """Constrained two-stage decoding where the model supports it, native tool calls for
    remote providers, and prompted JSON otherwise (fakes and plain text models).

    Example:
        >>> from reference.llm import FakeChatModel
        >>> default_decider(FakeChatModel()).name
        'prompted'
    """
    if getattr(llm, "supports_constrained_output", False):
        return ConstrainedDecider()
    if getattr(llm, "provider", "") in ("openai", "compatible"):
        return NativeDecider()
    return PromptedDecider()
