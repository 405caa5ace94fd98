"""Eval records, run aggregates with bootstrap confidence intervals, storage and comparison.

One :class:`EvalRecord` per evaluated question holds everything needed to judge that
answer: relevance, faithfulness, answer correctness, latency, cost, a hallucination
flag, refusal facts, citation checks and retrieval metrics. A run is a list of records
plus the configuration that produced it; :class:`RunStore` keeps runs in SQLite so two
of them can be compared later, and :func:`paired_comparison` says whether a difference
between two runs is larger than the noise (a paired bootstrap over the shared questions).

Missing values are ``None``/NaN and are **counted, never averaged away**: every
aggregate reports ``n`` (values used) next to ``n_missing``.

Example:
    >>> recs = [EvalRecord(qid=f"q{i}", answer_correctness=float(i % 2)) for i in range(10)]
    >>> agg = aggregate(recs, ["answer_correctness"])["answer_correctness"]
    >>> (agg.mean, agg.n, agg.n_missing)
    (0.5, 10, 0)
"""

from __future__ import annotations

import json
import math
import sqlite3
import time
import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

import numpy as np

from reference.errors import DataFileError, InputError

__all__ = [
    "EvalRecord", "MetricSummary", "Comparison", "RunStore", "StoredRun", "bootstrap_ci", "aggregate",
    "paired_comparison", "evaluate_answer", "group_by", "RECORD_METRICS",
]

#: Numeric per-record metrics aggregated by default (higher is better except latency, cost, hallucination).
RECORD_METRICS = ("answer_correctness", "faithfulness", "relevance", "hallucination", "refusal_correct",
                  "citation_precision", "citation_recall", "latency_ms", "cost_usd")


@dataclass
class EvalRecord:
    """Everything measured about one answer.

    Attributes:
        qid: question id (pairs records across runs).
        qtype: question type, e.g. ``lookup`` or ``unanswerable`` (for breakdowns).
        relevance, faithfulness, answer_correctness: scores in [0, 1] (``None`` = not measured).
        latency_ms, cost_usd: what the answer cost in time and money.
        hallucination: 1.0 when the answer makes an unsupported claim, else 0.0.
        refused: the system declined to answer.
        refusal_correct: 1.0 when it refused exactly when it should have.
        citation_precision, citation_recall: see :func:`reference.evals.metrics.citation_accuracy`.
        retrieval: ranking metrics such as ``{"hit@5": 1.0, "mrr": 0.5}``.
        extra: anything else worth keeping (reasons, raw output...).
    """

    qid: str
    question: str = ""
    qtype: str = ""
    answer: str = ""
    reference: str = ""
    relevance: float | None = None
    faithfulness: float | None = None
    answer_correctness: float | None = None
    latency_ms: float | None = None
    cost_usd: float | None = None
    hallucination: float | None = None
    refused: bool | None = None
    refusal_correct: float | None = None
    citation_precision: float | None = None
    citation_recall: float | None = None
    retrieval: dict[str, float] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict)

    def value(self, metric: str) -> float | None:
        """The metric's value, looking in the fields first and then in ``retrieval``."""
        if metric in _FIELD_NAMES:
            v = getattr(self, metric)
        else:
            v = self.retrieval.get(metric, self.extra.get(metric))
        if v is None or isinstance(v, (dict, list, str)):
            return None
        v = float(v)
        return None if math.isnan(v) else v

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> EvalRecord:
        known = {k: v for k, v in data.items() if k in _FIELD_NAMES}
        if "qid" not in known:
            raise DataFileError("an eval record needs a 'qid'")
        return cls(**known)


_FIELD_NAMES = {f.name for f in fields(EvalRecord)}


def evaluate_answer(
    qid: str, question: str, answer: str, *, reference: str, context: str | Sequence[str] = "",
    answerable: bool = True, qtype: str = "", cited: Sequence[str] = (), retrieved: Sequence[str] = (),
    supporting_docs: Sequence[str] = (), latency_s: float | None = None, prompt_tokens: int = 0,
    completion_tokens: int = 0, price: Any | None = None, retrieval: Mapping[str, float] | None = None,
    embedder: Any | None = None,
) -> EvalRecord:
    """Score one answer with the deterministic metrics and return its :class:`EvalRecord`.

    ``price`` is a :class:`reference.cost.ModelPrice` (``None``: cost not measured).

    Example:
        >>> r = evaluate_answer("q1", "Max payload?", "60 kg.", reference="60 kg", context="Payload up to 60 kg.")
        >>> (r.answer_correctness, r.faithfulness, r.hallucination)
        (1.0, 1.0, 0.0)
    """
    from reference.evals import metrics as m

    corr = m.answer_correctness(answer, reference, question=question, answerable=answerable)
    faith = m.faithfulness(answer, context, question=question) if context else None
    refused = m.is_refusal(answer)
    cit = m.citation_accuracy(list(cited), list(retrieved), list(supporting_docs)) if (cited or retrieved) else None
    cost = None
    if price is not None:
        cost = price.cost(prompt_tokens, completion_tokens)
    return EvalRecord(
        qid=qid, question=question, qtype=qtype, answer=answer, reference=reference,
        relevance=m.relevance(question, answer, embedder),
        faithfulness=faith.score if faith is not None else None,
        answer_correctness=corr.score,
        latency_ms=latency_s * 1000 if latency_s is not None else None,
        cost_usd=cost,
        hallucination=float(not faith.faithful) if faith is not None else None,
        refused=refused,
        refusal_correct=float(refused != answerable),
        citation_precision=cit.precision if cit else None,
        citation_recall=cit.recall if cit else None,
        retrieval=dict(retrieval or {}),
        extra={"correctness_reason": corr.reason,
               "unsupported_claims": faith.unsupported if faith is not None else []},
    )


# --------------------------------------------------------------------------- statistics


def _clean(values: Iterable[float | None]) -> tuple[np.ndarray, int]:
    arr, missing = [], 0
    for v in values:
        if v is None or (isinstance(v, float) and math.isnan(v)):
            missing += 1
        else:
            arr.append(float(v))
    return np.asarray(arr, dtype=float), missing


def bootstrap_ci(values: Sequence[float], *, n_boot: int = 2000, alpha: float = 0.05, seed: int = 0,
                 stat: str = "mean") -> tuple[float, float, float]:
    """``(estimate, low, high)``: a percentile bootstrap confidence interval of the mean (or median).

    ``None``/NaN values are rejected: clean them first and report how many there were.

    Example:
        >>> est, lo, hi = bootstrap_ci([0, 1] * 50, seed=1)
        >>> est, lo < 0.5 < hi
        (0.5, True)
    """
    arr = np.asarray(list(values), dtype=float)
    if arr.size == 0:
        raise InputError("bootstrap_ci needs at least one value")
    if np.isnan(arr).any():
        raise InputError("values contain NaN: drop them and report the count instead of averaging them")
    if not 0 < alpha < 1 or n_boot < 1:
        raise InputError("alpha must be in (0, 1) and n_boot >= 1")
    fn = np.mean if stat == "mean" else np.median
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, arr.size, size=(n_boot, arr.size))
    boots = fn(arr[idx], axis=1)
    lo, hi = np.quantile(boots, [alpha / 2, 1 - alpha / 2])
    return float(fn(arr)), float(lo), float(hi)


@dataclass(frozen=True)
class MetricSummary:
    """One metric over a run: mean with its bootstrap CI, and how many values were missing."""

    metric: str
    mean: float
    low: float
    high: float
    n: int
    n_missing: int

    def __str__(self) -> str:
        if self.n == 0:
            return f"{self.metric}: no values ({self.n_missing} missing)"
        miss = f", {self.n_missing} missing" if self.n_missing else ""
        return f"{self.metric}: {self.mean:.3f} [{self.low:.3f}, {self.high:.3f}] (n={self.n}{miss})"


def aggregate(records: Sequence[EvalRecord], metrics: Sequence[str] = RECORD_METRICS, *, n_boot: int = 2000,
              alpha: float = 0.05, seed: int = 0) -> dict[str, MetricSummary]:
    """Mean and bootstrap CI of each metric over the records; missing values counted apart.

    Example:
        >>> aggregate([EvalRecord("a", faithfulness=None)], ["faithfulness"])["faithfulness"].n_missing
        1
    """
    out: dict[str, MetricSummary] = {}
    for metric in metrics:
        arr, missing = _clean(r.value(metric) for r in records)
        if arr.size == 0:
            out[metric] = MetricSummary(metric, float("nan"), float("nan"), float("nan"), 0, missing)
            continue
        est, lo, hi = bootstrap_ci(arr, n_boot=n_boot, alpha=alpha, seed=seed)
        out[metric] = MetricSummary(metric, est, lo, hi, int(arr.size), missing)
    return out


def group_by(records: Sequence[EvalRecord], key: str = "qtype") -> dict[str, list[EvalRecord]]:
    """Records grouped by an attribute (default the question type), groups sorted by name."""
    groups: dict[str, list[EvalRecord]] = {}
    for r in records:
        groups.setdefault(str(getattr(r, key, r.extra.get(key, "?"))), []).append(r)
    return dict(sorted(groups.items()))


@dataclass(frozen=True)
class Comparison:
    """Paired difference ``b - a`` of one metric over the questions both runs answered.

    ``significant`` is true when the confidence interval excludes 0.
    """

    metric: str
    mean_a: float
    mean_b: float
    diff: float
    low: float
    high: float
    n_pairs: int
    only_in_a: int
    only_in_b: int

    @property
    def significant(self) -> bool:
        return self.low > 0 or self.high < 0

    def __str__(self) -> str:
        verdict = "significant" if self.significant else "within noise"
        return (f"{self.metric}: {self.mean_a:.3f} -> {self.mean_b:.3f}, diff {self.diff:+.3f} "
                f"[{self.low:+.3f}, {self.high:+.3f}] over {self.n_pairs} questions ({verdict})")


def paired_comparison(run_a: Sequence[EvalRecord], run_b: Sequence[EvalRecord], metric: str, *,
                      n_boot: int = 2000, alpha: float = 0.05, seed: int = 0) -> Comparison:
    """Bootstrap CI of the mean per-question difference ``b - a`` (paired on ``qid``).

    Questions that only one run answered, or where either value is missing, are left out
    of the pairs and counted in ``only_in_a``/``only_in_b``.

    Example:
        >>> a = [EvalRecord(f"q{i}", answer_correctness=0.0) for i in range(20)]
        >>> b = [EvalRecord(f"q{i}", answer_correctness=1.0) for i in range(20)]
        >>> paired_comparison(a, b, "answer_correctness").significant
        True
    """
    va = {r.qid: r.value(metric) for r in run_a}
    vb = {r.qid: r.value(metric) for r in run_b}
    if len(va) != len(run_a) or len(vb) != len(run_b):
        raise InputError("a run has duplicate qids: pairing would be ambiguous")
    shared = [q for q in va if q in vb and va[q] is not None and vb[q] is not None]
    if not shared:
        raise InputError(f"the runs share no question with a value for {metric!r}")
    a = np.array([va[q] for q in shared], dtype=float)
    b = np.array([vb[q] for q in shared], dtype=float)
    diff, lo, hi = bootstrap_ci(b - a, n_boot=n_boot, alpha=alpha, seed=seed)
    return Comparison(metric, float(a.mean()), float(b.mean()), diff, lo, hi, len(shared),
                      len(set(va) - set(shared)), len(set(vb) - set(shared)))


# --------------------------------------------------------------------------- storage


@dataclass(frozen=True)
class StoredRun:
    """A run read back from a :class:`RunStore`."""

    run_id: str
    name: str
    created: float
    config: dict[str, Any]
    records: list[EvalRecord]


class RunStore:
    """Eval runs in SQLite: the configuration that produced each run, and its records.

    Args:
        path: a file path, or ``":memory:"``.

    Example:
        >>> store = RunStore(":memory:")
        >>> rid = store.save("baseline", {"k": 4}, [EvalRecord("q1", answer_correctness=1.0)])
        >>> store.load(rid).config, len(store.load(rid).records)
        ({'k': 4}, 1)
    """

    def __init__(self, path: str | Path = ":memory:") -> None:
        if str(path) != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        self.path = str(path)
        self._db = sqlite3.connect(self.path)
        self._db.executescript(
            "CREATE TABLE IF NOT EXISTS runs (run_id TEXT PRIMARY KEY, name TEXT NOT NULL, created REAL NOT NULL,"
            " config TEXT NOT NULL);"
            "CREATE TABLE IF NOT EXISTS records (run_id TEXT NOT NULL REFERENCES runs(run_id), qid TEXT NOT NULL,"
            " record TEXT NOT NULL, PRIMARY KEY (run_id, qid));"
        )

    def save(self, name: str, config: Mapping[str, Any], records: Sequence[EvalRecord]) -> str:
        """Store a run and return its id. The config must be JSON-serialisable (it is the run's provenance)."""
        if not name:
            raise InputError("a run needs a name")
        try:
            config_json = json.dumps(dict(config), sort_keys=True)
        except TypeError as exc:
            raise InputError(f"config must be JSON-serialisable: {exc}") from None
        qids = [r.qid for r in records]
        if len(set(qids)) != len(qids):
            raise InputError("records repeat a qid: one record per question")
        run_id = uuid.uuid4().hex[:12]
        with self._db:
            self._db.execute("INSERT INTO runs VALUES (?, ?, ?, ?)", (run_id, name, time.time(), config_json))
            self._db.executemany("INSERT INTO records VALUES (?, ?, ?)",
                                 [(run_id, r.qid, json.dumps(r.to_dict(), default=_json_default)) for r in records])
        return run_id

    def runs(self) -> list[dict[str, Any]]:
        """All runs, oldest first: ``run_id``, ``name``, ``created``, ``config``, ``n``."""
        rows = self._db.execute(
            "SELECT r.run_id, r.name, r.created, r.config, COUNT(x.qid) FROM runs r "
            "LEFT JOIN records x ON x.run_id = r.run_id GROUP BY r.run_id ORDER BY r.created, r.rowid").fetchall()
        return [{"run_id": a, "name": b, "created": c, "config": json.loads(d), "n": n} for a, b, c, d, n in rows]

    def load(self, run_id: str) -> StoredRun:
        """Read one run back (by id, or by name: the latest run of that name)."""
        row = self._db.execute("SELECT run_id, name, created, config FROM runs WHERE run_id = ?", (run_id,)).fetchone()
        if row is None:
            row = self._db.execute("SELECT run_id, name, created, config FROM runs WHERE name = ? "
                                   "ORDER BY created DESC, rowid DESC LIMIT 1", (run_id,)).fetchone()
        if row is None:
            raise InputError(f"no run with id or name {run_id!r} in {self.path}")
        recs = self._db.execute("SELECT record FROM records WHERE run_id = ? ORDER BY rowid", (row[0],)).fetchall()
        return StoredRun(row[0], row[1], row[2], json.loads(row[3]), [EvalRecord.from_dict(json.loads(r)) for (r,) in recs])

    def close(self) -> None:
        self._db.close()


def _json_default(value: Any) -> Any:
    if isinstance(value, (np.floating, np.integer)):
        return value.item()
    if isinstance(value, np.bool_):
        return bool(value)
    return str(value)
