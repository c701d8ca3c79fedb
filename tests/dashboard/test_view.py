"""The view (currency and range): the query wins over the cookie, the cookie over the defaults."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest

from breakeven.collector.config.pricing import parse_pricing
from breakeven.dashboard.view import ViewError, resolve, url

PRICING = parse_pricing(
    {
        "currency": "GBP",
        "fx": [
            {"currency": "GBP", "date": "2025-01-01", "per_usd": "0.8"},
            {"currency": "EUR", "date": "2025-01-01", "per_usd": "0.9"},
        ],
    }
)
NOW = datetime(2026, 11, 23, 13, 10, tzinfo=UTC)


@pytest.mark.parametrize(
    ("query", "cookie", "currency", "range_", "first", "last"),
    [
        pytest.param(
            {},
            None,
            "GBP",
            "30d",
            date(2026, 10, 25),
            date(2026, 11, 23),
            id="defaults: reporting currency, last 30 days",
        ),
        pytest.param(
            {},
            "currency=EUR&range=7d",
            "EUR",
            "7d",
            date(2026, 11, 17),
            date(2026, 11, 23),
            id="the cookie when the query is silent",
        ),
        pytest.param(
            {"currency": "usd"},
            "currency=EUR&range=7d",
            "USD",
            "7d",
            date(2026, 11, 17),
            date(2026, 11, 23),
            id="a currency switch keeps the saved range",
        ),
        pytest.param(
            {"range": "mtd"},
            "currency=EUR&range=7d",
            "EUR",
            "mtd",
            date(2026, 11, 1),
            date(2026, 11, 23),
            id="a range switch keeps the saved currency",
        ),
        pytest.param(
            {"range": "last-month"},
            None,
            "GBP",
            "last-month",
            date(2026, 10, 1),
            date(2026, 10, 31),
            id="last month is the whole calendar month",
        ),
        pytest.param(
            {"since": "2026-06-01", "until": "2026-06-15"},
            None,
            "GBP",
            "custom",
            date(2026, 6, 1),
            date(2026, 6, 15),
            id="custom days are inclusive",
        ),
        pytest.param(
            {},
            "currency=XXX&range=bogus",
            "GBP",
            "30d",
            date(2026, 10, 25),
            date(2026, 11, 23),
            id="a stale cookie falls back to the defaults",
        ),
    ],
)
def test_resolve(
    query: dict[str, str], cookie: str | None, currency: str, range_: str, first: date, last: date
) -> None:
    view = resolve(query, cookie, PRICING, NOW)
    assert (view.currency, view.range, view.first_day, view.last_day) == (currency, range_, first, last)
    assert view.until <= NOW
    assert view.currencies == ("GBP", "USD", "EUR")


def test_custom_until_today_stops_at_now_and_until_before_since_is_refused() -> None:
    view = resolve({"since": "2026-11-20", "until": "2026-11-23"}, None, PRICING, NOW)
    assert view.until == NOW
    assert len(view.days()) == 4
    with pytest.raises(ViewError, match="must be before"):
        resolve({"since": "2026-11-20", "until": "2026-11-10"}, None, PRICING, NOW)


@pytest.mark.parametrize(
    ("query", "message"),
    [
        pytest.param({"currency": "JPY"}, "currency: no", id="a currency without a rate"),
        pytest.param({"range": "fortnight"}, "range: one of", id="an unknown preset"),
        pytest.param({"since": "23/11/2026"}, "since: not a date", id="a date that is not ISO"),
    ],
)
def test_bad_views_are_400_naming_the_parameter(query: dict[str, str], message: str) -> None:
    with pytest.raises(ViewError, match=message) as caught:
        resolve(query, None, PRICING, NOW)
    assert caught.value.status_code == 400


def test_urls_carry_the_view_and_drop_empty_parameters() -> None:
    view = resolve({"currency": "EUR", "since": "2026-06-01", "until": "2026-06-15"}, None, PRICING, NOW)
    assert url("/spend", view, g1="team", service="", cursor=None) == (
        "/spend?currency=EUR&range=custom&since=2026-06-01&until=2026-06-15&g1=team"
    )
    assert url("/pools", view, range="7d", since=None, until=None) == "/pools?currency=EUR&range=7d"
    assert view.cookie_value() == "currency=EUR&range=custom&since=2026-06-01&until=2026-06-15"
