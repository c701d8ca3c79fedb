"""Break-even, hand-computed: a pool against its alternative, and traffic classes against pools."""

from __future__ import annotations

from decimal import Decimal

import pytest

from breakeven.collector.price.breakeven import (
    Candidate,
    ClassTraffic,
    alternative_cost,
    pool_break_even,
    pool_candidates,
    project_class,
)
from breakeven.collector.price.pools import BoxCost, Capacity, pool_period
from breakeven.collector.price.pricer import Pricer
from breakeven.collector.price.substitutes import Substitute
from breakeven.collector.price.usage import TokenUsage
from tests.pricecalls import CHAT, JUNE, RENTED, SEARCH, at, catalog, entry

# The pool's alternative sells every token at 4.00 per million (cached or not).
PRICER = Pricer(catalog=catalog(entry("together", "llama-x-turbo", input="4.00", cache_read="4.00", output="4.00")))
TRAFFIC = [(at("2025-06-10"), SEARCH), (at("2025-06-20"), CHAT)]


def test_alternative_cost_prices_each_call() -> None:
    alt = alternative_cost(RENTED, PRICER, TRAFFIC)
    assert (alt.cost_usd, alt.calls, alt.unpriced) == (Decimal("2880"), 2, 0)  # 720 million tokens x 4.00


def test_break_even_on_a_known_mix() -> None:
    period = pool_period(RENTED, *JUNE, [SEARCH, CHAT])
    be = pool_break_even(RENTED, period, Decimal("2880"))
    # A = 2,880 / 720 million = 4.00 per million; v = 0.25
    assert be.alternative_per_million == Decimal("4")
    # break-even tokens = fixed 2,160 / (4.00 - 0.25) = 576 million
    assert be.break_even_tokens == Decimal("576000000")
    # busy seconds scale with tokens at this mix: 0.25 x 576 / 720 = 0.2
    assert be.break_even_utilization == Decimal("0.2")
    assert be.tokens_above == Decimal("144000000")  # 720 - 576 million: above break-even
    assert be.utilization_above == Decimal("0.05")
    assert be.savings_usd == Decimal("540")  # 2,880 bought - 2,340 self-hosted
    assert be.reason is None
    # At break-even both cost the same: 576 x 4.00 = 2,304 = 2,160 + 576 x 0.25.
    assert (
        be.break_even_tokens * be.alternative_per_million / 1_000_000
        == period.fixed.total + be.break_even_tokens * Decimal("0.25") / 1_000_000
    )


@pytest.mark.parametrize(
    ("usages", "alternative", "reason"),
    [
        pytest.param([], Decimal("0"), "no traffic", id="idle pool: no mix, no break-even"),
        pytest.param([SEARCH], None, "could not price", id="alternative unpriced"),
        pytest.param([SEARCH], Decimal("100"), "never breaks even", id="alternative cheaper than the variable cost"),
    ],
)
def test_no_break_even(usages: list[TokenUsage], alternative: Decimal | None, reason: str) -> None:
    period = pool_period(RENTED, *JUNE, usages)
    be = pool_break_even(RENTED, period, alternative)
    assert be.break_even_tokens is None
    assert be.break_even_utilization is None
    assert be.tokens_above is None
    assert be.reason is not None
    assert reason in be.reason


def test_idle_pool_loses_its_whole_cost() -> None:
    be = pool_break_even(RENTED, pool_period(RENTED, *JUNE, []), Decimal("0"))
    assert (be.utilization, be.savings_usd) == (Decimal("0"), Decimal("-2160"))


def test_alternative_unpriced_is_not_zero() -> None:
    pricer = Pricer(catalog=catalog())
    alt = alternative_cost(RENTED, pricer, TRAFFIC)
    assert (alt.cost_usd, alt.unpriced) == (None, 2)
    assert alt.detail
    assert "together/llama-x-turbo" in alt.detail


# Traffic classes. June 2025 has 2,592,000 seconds; on 11 June 00:00, 10 of 30 days have
# passed, so the run rate triples month-to-date figures.
NOW = at("2025-06-11")
CLASS = ClassTraffic(
    service="support",
    provider="anthropic",
    model="claude-x",
    spend_usd=Decimal("1000"),
    usage=TokenUsage(input=1_228_000_000, cache_read=500_000_000, output=86_400_000),  # 1,728 million prompt tokens
)
SMALL = Candidate(
    "small",
    BoxCost(rent_per_month=Decimal("1200")),
    Capacity(input_tps=Decimal("2000"), output_tps=Decimal("200")),
    model="llama-x",
)
BIG = Candidate(
    "big",
    BoxCost(rent_per_month=Decimal("2000")),
    Capacity(input_tps=Decimal("8000"), output_tps=Decimal("800")),
    model="llama-x",
)
OTHER_MODEL = Candidate("other", BoxCost(rent_per_month=Decimal("1")), SMALL.capacity, models=("llama-x",))
# The user's evals found llama-x may serve claude-x's traffic (all of it, unless said).
LLAMA_FOR_CLAUDE = (Substitute("claude-*", "llama-x", provider="anthropic", evidence="passes support eval"),)


@pytest.mark.parametrize(
    ("candidates", "name", "boxes", "cost", "utilization", "savings", "substitutes"),
    [
        # projected: 5,184 million prompt tokens / 2,000 = 2,592,000 s; 259.2 million out / 200 = 1,296,000 s
        # = 3,888,000 busy s, 1.5 box-months -> 2 boxes x 1,200 = 2,400, utilization 0.75
        pytest.param(
            (SMALL,),
            "small",
            2,
            Decimal("2400"),
            Decimal("0.75"),
            Decimal("600"),
            LLAMA_FOR_CLAUDE,
            id="two small boxes",
        ),
        # on big boxes: 648,000 + 324,000 = 972,000 s -> 1 box x 2,000, utilization 0.375
        pytest.param(
            (SMALL, BIG),
            "big",
            1,
            Decimal("2000"),
            Decimal("0.375"),
            Decimal("1000"),
            LLAMA_FOR_CLAUDE,
            id="the cheapest candidate wins",
        ),
        # planning at 50%: 3,888,000 / (2,592,000 x 0.5) = 3 boxes x 1,200
        pytest.param(
            (Candidate("small", SMALL.cost, SMALL.capacity, max_utilization=Decimal("0.5"), model="llama-x"),),
            "small",
            3,
            Decimal("3600"),
            Decimal("0.5"),
            Decimal("-600"),
            LLAMA_FOR_CLAUDE,
            id="sizing honours max utilization",
        ),
        pytest.param(
            (OTHER_MODEL,),
            None,
            None,
            None,
            None,
            None,
            LLAMA_FOR_CLAUDE,
            id="a candidate for other models does not count",
        ),
        pytest.param(
            (SMALL,), None, None, None, None, None, (), id="another model without a declared substitute: no move"
        ),
        # half may move: 1,944,000 busy s = 0.75 box-month -> 1 box x 1,200; savings 3,000 x 0.5 - 1,200
        pytest.param(
            (SMALL,),
            "small",
            1,
            Decimal("1200"),
            Decimal("0.75"),
            Decimal("300"),
            (Substitute("claude-x", "llama-x", share=Decimal("0.5")),),
            id="the share that may move is sized",
        ),
        pytest.param(
            (Candidate("same", SMALL.cost, SMALL.capacity, model="Claude-X"),),
            "same",
            2,
            Decimal("2400"),
            Decimal("0.75"),
            Decimal("600"),
            (),
            id="the same model self-hosted needs no declaration",
        ),
    ],
)
def test_traffic_class_projection(
    candidates: tuple[Candidate, ...],
    name: str | None,
    boxes: int | None,
    cost: Decimal | None,
    utilization: Decimal | None,
    savings: Decimal | None,
    substitutes: tuple[Substitute, ...],
) -> None:
    projection = project_class(CLASS, NOW, candidates, substitutes)
    assert projection.month_to_date_usd == Decimal("1000")
    assert projection.projected_usd == Decimal("3000")  # 1,000 x 30 / 10
    assert (projection.projected_input_tokens, projection.projected_output_tokens) == (
        Decimal("5184000000"),
        Decimal("259200000"),
    )
    assert "run rate" in projection.method
    if name is None:
        assert projection.cheapest is None
        assert projection.savings_usd is None
        return
    assert projection.cheapest is not None
    moved = projection.move  # the recommendation names the model it would run, and why
    assert moved is not None
    assert moved.model in {c.model for c in candidates}
    why = (substitutes[0].evidence or "a declared substitute") if substitutes else "the same model, self-hosted"
    assert moved.evidence == why
    got = projection.cheapest
    assert (got.candidate, got.boxes, got.cost_usd, got.utilization, projection.savings_usd) == (
        name,
        boxes,
        cost,
        utilization,
        savings,
    )


def test_pools_are_candidates_for_the_traffic_they_replace() -> None:
    (candidate,) = pool_candidates([RENTED])
    assert candidate.models == ("llama-x-turbo",)
    bought = ClassTraffic("svc", "together", "LLAMA-X-TURBO", Decimal("10"), TokenUsage(input=1_000))
    assert project_class(bought, NOW, [candidate]).cheapest is not None
    assert project_class(CLASS, NOW, [candidate]).cheapest is None
