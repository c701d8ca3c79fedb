"""Integer pricing (collector/price/exact.py) gives stored() of PricePlan.totals, digit for digit, or declines."""

from __future__ import annotations

import dataclasses
import random
from decimal import Decimal, localcontext

import pytest

from breakeven.collector.price.entries import PriceEntry, Rate, Tier
from breakeven.collector.price.exact import IntegerPlan, integer_plan
from breakeven.collector.price.money import stored
from breakeven.collector.price.pricer import PricePlan
from breakeven.collector.price.usage import TokenUsage
from tests.pricecalls import entry

PLAIN = entry("openai", "gpt-x", input="2.50", cache_read="1.25", output="10.00")
CLAUDE = entry("anthropic", "claude-x", input="3.00", cache_read="0.30", cache_write="3.75", output="15.00")
TIERED = entry(
    "gcp.gemini",
    "gemini-x",
    input="1.25",
    cache_read="0.125",
    output="10.00",
    tiers={"input": [(200_000, "2.50"), (128_000, "1.875")], "output": [(200_000, "15.00"), (200_000, "99")]},
)
REASONER = entry("perplexity", "reasoner-x", input="2.00", output="8.00", reasoning="3.00")
FINE = entry("x", "fine", input="0.000000001", output="1234.56789", cache_read="0.0000375")  # 1e-15 USD per token
COARSE = entry("x", "coarse", input="1E+1", output="2E+3")  # rates with positive exponents
FEE = dataclasses.replace(PLAIN, per_request=Decimal("0.0035"))
TINY_FEE = dataclasses.replace(PLAIN, per_request=Decimal("1E-14"))


def plan(of: PriceEntry, percent: str | None = None) -> PricePlan:
    """The plan Pricer.plan would build for this entry and discount."""
    rates = tuple(of.rate_for(kind) for kind in ("input", "cache_read", "cache_write", "output", "reasoning"))
    return PricePlan(of, of.model, of.provider, rates, None if percent is None else Decimal(percent))


def reference(p: PricePlan, usage: TokenUsage) -> tuple[Decimal, Decimal]:
    """The Decimal path ingest stored before: PricePlan.totals, then the storage quantum."""
    cost, list_cost = p.totals(usage)
    return stored(cost), stored(list_cost)


def integer(p: PricePlan, usage: TokenUsage) -> tuple[Decimal, Decimal] | None:
    exact = integer_plan(p)
    assert exact is not None
    return exact.stored_totals(usage.input, usage.cache_read, usage.cache_write, usage.output, usage.reasoning)


def same_decimal(a: Decimal, b: Decimal) -> bool:
    """Equal in value, sign, digits and exponent."""
    return a.as_tuple() == b.as_tuple()


PLANS = {
    "plain": plan(PLAIN),
    "cache write": plan(CLAUDE),
    "tiers, a tie at 200k": plan(TIERED),
    "reasoning rate": plan(REASONER),
    "fifteen decimals": plan(FINE),
    "positive exponents": plan(COARSE),
    "per-request fee": plan(FEE),
    "fee finer than the rates": plan(TINY_FEE),
    "10 % discount": plan(CLAUDE, "10"),
    "12.345 % discount": plan(TIERED, "12.345"),
    "100 % discount": plan(FEE, "100"),
    "discount 1E+1 %": plan(PLAIN, "1E+1"),
}
USAGES = {
    "nothing": TokenUsage(),
    "one cached token": TokenUsage(cache_read=1),
    "openai style": TokenUsage(input=6_000, cache_read=4_000, output=500),
    "anthropic style": TokenUsage(input=1_000, cache_read=20_000, cache_write=5_000, output=800),
    "reasoning inside output": TokenUsage(input=20_000, cache_read=30_000, output=1_500, reasoning=1_200),
    "reasoning over output": TokenUsage(input=3, output=5, reasoning=9),
    "128k tier": TokenUsage(input=128_001, output=7),
    "200k tier": TokenUsage(input=150_000, cache_read=50_001, output=3),
    "half quantum": TokenUsage(input=1, output=1),
    "a billion tokens": TokenUsage(input=10**9, cache_read=10**9, output=10**9, reasoning=10**8),
}


@pytest.mark.parametrize("plan_name", PLANS)
@pytest.mark.parametrize("usage_name", USAGES)
def test_integer_totals_equal_the_decimal_path(plan_name: str, usage_name: str) -> None:
    p, usage = PLANS[plan_name], USAGES[usage_name]
    got = integer(p, usage)
    assert got is not None
    want = reference(p, usage)
    assert same_decimal(got[0], want[0]), (got, want)
    assert same_decimal(got[1], want[1]), (got, want)


@pytest.mark.parametrize(
    ("amount", "stored_as"),
    [
        ("0.00000000005", "0E-10"),  # half a quantum, even below: down
        ("0.00000000015", "2E-10"),  # half a quantum, odd below: up
        ("0.000000000150001", "2E-10"),
        ("0.000000000249999", "2E-10"),
        ("0.00000000025", "2E-10"),
    ],
)
def test_rounding_is_half_even_at_the_storage_quantum(amount: str, stored_as: str) -> None:
    fee = dataclasses.replace(PLAIN, per_request=Decimal(amount))
    got = integer(plan(fee), TokenUsage())
    assert got is not None
    assert same_decimal(got[0], Decimal(stored_as))
    assert same_decimal(got[0], reference(plan(fee), TokenUsage())[0])


@pytest.mark.parametrize(
    ("usage", "p"),
    [
        pytest.param(TokenUsage(input=-1, output=5), plan(PLAIN), id="a negative token count"),
        pytest.param(TokenUsage(output=-3, reasoning=-5), plan(PLAIN), id="negative reasoning"),
        pytest.param(TokenUsage(input=10**24), plan(PLAIN), id="past 28 digits"),
        pytest.param(TokenUsage(input=10**19), plan(PLAIN, "12.345"), id="past 28 digits with the discount"),
    ],
)
def test_declines_what_it_cannot_show_exact(usage: TokenUsage, p: PricePlan) -> None:
    assert integer(p, usage) is None


def test_declines_under_a_narrower_decimal_context() -> None:
    with localcontext() as narrow:
        narrow.prec = 12
        assert integer(plan(PLAIN), TokenUsage(input=1)) is None


@pytest.mark.parametrize(
    "p",
    [
        pytest.param(plan(dataclasses.replace(PLAIN, input=Rate(Decimal("-1")))), id="a negative rate"),
        pytest.param(plan(dataclasses.replace(PLAIN, input=Rate(Decimal("NaN")))), id="a NaN rate"),
        pytest.param(plan(dataclasses.replace(PLAIN, per_request=Decimal("Infinity"))), id="an infinite fee"),
        pytest.param(plan(PLAIN, "100.5"), id="a discount over 100 %"),
        pytest.param(plan(PLAIN, "-3"), id="a negative discount"),
    ],
)
def test_no_integer_plan_for_odd_prices(p: PricePlan) -> None:
    assert integer_plan(p) is None


def _random_rate(rng: random.Random) -> Rate:
    def value() -> Decimal:
        return Decimal(rng.randrange(0, 10 ** rng.randint(1, 9))).scaleb(-rng.randint(-2, 12))

    tiers = tuple(Tier(rng.choice([0, 1_000, 128_000, 200_000]), value()) for _ in range(rng.choice([0, 0, 1, 2, 3])))
    return Rate(value(), tiers)


def _random_plan(rng: random.Random) -> PricePlan:
    maybe = [None, _random_rate(rng)]
    of = PriceEntry(
        entry_id="random",
        source="random",
        provider="p",
        model="m",
        effective_from=None,
        input=_random_rate(rng),
        output=_random_rate(rng),
        cache_read=rng.choice(maybe),
        cache_write=rng.choice(maybe),
        reasoning=rng.choice(maybe),
        per_request=rng.choice([None, Decimal(rng.randrange(1, 10**6)).scaleb(-rng.randint(0, 16))]),
    )
    percent = rng.choice([None, str(rng.randint(1, 100)), f"{rng.randint(0, 99)}.{rng.randint(0, 999):03d}"])
    return plan(of, percent)


def _random_usage(rng: random.Random) -> TokenUsage:
    def tokens() -> int:
        return rng.choice([0, rng.randint(0, 10), rng.randint(0, 300_000), rng.randint(0, 10 ** rng.randint(1, 15))])

    return TokenUsage(tokens(), tokens(), tokens(), tokens(), tokens())


def test_random_plans_and_usages_match_the_decimal_path() -> None:
    rng = random.Random(20250615)
    compared = 0
    for _ in range(400):
        p = _random_plan(rng)
        exact = integer_plan(p)
        assert isinstance(exact, IntegerPlan)
        for _ in range(25):
            usage = _random_usage(rng)
            got = exact.stored_totals(usage.input, usage.cache_read, usage.cache_write, usage.output, usage.reasoning)
            if got is None:
                continue
            want = reference(p, usage)
            assert same_decimal(got[0], want[0]), (p, usage, got, want)
            assert same_decimal(got[1], want[1]), (p, usage, got, want)
            compared += 1
    assert compared > 8_000  # the fast path takes nearly all of them
