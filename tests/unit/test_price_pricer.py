"""Per-token pricing, hand-computed: token kinds, tiers, dates, discounts, unpriced calls."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import pytest

from breakeven.collector.price.book import Discount, PriceBook
from breakeven.collector.price.pricer import NO_MODEL, NO_PRICE, NO_PROVIDER, NO_USAGE, Priced, Pricer, Unpriced
from breakeven.collector.records import Call
from tests.pricecalls import call, catalog, entry

# List prices the fake catalog knows (USD per million tokens).
GPT = entry("openai", "gpt-x", input="2.50", cache_read="1.25", output="10.00")
CLAUDE = entry("anthropic", "claude-x", input="3.00", cache_read="0.30", cache_write="3.75", output="15.00")
GEMINI = entry(
    "gcp.gemini",
    "gemini-x",
    input="1.25",
    cache_read="0.125",
    output="10.00",
    tiers={"input": [(200_000, "2.50")], "cache_read": [(200_000, "0.25")], "output": [(200_000, "15.00")]},
)
REASONER = entry("perplexity", "reasoner-x", input="2.00", output="8.00", reasoning="3.00")
LIST = catalog(GPT, CLAUDE, GEMINI, REASONER)

# The book: a price change for a managed model, a negotiated net price, an override.
LLAMA_JAN = entry("together", "llama-x", input="0.88", output="0.88", effective_from=date(2025, 1, 1), source="book")
LLAMA_JUN = entry("together", "llama-x", input="0.60", output="0.90", effective_from=date(2025, 6, 1), source="book")
GPT_OVERRIDE = entry("openai", "gpt-x", input="2.00", output="8.00", effective_from=date(2025, 7, 1), source="book")
DEPLOYMENT = entry(
    "azure.ai.openai", "acme-gpt", input="1.00", output="4.00", effective_from=date(2025, 1, 1), source="book"
)
NET = entry("anthropic", "claude-net", input="2.00", output="10.00", effective_from=date(2025, 1, 1), net=True)
BOOK = PriceBook(
    entries=(LLAMA_JAN, LLAMA_JUN, GPT_OVERRIDE, DEPLOYMENT, NET),
    discounts=(
        Discount("anthropic", Decimal("10"), date(2025, 3, 1)),
        Discount("anthropic", Decimal("0"), date(2025, 9, 1)),  # the agreement ended
    ),
)
PRICER = Pricer(BOOK, catalog=LIST)


@pytest.mark.parametrize(
    ("the_call", "cost", "lines"),
    [
        pytest.param(
            # OpenAI reports 10,000 prompt tokens of which 4,000 cached; normalized: 6,000 + 4,000.
            call(provider="openai", model="gpt-x", input=6_000, cache_read=4_000, output=500),
            Decimal("0.025"),  # 6,000 x 2.50/1e6 = 0.015; 4,000 x 1.25/1e6 = 0.005; 500 x 10/1e6 = 0.005
            {"input": "0.015", "cache_read": "0.005", "output": "0.005"},
            id="openai style: cached tokens at the cache-read rate, the rest at input",
        ),
        pytest.param(
            # Anthropic reports input beside cache reads and cache writes.
            call(
                provider="anthropic",
                model="claude-x",
                start="2025-02-01",
                input=1_000,
                cache_read=20_000,
                cache_write=5_000,
                output=800,
            ),
            Decimal("0.03975"),  # 0.003 + 20,000 x 0.30/1e6 = 0.006 + 5,000 x 3.75/1e6 = 0.01875 + 800 x 15/1e6 = 0.012
            {"input": "0.003", "cache_read": "0.006", "cache_write": "0.01875", "output": "0.012"},
            id="anthropic style: cache writes at their own rate",
        ),
        pytest.param(
            # Gemini: 50,000 prompt tokens, 30,000 cached; 1,200 thoughts + 300 answer = output 1,500.
            call(
                provider="gcp.gemini", model="gemini-x", input=20_000, cache_read=30_000, output=1_500, reasoning=1_200
            ),
            Decimal(
                "0.04375"
            ),  # 20,000 x 1.25 = 0.025; 30,000 x 0.125 = 0.00375; 300 x 10 = 0.003; 1,200 x 10 = 0.012 (/1e6)
            {"input": "0.025", "cache_read": "0.00375", "output": "0.003", "reasoning": "0.012"},
            id="gemini style: thoughts inside output, billed once, at the output rate",
        ),
        pytest.param(
            call(provider="perplexity", model="reasoner-x", input=1_000, output=5_000, reasoning=4_000),
            Decimal("0.022"),  # 1,000 x 2 = 0.002; visible 1,000 x 8 = 0.008; reasoning 4,000 x 3 = 0.012 (/1e6)
            {"input": "0.002", "output": "0.008", "reasoning": "0.012"},
            id="reasoning at its own rate, not also at the output rate",
        ),
        pytest.param(
            call(provider="gcp.gemini", model="gemini-x", input=250_000, output=1_000),
            Decimal("0.64"),  # 250,000 > 200,000: tier rates on every token: 250,000 x 2.50 = 0.625; 1,000 x 15 = 0.015
            {"input": "0.625", "output": "0.015"},
            id="context tier: past the threshold every token pays the tier rate",
        ),
        pytest.param(
            call(provider="gcp.gemini", model="gemini-x", input=150_000, cache_read=50_000, output=1_000),
            Decimal(
                "0.20375"
            ),  # total input 200,000 is not past 200,000: 150,000 x 1.25 = 0.1875 + 50,000 x 0.125 = 0.00625 + 1,000 x 10 = 0.01 (/1e6)
            {"input": "0.1875", "cache_read": "0.00625", "output": "0.01"},
            id="context tier: at the threshold the base rates hold, cached tokens count toward it",
        ),
        pytest.param(
            call(provider="openai", model="gpt-x", input=1_000, cache_write=1_000, output=0),
            Decimal("0.005"),  # no cache-write price: 2,000 x 2.50/1e6
            {"input": "0.0025", "cache_write": "0.0025"},
            id="a kind without its own price falls back (cache write at the input rate)",
        ),
    ],
)
def test_cost_by_token_kind(the_call: Call, cost: Decimal, lines: dict[str, str]) -> None:
    result = PRICER.price_call(the_call)
    assert isinstance(result, Priced), result
    assert result.cost_usd == cost
    amounts = {line.kind: line.amount for line in result.lines if line.amount}
    assert amounts == {kind: Decimal(amount) for kind, amount in lines.items()}
    assert (
        sum(line.tokens for line in result.lines)
        == the_call.input_tokens + the_call.cache_read_tokens + the_call.cache_write_tokens + the_call.output_tokens
    )


def test_tier_used_is_recorded_on_each_line() -> None:
    result = PRICER.price_call(call(provider="gcp.gemini", model="gemini-x", input=250_000, output=1_000))
    assert isinstance(result, Priced)
    assert {line.kind: (line.rate, line.tier) for line in result.lines if line.tokens} == {
        "input": (Decimal("2.50"), 200_000),
        "output": (Decimal("15.00"), 200_000),
    }


@pytest.mark.parametrize(
    ("start", "cost", "entry_id"),
    [
        # 1,000,000 in and 1,000,000 out each time.
        pytest.param(
            "2025-05-31T23:59:59", Decimal("1.76"), LLAMA_JAN.entry_id, id="last second before the change: 0.88 + 0.88"
        ),
        pytest.param(
            "2025-06-01T00:00:00", Decimal("1.50"), LLAMA_JUN.entry_id, id="first second of the change: 0.60 + 0.90"
        ),
        pytest.param("2024-12-31T12:00:00", None, None, id="before the first entry: unpriced"),
    ],
)
def test_price_change_mid_period(start: str, cost: Decimal | None, entry_id: str | None) -> None:
    result = PRICER.price_call(
        call(provider="together", model="llama-x", start=start, input=1_000_000, output=1_000_000)
    )
    if cost is None:
        assert isinstance(result, Unpriced)
        assert result.reason == NO_PRICE
        return
    assert isinstance(result, Priced)
    assert (result.cost_usd, result.entry_id, result.source) == (cost, entry_id, "book")


@pytest.mark.parametrize(
    ("start", "cost", "entry_id"),
    [
        pytest.param("2025-06-30", Decimal("12.50"), GPT.entry_id, id="list price until the book's date: 2.50 + 10.00"),
        pytest.param(
            "2025-07-01", Decimal("10.00"), GPT_OVERRIDE.entry_id, id="the book overrides from its date: 2.00 + 8.00"
        ),
    ],
)
def test_book_overrides_list_price_from_its_date(start: str, cost: Decimal, entry_id: str) -> None:
    result = PRICER.price_call(call(provider="openai", model="gpt-x", start=start, input=1_000_000, output=1_000_000))
    assert isinstance(result, Priced)
    assert (result.cost_usd, result.entry_id) == (cost, entry_id)


@pytest.mark.parametrize(
    ("model", "start", "list_cost", "discount", "cost"),
    [
        # claude-x, 1,000,000 in and 100,000 out: 3.00 + 1.50 = 4.50 at list.
        pytest.param("claude-x", "2025-02-28", Decimal("4.50"), None, Decimal("4.50"), id="before the discount"),
        pytest.param(
            "claude-x", "2025-03-01", Decimal("4.50"), Decimal("10"), Decimal("4.05"), id="10% off: 4.50 - 0.45"
        ),
        pytest.param("claude-x", "2025-09-01", Decimal("4.50"), None, Decimal("4.50"), id="a 0% discount ends it"),
        # claude-net, a net price: 2.00 + 1.00 = 3.00, no discount even while one is in force.
        pytest.param(
            "claude-net", "2025-03-01", Decimal("3.00"), None, Decimal("3.00"), id="net entries take no discount"
        ),
    ],
)
def test_provider_discount(model: str, start: str, list_cost: Decimal, discount: Decimal | None, cost: Decimal) -> None:
    result = PRICER.price_call(call(provider="anthropic", model=model, start=start, input=1_000_000, output=100_000))
    assert isinstance(result, Priced)
    assert (result.list_cost_usd, result.discount_percent, result.cost_usd) == (list_cost, discount, cost)
    assert result.list_cost_usd - result.discount_usd == result.cost_usd


@pytest.mark.parametrize(
    ("the_call", "reason"),
    [
        pytest.param(call(provider="openai", model="gpt-y", input=10, output=10), NO_PRICE, id="a model with no price"),
        pytest.param(
            call(provider="deepinfra", model="gpt-x", input=10, output=10),
            NO_PRICE,
            id="a known model at a provider with no price for it",
        ),
        pytest.param(call(provider=None, model="gpt-x", input=10, output=10), NO_PROVIDER, id="no provider"),
        pytest.param(call(provider="openai", model=None, input=10, output=10), NO_MODEL, id="no model"),
        pytest.param(call(provider="openai", model="gpt-x", usage_reported=False), NO_USAGE, id="usage never reported"),
        pytest.param(
            call(provider="openai", model="gpt-x-2099-01-01", request_model="gpt-x", input=10, output=10),
            NO_PRICE,
            id="an unknown snapshot is not priced as the alias requested",
        ),
    ],
)
def test_unpriced_is_never_zero(the_call: Call, reason: str) -> None:
    result = PRICER.price_call(the_call)
    assert isinstance(result, Unpriced)
    assert result.reason == reason
    assert not result.priced


def test_book_entry_may_name_the_request_model() -> None:
    # An Azure deployment alias: the response names the model version, the book the deployment.
    the_call = call(
        provider="azure.ai.openai",
        model="gpt-x-2099-01-01",
        request_model="acme-gpt",
        input=1_000_000,
        output=1_000_000,
    )
    result = PRICER.price_call(the_call)
    assert isinstance(result, Priced)
    assert (result.cost_usd, result.model) == (Decimal("5.00"), "acme-gpt")  # 1.00 + 4.00


def test_price_for_an_alternative_needs_no_call() -> None:
    from breakeven.collector.price.usage import TokenUsage
    from tests.pricecalls import at

    result = PRICER.price("together", "llama-x", at("2025-06-02"), TokenUsage(input=2_000_000, output=500_000))
    assert isinstance(result, Priced)
    assert result.cost_usd == Decimal("1.65")  # 2,000,000 x 0.60 = 1.20; 500,000 x 0.90 = 0.45 (/1e6)
