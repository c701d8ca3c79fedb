"""billed_lines on both dialects: a re-read day replaces what was stored of it, money exact."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import pytest
import sqlalchemy as sa

from breakeven.collector.records import BilledLine
from breakeven.collector.store.bills import lines_between, replace_lines
from breakeven.collector.store.engine import migrate

D1, D2, D3 = date(2026, 11, 1), date(2026, 11, 2), date(2026, 11, 3)


def _line(day: date, cost: str, source: str = "oa", **fields: object) -> BilledLine:
    return BilledLine(source, day, "openai", cost=Decimal(cost), currency="USD", **fields)  # type: ignore[arg-type]


def test_lines_read_back_as_stored(engine: sa.Engine) -> None:
    migrate(engine)
    stored = [
        _line(D1, "0.0000000001", model="gpt-4o", account="proj_1", input_tokens=10**12, cache_read_tokens=5),
        BilledLine("oa", D1, "openai", model="gpt-4o", output_tokens=7, requests=3),  # usage, no cost
        _line(D2, "1234567890.1234567891", tier="batch", line_item="gpt-4o, output", list_cost=Decimal("2E+9")),
    ]
    assert replace_lines(engine, "oa", "usage", [], stored) == 3
    assert lines_between(engine, D1, D3) == stored


def test_a_restated_day_replaces_that_day_only_and_of_that_source_only(engine: sa.Engine) -> None:
    migrate(engine)
    replace_lines(engine, "oa", "usage", [], [_line(D1, "1"), _line(D2, "2")])
    replace_lines(engine, "other", "usage", [], [_line(D2, "5", source="other")])
    replace_lines(engine, "oa", "usage", [D2], [_line(D2, "2.5")])  # the provider restated day 2
    assert [(x.source, x.day, x.cost) for x in lines_between(engine, D1, D3)] == [
        ("oa", D1, Decimal("1")),
        ("oa", D2, Decimal("2.5")),
        ("other", D2, Decimal("5")),
    ]
    replace_lines(engine, "oa", "usage", [D1], [])  # a day that now has nothing
    assert [x.day for x in lines_between(engine, D1, D3, source="oa")] == [D2]


def test_a_report_read_again_leaves_the_other_reports_of_its_days(engine: sa.Engine) -> None:
    migrate(engine)
    usage = BilledLine("oa", D1, "openai", input_tokens=5)
    replace_lines(engine, "oa", "usage", [], [usage])
    replace_lines(engine, "oa", "cost", [], [_line(D1, "3", report="cost")])
    replace_lines(engine, "oa", "cost", [D1], [_line(D1, "4", report="cost")])
    assert lines_between(engine, D1, D2) == [usage, _line(D1, "4", report="cost")]


def test_a_line_of_another_source_is_refused(engine: sa.Engine) -> None:
    migrate(engine)
    with pytest.raises(ValueError, match="another source or report"):
        replace_lines(engine, "oa", "usage", [], [_line(D1, "1", source="other")])


def test_a_fetch_noted_keeps_the_last_success_through_failures(engine: sa.Engine) -> None:
    from datetime import UTC, datetime, timedelta

    from breakeven.collector.store.bills import fetch_statuses, record_fetch

    migrate(engine)
    t0 = datetime(2026, 12, 1, tzinfo=UTC)
    record_fetch(engine, "oa", t0, None)
    record_fetch(engine, "oa", t0 + timedelta(hours=1), "oa: 401 from /v1/organization/costs")
    record_fetch(engine, "an", t0, "an: unreachable")
    status = fetch_statuses(engine)
    assert (status["oa"].attempted_at, status["oa"].succeeded_at) == (t0 + timedelta(hours=1), t0)
    assert status["oa"].error == "oa: 401 from /v1/organization/costs"
    assert (status["an"].succeeded_at, status["an"].error) == (None, "an: unreachable")
    record_fetch(engine, "oa", t0 + timedelta(hours=2), None)
    assert fetch_statuses(engine)["oa"].succeeded_at == t0 + timedelta(hours=2)
    assert fetch_statuses(engine)["oa"].error is None
    assert len(fetch_statuses(engine)) == 2
