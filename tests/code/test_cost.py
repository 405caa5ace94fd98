"""Unit tests for reference.cost: token counts, prices, costs, projections, budget guard."""

from __future__ import annotations

import pytest

from reference.cost import (
    BudgetExceededError,
    BudgetGuard,
    ModelPrice,
    RunCost,
    TrafficProfile,
    UnknownModelPriceError,
    call_cost,
    count_message_tokens,
    count_tokens,
    get_price,
    monthly_cost,
    price_table_info,
    usage_cost,
)
from reference.errors import ConfigurationError, InputError
from reference.llm import FakeChatModel, Usage

PRICE = ModelPrice("m", "test", input_per_mtok=1.0, output_per_mtok=4.0, cached_input_per_mtok=0.5)
USER = [{"role": "user", "content": "Where is my order?"}]


def test_tiktoken_counts_offline_and_differ_by_encoding():
    assert count_tokens("Hello world", "gpt-4o-mini") == 2
    text = "Northbeam's NB-300 Lifter carries 1,200 kg pallets."
    assert count_tokens(text, "gpt-4o") > 5
    assert count_tokens("", "gpt-4o") == 0
    # an unknown model name falls back to o200k_base instead of failing
    assert count_tokens(text, "some-new-model") == count_tokens(text, "gpt-4o")


def test_local_model_needs_its_tokenizer():
    with pytest.raises(InputError, match="tokenizer"):
        count_tokens("hello", "smollm2-135m-instruct")

    class Tok:
        provider = "local"

        def count_tokens(self, text):
            return len(text)

    assert count_tokens("hello", "smollm2-135m-instruct", llm=Tok()) == 5


def test_message_tokens_add_overhead():
    plain = count_tokens("Where is my order?", "gpt-4o-mini")
    assert count_message_tokens(USER, "gpt-4o-mini") == plain + 3 + 3 + 1  # per message, priming, role
    with pytest.raises(InputError):
        count_tokens(42, "gpt-4o")  # type: ignore[arg-type]


def test_prices_come_from_a_dated_table():
    mini, big = get_price("gpt-4o-mini"), get_price("gpt-4o")
    assert 0 < mini.input_per_mtok < big.input_per_mtok
    assert mini.output_per_mtok > mini.input_per_mtok
    assert mini.source and mini.as_of
    info = price_table_info()
    assert info["as_of"][:4].isdigit() or info["as_of"].startswith("unknown")
    assert get_price("smollm2-135m-instruct").input_per_mtok == 0.0
    with pytest.raises(UnknownModelPriceError):
        get_price("no-such-model-xyz")


def test_fallback_table_agrees_with_genai_prices():
    pytest.importorskip("genai_prices")
    from reference.cost import _fallback_table

    for name, row in _fallback_table()["models"].items():
        live = get_price(name)
        assert live.input_per_mtok == pytest.approx(row["input_per_mtok"]), name
        assert live.output_per_mtok == pytest.approx(row["output_per_mtok"]), name


def test_costs_of_usage_and_calls():
    assert usage_cost(Usage(1_000_000, 0), PRICE) == pytest.approx(1.0)
    assert usage_cost(Usage(0, 500_000), PRICE) == pytest.approx(2.0)
    assert PRICE.cost(1_000_000, 0, cached_prompt_tokens=1_000_000) == pytest.approx(0.5)
    with pytest.raises(InputError):
        PRICE.cost(10, 0, cached_prompt_tokens=20)
    r = FakeChatModel(responses=["one two three"]).chat(USER)
    assert call_cost(r, PRICE) == pytest.approx((r.usage.prompt_tokens * 1 + 3 * 4) / 1e6)


def test_run_cost_accumulates_per_model():
    run = RunCost(price=PRICE)
    run.add(Usage(100, 10))
    run.add(Usage(200, 20), latency_s=0.5)
    assert run.calls == 2 and run.prompt_tokens == 300 and run.completion_tokens == 30
    assert run.cost_usd == pytest.approx((300 + 30 * 4) / 1e6)
    assert run.by_model["m"]["calls"] == 2 and run.latency_s == 0.5
    with pytest.raises(InputError):
        run.add("not usage")  # type: ignore[arg-type]


def test_monthly_projection_with_cache():
    profile = TrafficProfile(requests_per_day=1000, prompt_tokens=1000, completion_tokens=250, days=30)
    full = monthly_cost(profile, PRICE)
    assert full["model_calls"] == 30_000
    assert full["cost_usd"] == pytest.approx(30_000 * (1000 + 1000) / 1e6)
    half = monthly_cost(TrafficProfile(1000, 1000, 250, cache_hit_rate=0.5), PRICE)
    assert half["cost_usd"] == pytest.approx(full["cost_usd"] / 2)
    with pytest.raises(InputError):
        TrafficProfile(1000, 1000, 250, cache_hit_rate=1.5)


def test_budget_guard_stops_before_the_overspending_call():
    llm = FakeChatModel(responses=["word " * 10])
    guard = BudgetGuard(0.0002, PRICE)
    made = 0
    with pytest.raises(BudgetExceededError, match="job stopped"):
        for _ in range(1000):
            guard.chat(llm, USER, max_tokens=20)
            made += 1
    assert 0 < made < 1000
    assert guard.spent_usd <= guard.limit_usd
    assert len(llm.calls) == made  # the refused call was never sent


def test_budget_guard_releases_failed_calls_and_caps_calls():
    from reference.errors import RateLimitError

    guard = BudgetGuard(1.0, PRICE, max_calls=2)
    with pytest.raises(RateLimitError):
        guard.chat(FakeChatModel(responses=[RateLimitError("429")]), USER)
    assert guard.spent_usd == 0 and guard._reserved == 0
    ok = FakeChatModel(responses=["fine"])
    guard.chat(ok, USER)
    guard.chat(ok, USER)
    with pytest.raises(BudgetExceededError, match="calls"):
        guard.chat(ok, USER)
    with pytest.raises(ConfigurationError):
        BudgetGuard(0, PRICE)


@pytest.mark.slow
def test_local_token_count_matches_the_models_usage():
    from reference.llm import get_chat_model

    llm = get_chat_model("local")
    r = llm.chat(USER, max_tokens=4)
    assert count_message_tokens(USER, "smollm2-135m-instruct", llm=llm) == r.usage.prompt_tokens
    assert count_tokens("Where is my order?", "smollm2-135m-instruct", llm=llm) > 0
    assert call_cost(r) == 0.0  # self-hosted: no per-token price
    assert call_cost(r, "gpt-4o-mini") > 0
