"""A regression gate for evals, usable from pytest or any CI step.

A gate has rules, one per metric:

* an **absolute floor** (``min_value``): the run's mean must not fall below it;
* an **absolute ceiling** (``max_value``) for lower-is-better metrics such as latency;
* a **regression check** against a stored baseline run: the paired bootstrap confidence
  interval of ``current - baseline`` must not lie entirely beyond ``tolerance`` in the
  bad direction. A drop smaller than the noise passes; a drop the interval is sure of fails.

:func:`check_gate` returns a :class:`GateReport`; :func:`assert_gate` raises
:class:`GateFailure` (an ``AssertionError``, so pytest shows it as a test failure) with
one line per broken rule.

Example:
    >>> from reference.evals.records import EvalRecord
    >>> run = [EvalRecord(f"q{i}", answer_correctness=1.0) for i in range(10)]
    >>> check_gate(run, [GateRule("answer_correctness", min_value=0.8)]).passed
    True
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from reference.errors import InputError
from reference.evals.records import EvalRecord, aggregate, paired_comparison

__all__ = ["GateRule", "GateReport", "GateFailure", "check_gate", "assert_gate"]


class GateFailure(AssertionError):
    """The eval gate failed; the message lists every broken rule."""


@dataclass(frozen=True)
class GateRule:
    """One metric's conditions.

    Attributes:
        metric: a record metric (``answer_correctness``) or a retrieval metric (``hit@5``).
        min_value: fail when the run mean is below this (``None``: no floor).
        max_value: fail when the run mean is above this (``None``: no ceiling).
        higher_is_better: direction used by the regression check.
        tolerance: allowed drop (in metric units) before a significant regression fails.
        max_missing: fail when more than this share of values is missing (e.g. NaN judge scores).
    """

    metric: str
    min_value: float | None = None
    max_value: float | None = None
    higher_is_better: bool = True
    tolerance: float = 0.0
    max_missing: float = 0.0


@dataclass
class GateReport:
    """What :func:`check_gate` found."""

    passed: bool
    failures: list[str] = field(default_factory=list)
    lines: list[str] = field(default_factory=list)

    def __str__(self) -> str:
        head = "GATE PASSED" if self.passed else f"GATE FAILED ({len(self.failures)} rule(s))"
        return "\n".join([head, *self.lines])


def check_gate(current: Sequence[EvalRecord], rules: Sequence[GateRule], baseline: Sequence[EvalRecord] | None = None,
               *, n_boot: int = 2000, seed: int = 0) -> GateReport:
    """Apply ``rules`` to ``current`` (and against ``baseline`` when given).

    Example:
        >>> from reference.evals.records import EvalRecord
        >>> base = [EvalRecord(f"q{i}", answer_correctness=1.0) for i in range(30)]
        >>> worse = [EvalRecord(f"q{i}", answer_correctness=float(i % 2)) for i in range(30)]
        >>> check_gate(worse, [GateRule("answer_correctness")], baseline=base).passed
        False
    """
    if not current:
        raise InputError("the current run has no records: an empty run must not pass a gate")
    if not rules:
        raise InputError("a gate needs at least one rule")
    report = GateReport(passed=True)
    summaries = aggregate(current, [r.metric for r in rules], n_boot=n_boot, seed=seed)
    for rule in rules:
        s = summaries[rule.metric]
        total = s.n + s.n_missing
        missing_share = s.n_missing / total if total else 1.0
        problems: list[str] = []
        if s.n == 0:
            problems.append("no values")
        if missing_share > rule.max_missing:
            problems.append(f"{s.n_missing}/{total} values missing (allowed {rule.max_missing:.0%})")
        if s.n and rule.min_value is not None and s.mean < rule.min_value:
            problems.append(f"mean {s.mean:.3f} < floor {rule.min_value:.3f}")
        if s.n and rule.max_value is not None and s.mean > rule.max_value:
            problems.append(f"mean {s.mean:.3f} > ceiling {rule.max_value:.3f}")
        line = f"{rule.metric}: {s.mean:.3f} [{s.low:.3f}, {s.high:.3f}] n={s.n}"
        if baseline is not None and s.n:
            cmp = paired_comparison(baseline, current, rule.metric, n_boot=n_boot, seed=seed)
            line += f"; vs baseline {cmp.diff:+.3f} [{cmp.low:+.3f}, {cmp.high:+.3f}]"
            worse = cmp.high < -rule.tolerance if rule.higher_is_better else cmp.low > rule.tolerance
            if worse:
                problems.append(f"regressed {cmp.diff:+.3f} vs baseline (CI [{cmp.low:+.3f}, {cmp.high:+.3f}] "
                                f"is entirely worse than tolerance {rule.tolerance:g})")
        if problems:
            report.passed = False
            report.failures.append(f"{rule.metric}: " + "; ".join(problems))
            line = "FAIL " + line + " -> " + "; ".join(problems)
        else:
            line = "ok   " + line
        report.lines.append(line)
    return report


def assert_gate(current: Sequence[EvalRecord], rules: Sequence[GateRule], baseline: Sequence[EvalRecord] | None = None,
                **kwargs: int) -> GateReport:
    """Like :func:`check_gate`, but raise :class:`GateFailure` when a rule is broken.

    Example:
        >>> from reference.evals.records import EvalRecord
        >>> assert_gate([EvalRecord("q1", answer_correctness=0.0)], [GateRule("answer_correctness", min_value=0.5)])
        Traceback (most recent call last):
        ...
        reference.evals.gate.GateFailure: GATE FAILED (1 rule(s))
        FAIL answer_correctness: 0.000 [0.000, 0.000] n=1 -> mean 0.000 < floor 0.500
    """
    report = check_gate(current, rules, baseline, **kwargs)
    if not report.passed:
        raise GateFailure(str(report))
    return report
