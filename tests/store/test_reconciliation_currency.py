"""A bill in another currency than USD, reconciled in a third: through [[pricing.fx]], each amount at
its own day's rate, exact; and refused, naming the rate to add, when the table has none."""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal

import pytest
import sqlalchemy as sa

from breakeven.collector.config.pricing import parse_pricing
from breakeven.collector.config.reconcile import parse_reconcile
from breakeven.collector.records import BilledLine
from breakeven.collector.reports.currency import Converter
from breakeven.collector.reports.errors import ReportError
from breakeven.collector.reports.reconciliation import reconcile
from breakeven.collector.store.bills import replace_lines
from breakeven.collector.store.engine import migrate

D1, D2 = date(2026, 11, 1), date(2026, 11, 2)
PRICING = parse_pricing(
    {
        "fx": [
            {"currency": "EUR", "date": "2026-01-01", "per_usd": "0.9"},
            {"currency": "EUR", "date": "2026-11-02", "per_usd": "0.8"},
            {"currency": "GBP", "date": "2026-01-01", "per_usd": "0.75"},
        ]
    }
)
CONFIG = parse_reconcile({"sources": [{"name": "azure", "kind": "focus", "path": "/x/*.csv"}]})


def _line(day: date, cost: str) -> BilledLine:
    return BilledLine("azure", day, "azure.ai.openai", model="gpt-4o", input_tokens=1000, cost=Decimal(cost),
                      currency="EUR", report="focus")  # fmt: skip


def _billed(engine: sa.Engine, currency: str) -> Decimal | None:
    with engine.connect() as conn:
        found = reconcile(
            conn, PRICING, CONFIG, Converter(PRICING.fx, currency), datetime(2026, 11, 1, tzinfo=UTC),
            datetime(2026, 11, 3, tzinfo=UTC), "source",
        )  # fmt: skip
    return found.rows[0].billed.cost


def test_a_euro_bill_in_pounds_at_each_days_rate(engine: sa.Engine) -> None:
    migrate(engine)
    replace_lines(engine, "azure", "focus", [], [_line(D1, "9"), _line(D2, "8")])
    # EUR 9 at 0.9 per USD is $10, EUR 8 at 0.8 is $10: $20, in pounds at 0.75 GBP 15
    assert _billed(engine, "USD") == Decimal(20)
    assert _billed(engine, "GBP") == Decimal(15)
    assert _billed(engine, "EUR") == Decimal(17)  # already euros: kept as billed


def test_a_bill_in_a_currency_without_a_rate_is_refused_naming_it(engine: sa.Engine) -> None:
    migrate(engine)
    line = BilledLine("azure", D1, "azure.ai.openai", model="gpt-4o", cost=Decimal(1), currency="JPY", report="focus")
    replace_lines(engine, "azure", "focus", [], [line])
    with pytest.raises(ReportError, match=r"bills in JPY; add a \[\[pricing.fx\]\] rate for JPY"):
        _billed(engine, "USD")
