"""The eval gate in pytest: it fails on a regressed run and passes on an equal one."""

from __future__ import annotations

import pytest

from reference.errors import InputError
from reference.evals.gate import GateFailure, GateRule, assert_gate, check_gate
from reference.evals.records import EvalRecord

RULES = [GateRule("answer_correctness", min_value=0.6), GateRule("latency_ms", max_value=500, higher_is_better=False)]


def _run(correct_every: int = 0, latency: float = 100.0, n: int = 60) -> list[EvalRecord]:
    """A run where every ``correct_every``-th answer (if set) is wrong; otherwise 90% correct."""
    out = []
    for i in range(n):
        ok = i % 10 != 0 and not (correct_every and i % correct_every == 0)
        out.append(EvalRecord(f"q{i}", answer_correctness=float(ok), latency_ms=latency))
    return out


def test_gate_passes_on_an_equal_run():
    baseline = _run()
    assert_gate(_run(), RULES, baseline=baseline)


def test_gate_catches_a_regression_against_the_baseline():
    baseline, regressed = _run(), _run(correct_every=3)  # still above the 0.6 floor, but clearly worse
    with pytest.raises(GateFailure, match="regressed"):
        assert_gate(regressed, RULES, baseline=baseline)


def test_gate_floor_and_ceiling():
    report = check_gate(_run(correct_every=2, latency=900), RULES)
    assert not report.passed
    assert any("floor" in f for f in report.failures) and any("ceiling" in f for f in report.failures)


def test_gate_fails_when_values_are_missing():
    run = _run()
    run[0].answer_correctness = None
    assert not check_gate(run, [GateRule("answer_correctness")]).passed
    assert check_gate(run, [GateRule("answer_correctness", max_missing=0.05)]).passed


def test_latency_regression_uses_lower_is_better():
    rules = [GateRule("latency_ms", higher_is_better=False, tolerance=10)]
    assert not check_gate(_run(latency=200), rules, baseline=_run(latency=100)).passed
    assert check_gate(_run(latency=105), rules, baseline=_run(latency=100)).passed


def test_empty_run_never_passes():
    with pytest.raises(InputError):
        check_gate([], RULES)
