"""Unit tests for reference.evals.retrieval: hand-computed cases and a cross-check with scikit-learn."""

from __future__ import annotations

import math

import numpy as np
import pytest

from reference.errors import InputError
from reference.evals.retrieval import (
    by_group, evaluate_run, hit_at_k, mean_metrics, ndcg_at_k, precision_at_k, recall_at_k, reciprocal_rank,
    to_doc_ranking,
)

R = ["x", "a", "y", "b", "z"]
REL = {"a", "b", "c"}


def test_hand_computed():
    assert hit_at_k(R, REL, 1) == 0.0 and hit_at_k(R, REL, 2) == 1.0
    assert recall_at_k(R, REL, 4) == pytest.approx(2 / 3)
    assert precision_at_k(R, REL, 4) == 0.5
    assert precision_at_k(["a"], REL, 5) == pytest.approx(0.2)
    assert reciprocal_rank(R, REL) == 0.5
    assert reciprocal_rank(["x"], REL) == 0.0
    dcg = 1 / math.log2(3) + 1 / math.log2(5)
    ideal = 1 + 1 / math.log2(3) + 1 / math.log2(4)
    assert ndcg_at_k(R, REL, 5) == pytest.approx(dcg / ideal)
    assert ndcg_at_k(["a", "b", "c"], REL, 3) == pytest.approx(1.0)


def test_bad_input():
    with pytest.raises(InputError):
        hit_at_k(R, set(), 3)
    with pytest.raises(InputError):
        hit_at_k(R, REL, 0)
    with pytest.raises(InputError):
        recall_at_k("abc", REL, 1)


def test_doc_ranking_dedupes():
    assert to_doc_ranking(["a#1", "b#1", "a#2", "c#1"]) == ["a", "b", "c"]
    assert to_doc_ranking(["u", "v"], {"u": "A", "v": "A"}) == ["A"]


@pytest.mark.parametrize("seed", range(5))
def test_ndcg_matches_sklearn(seed):
    from sklearn.metrics import ndcg_score

    rng = np.random.default_rng(seed)
    docs = [f"d{i}" for i in range(12)]
    relevant = set(rng.choice(docs, size=3, replace=False))
    ranking = list(rng.permutation(docs))
    scores = np.array([[len(docs) - ranking.index(d) for d in docs]], dtype=float)
    truth = np.array([[1.0 if d in relevant else 0.0 for d in docs]])
    for k in (1, 3, 5, 10):
        assert ndcg_at_k(ranking, relevant, k) == pytest.approx(ndcg_score(truth, scores, k=k))


def test_run_and_groups():
    run = {"q1": ["a", "x"], "q2": ["x", "y"], "q3": ["b"]}
    qrels = {"q1": {"a"}, "q2": {"b"}, "q3": {"b"}, "q4": {"c"}, "q5": set()}
    rows = evaluate_run(run, qrels, groups={"q1": "t", "q2": "t", "q3": "u", "q4": "u"})
    assert [r["qid"] for r in rows] == ["q1", "q2", "q3", "q4"]  # q5 has no relevant ids; q4 missing -> zeros
    g = by_group(rows, ["hit@1", "mrr"])
    assert g["t"]["hit@1"] == 0.5 and g["u"]["hit@1"] == 0.5 and g["all"]["n"] == 4
    assert mean_metrics([], ["mrr"])["n"] == 0
