"""Unit tests for reference.routing: rules, classifier, hybrid, evaluation against baselines."""

from __future__ import annotations

import pytest

from reference.embeddings import FakeEmbedder
from reference.errors import ConfigurationError, InputError
from reference.routing import ClassifierRouter, HybridRouter, RouteCosts, RuleRouter, evaluate_routes

EASY = ["What is the VPN address?", "Where is my order NB-ORD-4123?", "How do I reset my password?",
        "What time does the Leeds office open?", "Price of Beacon Pro?", "Is my ticket SUP-1001 closed?"]
HARD = ["Compare the total cost of 40 NB-100s versus 3 NB-300s over 5 years",
        "Estimate how many robots a 40,000 sq ft warehouse needs and show your reasoning",
        "Write a Python function that retries the Beacon API with backoff and tests for it",
        "Draft a careful reply to an angry customer about a late shipment and a refund",
        "Build a business case for moving from Starter to Enterprise with 60 robots",
        "Refactor this code to stream results and explain the trade-offs"]


@pytest.mark.parametrize(("text", "route"), [
    ("hi!", "cheap"), ("Thanks a lot", "cheap"), (HARD[0], "expensive"), (HARD[2], "expensive"),
    ("Draft an apology email to Acme", "expensive"), ("Where is my order NB-ORD-4123?", None),
])
def test_rules(text, route):
    assert RuleRouter().route(text) == route


def test_long_requests_go_expensive_and_rules_validate():
    assert RuleRouter(long_words=5).route("one two three four five six seven") == "expensive"
    assert RuleRouter(long_words=None).route("one two three four five six seven") is None
    with pytest.raises(ConfigurationError):
        RuleRouter([("x", "medium")])  # type: ignore[list-item]
    with pytest.raises(ConfigurationError):
        RuleRouter([("(", "cheap")])


def test_classifier_learns_and_threshold_trades_cost():
    texts = EASY + HARD
    labels = ["cheap"] * len(EASY) + ["expensive"] * len(HARD)
    clf = ClassifierRouter(FakeEmbedder(dim=128)).fit(texts, labels)
    assert clf.route_many(texts) == labels  # fits its training data
    p = clf.p_expensive(texts)
    assert p[: len(EASY)].max() < p[len(EASY):].min()
    assert set(clf.route_many(texts, threshold=0.0)) == {"expensive"}
    assert set(clf.route_many(texts, threshold=1.0)) <= {"cheap", "expensive"}
    with pytest.raises(ConfigurationError):
        ClassifierRouter(FakeEmbedder()).route("x")
    with pytest.raises(InputError):
        ClassifierRouter(FakeEmbedder()).fit(["a", "b"], ["cheap", "cheap"])
    with pytest.raises(InputError):
        ClassifierRouter(FakeEmbedder()).fit(["a"], ["cheap", "expensive"])


def test_hybrid_prefers_rules():
    clf = ClassifierRouter(FakeEmbedder()).fit(["hello there", "compare costs"] * 3, ["expensive", "cheap"] * 3)
    hybrid = HybridRouter(RuleRouter(), clf)
    assert hybrid.route("hi!") == "cheap"  # the rule wins over the (deliberately wrong) classifier


def test_evaluation_against_baselines():
    costs = RouteCosts.named("gpt-4o-mini", "gpt-4o")
    texts = EASY + HARD
    need = ["cheap"] * len(EASY) + ["expensive"] * len(HARD)
    cheap = evaluate_routes(texts, ["cheap"] * len(texts), need, costs)
    dear = evaluate_routes(texts, ["expensive"] * len(texts), need, costs)
    perfect = evaluate_routes(texts, need, need, costs)
    assert cheap["quality"] == 0.5 and cheap["under_routed"] == len(HARD)
    assert dear["quality"] == 1.0 and dear["over_routed"] == len(EASY) and dear["route_accuracy"] == 0.5
    assert cheap["cost_usd"] < perfect["cost_usd"] < dear["cost_usd"]
    assert perfect["route_accuracy"] == 1.0
    abstain = evaluate_routes(texts, [None] * len(texts), need, costs)
    assert abstain["cost_usd"] == pytest.approx(dear["cost_usd"])  # abstentions count as expensive
    with pytest.raises(InputError):
        evaluate_routes(texts, ["cheap"], need, costs)
