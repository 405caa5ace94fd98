"""Unit tests for reference.evals.records (records, bootstrap CIs, storage, paired comparison)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from reference.cost import ModelPrice
from reference.errors import InputError
from reference.evals.records import (
    EvalRecord,
    RunStore,
    aggregate,
    bootstrap_ci,
    evaluate_answer,
    group_by,
    paired_comparison,
)


def test_bootstrap_ci_is_seeded_and_covers_the_mean():
    vals = [0, 1, 1, 0, 1, 1, 1, 0, 1, 1]
    a, b = bootstrap_ci(vals, seed=3), bootstrap_ci(vals, seed=3)
    assert a == b
    est, lo, hi = a
    assert est == pytest.approx(0.7) and lo < 0.7 < hi and 0 <= lo and hi <= 1


def test_bootstrap_rejects_nan_and_empty():
    with pytest.raises(InputError):
        bootstrap_ci([1.0, float("nan")])
    with pytest.raises(InputError):
        bootstrap_ci([])


def test_aggregate_counts_missing_instead_of_averaging():
    recs = [EvalRecord("a", faithfulness=1.0), EvalRecord("b", faithfulness=None),
            EvalRecord("c", faithfulness=float("nan")), EvalRecord("d", faithfulness=0.0)]
    s = aggregate(recs, ["faithfulness"])["faithfulness"]
    assert (s.n, s.n_missing, s.mean) == (2, 2, 0.5)
    empty = aggregate([EvalRecord("a")], ["faithfulness"])["faithfulness"]
    assert empty.n == 0 and math.isnan(empty.mean)


def test_retrieval_metrics_are_aggregated_too():
    recs = [EvalRecord("a", retrieval={"hit@5": 1.0}), EvalRecord("b", retrieval={"hit@5": 0.0})]
    assert aggregate(recs, ["hit@5"])["hit@5"].mean == 0.5


def test_evaluate_answer_fills_every_field():
    price = ModelPrice("m", "p", 1.0, 2.0)
    r = evaluate_answer("q1", "What is the payload?", "60 kg.", reference="60 kg", context="Payload up to 60 kg.",
                        cited=["d#p0#0"], retrieved=["d#p0#0"], supporting_docs=["d"], latency_s=0.25,
                        prompt_tokens=1000, completion_tokens=500, price=price, retrieval={"mrr": 1.0})
    assert r.answer_correctness == 1.0 and r.faithfulness == 1.0 and r.hallucination == 0.0
    assert r.latency_ms == pytest.approx(250.0)
    assert r.cost_usd == pytest.approx(0.002)
    assert r.citation_precision == 1.0 and r.citation_recall == 1.0 and r.refusal_correct == 1.0
    refusal = evaluate_answer("q2", "Wi-Fi password?", "I don't know.", reference="The documents do not say.",
                              context="x", answerable=False)
    assert refusal.refused and refusal.refusal_correct == 1.0 and refusal.answer_correctness == 1.0


def test_paired_comparison_detects_a_real_drop_and_not_noise():
    rng = np.random.default_rng(0)
    base = [EvalRecord(f"q{i}", answer_correctness=float(v)) for i, v in enumerate(rng.random(60) < 0.8)]
    same = [EvalRecord(r.qid, answer_correctness=r.answer_correctness) for r in base]
    worse = [EvalRecord(r.qid, answer_correctness=0.0 if i % 2 else r.answer_correctness) for i, r in enumerate(base)]
    assert not paired_comparison(base, same, "answer_correctness").significant
    cmp = paired_comparison(base, worse, "answer_correctness")
    assert cmp.significant and cmp.diff < 0 and cmp.high < 0 and cmp.n_pairs == 60


def test_paired_comparison_reports_unpaired_questions():
    a = [EvalRecord("q1", answer_correctness=1.0), EvalRecord("q2", answer_correctness=1.0)]
    b = [EvalRecord("q1", answer_correctness=0.0), EvalRecord("q3", answer_correctness=0.0)]
    cmp = paired_comparison(a, b, "answer_correctness")
    assert (cmp.n_pairs, cmp.only_in_a, cmp.only_in_b) == (1, 1, 1)
    with pytest.raises(InputError):
        paired_comparison(a, [EvalRecord("zz", answer_correctness=1.0)], "answer_correctness")


def test_run_store_round_trip(tmp_path):
    store = RunStore(tmp_path / "runs.sqlite")
    recs = [EvalRecord("q1", qtype="lookup", answer_correctness=1.0, retrieval={"mrr": 0.5}, extra={"x": [1]})]
    rid = store.save("baseline", {"retriever": "bm25", "k": 4}, recs)
    rid2 = store.save("baseline", {"retriever": "hybrid", "k": 4}, recs)
    loaded = store.load(rid)
    assert loaded.config == {"retriever": "bm25", "k": 4}
    assert loaded.records[0].retrieval == {"mrr": 0.5} and loaded.records[0].qtype == "lookup"
    assert store.load("baseline").run_id == rid2  # by name: the latest
    assert [r["n"] for r in store.runs()] == [1, 1]
    with pytest.raises(InputError):
        store.load("nope")
    with pytest.raises(InputError):
        store.save("dup", {}, recs + recs)
    with pytest.raises(InputError):
        store.save("bad", {"f": object()}, recs)


def test_group_by_question_type():
    recs = [EvalRecord("a", qtype="x"), EvalRecord("b", qtype="y"), EvalRecord("c", qtype="x")]
    assert {k: len(v) for k, v in group_by(recs).items()} == {"x": 2, "y": 1}
