"""Self-hosted pools, hand-computed: fixed cost, utilization, idle spend, allocation."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal

import pytest

from breakeven.collector.price.periods import allocation_window, calendar_months
from breakeven.collector.price.pools import (
    BoxCost,
    FixedCost,
    Pool,
    PoolMatch,
    Power,
    allocate,
    fixed_cost,
    pool_for,
    pool_period,
)
from breakeven.collector.price.usage import TokenUsage
from tests.pricecalls import CHAT, JUNE, RENTED, SEARCH, at, call

OWNED = BoxCost(
    purchase_price=Decimal("36000"),
    amortization_months=36,  # 1,000 a month
    purchased_on=date(2023, 7, 15),  # amortized July 2023 .. June 2026
    power=Power(kw=Decimal("0.7"), price_per_kwh=Decimal("0.30"), pue=Decimal("1.25")),
)


@pytest.mark.parametrize(
    ("cost", "boxes", "since", "until", "expected"),
    [
        pytest.param(
            RENTED.cost,
            2,
            *JUNE,
            FixedCost(Decimal("1800"), Decimal("0"), Decimal("360")),
            id="rent per month: 2 x 900 + 360 ops",
        ),
        pytest.param(
            BoxCost(rent_per_month=Decimal("900")),
            1,
            at("2025-02-01"),
            at("2025-03-01"),
            FixedCost(Decimal("900"), Decimal("0"), Decimal("0")),
            id="a whole February is one month's rent",
        ),
        pytest.param(
            BoxCost(rent_per_month=Decimal("900")),
            1,
            at("2025-06-01"),
            at("2025-06-16"),
            FixedCost(Decimal("450"), Decimal("0"), Decimal("0")),
            id="half of June is half a month: 15/30 x 900",
        ),
        pytest.param(
            BoxCost(rent_per_hour=Decimal("2.50")),
            3,
            *JUNE,
            FixedCost(Decimal("5400"), Decimal("0"), Decimal("0")),
            id="rent per hour: 3 x 720 h x 2.50",
        ),
        pytest.param(
            OWNED,
            1,
            *JUNE,
            # 36,000 / 36 = 1,000; power 0.7 kW x 720 h x 0.30 x 1.25 PUE = 189
            FixedCost(Decimal("1000"), Decimal("189"), Decimal("0")),
            id="purchase plus power",
        ),
        pytest.param(
            OWNED,
            2,
            at("2025-06-01"),
            at("2025-06-16"),
            # 2 x 1,000 x 15/30 = 1,000; 2 x 0.7 x 360 h x 0.30 x 1.25 = 189
            FixedCost(Decimal("1000"), Decimal("189"), Decimal("0")),
            id="purchase plus power, two boxes, half a month",
        ),
        pytest.param(
            OWNED,
            1,
            at("2026-07-01"),
            at("2026-08-01"),
            # paid off after June 2026; power 0.7 x 744 h x 0.30 x 1.25 = 195.3
            FixedCost(Decimal("0"), Decimal("195.3"), Decimal("0")),
            id="after amortization only power is left",
        ),
    ],
)
def test_fixed_cost(cost: BoxCost, boxes: int, since: datetime, until: datetime, expected: FixedCost) -> None:
    assert fixed_cost(cost, boxes, since, until) == expected


def test_utilization_idle_and_cost_per_million_on_a_known_mix() -> None:
    period = pool_period(RENTED, *JUNE, [SEARCH, CHAT])
    assert period.busy_seconds == Decimal("1296000")
    assert period.capacity_seconds == Decimal("5184000")
    assert period.utilization == Decimal("0.25")
    assert period.fixed.total == Decimal("2160")
    assert period.variable_usd == Decimal("180")  # 720 million tokens x 0.25
    assert period.cost_usd == Decimal("2340")
    assert period.idle_usd == Decimal("1620")  # 2,160 x (1 - 0.25)
    assert period.cost_per_million_usd == Decimal("3.25")  # 2,340 / 720


def test_idle_pool_spends_everything_on_nothing() -> None:
    period = pool_period(RENTED, *JUNE, [])
    assert (period.utilization, period.idle_usd, period.cost_usd) == (Decimal("0"), Decimal("2160"), Decimal("2160"))
    assert period.cost_per_million_usd is None
    assert allocate(RENTED, *JUNE, []) == {}


def test_overloaded_pool_has_no_negative_idle() -> None:
    heavy = TokenUsage(input=10_368_000_000)  # 10,368,000 s of 5,184,000: utilization 2 (capacity set too low)
    period = pool_period(RENTED, *JUNE, [heavy])
    assert (period.utilization, period.idle_usd) == (Decimal("2"), Decimal("0"))


def test_allocation_by_share_of_busy_seconds() -> None:
    shares = allocate(RENTED, *JUNE, [("search", SEARCH), ("chat", CHAT), ("search", TokenUsage())])
    # search: 2,160 x 1,080,000 / 1,296,000 = 1,800 + 648 million x 0.25 = 162
    # chat:   2,160 x   216,000 / 1,296,000 =   360 +  72 million x 0.25 =  18
    assert shares == {"search": Decimal("1962"), "chat": Decimal("378")}
    assert sum(shares.values()) == pool_period(RENTED, *JUNE, [SEARCH, CHAT]).cost_usd


def test_allocation_to_calls_and_to_teams_agree() -> None:
    a1 = call(team="a", input=1_000, output=100)  # 1 + 1 = 2 busy seconds, 1,100 tokens
    a2 = call(team="a", input=1_000)  # 1 busy second, 1,000 tokens
    b = call(team="b", output=300)  # 3 busy seconds, 300 tokens; 6 in all
    by_call = allocate(RENTED, *JUNE, [(c.key, TokenUsage.of_call(c)) for c in (a1, a2, b)])
    by_team = allocate(RENTED, *JUNE, [(c.team, TokenUsage.of_call(c)) for c in (a1, a2, b)])
    # share of 2,160 by busy seconds, plus tokens x 0.25 / 1e6
    assert by_call == {
        a1.key: Decimal("720.000275"),  # 2,160 x 2/6 + 1,100 x 0.25/1e6
        a2.key: Decimal("360.00025"),  # 2,160 x 1/6 + 1,000 x 0.25/1e6
        b.key: Decimal("1080.000075"),  # 2,160 x 3/6 + 300 x 0.25/1e6
    }
    assert by_team == {"a": Decimal("1080.000525"), "b": Decimal("1080.000075")}


@pytest.mark.parametrize(
    ("fields", "matched"),
    [
        pytest.param({"backend": "VLLM-A", "backend_class": "self_hosted"}, True, id="backend, case-insensitive"),
        pytest.param(
            {"backend": "vllm-a", "backend_class": "unknown"}, True, id="an unknown-class call at the pool's backend"
        ),
        pytest.param({"backend": "vllm-b", "backend_class": "self_hosted"}, False, id="another backend"),
        pytest.param({"backend": "vllm-a", "backend_class": "managed"}, False, id="bought traffic is never a pool's"),
    ],
)
def test_pool_match(fields: dict, matched: bool) -> None:
    assert (pool_for([RENTED], call(**fields)) is RENTED) is matched


def test_pool_match_on_several_fields_needs_all() -> None:
    pool = Pool(
        "p",
        PoolMatch(server_address="10.0.0.7", model="llama-8b", quantization="fp8"),
        1,
        RENTED.cost,
        RENTED.capacity,
        RENTED.alternative,
    )
    base = {"backend_class": "self_hosted", "server_address": "10.0.0.7", "quantization": "fp8"}
    assert pool_for([pool], call(model="llama-8b", **base)) is pool
    assert pool_for([pool], call(model="other", request_model="llama-8b", **base)) is pool  # request model counts
    assert pool_for([pool], call(model="llama-8b", **{**base, "quantization": "awq"})) is None


@pytest.mark.parametrize(
    ("when", "period", "window"),
    [
        pytest.param("2025-06-15T13:45:00", "hour", ("2025-06-15T13:00:00", "2025-06-15T14:00:00"), id="hour"),
        pytest.param("2025-06-15T13:45:00", "day", ("2025-06-15", "2025-06-16"), id="day"),
        pytest.param("2025-12-15T13:45:00", "month", ("2025-12-01", "2026-01-01"), id="month across a year end"),
    ],
)
def test_allocation_window(when: str, period: str, window: tuple[str, str]) -> None:
    assert allocation_window(at(when), period) == (at(window[0]), at(window[1]))


def test_calendar_months_prorate_each_month_by_its_length() -> None:
    # 15 Jan -> 15 Feb 2025: 17 of January's 31 days + 14 of February's 28
    assert calendar_months(at("2025-01-15"), at("2025-02-15")) == Decimal(17) / Decimal(31) + Decimal("0.5")
