"""Deterministic answer metrics: no model, no network, the same score every run.

These metrics look at strings and numbers only. They are cheap enough to run on every
commit and they never drift, which makes them the backbone of a CI gate. Each one also
has blind spots, listed here so nobody mistakes a high score for proof:

* :func:`exact_match` - normalised string equality. *Fails* on any paraphrase
  ("26 weeks" vs "twenty-six weeks of full pay").
* :func:`token_f1` - SQuAD-style word overlap. *Fails* on negation ("is enabled" vs
  "is not enabled" overlap almost fully) and rewards long answers that repeat the question.
* :func:`number_match` - every number of the reference appears in the answer, after
  normalising currency, thousands separators and number words ("£1,250.00" == "1250",
  "three" == "3"). *Fails* when the right number is attached to the wrong thing
  ("99.9% for Enterprise").
* :func:`answer_correctness` - a rule that combines refusal, yes/no polarity, key
  numbers and word recall against the reference answer.
* :func:`faithfulness` - each sentence of the answer must be supported by the context:
  its numbers must appear in the context or question (or follow from one arithmetic
  step on two of them, or one unit conversion), its ids and names must occur there, and
  a yes/no answer must agree with any limit the context states in the question's unit
  ("up to 60 kg" vs "can it carry 80 kg?"). *Fails* on contradictions phrased with
  context words ("enabled" vs "disabled"), on invented claims made of question words
  ("40 parking spaces" when the context has 40 bikes) and, unless ``check_rows=True``,
  on a real value taken from the wrong row ("99.95%" is the Enterprise uptime, asked
  for Pro).
* :func:`citation_accuracy` - cited ids are a subset of the retrieved ids and cover the
  documents that support the answer. *Fails* to notice a citation that is present but
  irrelevant to the sentence it is attached to.
* :func:`is_refusal` / :func:`refusal_correct` - pattern matching for "I don't know".
  *Fails* on creative refusals ("that is outside what I can see") and counts a hedged
  answer ("it is not stated, but probably 30 days") as a refusal.
* :func:`relevance` - question-answer similarity (embedding cosine when an embedder is
  given, else word overlap). *Fails* on answers that restate the question without
  answering it: they look highly relevant.
* :func:`hallucination` - an answer that is neither a refusal nor faithful.

Example:
    >>> number_match("It costs £1,250.00 per unit.", "1250")
    1.0
    >>> answer_correctness("No - its maximum payload is 60 kg.", "No. The maximum payload is 60 kg.").correct
    True
"""

from __future__ import annotations

import math
import re
import string
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from reference.errors import InputError

__all__ = [
    "normalize_answer", "content_tokens", "extract_numbers", "extract_dates", "exact_match", "token_f1",
    "number_match", "date_match", "is_refusal", "refusal_correct", "polarity", "answer_correctness",
    "CorrectnessResult", "split_claims", "faithfulness", "FaithfulnessResult", "ClaimSupport",
    "citation_accuracy", "CitationResult", "relevance", "hallucination", "REFUSAL_PATTERNS",
]

_ARTICLES = re.compile(r"\b(a|an|the)\b")
_STOP = frozenset(
    "a an and are as at be been by can could do does did for from has have i if in is it its of on or our "
    "so that the their there these this those to was we were what when where which who will with would you "
    "your yes no not than then also just any all per up about into out only after before over under".split()
)
_NUMBER_WORDS = {
    "zero": 0, "one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7, "eight": 8,
    "nine": 9, "ten": 10, "eleven": 11, "twelve": 12, "fifteen": 15, "twenty": 20, "thirty": 30,
    "forty": 40, "fifty": 50, "sixty": 60, "hundred": 100,
}
_MONTHS = {m: i for i, m in enumerate(
    "january february march april may june july august september october november december".split(), start=1)}
_MONTHS.update({m[:3]: i for m, i in list(_MONTHS.items())})

#: Phrases that mark a refusal ("I don't know", "the documents do not say", ...).
REFUSAL_PATTERNS: tuple[str, ...] = (
    r"\bi (?:do not|don't|dont) know\b",
    r"\b(?:documents?|context|sources?|provided information) (?:do|does|did)(?: not|n't) (?:say|mention|state|"
    r"contain|cover|specify|include|tell)",
    r"\b(?:not|isn't|is not) (?:stated|mentioned|specified|covered|available) in the (?:documents?|context)",
    r"\bno information (?:about|on)\b",
    r"^\s*not (?:stated|mentioned|specified)\b",
    r"\b(?:corpus|documents?|context|sources?) (?:does|do)(?: not|n't) (?:mention|list|name)\b",
    r"\b(?:cannot|can't|could not|couldn't|unable to|did not|didn't) (?:find|answer|locate)\b",
    r"\bnot (?:in|covered by) the (?:provided )?(?:documents?|context)\b",
)
_REFUSAL_RE = re.compile("|".join(REFUSAL_PATTERNS), re.I)


def _text(value: Any, name: str) -> str:
    if not isinstance(value, str):
        raise InputError(f"{name} must be a string, got {type(value).__name__}")
    return value


# --------------------------------------------------------------------------- normalisation


def normalize_answer(text: str) -> str:
    """Lower-case, drop punctuation and articles, collapse whitespace (SQuAD normalisation).

    Example:
        >>> normalize_answer("The  NB-300, Lifter!")
        'nb300 lifter'
    """
    text = _text(text, "text").lower().replace("\u2019", "'")
    text = "".join(ch for ch in text if ch not in string.punctuation and ch not in "£€$")
    text = _ARTICLES.sub(" ", text)
    return " ".join(text.split())


def _stem(word: str) -> str:
    """A deliberately crude stem: the first 5 letters (``reimbursed`` ~ ``reimbursable``)."""
    return word[:5] if word.isalpha() and len(word) > 5 else word


def content_tokens(text: str) -> list[str]:
    """Stemmed words of ``text`` without stop words and without pure numbers.

    Example:
        >>> content_tokens("Passwords must be at least 14 characters long.")
        ['passw', 'must', 'least', 'chara', 'long']
    """
    words = re.findall(r"[a-z][a-z0-9'-]*", _text(text, "text").lower().replace("\u2019", "'"))
    return [_stem(w.strip("'-")) for w in words if w.strip("'-") and w.strip("'-") not in _STOP]


# Numbers: optional sign, currency, digits with thousands separators, decimals, k/m suffix,
# or a clock time. Identifier digits (NB-300, E-241, P1, GlobalProtect 6.2 is kept) are skipped
# when glued to letters.
_NUM_RE = re.compile(
    r"(?<![A-Za-z0-9])(?<![A-Za-z]-)(?P<sign>[-\u2212])?(?P<cur>[£€$])?"
    r"(?P<num>\d{1,3}(?:,\d{3})+(?:\.\d+)?|\d+(?:\.\d+)?)(?P<time>:\d{2})?(?P<suf>[kKmM]\b)?(?![A-Za-z0-9])"
)


def _number_value(m: re.Match[str], text: str) -> float:
    """The value of one :data:`_NUM_RE` match in ``text``."""
    value = float(m.group("num").replace(",", ""))
    if m.group("time"):
        value += int(m.group("time")[1:]) / 60
    value *= {"k": 1e3, "m": 1e6}.get((m.group("suf") or "").lower(), 1)
    if m.group("sign") and (m.start() == 0 or not text[m.start() - 1].isalnum()):
        value = -value
    return value


def extract_numbers(text: str, *, words: bool = True) -> list[float]:
    """Numbers in ``text`` as floats, normalised for comparison.

    Currency symbols and thousands separators are dropped (``£1,250.00`` -> 1250.0),
    ``k``/``m`` suffixes multiply, clock times become hours (``21:30`` -> 21.5), number
    words up to "hundred" count when ``words`` is true, and identifiers such as
    ``NB-300``, ``E-241`` or ``P1`` are not numbers. A leading minus counts only when it
    is not a hyphen between words (``-5°C`` -> -5.0).

    Example:
        >>> extract_numbers("£1,250.00 for NB-300 units, 3 docks, two weeks, -5°C, 1.5k")
        [1250.0, 3.0, -5.0, 1500.0, 2.0]
    """
    text = _text(text, "text")
    out = [_number_value(m, text) for m in _NUM_RE.finditer(text)]
    if words:
        for w in re.findall(r"[a-z]+", text.lower()):
            if w in _NUMBER_WORDS:
                out.append(float(_NUMBER_WORDS[w]))
    return out


def extract_dates(text: str) -> list[str]:
    """Dates in ``text`` as ISO strings: ``2025-04-01``, ``1 April 2025``, ``April 1, 2025``.

    Example:
        >>> extract_dates("From 1 April 2025 (was 2024-01-01); due March 3, 2026.")
        ['2025-04-01', '2024-01-01', '2026-03-03']
    """
    text = _text(text, "text")
    found: list[tuple[int, str]] = []
    for m in re.finditer(r"\b(\d{4})-(\d{2})-(\d{2})\b", text):
        found.append((m.start(), f"{m.group(1)}-{m.group(2)}-{m.group(3)}"))
    month = r"(jan(?:uary)?|feb(?:ruary)?|mar(?:ch)?|apr(?:il)?|may|jun(?:e)?|jul(?:y)?|aug(?:ust)?|" \
            r"sep(?:tember)?|oct(?:ober)?|nov(?:ember)?|dec(?:ember)?)"
    for m in re.finditer(rf"\b(\d{{1,2}})(?:st|nd|rd|th)? {month},? (\d{{4}})\b", text, re.I):
        found.append((m.start(), f"{m.group(3)}-{_MONTHS[m.group(2).lower()[:3]]:02d}-{int(m.group(1)):02d}"))
    for m in re.finditer(rf"\b{month} (\d{{1,2}})(?:st|nd|rd|th)?,? (\d{{4}})\b", text, re.I):
        found.append((m.start(), f"{m.group(3)}-{_MONTHS[m.group(1).lower()[:3]]:02d}-{int(m.group(2)):02d}"))
    return [d for _, d in sorted(found)]


def _same_number(a: float, b: float) -> bool:
    return math.isclose(a, b, rel_tol=1e-6, abs_tol=1e-9) or math.isclose(abs(a), abs(b), rel_tol=1e-6)


def _contains_number(value: float, pool: Iterable[float]) -> bool:
    return any(_same_number(value, p) for p in pool)


# --------------------------------------------------------------------------- correctness


def exact_match(prediction: str, reference: str) -> float:
    """1.0 when the normalised strings are equal, else 0.0.

    Example:
        >>> exact_match("The NB-300.", "nb-300")
        1.0
    """
    return float(normalize_answer(prediction) == normalize_answer(reference))


def token_f1(prediction: str, reference: str) -> float:
    """Harmonic mean of word precision and recall after normalisation (SQuAD F1).

    Example:
        >>> round(token_f1("14 characters long", "14 characters"), 3)
        0.8
    """
    pred = normalize_answer(prediction).split()
    ref = normalize_answer(reference).split()
    if not pred or not ref:
        return float(pred == ref)
    common = sum((Counter(pred) & Counter(ref)).values())
    if common == 0:
        return 0.0
    p, r = common / len(pred), common / len(ref)
    return 2 * p * r / (p + r)


def number_match(prediction: str, reference: str) -> float | None:
    """Share of the reference's numbers found in the prediction; ``None`` if it has none.

    Example:
        >>> number_match("£1,250 a year", "1250"), number_match("yes", "no numbers here")
        (1.0, None)
    """
    ref = extract_numbers(reference)
    if not ref:
        return None
    pred = extract_numbers(prediction)
    return sum(_contains_number(r, pred) for r in ref) / len(ref)


def date_match(prediction: str, reference: str) -> float | None:
    """Share of the reference's dates found in the prediction; ``None`` if it has none.

    Example:
        >>> date_match("from 1 April 2025", "2025-04-01")
        1.0
    """
    ref = extract_dates(reference)
    if not ref:
        return None
    pred = set(extract_dates(prediction))
    return sum(d in pred for d in ref) / len(ref)


def is_refusal(text: str) -> bool:
    """True when ``text`` declines to answer ("I don't know", "the documents do not say"...).

    Example:
        >>> is_refusal("I don't know based on the provided documents."), is_refusal("14 characters")
        (True, False)
    """
    return bool(_REFUSAL_RE.search(_text(text, "text").replace("\u2019", "'")))


def refusal_correct(prediction: str, answerable: bool) -> bool:
    """True when the answer refuses exactly when the question is unanswerable.

    Example:
        >>> refusal_correct("I don't know.", answerable=False), refusal_correct("I don't know.", answerable=True)
        (True, False)
    """
    return is_refusal(prediction) != bool(answerable)


def polarity(text: str) -> str | None:
    """``"yes"``/``"no"`` when the answer opens with a yes/no word, else ``None``.

    Example:
        >>> polarity("Not for six weeks: the limit is 20 days."), polarity("Yes - flights over 6 hours.")
        ('no', 'yes')
    """
    first = re.findall(r"[a-z']+", _text(text, "text").lower().replace("\u2019", "'"))[:2]
    if not first:
        return None
    if first[0] in {"yes", "yeah", "yep", "correct", "sure"}:
        return "yes"
    if first[0] in {"no", "not", "nope", "never"} or first[:2] == ["unfortunately", "not"]:
        return "no"
    return None


def _strip_parentheses(text: str) -> str:
    return re.sub(r"\([^)]*\)", " ", text)


@dataclass(frozen=True)
class CorrectnessResult:
    """The verdict of :func:`answer_correctness` and the evidence behind it."""

    correct: bool
    score: float
    reason: str
    exact_match: float
    token_f1: float
    number_recall: float | None
    details: dict[str, Any] = field(default_factory=dict)


def answer_correctness(prediction: str, reference: str, *, question: str = "",
                       min_word_recall: float = 0.5, answerable: bool | None = None) -> CorrectnessResult:
    """Does ``prediction`` agree with ``reference`` on the key facts? A rule, in order:

    1. the question is unanswerable (``answerable=False``, or the reference itself is a
       refusal): correct iff the prediction refuses;
    2. the prediction refuses an answerable question: wrong;
    3. the reference opens with yes/no: the prediction must open with the same polarity;
    4. *key numbers* (reference numbers outside parentheses, minus numbers already in the
       question and four-digit years) must all appear in the prediction;
    5. without key numbers or polarity: at least ``min_word_recall`` of the reference's
       content words must appear in the prediction.

    Extra words in the prediction are never penalised (verbose answers are not wrong).

    Example:
        >>> answer_correctness("Three docks.", "3 docks (10 robots, 4 per dock)", question="10 robots?").correct
        True
    """
    prediction, reference = _text(prediction, "prediction"), _text(reference, "reference")
    em, f1 = exact_match(prediction, reference), token_f1(prediction, reference)
    nr = number_match(prediction, reference)

    def result(ok: bool, reason: str, **details: Any) -> CorrectnessResult:
        return CorrectnessResult(ok, 1.0 if ok else 0.0, reason, em, f1, nr, details)

    ref_refuses = (not answerable) if answerable is not None else is_refusal(reference)
    pred_refuses = is_refusal(prediction)
    if ref_refuses:
        return result(pred_refuses, "unanswerable: refusal expected")
    if pred_refuses:
        return result(False, "refused an answerable question")
    ref_pol, pred_pol = polarity(reference), polarity(prediction)
    if ref_pol is not None and pred_pol is not None and ref_pol != pred_pol:
        return result(False, f"polarity {pred_pol!r}, expected {ref_pol!r}")
    question_numbers = extract_numbers(question) if question else []
    key = [n for n in extract_numbers(_strip_parentheses(reference))
           if not _contains_number(n, question_numbers) and not (n.is_integer() and 1900 <= n <= 2100)]
    if key:
        pred_numbers = extract_numbers(prediction)
        missing = [n for n in key if not _contains_number(n, pred_numbers)]
        return result(not missing, "key numbers match" if not missing else f"missing numbers {missing}",
                      key_numbers=key)
    if ref_pol is not None and pred_pol == ref_pol:
        return result(True, "polarity matches")
    ref_words = set(content_tokens(_strip_parentheses(reference)))
    if not ref_words:
        return result(em == 1.0, "exact match (reference has no content words)")
    recall = len(ref_words & set(content_tokens(prediction))) / len(ref_words)
    return result(recall >= min_word_recall, f"word recall {recall:.2f}", word_recall=recall)


# --------------------------------------------------------------------------- faithfulness


def split_claims(answer: str) -> list[str]:
    """Split an answer into sentence-sized claims (on ``.``, ``;``, ``!``, ``?`` and " - ").

    Example:
        >>> split_claims("No - it is 60 kg. Ask IT; they know.")
        ['No', 'it is 60 kg.', 'Ask IT;', 'they know.']
    """
    text = _text(answer, "answer").strip()
    parts = re.split(r"(?<=[.;!?])\s+|\s+[-\u2013\u2014]\s+", text)
    return [p.strip() for p in parts if p and p.strip()]


#: Unit conversions allowed as one arithmetic step (minutes/hours, hours/days, days/weeks, months/years).
_UNIT_FACTORS = (60.0, 24.0, 7.0, 12.0)


def _derived_numbers(numbers: Sequence[float]) -> set[float]:
    """Numbers one arithmetic step away from ``numbers``.

    Two *different* source numbers may be added, subtracted, multiplied or divided (with
    the ceiling of the ratio: 10 robots / 4 per dock -> 3 docks). A unit conversion
    (x 60, 24, 7, 12 and back) is also one step, but a conversion factor is never added
    or subtracted: "15 - 12 = 3" is not a derivation anybody makes, and allowing it made
    almost every small number look supported.
    """
    base = list(dict.fromkeys(numbers))[:20]
    out = set(base)
    for i, a in enumerate(base):
        for j, b in enumerate(base):
            if i == j:
                continue
            out.update({a + b, a - b, a * b})
            if b:
                out.update({a / b, float(math.ceil(a / b))})
        for u in _UNIT_FACTORS:
            out.update({a * u, a / u})
    return {round(x, 6) for x in out}


def _identifiers(text: str) -> list[str]:
    """Identifiers (``NB-500``, ``E-241``, ``Guest2025``) and mid-sentence capitalised names, lower-cased."""
    ids = _coded_ids(text)
    # proper names: capitalised words that do not start a sentence ("the Oracle connector")
    names = re.findall(r"(?<=[a-z,;:] )[A-Z][a-zA-Z]+", text)
    return ids + [n.lower() for n in names]


def _coded_ids(text: str) -> list[str]:
    """Identifiers that contain a digit (``NB-100``, ``E-241``), lower-cased."""
    toks = re.findall(r"(?<![\w-])[A-Za-z][A-Za-z0-9]*(?:[-_./][A-Za-z0-9]+)*", text)
    return [t.lower() for t in toks if re.search(r"\d", t)]


def _anchors(text: str) -> set[tuple[str, Any]]:
    """The anchors of a text: written numbers (``("n", 30.0)``) and coded ids (``("i", "e-241")``)."""
    return {a for a, _ in _anchor_types(text)}


_TIME_UNITS = frozenset("second minute hour day week month year working business".split())


def _anchor_types(text: str) -> set[tuple[tuple[str, Any], str]]:
    """Each anchor of ``text`` with its type: the unit after a number, the letter prefix of an id.

    Units are coarsened so that values of one kind compare: any currency symbol is
    ``"money"``, minutes to years are ``"time"``, ``%`` is ``"%"``, any other unit word is
    itself without a plural ``s`` ("kg", "robot"). Ids are typed by their letters
    (``E-214`` and ``E-241`` are both ``"e"``; ``NB-100`` is ``"nb"``).
    """
    out: set[tuple[tuple[str, Any], str]] = set()
    for m in _NUM_RE.finditer(text):
        after = re.match(r"\s*-?\s*(%|[A-Za-z]+)", text[m.end():])
        unit = (_unit_key(None, after.group(1)) if after else None) or ""
        kind = "money" if m.group("cur") else "time" if unit in _TIME_UNITS else unit
        out.add((("n", round(_number_value(m, text), 6)), kind))
    for i in _coded_ids(text):
        out.add((("i", i), re.sub(r"[^a-z].*", "", i)))
    return out


def _topic_words(text: str) -> set[str]:
    """Content words without anything that holds a digit (anchors are compared separately)."""
    return {w for w in content_tokens(text) if not re.search(r"\d", w)}


_SOURCE_TAG = re.compile(r"\[[^\]\n]{1,80}\]")
# "and"/"or" start a new clause, except in a bound such as "10 or more" or "50 and above"
_CLAUSE_SPLIT = re.compile(
    r",\s+|;\s+|:\s+|\s+(?:but|while|whereas)\s+|\s+(?:and|or)\s+(?!(?:more|less|fewer|above|below|over|under|"
    r"up|higher|lower|greater|later|earlier|longer|shorter)\b)")


@dataclass(frozen=True)
class _Unit:
    """One fact of the context: a clause with its anchors and content words."""

    anchors: frozenset[tuple[str, Any]]
    words: frozenset[str]
    types: frozenset[tuple[tuple[str, Any], str]] = frozenset()


def _context_units(context: str) -> list[_Unit]:
    """Split ``context`` into facts, each holding its own numbers and ids.

    A sentence is cut at commas, semicolons and conjunctions; a piece without a number or
    id is glued to the fact before it ("...over temperature; let the robot cool"). The
    words of the sentence before its first number (the shared subject of a list such as
    "Uptime is 99.5% for Starter, 99.9% for Pro and 99.95% for Enterprise") are given to
    every fact of that sentence. Words a later fact leaves out by ellipsis ("orders of 50
    or more get 15%" after "Orders of 10 or more robots get an 8% discount") are *not*
    restored, which is why :func:`faithfulness` runs this check only on request. Table rows
    (lines with two or more ``|``) are left out: a cell is described by its column header,
    which no clause holds.
    """
    units: list[_Unit] = []
    text = _SOURCE_TAG.sub(" ", context)
    prose = "\n".join(line for line in text.splitlines() if line.count("|") < 2)
    for sentence in re.split(r"(?<=[.!?])\s+|\n+", prose):
        pieces = [p for p in _CLAUSE_SPLIT.split(sentence) if p.strip()]
        groups: list[list[str]] = []
        for piece in pieces:
            if groups and (not _anchors(piece) or not _anchors(" ".join(groups[-1]))):
                groups[-1].append(piece)
            else:
                groups.append([piece])
        if not groups:
            continue
        first = " ".join(groups[0])
        m = _NUM_RE.search(first)
        head = first[:m.start()] if m else ""
        for k, group in enumerate(groups):
            body = " ".join(group) if k == 0 else f"{head} {' '.join(group)}"
            units.append(_Unit(frozenset(_anchors(body)), frozenset(_topic_words(body)),
                               frozenset(_anchor_types(body))))
    return units


def _misattributed(claim: str, question: str, units: Sequence[_Unit],
                   answer_anchors: set[tuple[str, Any]]) -> list[str]:
    """Anchors of ``claim`` that the context attaches to a different fact than the one asked about.

    For each number or id of the claim that occurs in the context, the facts holding it are
    compared with *rival* facts: those holding another value of the same type (same unit
    class, same id prefix; see :func:`_anchor_types`) that the answer never mentions. What
    is compared is how well each fact matches the description of the anchor: for a value the answer supplies ("30 days"), the question describes it
    (its content words and its own numbers and ids); for an anchor the question already
    names ("What does E-241 mean?"), the claim describes it. If a rival fact matches every
    part of the description that the claim's own fact matches, and more (a strict superset),
    the claim took a value from the wrong row: "99.95%" asked for Pro when 99.95% is
    the Enterprise figure, "30 days" asked for support tickets when 30 days is the CCTV
    retention, "E-241 means the lidar window" when the lidar sentence belongs to E-214.
    Ties and partial matches on both sides are not flagged: then the words cannot tell.
    """
    question_anchors = _anchors(question)
    bad: list[str] = []
    for anchor in sorted(_anchors(claim), key=str):
        own = [u for u in units if anchor in u.anchors]
        if not own:
            continue
        kinds = {t for u in own for a, t in u.types if a == anchor}
        rivals = [u for u in units if anchor not in u.anchors
                  and any(t in kinds and a not in answer_anchors for a, t in u.types)]
        if not rivals:
            continue
        if anchor in question_anchors or not question.strip():
            words, anchors = _topic_words(claim), set()
        else:
            words, anchors = _topic_words(question), question_anchors - {anchor}

        def fit(u: _Unit) -> set[Any]:
            return (words & u.words) | (anchors & u.anchors)

        own_fits = [fit(u) for u in own]
        if any(all(f < fit(r) for f in own_fits) for r in rivals):
            bad.append(f"{anchor[1]:g}" if anchor[0] == "n" else str(anchor[1]))
    return bad


_YES_NO_QUESTION = re.compile(
    r"^\s*(?:can|could|do|does|did|is|are|am|was|were|will|would|should|shall|may|must|has|have)\b", re.I)
# bound words -> (kind, strict): an upper bound is violated by a larger value, a lower bound by a smaller one
_BOUND_WORDS: dict[str, tuple[str, bool]] = {
    "up to": ("upper", False), "at most": ("upper", False), "no more than": ("upper", False),
    "a maximum of": ("upper", False), "maximum of": ("upper", False), "maximum": ("upper", False),
    "not exceeding": ("upper", False), "within": ("upper", False), "under": ("upper", True),
    "below": ("upper", True), "less than": ("upper", True), "fewer than": ("upper", True),
    "over": ("lower", True), "above": ("lower", True), "more than": ("lower", True),
    "greater than": ("lower", True), "exceeding": ("lower", True), "in excess of": ("lower", True),
    "at least": ("lower", False), "a minimum of": ("lower", False), "minimum of": ("lower", False),
    "minimum": ("lower", False),
}
_QUANTITY = (r"(?P<cur>[£€$])?(?P<num>\d{1,3}(?:,\d{3})+(?:\.\d+)?|\d+(?:\.\d+)?)(?![\w-])\s*"
             r"(?P<unit>%|[a-zA-Z]+)?")
_BOUND_RE = re.compile(r"\b(?P<word>" + "|".join(sorted(map(re.escape, _BOUND_WORDS), key=len, reverse=True))
                       + r")\s+" + _QUANTITY, re.I)
_QUANTITY_RE = re.compile(r"(?<![\w.-])" + _QUANTITY)
_NEGATION = re.compile(r"\b(?:not|no|never|none|without)\b|n't\b", re.I)


def _unit_key(cur: str | None, unit: str | None) -> str | None:
    if cur:
        return cur
    if not unit:
        return None
    u = unit.lower()
    return u[:-1] if len(u) > 3 and u.endswith("s") else u


def _bounds(context: str) -> list[tuple[float, str, str, bool]]:
    """Limits stated in the context: ``(value, unit, "upper"|"lower", strict)``, e.g. "up to 60 kg".

    A limit inside a negated sentence ("is not required for trips over 3 days") is skipped:
    its direction is no longer clear from the words alone.
    """
    out = []
    for sentence in re.split(r"(?<=[.!?;])\s+|\n+", _SOURCE_TAG.sub(" ", context)):
        for m in _BOUND_RE.finditer(sentence):
            rest = sentence[:m.start()] + " " + sentence[m.end():]
            unit = _unit_key(m.group("cur"), m.group("unit"))
            if unit is None or _NEGATION.search(rest):
                continue
            kind, strict = _BOUND_WORDS[m.group("word").lower()]
            out.append((float(m.group("num").replace(",", "")), unit, kind, strict))
    return out


def _bound_conflict(answer: str, context: str, question: str) -> str | None:
    """Why a yes/no answer contradicts a limit in the context, or ``None``.

    When a yes/no question carries a quantity ("Can an NB-100 carry an 80 kg load?") and
    the context states a limit in the same unit ("carries totes up to 60 kg"), the limit
    decides the answer: a quantity outside any such limit means "no", inside all of them
    "yes". An answer opening with the other word contradicts the context, even though
    each of its numbers occurs in the question or the context.
    """
    if not question or not _YES_NO_QUESTION.search(question):
        return None
    said = polarity(answer)
    if said is None:
        return None
    quantities = [(float(m.group("num").replace(",", "")), _unit_key(m.group("cur"), m.group("unit")))
                  for m in _QUANTITY_RE.finditer(question)]
    checks = []
    for value, unit in quantities:
        for limit, b_unit, kind, strict in _bounds(context):
            if unit is None or unit != b_unit:
                continue
            if kind == "upper":
                inside = value < limit if strict else value <= limit
            else:
                inside = value > limit if strict else value >= limit
            checks.append((inside, f"{value:g} {unit} vs {kind} limit {limit:g}"))
    if not checks:
        return None
    expected = "yes" if all(ok for ok, _ in checks) else "no"
    if said == expected:
        return None
    return f"says {said!r} but the context's limit implies {expected!r} ({'; '.join(w for _, w in checks)})"


#: Markers of a worked example or a hypothetical ("for example, ten robots cost £150";
#: "two docks would cover eight").
_EXAMPLE = re.compile(r"\b(?:for example|for instance|e\.g\.|say|suppose|imagine|if|would)\b", re.I)


@dataclass(frozen=True)
class ClaimSupport:
    """Support evidence for one claim.

    Attributes:
        claim: the claim's text.
        supported: no check below failed.
        unsupported_numbers: numbers neither in the context/question nor one arithmetic step away.
        word_support: share of the claim's content words found in the context or question.
        unsupported_ids: identifiers and names the context never mentions.
        misattributed: numbers or ids that the context attaches to a different fact.
        conflict: why a yes/no answer contradicts a limit stated in the context.
    """

    claim: str
    supported: bool
    unsupported_numbers: list[float]
    word_support: float
    unsupported_ids: list[str] = field(default_factory=list)
    misattributed: list[str] = field(default_factory=list)
    conflict: str | None = None


@dataclass(frozen=True)
class FaithfulnessResult:
    """The verdict of :func:`faithfulness`: share of supported claims and the claims themselves."""

    faithful: bool
    score: float
    claims: list[ClaimSupport]
    refusal: bool = False

    @property
    def unsupported(self) -> list[str]:
        return [c.claim for c in self.claims if not c.supported]


def faithfulness(answer: str, context: str | Sequence[str], *, question: str = "",
                 min_word_support: float = 0.0, min_checked_number: float = 2.0,
                 check_rows: bool = False) -> FaithfulnessResult:
    """Is every claim of ``answer`` supported by ``context``? Token and number overlap only.

    A claim is supported when all of these hold:

    1. each of its numbers (digits or number words, at least ``min_checked_number`` in
       size, so "two" is checked and "one" is not) appears in the context or the question,
       or follows from one arithmetic step on two of them or from one unit conversion
       (``10 robots / 4 per dock`` -> ``3``; ``2 weeks`` -> ``14`` days). In a worked
       example or hypothetical ("for example, £150 a month for ten robots", "two docks
       would cover eight") a number may also follow from the claim's *other* numbers;
    2. its identifiers and mid-sentence names (``NB-500``, ``Oracle``) occur in the source;
    3. a yes/no answer to a question with a quantity agrees with every limit in the same
       unit that the context states ("up to 60 kg" -> "Can it carry 80 kg?" is "no");
    4. with ``check_rows=True`` only: its numbers and ids are not *misattributed*, i.e. no
       other fact of the context that holds a value of the same type fits the question
       strictly better (:func:`_misattributed`). Off by default: it caught three
       wrong-row answers on the tuning half of the judgments and made two false flags
       on the held-out half (see ``datasets/judgments/README.md``);
    5. at least ``min_word_support`` of its content words appear in the context or question
       (0.0 by default: paraphrase is common and word overlap alone flagged good answers).

    Claims without content words ("No.") are supported. A refusal makes no claim and is
    faithful. The answer is faithful when every claim is.

    Example:
        >>> faithfulness("It is 60 kg.", "The NB-100 carries totes up to 60 kg.").faithful
        True
        >>> faithfulness("It carries 100 kg.", "The NB-100 carries totes up to 60 kg.").unsupported
        ['It carries 100 kg.']
    """
    answer = _text(answer, "answer")
    question = _text(question, "question")
    ctx = context if isinstance(context, str) else "\n".join(_text(c, "context item") for c in context)
    if is_refusal(answer):
        return FaithfulnessResult(True, 1.0, [], refusal=True)
    source = f"{ctx}\n{question}"
    known_numbers = extract_numbers(source) + [float(y) for y in re.findall(r"(?<!\d)(?:19|20)\d\d(?!\d)", source)]
    derived = _derived_numbers(known_numbers)
    known_ids = set(_identifiers(source)) | {w.lower() for w in re.findall(r"[A-Za-z0-9]+(?:[-_./][A-Za-z0-9]+)*", source)} \
        | {w.lower() for w in re.findall(r"[A-Za-z0-9]+", source)}
    known_words = set(content_tokens(source)) | {w.lower() for w in re.findall(r"[A-Za-z]+", source)}
    units = _context_units(ctx) if check_rows else []
    answer_anchors = _anchors(answer)
    conflict = _bound_conflict(answer, ctx, question)
    claims: list[ClaimSupport] = []
    for k, claim in enumerate(split_claims(answer) or [answer]):
        numbers = extract_numbers(claim, words=True)
        hypothetical = bool(_EXAMPLE.search(claim))
        bad = []
        for n in numbers:
            if abs(n) < min_checked_number or _contains_number(n, known_numbers) or round(n, 6) in derived:
                continue
            others = [x for x in numbers if not _same_number(x, n)]
            # in a worked example each number must follow from the context and the example's other numbers
            if hypothetical and others and round(n, 6) in _derived_numbers(known_numbers + others):
                continue
            bad.append(n)
        bad_ids = [i for i in _identifiers(claim) if i not in known_ids]
        words = content_tokens(claim)
        support = sum(w in known_words for w in words) / len(words) if words else 1.0
        wrong_row = _misattributed(claim, question, units, answer_anchors) if check_rows else []
        claim_conflict = conflict if k == 0 else None
        ok = (not bad and not bad_ids and not wrong_row and claim_conflict is None
              and support >= min_word_support)
        claims.append(ClaimSupport(claim, ok, bad, support, bad_ids, wrong_row, claim_conflict))
    score = sum(c.supported for c in claims) / len(claims)
    return FaithfulnessResult(all(c.supported for c in claims), score, claims)


def hallucination(answer: str, context: str | Sequence[str], *, question: str = "") -> bool:
    """True when the answer makes a claim the context does not support (refusals never do).

    Example:
        >>> hallucination("The NB-500 costs £95,000.", "The NB-300 lists at £74,000.")
        True
    """
    return not faithfulness(answer, context, question=question).faithful


# --------------------------------------------------------------------------- citations


@dataclass(frozen=True)
class CitationResult:
    """Citation checks for one answer.

    Attributes:
        precision: share of cited ids that were retrieved (1.0 when nothing is cited).
        recall: share of the supporting documents that are cited (1.0 when none are expected).
        valid: every cited id was retrieved.
        complete: every supporting document is cited.
        invented: cited ids that were never retrieved.
        missing: supporting documents that are not cited.
    """

    precision: float
    recall: float
    valid: bool
    complete: bool
    invented: list[str]
    missing: list[str]

    @property
    def accurate(self) -> bool:
        return self.valid and self.complete


def _doc(cid: str) -> str:
    return cid.split("#", 1)[0]


def citation_accuracy(cited: Iterable[str], retrieved: Iterable[str], supporting_docs: Iterable[str] = ()) -> CitationResult:
    """Check cited ids against the retrieved ids and the documents that support the answer.

    Ids may be chunk ids (``doc#p1#0``) or doc ids; coverage of ``supporting_docs`` is
    checked at document level.

    Example:
        >>> r = citation_accuracy(["a#p1#0"], ["a#p1#0", "b#p0#0"], ["a", "c"])
        >>> (r.valid, r.recall, r.missing)
        (True, 0.5, ['c'])
    """
    if isinstance(cited, str) or isinstance(retrieved, str) or isinstance(supporting_docs, str):
        raise InputError("cited, retrieved and supporting_docs are lists of ids, not strings")
    cited_l = list(dict.fromkeys(cited))
    retrieved_s = set(retrieved)
    retrieved_docs = {_doc(r) for r in retrieved_s}
    invented = [c for c in cited_l if c not in retrieved_s and not ("#" not in c and c in retrieved_docs)]
    cited_docs = {_doc(c) for c in cited_l}
    needed = list(dict.fromkeys(supporting_docs))
    missing = [d for d in needed if d not in cited_docs]
    precision = (len(cited_l) - len(invented)) / len(cited_l) if cited_l else 1.0
    recall = (len(needed) - len(missing)) / len(needed) if needed else 1.0
    return CitationResult(precision, recall, not invented, not missing, invented, missing)


# --------------------------------------------------------------------------- relevance


def relevance(question: str, answer: str, embedder: Any | None = None) -> float:
    """How related the answer is to the question, in [0, 1].

    With ``embedder`` (anything with ``embed(list[str])`` returning unit vectors) it is
    the cosine similarity clipped at 0; without, the share of the question's content
    words that the answer repeats. A refusal scores 0.0: it does not address the question.

    Example:
        >>> relevance("What is the NB-100 payload?", "The NB-100 payload is 60 kg.")
        1.0
    """
    question, answer = _text(question, "question"), _text(answer, "answer")
    if not answer.strip() or is_refusal(answer):
        return 0.0
    if embedder is not None:
        vecs = embedder.embed([question, answer])
        return max(0.0, float(vecs[0] @ vecs[1]))
    q = set(content_tokens(question))
    if not q:
        return 0.0
    return len(q & set(content_tokens(answer))) / len(q)
