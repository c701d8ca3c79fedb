"""collector/reports/plans.py over hand-made hours: a pool's own traffic, and an alternative that cannot price it."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

from breakeven.collector.config.pricing import parse_pricing
from breakeven.collector.price.usage import TokenUsage
from breakeven.collector.reports.plans import WhatIf, plan_classes
from breakeven.collector.store.spend import HourRow

SINCE = datetime(2025, 6, 10, tzinfo=UTC)
UNTIL = SINCE + timedelta(hours=4)


def _pricing(alternative: str) -> object:
    return parse_pricing(
        {
            "prices": [
                {
                    "provider": "together",
                    "model": "alt-e2e",
                    "effective_from": "2025-01-01",
                    "input": 100,
                    "output": 100,
                }
            ],
            "pools": [
                {
                    "name": "p",
                    "boxes": 2,
                    "rent_per_hour": 1,
                    "capacity": {"input_tps": 1, "output_tps": 1},
                    "match": {"backend": "vllm"},
                    "alternative": {"provider": "together", "model": alternative},
                }
            ],
        }
    )


def _hour(n: int, tokens: int, calls: int = 1) -> HourRow:
    return HourRow(None, "vllm", "llama", "p", "pool", SINCE + timedelta(hours=n), calls, TokenUsage(tokens), None)


def test_a_pool_that_costs_more_than_buying_its_traffic() -> None:
    # $100 per million: hour 0's 3,600 tokens $0.36, hour 1's 7,200 (two calls of 3,600) $0.72.
    # Today: 2 boxes x 4 h x $1 = $8. 1 box: $4 + half of hour 1 bought ($0.36) = $4.36.
    (outcome,) = plan_classes([_hour(0, 3600), _hour(1, 7200, calls=2)], _pricing("alt-e2e"), SINCE, UNTIL, WhatIf())
    plan = outcome.plan
    assert plan is not None
    assert [plan.total(p) for p in plan.curve.points] == [Decimal("1.08"), Decimal("4.36"), Decimal("8")]
    assert (plan.curve.best.boxes, plan.today_usd, plan.current_boxes) == (0, Decimal(8), 2)
    assert plan.savings_usd == Decimal("6.92")


def test_a_pool_whose_alternative_cannot_price_it_has_no_plan() -> None:
    (outcome,) = plan_classes([_hour(0, 3600)], _pricing("no-such-model"), SINCE, UNTIL, WhatIf())
    assert outcome.plan is None
    assert outcome.reason is not None
    assert outcome.reason.startswith("its alternative (together no-such-model) cannot price its traffic")


def test_no_traffic_no_classes() -> None:
    assert plan_classes([], _pricing("alt-e2e"), SINCE, UNTIL, WhatIf()) == []


def test_under_growth_todays_boxes_buy_what_they_cannot_hold() -> None:
    # x2: hour 0 needs 7,200 s ($0.72), hour 1 14,400 s ($1.44). Today's 2 boxes hold 7,200 s an hour:
    # hour 1 buys half ($0.72) on top of the $8 the boxes cost.
    rows = [_hour(0, 3600), _hour(1, 7200, calls=2)]
    (outcome,) = plan_classes(rows, _pricing("alt-e2e"), SINCE, UNTIL, WhatIf(growth=Decimal(2)))
    assert outcome.plan is not None
    assert outcome.plan.today_usd == Decimal("8.72")


def test_when_nothing_beats_buying_the_box_nearest_to_winning_is_named() -> None:
    pricing = parse_pricing(
        {
            "prices": [{"provider": "openai", "model": "m", "effective_from": "2025-01-01", "input": 1, "output": 1}],
            "candidates": [
                {"name": "dear", "model": "x", "rent_per_hour": 100, "capacity": {"input_tps": 1, "output_tps": 1}},
                {"name": "cheap", "model": "x", "rent_per_hour": 2, "capacity": {"input_tps": 1, "output_tps": 1}},
            ],
            "substitutes": [{"from": {"model": "m"}, "to": {"model": "x"}}],
        }
    )
    row = HourRow("svc", "openai", "m", None, "priced", SINCE, 1, TokenUsage(3600), Decimal("0.0036"))
    (outcome,) = plan_classes([row], pricing, SINCE, UNTIL, WhatIf())
    assert outcome.plan is not None
    assert (outcome.plan.candidate, outcome.plan.curve.best.boxes) == ("cheap", 0)
