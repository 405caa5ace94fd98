"""Ranking metrics for retrieval, over ranked ids against a set of relevant ids.

All metrics use binary relevance and take the ranking as a list of ids, best first
(usually doc ids; map chunk ids to doc ids with :func:`to_doc_ranking` first, which
keeps the first occurrence of each document so one document cannot count twice).

* ``hit@k``: 1 if any relevant id is in the top ``k``.
* ``recall@k``: share of the relevant ids found in the top ``k``.
* ``precision@k``: share of the top ``k`` that is relevant (divides by ``k``).
* ``MRR``: ``1 / rank`` of the first relevant id (0 if none), averaged over queries.
* ``nDCG@k``: DCG with gain 1 and discount ``1 / log2(rank + 1)``, divided by the DCG of
  a perfect ranking of ``min(k, |relevant|)`` relevant ids.

Example:
    >>> round(ndcg_at_k(["a", "b", "c"], {"b"}, 3), 4)
    0.6309
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

from reference.errors import InputError

__all__ = [
    "hit_at_k", "recall_at_k", "precision_at_k", "reciprocal_rank", "ndcg_at_k", "to_doc_ranking",
    "evaluate_query", "evaluate_run", "mean_metrics", "by_group", "METRICS",
]


def _check(ranking: Sequence[str], relevant: Iterable[str], k: int | None = None) -> set[str]:
    if isinstance(ranking, str):
        raise InputError("ranking must be a list of ids, not a string")
    if k is not None and k < 1:
        raise InputError(f"k must be >= 1, got {k}")
    rel = set(relevant)
    if not rel:
        raise InputError("relevant is empty: ranking metrics are undefined without a relevant id "
                         "(score unanswerable questions separately)")
    return rel


def hit_at_k(ranking: Sequence[str], relevant: Iterable[str], k: int) -> float:
    """1.0 if a relevant id is in the top ``k``, else 0.0.

    Example:
        >>> hit_at_k(["x", "a"], {"a"}, 1), hit_at_k(["x", "a"], {"a"}, 2)
        (0.0, 1.0)
    """
    rel = _check(ranking, relevant, k)
    return float(any(r in rel for r in ranking[:k]))


def recall_at_k(ranking: Sequence[str], relevant: Iterable[str], k: int) -> float:
    """Share of relevant ids in the top ``k``.

    Example:
        >>> recall_at_k(["a", "x", "b"], {"a", "b"}, 2)
        0.5
    """
    rel = _check(ranking, relevant, k)
    return len(rel & set(ranking[:k])) / len(rel)


def precision_at_k(ranking: Sequence[str], relevant: Iterable[str], k: int) -> float:
    """Share of the top ``k`` positions holding a relevant id (a short ranking is padded with misses).

    Example:
        >>> precision_at_k(["a", "x"], {"a"}, 4)
        0.25
    """
    rel = _check(ranking, relevant, k)
    return sum(1 for r in ranking[:k] if r in rel) / k


def reciprocal_rank(ranking: Sequence[str], relevant: Iterable[str]) -> float:
    """``1 / rank`` of the first relevant id; 0.0 when none is ranked.

    Example:
        >>> reciprocal_rank(["x", "y", "a"], {"a"})
        0.3333333333333333
    """
    rel = _check(ranking, relevant)
    for i, r in enumerate(ranking, start=1):
        if r in rel:
            return 1.0 / i
    return 0.0


def ndcg_at_k(ranking: Sequence[str], relevant: Iterable[str], k: int) -> float:
    """Binary-gain nDCG@k (see the module docstring)."""
    rel = _check(ranking, relevant, k)
    dcg = sum(1.0 / math.log2(i + 1) for i, r in enumerate(ranking[:k], start=1) if r in rel)
    ideal = sum(1.0 / math.log2(i + 1) for i in range(1, min(k, len(rel)) + 1))
    return dcg / ideal


def to_doc_ranking(chunk_ids: Iterable[str], doc_of: Callable[[str], str] | Mapping[str, str] | None = None) -> list[str]:
    """Map a chunk ranking to a document ranking, keeping each document's first position.

    ``doc_of`` maps a chunk id to its doc id; by default the part before the first ``#``.

    Example:
        >>> to_doc_ranking(["a#p1#0", "a#p2#1", "b#p0#0"])
        ['a', 'b']
    """
    if doc_of is None:
        lookup: Callable[[str], str] = lambda c: c.split("#", 1)[0]  # noqa: E731
    elif isinstance(doc_of, Mapping):
        lookup = doc_of.__getitem__
    else:
        lookup = doc_of
    seen: dict[str, None] = {}
    for c in chunk_ids:
        seen.setdefault(lookup(c), None)
    return list(seen)


METRICS = ("hit@1", "hit@3", "hit@5", "recall@5", "precision@5", "mrr", "ndcg@10")


def evaluate_query(ranking: Sequence[str], relevant: Iterable[str], ks: Sequence[int] = (1, 3, 5, 10)) -> dict[str, float]:
    """Every metric for one query: ``hit@k``, ``recall@k``, ``precision@k``, ``ndcg@k`` per k, and ``mrr``."""
    rel = _check(ranking, relevant)
    out: dict[str, float] = {}
    for k in ks:
        out[f"hit@{k}"] = hit_at_k(ranking, rel, k)
        out[f"recall@{k}"] = recall_at_k(ranking, rel, k)
        out[f"precision@{k}"] = precision_at_k(ranking, rel, k)
        out[f"ndcg@{k}"] = ndcg_at_k(ranking, rel, k)
    out["mrr"] = reciprocal_rank(ranking, rel)
    return out


def evaluate_run(
    run: Mapping[str, Sequence[str]], qrels: Mapping[str, Iterable[str]], *,
    groups: Mapping[str, str] | None = None, ks: Sequence[int] = (1, 3, 5, 10),
) -> list[dict[str, Any]]:
    """Per-query metric rows for a run ``{query_id: ranking}`` against ``{query_id: relevant ids}``.

    Queries with no relevant ids are skipped; a query missing from ``run`` counts as an
    empty ranking (all zeros), never silently dropped. ``groups`` adds a ``group`` column
    (e.g. the question type).
    """
    rows = []
    for qid, rel in qrels.items():
        rel = set(rel)
        if not rel:
            continue
        row: dict[str, Any] = {"qid": qid, **evaluate_query(list(run.get(qid, [])), rel, ks)}
        if groups is not None:
            row["group"] = groups.get(qid, "?")
        rows.append(row)
    return rows


def mean_metrics(rows: Sequence[Mapping[str, Any]], metrics: Sequence[str] = METRICS) -> dict[str, float]:
    """Average each metric over rows (plus ``n``)."""
    if not rows:
        return {"n": 0, **{m: float("nan") for m in metrics}}
    return {"n": len(rows), **{m: sum(float(r[m]) for r in rows) / len(rows) for m in metrics}}


def by_group(rows: Sequence[Mapping[str, Any]], metrics: Sequence[str] = METRICS,
             key: str = "group") -> dict[str, dict[str, float]]:
    """:func:`mean_metrics` per group value, plus ``"all"``.

    Example:
        >>> rows = evaluate_run({"q1": ["a"], "q2": ["x"]}, {"q1": {"a"}, "q2": {"b"}}, groups={"q1": "t", "q2": "u"})
        >>> by_group(rows, ["hit@1"])["t"]["hit@1"], by_group(rows, ["hit@1"])["all"]["hit@1"]
        (1.0, 0.5)
    """
    grouped: dict[str, list[Mapping[str, Any]]] = defaultdict(list)
    for r in rows:
        grouped[str(r.get(key, "?"))].append(r)
    out = {g: mean_metrics(rs, metrics) for g, rs in sorted(grouped.items())}
    out["all"] = mean_metrics(rows, metrics)
    return out
