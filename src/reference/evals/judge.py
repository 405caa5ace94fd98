"""LLM-as-judge: a prompt, a JSON-schema verdict, a parser with retries, and calibration.

A judge model reads (question, context, answer, reference) and returns a verdict
``{"faithful": bool, "correct": bool}``. The reply is requested through
``response_format`` with a JSON schema, which the local model enforces with a grammar
(so it always parses) and a real provider honours as structured output. Models that
ignore the schema are handled by :func:`parse_verdict` plus retries: the judge re-asks
with the parse error appended, and raises :class:`reference.errors.OutputParseError`
(keeping the raw text) when retries run out.

A judge is a measuring instrument, so it is calibrated before it is trusted:

* :func:`calibrate` - agreement with human labels, Cohen's kappa (agreement corrected for
  chance: a judge that says "yes" to everything can agree 57% of the time and still have
  kappa 0), and the confusion matrix.
* :func:`position_bias` - ask for the better of two answers in both orders; a judge
  without position bias picks the same answer both times.
* :func:`verbosity_bias` - compare how often the judge accepts long versus short answers
  that humans rejected.

Example:
    >>> from reference.llm import FakeChatModel
    >>> judge = LLMJudge(FakeChatModel(responses=['{"faithful": true, "correct": false}']))
    >>> judge.judge("Q?", "ctx", "answer", "reference").correct
    False
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from reference.errors import InputError, OutputParseError
from reference.llm import ChatModel, Usage

__all__ = [
    "Verdict", "PairVerdict", "LLMJudge", "JUDGE_SYSTEM", "PAIR_SYSTEM", "verdict_schema", "pair_schema",
    "parse_verdict", "parse_pair", "cohen_kappa", "confusion_matrix", "Calibration", "calibrate",
    "PositionBias", "position_bias", "verbosity_bias",
]

JUDGE_SYSTEM = (
    "You are a strict grader. Compare the ANSWER with the CONTEXT and the REFERENCE.\n"
    "faithful: true only if every fact in the ANSWER is stated in the CONTEXT (a refusal is faithful).\n"
    "correct: true only if the ANSWER gives the same key facts as the REFERENCE.\n"
    'Reply with JSON only: {"faithful": true|false, "correct": true|false}'
)

PAIR_SYSTEM = (
    "You compare two answers to the same question, using the CONTEXT. Pick the answer that is "
    "more correct and better supported by the CONTEXT; length is not a quality. "
    'Reply with JSON only: {"better": "A"} or {"better": "B"}'
)


def verdict_schema() -> dict[str, Any]:
    """JSON schema of a verdict (booleans, both required).

    Example:
        >>> verdict_schema()["required"]
        ['faithful', 'correct']
    """
    return {"type": "object", "properties": {"faithful": {"type": "boolean"}, "correct": {"type": "boolean"}},
            "required": ["faithful", "correct"]}


def pair_schema() -> dict[str, Any]:
    """JSON schema of a pairwise verdict: ``{"better": "A" | "B"}``."""
    return {"type": "object", "properties": {"better": {"type": "string", "enum": ["A", "B"]}},
            "required": ["better"]}


@dataclass(frozen=True)
class Verdict:
    """One judgement, with what it cost and how many attempts it took."""

    faithful: bool
    correct: bool
    attempts: int = 1
    raw: str = ""
    usage: Usage = field(default_factory=Usage)
    latency_s: float = 0.0


@dataclass(frozen=True)
class PairVerdict:
    """Which of two answers the judge preferred (``"A"`` = the one shown first)."""

    better: str
    attempts: int = 1
    raw: str = ""


def _json_object(text: str) -> dict[str, Any]:
    if not isinstance(text, str) or not text.strip():
        raise OutputParseError("the judge returned an empty reply", raw=str(text))
    match = re.search(r"\{.*\}", text, re.S)
    if match is None:
        raise OutputParseError("no JSON object in the judge's reply", raw=text)
    try:
        data = json.loads(match.group(0))
    except json.JSONDecodeError as exc:
        raise OutputParseError(f"malformed JSON from the judge ({exc.msg} at char {exc.pos})", raw=text) from None
    if not isinstance(data, dict):
        raise OutputParseError("the judge's JSON is not an object", raw=text)
    return data


def _as_bool(value: Any, name: str, raw: str) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, (int, float)) and value in (0, 1):
        return bool(value)
    if isinstance(value, str) and value.strip().lower() in {"true", "yes", "1", "false", "no", "0"}:
        return value.strip().lower() in {"true", "yes", "1"}
    raise OutputParseError(f"field {name!r} must be true or false, got {value!r}", raw=raw)


def parse_verdict(text: str) -> tuple[bool, bool]:
    """``(faithful, correct)`` from the judge's reply; tolerant of prose around the JSON.

    Raises:
        OutputParseError: no JSON object, malformed JSON, or a missing/invalid field.

    Example:
        >>> parse_verdict('Sure! {"faithful": true, "correct": "no"}')
        (True, False)
    """
    data = _json_object(text)
    missing = [k for k in ("faithful", "correct") if k not in data]
    if missing:
        raise OutputParseError(f"the judge's JSON lacks {missing}", raw=text)
    return _as_bool(data["faithful"], "faithful", text), _as_bool(data["correct"], "correct", text)


def parse_pair(text: str) -> str:
    """``"A"`` or ``"B"`` from a pairwise reply.

    Example:
        >>> parse_pair('{"better": "b"}')
        'B'
    """
    data = _json_object(text)
    better = str(data.get("better", "")).strip().upper()
    if better not in {"A", "B"}:
        raise OutputParseError(f"'better' must be 'A' or 'B', got {data.get('better')!r}", raw=text)
    return better


class LLMJudge:
    """Grade answers with a chat model, asking for a JSON-schema verdict.

    Args:
        llm: any :class:`reference.llm.ChatModel`.
        max_retries: extra attempts after an unparseable reply (each sees the error).
        max_tokens: generation budget per attempt (a verdict needs about 15 tokens).
        use_schema: send ``response_format`` (turn off for providers that reject it).
    """

    def __init__(self, llm: ChatModel, *, max_retries: int = 2, max_tokens: int = 24, use_schema: bool = True,
                 system_prompt: str = JUDGE_SYSTEM) -> None:
        if max_retries < 0:
            raise InputError(f"max_retries must be >= 0, got {max_retries}")
        self.llm, self.max_retries, self.max_tokens = llm, max_retries, max_tokens
        self.use_schema, self.system_prompt = use_schema, system_prompt

    def messages(self, question: str, context: str, answer: str, reference: str) -> list[dict[str, str]]:
        """The chat messages for one verdict (fields as labelled blocks)."""
        for name, value in (("question", question), ("answer", answer)):
            if not isinstance(value, str) or not value.strip():
                raise InputError(f"{name} is empty: nothing to judge")
        user = (f"QUESTION: {question}\nCONTEXT: {context}\nREFERENCE: {reference}\nANSWER: {answer}\n"
                "Reply with the JSON verdict.")
        return [{"role": "system", "content": self.system_prompt}, {"role": "user", "content": user}]

    def _ask(self, messages: list[dict[str, str]], schema: dict[str, Any], parse: Callable[[str], Any]) -> tuple[Any, int, str, Usage, float]:
        fmt = {"type": "json_schema", "json_schema": {"name": "verdict", "schema": schema}} if self.use_schema else None
        history = list(messages)
        prompt_tokens = completion_tokens = 0
        latency = 0.0
        last: OutputParseError | None = None
        for attempt in range(1, self.max_retries + 2):
            resp = self.llm.chat(history, max_tokens=self.max_tokens, response_format=fmt)
            prompt_tokens += resp.usage.prompt_tokens
            completion_tokens += resp.usage.completion_tokens
            latency += resp.latency_s
            try:
                return parse(resp.text), attempt, resp.text, Usage(prompt_tokens, completion_tokens), latency
            except OutputParseError as exc:
                last = exc
                history = [*messages, {"role": "assistant", "content": resp.text},
                           {"role": "user", "content": f"That was not valid: {exc}. Reply with the JSON object only."}]
        assert last is not None
        raise OutputParseError(f"judge output unparseable after {self.max_retries + 1} attempts: {last}", raw=last.raw)

    def judge(self, question: str, context: str, answer: str, reference: str = "") -> Verdict:
        """Grade one answer.

        Raises:
            OutputParseError: every attempt returned something unparseable.
        """
        (faithful, correct), attempts, raw, usage, latency = self._ask(
            self.messages(question, context, answer, reference), verdict_schema(), parse_verdict)
        return Verdict(faithful, correct, attempts, raw, usage, latency)

    def compare(self, question: str, context: str, answer_a: str, answer_b: str) -> PairVerdict:
        """Which of two answers is better, as shown: ``"A"`` (first) or ``"B"`` (second)."""
        user = f"QUESTION: {question}\nCONTEXT: {context}\nANSWER A: {answer_a}\nANSWER B: {answer_b}\nWhich is better?"
        msgs = [{"role": "system", "content": PAIR_SYSTEM}, {"role": "user", "content": user}]
        better, attempts, raw, _, _ = self._ask(msgs, pair_schema(), parse_pair)
        return PairVerdict(better, attempts, raw)


# --------------------------------------------------------------------------- calibration


def _labels(values: Sequence[Any], name: str) -> np.ndarray:
    if isinstance(values, str):
        raise InputError(f"{name} must be a sequence of 0/1 labels, not a string")
    arr = np.asarray([int(bool(v)) if isinstance(v, (bool, np.bool_)) else v for v in values])
    if arr.size and not np.isin(arr, [0, 1]).all():
        raise InputError(f"{name} must hold only 0/1 (or booleans)")
    return arr.astype(int)


def confusion_matrix(human: Sequence[Any], judge: Sequence[Any]) -> np.ndarray:
    """2x2 counts: rows = human label (0, 1), columns = judge label (0, 1).

    Example:
        >>> confusion_matrix([1, 1, 0, 0], [1, 0, 0, 1]).tolist()
        [[1, 1], [1, 1]]
    """
    h, j = _labels(human, "human"), _labels(judge, "judge")
    if h.size != j.size:
        raise InputError(f"human has {h.size} labels but judge has {j.size}")
    out = np.zeros((2, 2), dtype=int)
    for a, b in zip(h, j, strict=True):
        out[a, b] += 1
    return out


def cohen_kappa(human: Sequence[Any], judge: Sequence[Any]) -> float:
    """Cohen's kappa: ``(p_o - p_e) / (1 - p_e)``; 1 = perfect, 0 = chance level.

    Returns 1.0 when both raters use one and the same label throughout (no disagreement
    possible), and 0.0 when chance agreement is 1 but they disagree.

    Example:
        >>> round(cohen_kappa([1, 1, 0, 0], [1, 1, 0, 1]), 3)
        0.5
    """
    cm = confusion_matrix(human, judge)
    n = cm.sum()
    if n == 0:
        raise InputError("no labels to compare")
    p_o = np.trace(cm) / n
    p_e = float((cm.sum(axis=1) / n) @ (cm.sum(axis=0) / n))
    if p_e == 1.0:
        return 1.0 if p_o == 1.0 else 0.0
    return float((p_o - p_e) / (1 - p_e))


@dataclass(frozen=True)
class Calibration:
    """Judge-versus-human agreement on one label."""

    label: str
    n: int
    agreement: float
    kappa: float
    matrix: np.ndarray
    judge_positive_rate: float
    human_positive_rate: float

    def __str__(self) -> str:
        return (f"{self.label}: agreement {self.agreement:.1%}, kappa {self.kappa:+.2f}, n={self.n} "
                f"(judge says yes {self.judge_positive_rate:.0%}, humans {self.human_positive_rate:.0%})")


def calibrate(human: Sequence[Any], judge: Sequence[Any], label: str = "label") -> Calibration:
    """Agreement, kappa and confusion matrix of a judge against human labels.

    Example:
        >>> c = calibrate([1, 0, 1, 0], [1, 1, 1, 1], "faithfulness")
        >>> (c.agreement, c.kappa)
        (0.5, 0.0)
    """
    cm = confusion_matrix(human, judge)
    n = int(cm.sum())
    if n == 0:
        raise InputError("no labels to compare")
    return Calibration(label, n, float(np.trace(cm) / n), cohen_kappa(human, judge), cm,
                       float(cm[:, 1].sum() / n), float(cm[1, :].sum() / n))


@dataclass(frozen=True)
class PositionBias:
    """Pairwise judging in both orders.

    Attributes:
        n: pairs judged.
        consistent: share of pairs where the judge picked the same answer in both orders.
        first_preferred: share of all verdicts that chose whichever answer was shown first.
        accuracy: share of verdicts (both orders) that chose the human-preferred answer.
        flips: ids of the pairs whose preference flipped with the order.
    """

    n: int
    consistent: float
    first_preferred: float
    accuracy: float
    flips: list[str]


def position_bias(pairs: Sequence[tuple[str, str, str, str, str, int]],
                  compare: Callable[[str, str, str, str], str]) -> PositionBias:
    """Ask ``compare(question, context, first, second) -> "A"|"B"`` in both orders for each pair.

    ``pairs`` holds ``(pair_id, question, context, answer_x, answer_y, better)`` with
    ``better`` 0 when ``answer_x`` is the human-preferred answer, 1 when ``answer_y`` is.

    Example:
        >>> always_first = lambda q, c, a, b: "A"
        >>> position_bias([("p1", "q", "c", "good", "bad", 0)], always_first).consistent
        0.0
    """
    if not pairs:
        raise InputError("no pairs to judge")
    consistent = first = right = 0
    flips: list[str] = []
    for pid, q, ctx, x, y, better in pairs:
        ab = compare(q, ctx, x, y)  # x shown first
        ba = compare(q, ctx, y, x)  # y shown first
        pick_ab = 0 if ab == "A" else 1
        pick_ba = 1 if ba == "A" else 0
        consistent += pick_ab == pick_ba
        if pick_ab != pick_ba:
            flips.append(pid)
        first += (ab == "A") + (ba == "A")
        right += (pick_ab == better) + (pick_ba == better)
    n = len(pairs)
    return PositionBias(n, consistent / n, first / (2 * n), right / (2 * n), flips)


def verbosity_bias(lengths: Sequence[int], human: Sequence[Any], judge: Sequence[Any],
                   threshold: int | None = None) -> dict[str, Any]:
    """How often the judge accepts answers that humans rejected, for long versus short answers.

    Answers longer than ``threshold`` characters (default: the median length) are "long".
    A judge with a length bias accepts more of the long wrong answers than of the short ones.

    Example:
        >>> verbosity_bias([10, 300], [0, 0], [0, 1], threshold=100)["false_accept_long"]
        1.0
    """
    h, j = _labels(human, "human"), _labels(judge, "judge")
    lens = np.asarray(list(lengths))
    if not (lens.size == h.size == j.size):
        raise InputError("lengths, human and judge must have the same length")
    cut = float(np.median(lens)) if threshold is None else float(threshold)
    long_ = lens > cut
    out: dict[str, Any] = {"threshold": cut}
    for name, mask in (("long", long_), ("short", ~long_)):
        neg = mask & (h == 0)
        pos = mask & (h == 1)
        out[f"n_{name}"] = int(mask.sum())
        out[f"false_accept_{name}"] = float(j[neg].mean()) if neg.any() else float("nan")
        out[f"accept_{name}"] = float(j[mask].mean()) if mask.any() else float("nan")
        out[f"true_accept_{name}"] = float(j[pos].mean()) if pos.any() else float("nan")
    return out
