"""A scripted chat model that emits tool calls, for tests and failure demonstrations.

:class:`reference.llm.FakeChatModel` returns text only. :class:`ScriptedToolModel`
plays a script in which each step is either text, a tool call
(``{"tool": name, "arguments": {...}}``), several tool calls (a list of those), or an
exception instance to raise. It reports ``supports_constrained_output = False``, so
:func:`~reference.agents.deciders.default_decider` would pick prompted JSON; pass a
:class:`~reference.agents.deciders.NativeDecider` to use its tool calls.

Example:
    >>> m = ScriptedToolModel([{"tool": "calculate", "arguments": {"expression": "1+1"}}, "2"])
    >>> m.chat([{"role": "user", "content": "1+1?"}]).tool_calls[0].name
    'calculate'
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from typing import Any

from reference.errors import ConfigurationError
from reference.llm import ChatModel, Message, ToolCall, Usage, _content_text, _Result

__all__ = ["ScriptedToolModel"]

ScriptItem = Any  # str | dict | list[dict] | BaseException


class ScriptedToolModel(ChatModel):
    """Plays ``script`` one item per call; the last item repeats when the script runs out.

    Args:
        script: the steps (text, tool-call dicts, lists of them, or exceptions).
        fn: alternatively, ``fn(messages) -> item`` decides each step.
        model: the model name reported in responses (used for pricing).
        follow_conversation: pick the step by the number of assistant messages already in
            the conversation instead of by call count, so a model object created after a
            restart carries on where the conversation stands.
    """

    provider = "fake"

    def __init__(self, script: Sequence[ScriptItem] | None = None, *,
                 fn: Callable[[list[Message]], ScriptItem] | None = None, model: str = "scripted-model",
                 follow_conversation: bool = False) -> None:
        super().__init__(model)
        if not script and fn is None:
            raise ConfigurationError("ScriptedToolModel needs a script or a fn")
        self.script = list(script or [])
        self.fn = fn
        self.follow_conversation = follow_conversation
        self.calls: list[list[Message]] = []
        self.kwargs: list[dict[str, Any]] = []

    def _next(self, messages: list[Message]) -> ScriptItem:
        if self.fn is not None:
            return self.fn(messages)
        position = (sum(m.get("role") == "assistant" for m in messages) if self.follow_conversation
                    else len(self.calls) - 1)
        index = min(position, len(self.script) - 1)
        return self.script[index]

    def _generate(self, messages: list[Message], **kwargs: Any) -> _Result:
        self.calls.append(messages)
        self.kwargs.append(kwargs)
        item = self._next(messages)
        if isinstance(item, BaseException):
            raise item
        prompt = sum(len(_content_text(m).split()) for m in messages)
        items = item if isinstance(item, list) else [item]
        if all(isinstance(i, dict) for i in items) and items:
            calls = tuple(
                ToolCall(f"call_{len(self.calls)}_{n}", i["tool"],
                         i["arguments"] if isinstance(i.get("arguments"), str)
                         else json.dumps(i.get("arguments", {})))
                for n, i in enumerate(items))
            size = sum(len(c.arguments.split()) + 1 for c in calls)
            return _Result(text="", usage=Usage(prompt, size), finish_reason="tool_calls", tool_calls=calls)
        text = str(item)
        return _Result(text=text, usage=Usage(prompt, len(text.split())))
