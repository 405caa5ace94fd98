"""Unit tests for reference.evals.judge (LLM-as-judge with FakeChatModel; no real model)."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import cohen_kappa_score

from reference.errors import InputError, OutputParseError
from reference.evals.judge import (
    LLMJudge,
    calibrate,
    cohen_kappa,
    confusion_matrix,
    parse_pair,
    parse_verdict,
    position_bias,
    verbosity_bias,
)
from reference.llm import FakeChatModel

ARGS = ("How many docks for 10 robots?", "One dock serves 4 robots.", "3 docks.", "3 docks")


def test_parse_verdict_accepts_prose_and_string_booleans():
    assert parse_verdict('Here: {"faithful": "yes", "correct": 0}') == (True, False)


@pytest.mark.parametrize("bad", ["", "no json here", '{"faithful": true', '{"faithful": true}',
                                 '{"faithful": "maybe", "correct": true}', "[1, 2]"])
def test_parse_verdict_rejects_malformed(bad):
    with pytest.raises(OutputParseError):
        parse_verdict(bad)


def test_judge_retries_after_malformed_output_then_succeeds():
    fake = FakeChatModel(responses=['{"faithful": tru', '{"faithful": true, "correct": true}'])
    v = LLMJudge(fake, max_retries=2).judge(*ARGS)
    assert (v.faithful, v.correct, v.attempts) == (True, True, 2)
    assert len(fake.calls) == 2
    # the retry shows the model its bad reply and the parse error
    assert fake.calls[1][-2] == {"role": "assistant", "content": '{"faithful": tru'}
    assert "not valid" in fake.calls[1][-1]["content"]


def test_judge_raises_output_parse_error_when_retries_are_exhausted():
    fake = FakeChatModel(responses=["I think it is fine!"])
    with pytest.raises(OutputParseError, match="after 3 attempts") as info:
        LLMJudge(fake, max_retries=2).judge(*ARGS)
    assert info.value.raw == "I think it is fine!"
    assert len(fake.calls) == 3


def test_judge_sends_the_json_schema():
    seen = {}

    class Spy(FakeChatModel):
        def _generate(self, messages, **kwargs):
            seen.update(kwargs)
            return super()._generate(messages, **kwargs)

    LLMJudge(Spy(responses=['{"faithful": false, "correct": false}'])).judge(*ARGS)
    schema = seen["response_format"]["json_schema"]["schema"]
    assert schema["required"] == ["faithful", "correct"]


def test_judge_rejects_empty_answer():
    with pytest.raises(InputError):
        LLMJudge(FakeChatModel()).judge("q", "c", "  ", "r")


def test_compare_parses_pair_verdicts():
    assert LLMJudge(FakeChatModel(responses=['{"better": "B"}'])).compare("q", "c", "x", "y").better == "B"
    assert parse_pair('{"better": "a"}') == "A"
    with pytest.raises(OutputParseError):
        parse_pair('{"better": "C"}')


def test_kappa_matches_sklearn():
    rng = np.random.default_rng(7)
    for _ in range(20):
        h = rng.integers(0, 2, 40)
        j = np.where(rng.random(40) < 0.7, h, 1 - h)
        assert cohen_kappa(h, j) == pytest.approx(cohen_kappa_score(h, j))


def test_calibration_of_an_always_yes_judge_has_zero_kappa():
    human = [1] * 57 + [0] * 43
    c = calibrate(human, [1] * 100, "faithfulness")
    assert c.agreement == pytest.approx(0.57) and c.kappa == pytest.approx(0.0)
    assert c.matrix.tolist() == [[0, 43], [0, 57]]


def test_confusion_matrix_validates():
    assert confusion_matrix([True, False], [1, 1]).tolist() == [[0, 1], [0, 1]]
    with pytest.raises(InputError):
        confusion_matrix([1, 0], [1])
    with pytest.raises(InputError):
        confusion_matrix([2], [1])


def test_position_bias_of_a_judge_that_always_picks_the_first():
    pairs = [(f"p{i}", "q", "c", "good", "bad", 0) for i in range(4)]
    res = position_bias(pairs, lambda q, c, a, b: "A")
    assert res.consistent == 0.0 and res.first_preferred == 1.0 and res.accuracy == 0.5 and len(res.flips) == 4


def test_position_bias_of_a_fair_judge():
    pairs = [(f"p{i}", "q", "c", "good", "bad", 0) for i in range(3)] + [("p9", "q", "c", "bad", "good", 1)]
    res = position_bias(pairs, lambda q, c, a, b: "A" if a == "good" else "B")
    assert res.consistent == 1.0 and res.accuracy == 1.0 and res.first_preferred == pytest.approx(0.5)


def test_verbosity_bias_separates_long_and_short():
    lengths = [400, 420, 10, 12]
    human = [0, 0, 0, 0]
    judge = [1, 1, 0, 1]
    out = verbosity_bias(lengths, human, judge)
    assert out["false_accept_long"] == 1.0 and out["false_accept_short"] == 0.5
