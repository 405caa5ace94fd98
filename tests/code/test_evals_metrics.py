"""Unit tests for reference.evals.metrics (deterministic answer metrics)."""

from __future__ import annotations

import pytest

from reference.datasets import load_judgments
from reference.errors import InputError
from reference.evals import metrics as m


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("£1,250.00", [1250.0]),
        ("1250", [1250.0]),
        ("costs €74,000 per unit", [74000.0]),
        ("the NB-300 and error E-241 and P1", []),
        ("down to -5°C", [-5.0]),
        ("after 21:30", [21.5]),
        ("three docks", [3.0]),
        ("99.95% uptime", [99.95]),
        ("1.5k requests", [1500.0]),
    ],
)
def test_extract_numbers_normalises(text, expected):
    assert m.extract_numbers(text) == expected


def test_number_match_handles_currency_and_separators():
    assert m.number_match("It costs £1,250.00.", "1250") == 1.0
    assert m.number_match("It costs £1,200.", "1250") == 0.0
    assert m.number_match("anything", "no digits") is None


def test_dates_normalised_to_iso():
    assert m.extract_dates("1 April 2025 and 2024-01-01") == ["2025-04-01", "2024-01-01"]
    assert m.date_match("from April 1, 2025", "2025-04-01") == 1.0
    assert m.date_match("from 2 April 2025", "2025-04-01") == 0.0


def test_exact_match_and_f1():
    assert m.exact_match("The Waypoint Travel.", "waypoint travel") == 1.0
    assert m.exact_match("Waypoint", "Waypoint Travel") == 0.0
    assert m.token_f1("Waypoint Travel", "Waypoint Travel") == 1.0
    assert 0 < m.token_f1("Waypoint", "Waypoint Travel") < 1
    assert m.token_f1("", "x") == 0.0


def test_refusal_detection():
    assert m.is_refusal("I don't know based on the provided documents.")
    assert m.is_refusal("Sorry, the documents don't say how long tickets are kept.")
    assert not m.is_refusal("Tickets are kept for 3 years.")
    assert m.refusal_correct("I don't know.", answerable=False)
    assert not m.refusal_correct("It is 3 years.", answerable=False)


def test_correctness_rules():
    assert m.answer_correctness("No - its maximum payload is 60 kg.", "No. The maximum payload is 60 kg.").correct
    wrong_pol = m.answer_correctness("Yes, every expense needs one.", "No. Only over £25.")
    assert not wrong_pol.correct and "polarity" in wrong_pol.reason
    assert not m.answer_correctness("99.95% uptime", "99.9% uptime and 2 hours").correct
    assert m.answer_correctness("I don't know.", "The documents do not say.").correct
    assert not m.answer_correctness("40 spaces.", "The documents do not say.").correct
    assert not m.answer_correctness("I don't know.", "3 years after closure.").correct


def test_unanswerable_flag_overrides_the_reference_wording():
    ref = "Not stated; Northbeam has offices in Leeds, Rotterdam and Austin only."
    assert m.answer_correctness("I don't know based on the provided documents.", ref, answerable=False).correct
    assert not m.answer_correctness("The Singapore office is at 1 Main St.", ref, answerable=False).correct


def test_correctness_ignores_numbers_from_the_question():
    r = m.answer_correctness("Three docks.", "3 docks (10 need 3)", question="10 Couriers?")
    assert r.correct and r.details["key_numbers"] == [3.0]


def test_faithfulness_numbers_and_arithmetic():
    ctx = "One NB-Dock can serve up to 4 NB-100 robots in rotation."
    assert m.faithfulness("You need 3 docks.", ctx, question="How many docks for 10 robots?").faithful
    res = m.faithfulness("It carries 100 kg.", "The NB-100 carries totes up to 60 kg.")
    assert not res.faithful and res.claims[0].unsupported_numbers == [100.0]
    assert m.faithfulness("I don't know based on the provided documents.", "anything").refusal


def test_faithfulness_arithmetic_is_one_step_on_two_different_numbers():
    # a unit factor is for conversion only: 15 - 12 = 3 is not a derivation (it used to pass)
    res = m.faithfulness("Beacon Starter is free for up to 3 robots.", "Beacon Starter costs £15 per robot per month.")
    assert not res.faithful and res.claims[0].unsupported_numbers == [3.0]
    # a number times itself is not a derivation either: 10 x 10 = 100 used to pass
    ctx = "The NB-100 Courier carries totes up to 60 kg and runs for about 10 hours per charge."
    assert not m.faithfulness("Its rated payload is 100 kg.", ctx).faithful
    # conversions and steps on two different numbers still count
    assert m.faithfulness("That is 14 days.", "The notice period is 2 weeks.").faithful
    assert m.faithfulness("It takes 1.5 hours.", "The course takes 90 minutes.").faithful
    assert m.faithfulness("Together they carry 120 kg.", "Each tote holds up to 60 kg; a robot pulls 2 totes.").faithful


def test_faithfulness_checks_two_but_not_one():
    ctx = "One NB-Dock can serve up to 4 NB-100 robots in rotation."
    res = m.faithfulness("Two docks are enough.", ctx, question="How many docks do we need for 10 Couriers?")
    assert not res.faithful and res.claims[0].unsupported_numbers == [2.0]
    assert m.faithfulness("One dock serves four robots.", ctx).faithful
    assert m.faithfulness("Two docks are enough.", ctx, min_checked_number=3).faithful


def test_faithfulness_worked_example_numbers_must_be_consistent():
    ctx = "Beacon Starter costs £15 per robot per month."
    good = m.faithfulness("It costs £15 per robot, so for example, £150 a month for ten robots.", ctx)
    assert good.faithful
    bad = m.faithfulness("It costs £15 per robot, so for example, £170 a month for ten robots.", ctx)
    assert not bad.faithful and 170.0 in bad.claims[0].unsupported_numbers
    # outside an example or hypothetical the invented input is still unsupported
    assert not m.faithfulness("Ten robots cost £150 a month.", ctx).faithful
    # a hypothetical chain: each number follows from the context and the claim's other numbers
    docks = m.faithfulness("With 10 Couriers, two docks would cover only eight robots.",
                           "One NB-Dock can serve up to 4 NB-100 robots in rotation.",
                           question="How many docks do we need for 10 Couriers?")
    assert docks.faithful


@pytest.mark.parametrize(
    ("question", "context", "answer", "faithful"),
    [
        ("Can an NB-100 carry an 80 kg load?", "The NB-100 Courier carries totes up to 60 kg.",
         "Yes, the NB-100 can handle 80 kg comfortably.", False),
        ("Can an NB-100 carry an 80 kg load?", "The NB-100 Courier carries totes up to 60 kg.",
         "No, its limit is 60 kg.", True),
        ("Can an NB-100 carry a 50 kg load?", "The NB-100 Courier carries totes up to 60 kg.",
         "No, it cannot.", False),
        ("Do I need a receipt for an £18 lunch?", "Itemised receipts are mandatory for any single expense over £25.",
         "Yes, every expense needs a receipt.", False),
        ("Do I need a receipt for an £18 lunch?", "Itemised receipts are mandatory for any single expense over £25.",
         "No, only expenses over £25 need one.", True),
        # different unit: the limit says nothing about the question's quantity
        ("Can an NB-100 run for 12 hours?", "The NB-100 Courier carries totes up to 60 kg.", "Yes.", True),
        # a negated sentence is skipped: its direction is not clear from the words
        ("Do I need a receipt for an £18 lunch?", "Receipts are not required for expenses under £25.", "Yes.", True),
    ],
)
def test_faithfulness_yes_no_against_a_limit_in_the_context(question, context, answer, faithful):
    res = m.faithfulness(answer, context, question=question)
    assert res.faithful is faithful
    assert (res.claims[0].conflict is None) is faithful


def test_faithfulness_wrong_row_check_is_opt_in():
    ctx = ("Beacon uptime commitments are 99.5% for Starter, 99.9% for Pro and 99.95% for Enterprise. "
           "Priority-1 incidents get a first response within 30 minutes on Enterprise and 2 hours on Pro.")
    q = "What uptime and P1 response time does a Beacon Pro customer get?"
    wrong = "99.95% uptime and a 30-minute P1 response."
    assert m.faithfulness(wrong, ctx, question=q).faithful  # default: every number is in the context
    res = m.faithfulness(wrong, ctx, question=q, check_rows=True)
    assert not res.faithful and "99.95" in res.claims[0].misattributed
    assert m.faithfulness("99.9% uptime and a 2-hour P1 response.", ctx, question=q, check_rows=True).faithful
    tickets = ("CCTV footage is kept for 30 days unless needed for an investigation. "
               "Support tickets are retained for 3 years after closure.")
    assert not m.faithfulness("30 days.", tickets, question="How long do we keep support tickets?", check_rows=True).faithful
    assert m.faithfulness("3 years.", tickets, question="How long do we keep support tickets?", check_rows=True).faithful
    codes = ("Error E-214 means the lidar window is obstructed; clean the sensor window with a dry cloth. "
             "Error E-241 means the battery is over temperature; let the robot cool and check the dock fan.")
    res = m.faithfulness("E-241 means the lidar window is dirty.", codes, question="Courier shows E-241. What's wrong?",
                         check_rows=True)
    assert not res.faithful and res.claims[0].misattributed == ["e-241"]


def test_context_units_keep_bounds_and_skip_tables():
    units = m._context_units("Orders of 10 or more robots get an 8% discount; orders of 50 or more get 15%.")
    assert [sorted(v for _, v in u.anchors) for u in units] == [[8.0, 10.0], [15.0, 50.0]]
    assert m._context_units("Site | Leeds | Rotterdam\nTotal | 253 | 97") == []
    # values are typed by unit class, so hours never compete with kilograms
    types = dict(m._anchor_types("It carries 60 kg, runs 10 hours, costs £45 and E-241 is an error."))
    assert types[("n", 60.0)] == "kg" and types[("n", 10.0)] == "time" and types[("n", 45.0)] == "money"
    assert types[("i", "e-241")] == "e"


def test_faithfulness_question_must_be_a_string():
    with pytest.raises(InputError):
        m.faithfulness("It is 60 kg.", "60 kg", question=None)  # type: ignore[arg-type]


def test_faithfulness_flags_invented_identifiers():
    res = m.faithfulness("The NB-500 lists at a high price.", "The NB-300 lists at £74,000.")
    assert not res.faithful and "nb-500" in res.claims[0].unsupported_ids


def test_hallucination_is_the_negation_of_faithful():
    assert m.hallucination("The canteen password is Guest2025.", "The canteen opens at 11:30.")
    assert not m.hallucination("It opens at 11:30.", "The canteen opens at 11:30.")


def test_citation_accuracy():
    r = m.citation_accuracy(["a#p1#0", "z#p0#0"], ["a#p1#0", "b#p0#0"], ["a", "b"])
    assert r.invented == ["z#p0#0"] and r.precision == 0.5
    assert r.missing == ["b"] and r.recall == 0.5 and not r.accurate
    assert m.citation_accuracy([], [], []).accurate
    with pytest.raises(InputError):
        m.citation_accuracy("a", ["a"])


def test_relevance_overlap_and_embedder():
    from reference.embeddings import FakeEmbedder

    assert m.relevance("What is the NB-100 payload?", "The NB-100 payload is 60 kg.") == 1.0
    assert m.relevance("What is the payload?", "I don't know.") == 0.0
    assert 0.0 <= m.relevance("payload robot", "payload robot", FakeEmbedder()) <= 1.0 + 1e-6


def test_bad_input_is_a_clear_error():
    with pytest.raises(InputError):
        m.answer_correctness(None, "x")  # type: ignore[arg-type]


def test_agreement_with_human_labels_is_reported_per_label():
    js = load_judgments()
    faith = sum(m.faithfulness(j.answer, j.context, question=j.question).faithful == bool(j.labels.faithfulness)
                for j in js) / len(js)
    corr = sum(m.answer_correctness(j.answer, j.reference_answer, question=j.question).correct
               == bool(j.labels.correctness) for j in js) / len(js)
    # measured: correctness 0.968, faithfulness 0.839 (0.774 before the dev-half error analysis);
    # these floors catch a regression of the rules
    assert corr >= 0.9
    assert faith >= 0.8
    assert (faith + corr) / 2 >= 0.85


def test_agreement_on_the_held_out_half_does_not_regress():
    """The faithfulness rules were tuned on the "dev" half (sha256 of the question is even).

    The held-out half measured 0.767 before and after; this floor fails if a rule added
    for the dev half starts flagging good held-out answers.
    """
    import hashlib

    held_out = [j for j in load_judgments() if int(hashlib.sha256(j.question.encode()).hexdigest(), 16) % 2]
    assert len(held_out) == 43
    agree = sum(m.faithfulness(j.answer, j.context, question=j.question).faithful == bool(j.labels.faithfulness)
                for j in held_out) / len(held_out)
    assert agree >= 0.75
