"""Typed loaders for the workload, fine-tuning and judge-calibration datasets.

Three sets live under ``datasets/`` (each has a README datasheet and a seeded
``generate.py`` that rebuilds it byte for byte):

* ``workloads/`` - a query stream for semantic caching (``load_queries``) and labelled
  examples for model routing (``load_intents``).
* ``finetune/`` - chat examples teaching a small model to answer with a cited JSON
  object (``load_finetune``, ``finetune_schema``, ``parse_cited_answer``).
* ``judgments/`` - human-labelled RAG answers for calibrating an LLM judge
  (``load_judgments``).

Every record is validated on load, including rules that span fields (a lookalike
cannot point at its own cluster, citations must name documents present in the
context, a refusal cites nothing...). Anything wrong raises
:class:`reference.errors.DataFileError` naming the file and line.

Example:
    >>> from reference.datasets.sets import load_queries, load_finetune
    >>> queries = load_queries()
    >>> queries[0].cluster_id                     # doctest: +SKIP
    'c-password-reset'
    >>> train = load_finetune("train")
    >>> train[0].answer.citations                 # doctest: +SKIP
    ['doc-spec-nb300']
"""

from __future__ import annotations

import json
import re
from collections import Counter, defaultdict
from pathlib import Path
from typing import ClassVar, Literal, overload

from pydantic import BaseModel, ConfigDict, Field, StrictInt, ValidationError, field_validator, model_validator

from reference.datasets._io import DATASETS_DIR, read_jsonl, require_unique
from reference.errors import DataFileError, InputError

__all__ = [
    "REFUSAL",
    "FINETUNE_SPLITS",
    "Tenant",
    "Intent",
    "FailureMode",
    "WorkloadQuery",
    "IntentExample",
    "ChatMessage",
    "CitedAnswer",
    "FinetuneMeta",
    "ChatExample",
    "SanityPrompt",
    "RehearsalPrompt",
    "JudgmentLabels",
    "Judgment",
    "load_queries",
    "load_intents",
    "load_finetune",
    "load_judgments",
    "finetune_schema",
    "parse_cited_answer",
    "context_doc_ids",
]

#: The exact answer the fine-tuned assistant gives when the context lacks the answer.
REFUSAL = "I don't know based on the provided documents."

#: Valid arguments of :func:`load_finetune`.
FINETUNE_SPLITS: tuple[str, ...] = ("train", "validation", "test", "sanity", "rehearsal")

Tenant = Literal["leeds", "rotterdam", "austin", "partner-acme"]
Intent = Literal[
    "policy_lookup",
    "it_troubleshooting",
    "pricing_question",
    "order_status",
    "product_support",
    "smalltalk",
    "complex_analysis",
    "code_help",
]
FailureMode = Literal[
    "unsupported_claim",
    "wrong_number",
    "contradicts_context",
    "incomplete",
    "correct_refusal",
    "wrong_refusal",
    "verbose_but_right",
]

_DOC_ID = r"doc-[a-z0-9]+(?:-[a-z0-9]+)*"
_DOC_TAG = re.compile(r"^\[(" + _DOC_ID + r")\]", re.MULTILINE)
_FROZEN = ConfigDict(extra="forbid", frozen=True)


def context_doc_ids(text: str) -> list[str]:
    """Return the document ids tagged at the start of lines, e.g. ``[doc-travel-2025]``.

    Args:
        text: a user message or any context block.

    Returns:
        The ids in order of appearance (duplicates kept).
    """
    return _DOC_TAG.findall(text)


# --------------------------------------------------------------------------- workloads
class WorkloadQuery(BaseModel):
    """One query of the assistant's arrival stream (``workloads/queries.jsonl``).

    Attributes:
        id: unique id, ``q-00001`` style.
        seq: 1-based arrival position; strictly increasing through the file.
        tenant: the office or partner the user belongs to.
        user: pseudonymous user handle.
        text: the query as typed (typos included).
        intent: what kind of request it is (same labels as the intents set).
        cluster_id: queries wanting the same answer share it; ``s-...`` ids are one-offs.
        lookalike_of: for a near miss (reads like another cluster but needs a different
            answer), the cluster it resembles; otherwise ``None``.
        answer_key: short canonical answer of the cluster. A cache hit serving the answer
            of cluster X to a query of cluster Y is correct iff X == Y.
    """

    model_config = _FROZEN

    id: str = Field(pattern=r"^q-\d{5}$")
    seq: StrictInt = Field(ge=1)
    tenant: Tenant
    user: str = Field(min_length=1)
    text: str = Field(min_length=1)
    intent: Intent
    cluster_id: str = Field(pattern=r"^[cs]-[a-z0-9-]+$")
    lookalike_of: str | None = None
    answer_key: str = Field(min_length=1, max_length=160)

    @model_validator(mode="after")
    def _lookalike_differs(self) -> WorkloadQuery:
        if self.lookalike_of is not None and self.lookalike_of == self.cluster_id:
            raise ValueError("lookalike_of must name a different cluster than cluster_id")
        return self


class IntentExample(BaseModel):
    """A labelled routing example (``workloads/intents.jsonl``).

    Attributes:
        id: unique id, ``int-0001`` style.
        text: the request.
        intent: one of the eight intents.
        difficulty: ``easy`` (a cheap model suffices) or ``hard`` (needs the expensive one).
        route: ``cheap`` iff difficulty is ``easy``, else ``expensive``.
        split: ``train`` or ``test`` (about 70/30, stratified by intent and difficulty).
    """

    model_config = _FROZEN

    id: str = Field(pattern=r"^int-\d{4}$")
    text: str = Field(min_length=1)
    intent: Intent
    difficulty: Literal["easy", "hard"]
    route: Literal["cheap", "expensive"]
    split: Literal["train", "test"]

    @model_validator(mode="after")
    def _route_follows_difficulty(self) -> IntentExample:
        expected = "cheap" if self.difficulty == "easy" else "expensive"
        if self.route != expected:
            raise ValueError(f"route must be '{expected}' for difficulty '{self.difficulty}'")
        return self


# ---------------------------------------------------------------------------- finetune
class ChatMessage(BaseModel):
    """One chat turn."""

    model_config = _FROZEN

    role: Literal["system", "user", "assistant"]
    content: str = Field(min_length=1)


class CitedAnswer(BaseModel):
    """The JSON object the fine-tuned assistant must produce (mirrors ``schema.json``).

    Attributes:
        answer: short answer, or exactly :data:`REFUSAL`.
        citations: distinct ids of the context documents used; empty for a refusal.
        confidence: ``high`` for an answer, ``low`` for a refusal.
    """

    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)

    answer: str = Field(min_length=1)
    citations: list[str]
    confidence: Literal["high", "low"]

    @field_validator("citations")
    @classmethod
    def _ids_well_formed(cls, value: list[str]) -> list[str]:
        for doc in value:
            if not re.fullmatch(_DOC_ID, doc):
                raise ValueError(f"citation {doc!r} is not a document id like 'doc-travel-2025'")
        if len(set(value)) != len(value):
            raise ValueError("citations must not repeat")
        return value


def parse_cited_answer(text: str) -> CitedAnswer:
    """Parse a model reply that should be a cited-answer JSON object.

    Args:
        text: the raw reply (surrounding whitespace is tolerated, nothing else).

    Returns:
        The validated answer.

    Raises:
        InputError: the text is not JSON or does not match the schema; the message
            says which.
    """
    try:
        obj = json.loads(text)
    except json.JSONDecodeError as exc:
        raise InputError(f"reply is not JSON ({exc.msg} at char {exc.pos})") from exc
    try:
        return CitedAnswer.model_validate(obj)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(x) for x in first["loc"]) or "<object>"
        raise InputError(f"reply does not match the cited-answer schema: {where}: {first['msg']}") from exc


class FinetuneMeta(BaseModel):
    """Grading information for a fine-tuning example.

    Attributes:
        answerable: whether the context contains the answer.
        gold_citations: document ids a correct reply cites (empty when unanswerable).
        gold_answer_keywords: strings a correct answer contains (empty when unanswerable).
    """

    model_config = _FROZEN

    answerable: bool
    gold_citations: list[str]
    gold_answer_keywords: list[str]


class ChatExample(BaseModel):
    """A system/user/assistant example of the cited-JSON behaviour (train/validation/test).

    Validation checks the roles and their order, that the assistant content parses as a
    :class:`CitedAnswer`, that every citation names a document tagged in the user
    message, and that the reply agrees with ``meta`` (refusal text, confidence, citations
    and keywords).
    """

    model_config = _FROZEN

    id: str = Field(pattern=r"^ft-(train|val|test)-\d{4}$")
    messages: list[ChatMessage] = Field(min_length=3, max_length=3)
    meta: FinetuneMeta

    @model_validator(mode="after")
    def _consistent(self) -> ChatExample:
        roles = [m.role for m in self.messages]
        if roles != ["system", "user", "assistant"]:
            raise ValueError(f"messages must be system, user, assistant; got {roles}")
        reply = parse_cited_answer(self.messages[2].content)
        in_context = set(context_doc_ids(self.user))
        if not in_context:
            raise ValueError("user message has no [doc-...] context snippets")
        missing = [c for c in reply.citations if c not in in_context]
        if missing:
            raise ValueError(f"citations {missing} are not in the user message's context")
        if self.meta.answerable:
            if reply.answer == REFUSAL or reply.confidence != "high" or not reply.citations:
                raise ValueError("an answerable example needs an answer, citations and confidence 'high'")
            if list(reply.citations) != list(self.meta.gold_citations):
                raise ValueError("assistant citations differ from meta.gold_citations")
            lost = [k for k in self.meta.gold_answer_keywords if k not in reply.answer]
            if lost:
                raise ValueError(f"assistant answer lacks gold keywords {lost}")
        elif (reply.answer, reply.citations, reply.confidence) != (REFUSAL, [], "low"):
            raise ValueError("an unanswerable example must reply with the refusal, no citations and 'low'")
        elif self.meta.gold_citations or self.meta.gold_answer_keywords:
            raise ValueError("an unanswerable example has no gold citations or keywords")
        return self

    @property
    def user(self) -> str:
        """The user message (context snippets and question)."""
        return self.messages[1].content

    @property
    def question(self) -> str:
        """The question part of the user message."""
        return self.user.rsplit("Question:", 1)[-1].strip()

    @property
    def answer(self) -> CitedAnswer:
        """The assistant reply, parsed."""
        return parse_cited_answer(self.messages[2].content)


class _UserPrompt(BaseModel):
    """A prompt that is a single user message (the shared shape of sanity and rehearsal prompts)."""

    model_config = _FROZEN
    _kind: ClassVar[str] = "prompt"

    id: str
    messages: list[ChatMessage] = Field(min_length=1, max_length=1)

    @model_validator(mode="after")
    def _user_only(self) -> _UserPrompt:
        if self.messages[0].role != "user":
            raise ValueError(f"a {self._kind} is a single user message")
        return self

    @property
    def prompt(self) -> str:
        """The user prompt text."""
        return self.messages[0].content


class SanityPrompt(_UserPrompt):
    """A general-knowledge prompt used to check that fine-tuning did not break the model.

    Attributes:
        id: ``sanity-01`` style.
        messages: a single user turn.
        expected_keywords: a reply passes if it contains ANY of these (case-insensitive).
    """

    _kind: ClassVar[str] = "sanity prompt"

    id: str = Field(pattern=r"^sanity-\d{2}$")
    expected_keywords: list[str] = Field(min_length=1)

    def passes(self, reply: str) -> bool:
        """Return True if ``reply`` contains any expected keyword (case-insensitive)."""
        low = reply.lower()
        return any(k.lower() in low for k in self.expected_keywords)


class RehearsalPrompt(_UserPrompt):
    """A general prompt whose base-model reply is mixed into fine-tuning data (rehearsal).

    The reply is not stored: it is generated by the model being fine-tuned, before
    training, so the adapter is trained to keep that model's own behaviour on general
    prompts (see :func:`reference.finetune.rehearsal_examples`).

    Attributes:
        id: ``rehearsal-01`` style.
        messages: a single user turn.
    """

    _kind: ClassVar[str] = "rehearsal prompt"

    id: str = Field(pattern=r"^rehearsal-\d{2}$")


# --------------------------------------------------------------------------- judgments
class JudgmentLabels(BaseModel):
    """Human labels: 1 = yes, 0 = no (booleans are rejected)."""

    model_config = _FROZEN

    faithfulness: Literal[0, 1]
    correctness: Literal[0, 1]

    @field_validator("faithfulness", "correctness", mode="before")
    @classmethod
    def _no_bools(cls, value: object) -> object:
        if isinstance(value, bool):
            raise ValueError("labels are the integers 0 or 1, not booleans")
        return value


#: (faithfulness, correctness) pairs each failure mode may carry.
_ALLOWED_LABELS: dict[str | None, set[tuple[int, int]]] = {
    None: {(1, 1)},
    "verbose_but_right": {(1, 1)},
    "correct_refusal": {(1, 1)},
    "wrong_refusal": {(1, 0)},
    "incomplete": {(1, 0), (0, 0)},
    "wrong_number": {(0, 0), (1, 0)},  # (1, 0): faithful to an outdated context
    "contradicts_context": {(0, 0), (0, 1)},
    "unsupported_claim": {(0, 0), (0, 1)},  # (0, 1): correct but not in the context
}


class Judgment(BaseModel):
    """One labelled answer (``judgments/judgments.jsonl``).

    Attributes:
        id: ``jdg-001`` style.
        question: the user question.
        context: the retrieved snippets the answer was generated from.
        answer: the candidate answer being judged.
        reference_answer: the ideal answer given the organisation's current documents
            (it may disagree with an outdated context).
        labels: faithfulness (supported by the context) and correctness (agrees with the
            reference on every key fact).
        rationale: one or two sentences justifying the labels.
        failure_mode: the main defect, or ``None`` for a plain good answer.
        pair_id: set on exactly two records with the same question for pairwise judging.
    """

    model_config = _FROZEN

    id: str = Field(pattern=r"^jdg-\d{3}$")
    question: str = Field(min_length=1)
    context: str = Field(min_length=1)
    answer: str = Field(min_length=1)
    reference_answer: str = Field(min_length=1)
    labels: JudgmentLabels
    rationale: str = Field(min_length=1)
    failure_mode: FailureMode | None = None
    pair_id: str | None = Field(default=None, pattern=r"^pair-\d{2}$")

    @model_validator(mode="after")
    def _mode_matches_labels(self) -> Judgment:
        got = (self.labels.faithfulness, self.labels.correctness)
        if got not in _ALLOWED_LABELS[self.failure_mode]:
            raise ValueError(
                f"failure_mode {self.failure_mode!r} does not allow labels "
                f"faithfulness={got[0]}, correctness={got[1]}"
            )
        return self


# ----------------------------------------------------------------------------- loaders
def _dir(root: str | Path | None, name: str) -> Path:
    return Path(root) if root is not None else DATASETS_DIR / name


def load_queries(root: str | Path | None = None) -> list[WorkloadQuery]:
    """Load the query stream in arrival order.

    Args:
        root: directory holding ``queries.jsonl`` (default ``datasets/workloads``).

    Returns:
        The queries, sorted by ``seq`` as stored.

    Raises:
        DataFileError: the file is missing or malformed, ids repeat, ``seq`` is not
            strictly increasing, a cluster has two different answer keys, or a
            ``lookalike_of`` names a cluster that never occurs.
    """
    path = _dir(root, "workloads") / "queries.jsonl"
    rows = read_jsonl(path, WorkloadQuery)
    require_unique(path, [r.id for r in rows])
    for prev, cur in zip(rows, rows[1:]):
        if cur.seq <= prev.seq:
            raise DataFileError(f"{path}: seq must increase strictly ({cur.id} has seq {cur.seq} after {prev.seq})")
    answers: dict[str, str] = {}
    for r in rows:
        if answers.setdefault(r.cluster_id, r.answer_key) != r.answer_key:
            raise DataFileError(f"{path}: cluster {r.cluster_id} has more than one answer_key ({r.id})")
    for r in rows:
        if r.lookalike_of is not None and r.lookalike_of not in answers:
            raise DataFileError(f"{path}: {r.id} is a lookalike of unknown cluster {r.lookalike_of}")
    return rows


def load_intents(split: str | None = None, root: str | Path | None = None) -> list[IntentExample]:
    """Load the labelled routing examples.

    Args:
        split: ``"train"``, ``"test"`` or ``None`` for both.
        root: directory holding ``intents.jsonl`` (default ``datasets/workloads``).

    Returns:
        The examples of the requested split, in file order.

    Raises:
        InputError: ``split`` is not one of the choices.
        DataFileError: the file is missing or malformed, or ids / texts repeat.
    """
    if split not in (None, "train", "test"):
        raise InputError(f"unknown intents split {split!r}; choose 'train', 'test' or None for both")
    path = _dir(root, "workloads") / "intents.jsonl"
    rows = read_jsonl(path, IntentExample)
    require_unique(path, [r.id for r in rows])
    texts = Counter(r.text.lower() for r in rows)
    dupes = [t for t, n in texts.items() if n > 1]
    if dupes:
        raise DataFileError(f"{path}: duplicate texts {dupes[:3]}")
    return [r for r in rows if split is None or r.split == split]


@overload
def load_finetune(split: Literal["sanity"], root: str | Path | None = None) -> list[SanityPrompt]: ...
@overload
def load_finetune(split: Literal["rehearsal"], root: str | Path | None = None) -> list[RehearsalPrompt]: ...
@overload
def load_finetune(
    split: Literal["train", "validation", "test"], root: str | Path | None = None
) -> list[ChatExample]: ...
def load_finetune(
    split: str, root: str | Path | None = None
) -> list[ChatExample] | list[SanityPrompt] | list[RehearsalPrompt]:
    """Load one split of the cited-JSON fine-tuning set.

    Args:
        split: ``"train"``, ``"validation"``, ``"test"``, ``"sanity"`` (general
            prompts with expected keywords, to check nothing else broke) or
            ``"rehearsal"`` (other general prompts, whose base-model replies are mixed
            into training so that general behaviour is kept).
        root: directory holding the split files (default ``datasets/finetune``).

    Returns:
        :class:`ChatExample` records, :class:`SanityPrompt` records for ``"sanity"``, or
        :class:`RehearsalPrompt` records for ``"rehearsal"``.

    Raises:
        InputError: ``split`` is not one of :data:`FINETUNE_SPLITS`.
        DataFileError: the file is missing or malformed, or ids repeat.
    """
    if split not in FINETUNE_SPLITS:
        raise InputError(f"unknown finetune split {split!r}; choose one of {', '.join(FINETUNE_SPLITS)}")
    path = _dir(root, "finetune") / f"{split}.jsonl"
    rows: list[ChatExample] | list[SanityPrompt] | list[RehearsalPrompt]
    if split == "sanity":
        rows = read_jsonl(path, SanityPrompt)
    elif split == "rehearsal":
        rows = read_jsonl(path, RehearsalPrompt)
    else:
        rows = read_jsonl(path, ChatExample)
    require_unique(path, [r.id for r in rows])
    return rows


def finetune_schema(root: str | Path | None = None) -> dict:
    """Return the JSON Schema of the assistant's reply (``finetune/schema.json``).

    Args:
        root: directory holding ``schema.json`` (default ``datasets/finetune``).

    Returns:
        The schema as a dict.

    Raises:
        DataFileError: the file is missing or not a JSON object.
    """
    path = _dir(root, "finetune") / "schema.json"
    if not path.is_file():
        raise DataFileError(f"{path}: file not found (is the repository checkout complete?)")
    try:
        schema = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise DataFileError(f"{path}: not valid JSON ({exc})") from exc
    if not isinstance(schema, dict) or schema.get("type") != "object":
        raise DataFileError(f"{path}: expected a JSON Schema describing an object")
    return schema


def load_judgments(root: str | Path | None = None) -> list[Judgment]:
    """Load the labelled judge-calibration answers.

    Args:
        root: directory holding ``judgments.jsonl`` (default ``datasets/judgments``).

    Returns:
        The judgments in file order.

    Raises:
        DataFileError: the file is missing or malformed, ids repeat, or a ``pair_id``
            does not link exactly two answers to the same question and context.
    """
    path = _dir(root, "judgments") / "judgments.jsonl"
    rows = read_jsonl(path, Judgment)
    require_unique(path, [r.id for r in rows])
    pairs: dict[str, list[Judgment]] = defaultdict(list)
    for r in rows:
        if r.pair_id is not None:
            pairs[r.pair_id].append(r)
    for pid, members in pairs.items():
        if len(members) != 2:
            raise DataFileError(f"{path}: {pid} links {len(members)} records; a pair needs exactly 2")
        a, b = members
        if (a.question, a.context) != (b.question, b.context):
            raise DataFileError(f"{path}: {pid} links answers to different questions or contexts")
    return rows
