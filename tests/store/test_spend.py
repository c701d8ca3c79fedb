"""Spend on read, on DuckDB and PostgreSQL: per-token cost, pool allocation, idle, unpriced.

Calls go in through the real write path (ledger_pricer + LedgerWriter). Every expected
figure below is worked out by hand from this ledger (USD):

    per-token (book prices; Anthropic 10% off)
      c1 06-10 06:00 openai gpt-t      search a f1  1M in, 100k out: 2 + 0.8       =  2.80
      c2 06-10 07:00 anthropic claude-t chat  b     1M in, 200k out: (3 + 3) x 0.9 =  5.40
      c3 06-10 08:00 openai mystery    search a     unpriced (no_price)
    pool p: 1 box at 1 USD/hour (24 a day), 1,000 in/s and 100 out/s, 0.10 per million tokens
      p1 06-10 06:00 search a  1M in           ->  1,000 busy s, variable 0.10
      p2 06-10 18:00 chat   b  2M in, 100k out ->  3,000 busy s, variable 0.21
      p3 06-11 06:00 search a  500k in         ->    500 busy s, variable 0.05

    day windows:   06-10 splits 24 as 6 / 18 -> p1 6.10, p2 18.21; 06-11 -> p3 24.05
    hour windows:  each call is alone in its hour -> p1 1.10, p2 1.21, p3 1.05
    month window:  June costs 720 over 4,500 busy s -> p1 160.10, p2 480.21, p3 80.05
"""

from __future__ import annotations

import dataclasses
from datetime import date
from decimal import Decimal

import pytest
import sqlalchemy as sa

from breakeven.collector.config.pricing import parse_pricing
from breakeven.collector.price.config import PricingConfig
from breakeven.collector.price.ledger import ledger_pricer
from breakeven.collector.price.usage import TokenUsage
from breakeven.collector.records import POOL, CallPrice, WriteBatch
from breakeven.collector.store import spend as store
from breakeven.collector.store.engine import migrate
from breakeven.collector.store.schema import calls
from breakeven.collector.store.writer import LedgerWriter
from tests.pricecalls import at, call

D = Decimal


def pricing(period: str = "day") -> PricingConfig:
    return parse_pricing(
        {
            "allocation_period": period,
            "prices": [
                {"provider": "openai", "model": "gpt-t", "effective_from": "2025-01-01", "input": "2", "output": "8"},
                {
                    "provider": "anthropic",
                    "model": "claude-t",
                    "effective_from": "2025-01-01",
                    "input": "3",
                    "output": "15",
                },
            ],
            "discounts": [{"provider": "anthropic", "percent": "10", "effective_from": "2025-01-01"}],
            "pools": [
                {
                    "name": "p",
                    "boxes": 1,
                    "rent_per_hour": "1",
                    "variable_per_million": "0.10",
                    "capacity": {"input_tps": "1000", "output_tps": "100"},
                    "match": {"backend": "vllm-p"},
                    "alternative": {"provider": "together", "model": "llama-t"},
                }
            ],
        }
    )


def _pool_call(start: str, service: str, team: str, input: int, output: int = 0):
    return call(
        provider="vllm", model="llama-p", backend="vllm-p", backend_class="self_hosted",
        start=start, service=service, team=team, input=input, output=output,
    )  # fmt: skip


LEDGER = [
    dataclasses.replace(
        call(model="gpt-t", start="2025-06-10T06:00:00", service="search", team="a", input=1_000_000, output=100_000),
        feature="f1",
    ),
    call(
        provider="anthropic",
        model="claude-t",
        start="2025-06-10T07:00:00",
        service="chat",
        team="b",
        input=1_000_000,
        output=200_000,
    ),
    call(model="mystery", start="2025-06-10T08:00:00", service="search", team="a", input=100, output=10),
    _pool_call("2025-06-10T06:00:00", "search", "a", 1_000_000),
    _pool_call("2025-06-10T18:00:00", "chat", "b", 2_000_000, 100_000),
    _pool_call("2025-06-11T06:00:00", "search", "a", 500_000),
]


@pytest.fixture
def ledger(engine: sa.Engine) -> sa.Engine:
    migrate(engine)
    price = ledger_pricer(pricing())
    LedgerWriter(engine).write(WriteBatch(calls=LEDGER, prices=[price(c) for c in LEDGER]), 0)
    return engine


# (period, since, until, group_by, {key: (calls, unpriced calls, cost or None)}, unallocated cost of pool p)
CASES = [
    pytest.param(
        "day", "2025-06-10", "2025-06-13", ("service",),
        {("chat",): (2, 0, "23.61"), ("search",): (4, 1, "32.95")}, "24",
        id="day windows by service; the idle 06-12 is unallocated, not in a row",
    ),
    pytest.param(
        "day", "2025-06-10", "2025-06-13", (),
        {(): (6, 1, "56.56")}, "24",
        id="no group_by: one total row (56.56 + 24 idle = 72 of pool + 8.20 per token + 0.36 variable)",
    ),
    pytest.param(
        "day", "2025-06-10", "2025-06-13", ("backend_class", "model"),
        {
            ("frontier", "claude-t"): (1, 0, "5.40"),
            ("frontier", "gpt-t"): (1, 0, "2.80"),
            ("frontier", "mystery"): (1, 1, None),
            ("self_hosted", "llama-p"): (3, 0, "48.36"),
        },
        "24",
        id="an all-unpriced group has no cost, never zero",
    ),
    pytest.param(
        "day", "2025-06-10", "2025-06-13", ("pool", "day"),
        {
            (None, date(2025, 6, 10)): (3, 1, "8.20"),
            ("p", date(2025, 6, 10)): (2, 0, "24.31"),
            ("p", date(2025, 6, 11)): (1, 0, "24.05"),
        },
        "24",
        id="by pool and day",
    ),
    pytest.param(
        "day", "2025-06-10", "2025-06-13", ("provider", "month"),
        {
            ("anthropic", date(2025, 6, 1)): (1, 0, "5.40"),
            ("openai", date(2025, 6, 1)): (2, 1, "2.80"),
            ("vllm", date(2025, 6, 1)): (3, 0, "48.36"),
        },
        "24",
        id="by provider and month",
    ),
    pytest.param(
        "day", "2025-06-10", "2025-06-13", ("team", "feature"),
        {("a", "f1"): (1, 0, "2.80"), ("a", None): (3, 1, "30.15"), ("b", None): (2, 0, "23.61")},
        "24",
        id="by team and feature",
    ),
    pytest.param(
        "day", "2025-06-10T12:00:00", "2025-06-11T12:00:00", ("pool",),
        {("p",): (2, 0, "24.26")}, "0",
        id="windows cut by the range: each prorated to its 12 h overlap (p2 12.21, p3 12.05)",
    ),
    pytest.param(
        "hour", "2025-06-10", "2025-06-13", ("service",),
        {("chat",): (2, 0, "6.61"), ("search",): (4, 1, "4.95")}, "69",
        id="hour windows: 69 of 72 hours idle",
    ),
    pytest.param(
        "month", "2025-06-01", "2025-07-01", ("service",),
        {("chat",): (2, 0, "485.61"), ("search",): (4, 1, "242.95")}, "0",
        id="month window: June's 720 all allocated",
    ),
    pytest.param(
        "month", "2025-06-10", "2025-06-13", ("service",),
        {("chat",): (2, 0, "53.61"), ("search",): (4, 1, "26.95")}, "0",
        id="month window cut to 3 days: 72 split 16 / 48 / 8",
    ),
    pytest.param(
        "day", "2025-06-20", "2025-06-22", ("service",),
        {}, "48",
        id="no traffic: the pool's whole cost is unallocated",
    ),
]  # fmt: skip


def test_spend(ledger: sa.Engine, subtests: pytest.Subtests) -> None:
    # One ledger per dialect for the whole table (a subtest per case): seeding is the slow part.
    for case in CASES:
        period, since, until, group_by, rows, unallocated = case.values
        with subtests.test(case.id), ledger.connect() as conn:
            result = store.spend(conn, pricing(period), at(since), at(until), group_by)
            got = {
                row.key: (row.calls, row.unpriced_calls, store.days_of(row.cost_usd) if row.cost_usd else None)
                for row in result.rows
            }
            assert got == {key: (n, u, None if c is None else D(c)) for key, (n, u, c) in rows.items()}
            assert store.days_of(result.unallocated_usd["p"]) == D(unallocated)
            assert result.unpriced_reasons == ({"no_price": 1} if any(u for _, u, _ in rows.values()) else {})


def test_amounts_are_dated_by_call_day_and_idle_is_split_at_rate_changes(ledger: sa.Engine) -> None:
    with ledger.connect() as conn:
        result = store.spend(conn, pricing(), at("2025-06-09"), at("2025-06-13"), (), breaks=[at("2025-06-11")])
    (row,) = result.rows
    assert row.cost_usd == {date(2025, 6, 10): D("32.51"), date(2025, 6, 11): D("24.05")}
    # Idle: 06-09 in the first stretch, 06-12 in the second (keyed by the stretch's first day).
    assert result.unallocated_usd == {"p": {date(2025, 6, 9): D("24"), date(2025, 6, 11): D("24")}}


def test_tokens_by_kind_are_summed(ledger: sa.Engine) -> None:
    with ledger.connect() as conn:
        result = store.spend(conn, pricing(), at("2025-06-10"), at("2025-06-13"), ("service",))
    assert {row.key: row.usage for row in result.rows} == {
        ("chat",): TokenUsage(input=3_000_000, output=300_000),
        ("search",): TokenUsage(input=2_500_100, output=100_010),
    }


WINDOW_SHARES = [
    pytest.param("day", ["6.10", "18.21", "24.05"], id="day: the whole day's 24, however much of it is over"),
    pytest.param("hour", ["1.10", "1.21", "1.05"], id="hour"),
    pytest.param("month", ["160.10", "480.21", "80.05"], id="month"),
]


def test_a_pool_call_costs_its_share_of_its_whole_window(ledger: sa.Engine, subtests: pytest.Subtests) -> None:
    items = [
        ("p", at("2025-06-10T06:00:00"), TokenUsage(input=1_000_000)),
        ("p", at("2025-06-10T18:00:00"), TokenUsage(input=2_000_000, output=100_000)),
        ("p", at("2025-06-11T06:00:00"), TokenUsage(input=500_000)),
        ("gone", at("2025-06-10"), TokenUsage()),
    ]
    for case in WINDOW_SHARES:
        period, expected = case.values
        with subtests.test(case.id), ledger.connect() as conn:
            costs = store.pool_call_costs(conn, pricing(period), items)
            assert costs == [*(D(e) for e in expected), None]


def test_a_pool_the_config_no_longer_has_is_unpriced_not_zero(engine: sa.Engine) -> None:
    migrate(engine)
    orphan = _pool_call("2025-06-10T06:00:00", "search", "a", 1_000)
    LedgerWriter(engine).write(WriteBatch(calls=[orphan], prices=[CallPrice(POOL, pool="gone")]), 0)
    with engine.connect() as conn:
        result = store.spend(conn, pricing(), at("2025-06-10"), at("2025-06-11"), ("pool",))
    assert [(r.key, r.calls, r.unpriced_calls, r.cost_usd) for r in result.rows] == [(("gone",), 1, 1, {})]
    assert result.unpriced_reasons == {store.UNKNOWN_POOL: 1}


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        pytest.param("service, model,service", ("service", "model"), id="trimmed, repeats dropped"),
        pytest.param("", (), id="empty: one total row"),
        pytest.param("service,colour", "cannot group by 'colour'", id="unknown key"),
    ],
)
def test_group_keys(text: str, expected: tuple[str, ...] | str) -> None:
    if isinstance(expected, str):
        with pytest.raises(store.GroupByError, match=expected):
            store.group_keys(text)
    else:
        assert store.group_keys(text) == expected


def test_a_filter_narrows_the_calls_and_pool_calls_lists_them(ledger: sa.Engine) -> None:
    since, until = at("2025-06-10"), at("2025-06-13")
    with ledger.connect() as conn:
        pooled = store.spend(conn, pricing(), since, until, ("pool",), where=[calls.c.price_status == POOL])
        listed = store.pool_calls(conn, "p", since, until)
    assert [(r.key, r.calls, store.days_of(r.cost_usd)) for r in pooled.rows] == [(("p",), 3, D("48.36"))]
    assert sorted(listed, key=lambda item: item[0]) == [
        (at("2025-06-10T06:00:00"), TokenUsage(input=1_000_000)),
        (at("2025-06-10T18:00:00"), TokenUsage(input=2_000_000, output=100_000)),
        (at("2025-06-11T06:00:00"), TokenUsage(input=500_000)),
    ]
