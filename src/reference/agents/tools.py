"""Tools as typed Python functions: JSON schemas from signatures, validation before running.

A tool is an ordinary function with type hints and a Google-style docstring. The
:func:`tool` decorator turns it into a :class:`Tool`: the signature becomes a pydantic
model (``create_model``), the model's JSON schema becomes the OpenAI ``parameters``
object, and the docstring's first paragraph and ``Args:`` lines become the
descriptions. Arguments a model proposes are validated against that pydantic model
*before* the function runs; a bad call becomes a :class:`ToolArgumentError` whose
message is written for the model to read and fix, never a crash.

Each tool says whether it is read-only or **side-effecting** (it changes the world:
files a ticket, sends an e-mail). Side-effecting tools carry the ``intent`` patterns a
user's own request must match before they may run (see :mod:`reference.agents.safety`)
and can receive a hidden ``idempotency_key`` that the model never sees.

Example:
    >>> @tool
    ... def add(a: int, b: int = 1) -> int:
    ...     '''Add two integers.
    ...
    ...     Args:
    ...         a: the first number.
    ...         b: the second number.
    ...     '''
    ...     return a + b
    >>> add.openai_schema()["function"]["parameters"]["required"]
    ['a']
    >>> add.invoke('{"a": 2}')
    3
"""

from __future__ import annotations

import copy
import inspect
import json
import re
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, get_type_hints

from pydantic import BaseModel, ConfigDict, ValidationError, create_model

from reference.errors import InputError, LabError

__all__ = [
    "Tool", "Toolbox", "tool", "ToolError", "TransientToolError", "ToolArgumentError", "UnknownToolError",
    "ToolNotAllowedError", "parse_docstring", "inline_refs",
]

_NAME_RE = re.compile(r"^[a-zA-Z_][a-zA-Z0-9_-]{0,63}$")


class ToolError(LabError):
    """A tool ran and failed; the message is safe to show to the model."""


class TransientToolError(ToolError):
    """A tool failed in a way that another try may fix (a timeout, a busy backend)."""


class ToolArgumentError(InputError):
    """The arguments a model proposed do not match the tool's schema.

    Attributes:
        tool: the tool's name.
        problems: one line per problem, e.g. ``"expression: Field required"``.
    """

    def __init__(self, tool: str, problems: Sequence[str]) -> None:
        self.tool = tool
        self.problems = list(problems)
        super().__init__(f"invalid arguments for {tool}: " + "; ".join(self.problems))


class UnknownToolError(InputError):
    """A model (or a task) named a tool that does not exist."""


class ToolNotAllowedError(LabError):
    """The tool exists but this task, or the safety policy, does not allow the call."""


# --------------------------------------------------------------------------- docstrings


def parse_docstring(doc: str | None) -> tuple[str, dict[str, str]]:
    """Split a Google-style docstring into its summary and per-argument descriptions.

    Example:
        >>> parse_docstring("Find things.\\n\\nArgs:\\n    query: what to look for.")
        ('Find things.', {'query': 'what to look for.'})
    """
    if not doc:
        return "", {}
    text = inspect.cleandoc(doc)
    paragraphs = text.split("\n\n")
    summary = " ".join(paragraphs[0].split())
    args: dict[str, str] = {}
    lines = text.splitlines()
    inside = False
    current: str | None = None
    base_indent: int | None = None
    for line in lines:
        stripped = line.strip()
        if stripped in ("Args:", "Arguments:", "Parameters:"):
            inside, current, base_indent = True, None, None
            continue
        if not inside:
            continue
        if stripped and not line.startswith(" ") and stripped.endswith(":"):
            break  # the next section (Returns:, Raises:, ...)
        if not stripped:
            continue
        indent = len(line) - len(line.lstrip())
        if base_indent is None:
            base_indent = indent
        m = re.match(r"^(\w+)\s*(?:\([^)]*\))?\s*:\s*(.*)$", stripped)
        if indent == base_indent and m:
            current = m.group(1)
            args[current] = m.group(2).strip()
        elif current is not None:
            args[current] = (args[current] + " " + stripped).strip()
    return summary, args


# --------------------------------------------------------------------------- schemas


def inline_refs(schema: dict[str, Any]) -> dict[str, Any]:
    """Inline ``$ref``/``$defs`` and drop ``title`` keys: the flat schema models read best.

    Example:
        >>> inline_refs({"$defs": {"P": {"enum": ["a"], "title": "P"}},
        ...              "properties": {"p": {"$ref": "#/$defs/P"}}, "title": "X"})
        {'properties': {'p': {'enum': ['a']}}}
    """
    defs = schema.get("$defs", {})

    def walk(node: Any, seen: tuple[str, ...]) -> Any:
        if isinstance(node, dict):
            if "$ref" in node:
                name = node["$ref"].split("/")[-1]
                if name in seen:
                    raise InputError(f"recursive type {name!r} cannot be a tool argument")
                merged = {**defs.get(name, {}), **{k: v for k, v in node.items() if k != "$ref"}}
                return walk(merged, (*seen, name))
            return {k: walk(v, seen) for k, v in node.items() if k not in ("title", "$defs")}
        if isinstance(node, list):
            return [walk(v, seen) for v in node]
        return node

    return walk(copy.deepcopy(schema), ())


# --------------------------------------------------------------------------- tools


@dataclass(frozen=True)
class Tool:
    """A function the model may call, with its schema, validation and safety metadata.

    Attributes:
        name: what the model calls it (letters, digits, ``_`` and ``-``).
        description: one paragraph the model reads to decide when to use it.
        fn: the Python function.
        args_model: pydantic model of the visible arguments (extra keys are refused).
        side_effect: ``True`` when a call changes something outside the agent.
        intent: regular expressions; a side-effecting tool may run only when the user's
            own request matches one of them (checked by :class:`~reference.agents.safety.SideEffectPolicy`).
        user_supplied: argument names whose values must appear in the user's request
            (e.g. an e-mail recipient), so a document cannot choose them.
        hidden: parameters the executor fills in and the model never sees
            (``idempotency_key``).
        timeout_s: longest a call may take; ``None`` for no limit.
        retries: extra attempts after a :class:`TransientToolError` or a timeout.
    """

    name: str
    description: str
    fn: Callable[..., Any]
    args_model: type[BaseModel]
    side_effect: bool = False
    intent: tuple[str, ...] = ()
    user_supplied: tuple[str, ...] = ()
    hidden: tuple[str, ...] = ()
    timeout_s: float | None = 10.0
    retries: int = 1
    arg_docs: dict[str, str] = field(default_factory=dict, hash=False, compare=False)

    def parameters_schema(self) -> dict[str, Any]:
        """The JSON schema of the arguments (flat: no ``$ref``, no titles, no extra keys)."""
        schema = inline_refs(self.args_model.model_json_schema())
        schema["type"] = "object"
        schema.setdefault("properties", {})
        schema["additionalProperties"] = False
        for name, prop in schema["properties"].items():
            if name in self.arg_docs and "description" not in prop:
                prop["description"] = self.arg_docs[name]
        return schema

    def openai_schema(self) -> dict[str, Any]:
        """The tool in the OpenAI ``tools=[...]`` format."""
        return {"type": "function",
                "function": {"name": self.name, "description": self.description,
                             "parameters": self.parameters_schema()}}

    def signature_line(self) -> str:
        """A compact one-line description for prompts: ``name(arg: type, ...) - description``."""
        props = self.parameters_schema()["properties"]
        required = set(self.parameters_schema().get("required", []))
        parts = []
        for name, prop in props.items():
            kind = prop.get("type") or ("one of " + "/".join(map(str, prop["enum"])) if "enum" in prop else "value")
            parts.append(f"{name}: {kind}" + ("" if name in required else " (optional)"))
        return f"{self.name}({', '.join(parts)}) - {self.description}"

    def validate(self, arguments: str | dict[str, Any] | None) -> dict[str, Any]:
        """Parse and validate proposed arguments; return them as plain Python values.

        Raises:
            ToolArgumentError: not JSON, not an object, or not matching the schema. The
                message lists every problem so a model can correct its call.
        """
        if arguments is None or arguments == "":
            arguments = {}
        if isinstance(arguments, str):
            try:
                # strict=False accepts raw control characters (a newline) inside strings:
                # grammar-constrained decoders emit them, and rejecting the call for it helps nobody.
                arguments = json.loads(arguments, strict=False)
            except json.JSONDecodeError as exc:
                raise ToolArgumentError(self.name, [f"arguments are not valid JSON ({exc.msg})"]) from None
        if not isinstance(arguments, dict):
            raise ToolArgumentError(self.name, [f"arguments must be a JSON object, got {type(arguments).__name__}"])
        leaked = sorted(set(arguments) & set(self.hidden))
        if leaked:
            raise ToolArgumentError(self.name, [f"{k}: set by the system, not by the caller" for k in leaked])
        try:
            text = json.dumps(arguments, allow_nan=False)
        except (TypeError, ValueError) as exc:
            raise ToolArgumentError(self.name, [f"arguments are not JSON data ({exc})"]) from None
        try:
            # Strict JSON-mode validation: exactly the types the JSON schema promises. Lax mode
            # would accept "2" or 2.0 for an integer, calls that are not schema-valid and that
            # a provider's strict tool calling rejects; JSON mode still reads dates and the
            # like from their string form.
            parsed = self.args_model.model_validate_json(text, strict=True)
        except ValidationError as exc:
            problems = []
            for err in exc.errors():
                where = ".".join(str(x) for x in err["loc"]) or "<arguments>"
                problems.append(f"{where}: {err['msg']}")
            raise ToolArgumentError(self.name, problems) from None
        return parsed.model_dump()

    def invoke(self, arguments: str | dict[str, Any] | None = None, **hidden: Any) -> Any:
        """Validate ``arguments`` and call the function (hidden values passed through)."""
        args = self.validate(arguments)
        unknown = sorted(set(hidden) - set(self.hidden))
        if unknown:
            raise InputError(f"{self.name} has no hidden parameter(s) {unknown}")
        return self.fn(**args, **hidden)

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        """Call the underlying function directly (no validation): handy in notebooks and tests."""
        return self.fn(*args, **kwargs)


def _build_args_model(fn: Callable[..., Any], name: str, hidden: Sequence[str],
                      arg_docs: dict[str, str]) -> type[BaseModel]:
    sig = inspect.signature(fn)
    try:
        hints = get_type_hints(fn, include_extras=True)
    except Exception as exc:  # noqa: BLE001 - unresolvable forward references
        raise InputError(f"tool {name}: cannot resolve type hints ({exc})") from exc
    fields: dict[str, Any] = {}
    for pname, param in sig.parameters.items():
        if param.kind in (param.VAR_POSITIONAL, param.VAR_KEYWORD):
            raise InputError(f"tool {name}: *args/**kwargs cannot be described to a model; name every argument")
        if pname in hidden:
            continue
        if pname not in hints:
            raise InputError(f"tool {name}: argument {pname!r} needs a type hint (the schema is built from it)")
        default = ... if param.default is inspect.Parameter.empty else param.default
        fields[pname] = (hints[pname], default)
    for h in hidden:
        if h not in sig.parameters:
            raise InputError(f"tool {name}: hidden parameter {h!r} is not in the signature")
    model_name = "".join(part.capitalize() for part in re.split(r"[_-]", name)) + "Args"
    return create_model(model_name, __config__=ConfigDict(extra="forbid"), **fields)


def tool(
    fn: Callable[..., Any] | None = None, *, name: str | None = None, description: str | None = None,
    side_effect: bool = False, intent: Sequence[str] = (), user_supplied: Sequence[str] = (),
    hidden: Sequence[str] = (), timeout_s: float | None = 10.0, retries: int = 1,
) -> Any:
    """Turn a typed function into a :class:`Tool` (usable bare, ``@tool``, or with options).

    Args:
        fn: the function; every visible parameter needs a type hint.
        name: tool name (default: the function's name).
        description: default: the docstring's first paragraph.
        side_effect: the tool changes something (needs ``intent`` patterns to ever run).
        intent: regexes the user's request must match for a side-effecting call.
        user_supplied: arguments whose values must come from the user's request.
        hidden: parameters filled in by the executor (e.g. ``idempotency_key``).
        timeout_s: per-call time limit.
        retries: extra attempts on transient failure.

    Raises:
        InputError: missing type hints, ``*args``, a bad name, or a side-effecting tool
            without intent patterns.

    Example:
        >>> tool(lambda x: x, name="echo", description="Echo x.")
        Traceback (most recent call last):
        ...
        reference.errors.InputError: tool echo: argument 'x' needs a type hint (the schema is built from it)
    """

    def build(f: Callable[..., Any]) -> Tool:
        tool_name = name or f.__name__
        if not _NAME_RE.match(tool_name):
            raise InputError(f"tool name {tool_name!r} must match {_NAME_RE.pattern}")
        summary, arg_docs = parse_docstring(f.__doc__)
        desc = description or summary
        if not desc:
            raise InputError(f"tool {tool_name}: give it a docstring or a description (the model reads it)")
        if side_effect and not intent:
            raise InputError(
                f"tool {tool_name} is side-effecting: give intent patterns the user's request must match")
        for pattern in intent:
            re.compile(pattern)
        if retries < 0:
            raise InputError("retries cannot be negative")
        model = _build_args_model(f, tool_name, tuple(hidden), arg_docs)
        missing = [u for u in user_supplied if u not in model.model_fields]
        if missing:
            raise InputError(f"tool {tool_name}: user_supplied names unknown argument(s) {missing}")
        return Tool(tool_name, desc, f, model, side_effect, tuple(intent), tuple(user_supplied), tuple(hidden),
                    timeout_s, retries, arg_docs)

    if fn is not None:
        return build(fn)
    return build


class Toolbox:
    """A named set of tools; :meth:`restrict` gives a task its allowlist.

    Example:
        >>> @tool
        ... def ping() -> str:
        ...     '''Reply pong.'''
        ...     return "pong"
        >>> box = Toolbox([ping])
        >>> box.names, box.restrict(["ping"]).names
        (['ping'], ['ping'])
    """

    def __init__(self, tools: Iterable[Tool]) -> None:
        self._tools: dict[str, Tool] = {}
        for t in tools:
            if not isinstance(t, Tool):
                raise InputError(
                    f"Toolbox takes Tool objects (decorate the function with @tool), got {type(t).__name__}")
            if t.name in self._tools:
                raise InputError(f"two tools are named {t.name!r}")
            self._tools[t.name] = t

    @property
    def names(self) -> list[str]:
        return list(self._tools)

    def get(self, name: str) -> Tool:
        """The tool called ``name``.

        Raises:
            UnknownToolError: no such tool (the message lists the ones that exist).
        """
        try:
            return self._tools[name]
        except KeyError:
            raise UnknownToolError(f"unknown tool {name!r}; available: {', '.join(self._tools) or 'none'}") from None

    __getitem__ = get

    def __contains__(self, name: object) -> bool:
        return name in self._tools

    def __iter__(self) -> Iterator[Tool]:
        return iter(self._tools.values())

    def __len__(self) -> int:
        return len(self._tools)

    def restrict(self, allowlist: Iterable[str] | None) -> Toolbox:
        """A toolbox with only the allowed tools (``None`` keeps all).

        Raises:
            UnknownToolError: the allowlist names a tool that does not exist (a typo in
                a task definition should fail loudly, not silently drop the tool).
        """
        if allowlist is None:
            return self
        return Toolbox([self.get(n) for n in allowlist])

    def schemas(self) -> list[dict[str, Any]]:
        """All tools in the OpenAI ``tools=[...]`` format."""
        return [t.openai_schema() for t in self]

    @property
    def side_effecting(self) -> list[str]:
        return [t.name for t in self if t.side_effect]

    @property
    def read_only(self) -> list[str]:
        return [t.name for t in self if not t.side_effect]

    def __repr__(self) -> str:
        return f"Toolbox({self.names})"
