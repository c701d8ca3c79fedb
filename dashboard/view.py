"""What every page shares: the currency and date range chosen once, and the URLs that carry them.

The choice travels two ways: as query parameters in every link the dashboard renders
(so a copied URL shows the same figures) and in a cookie (so a page opened without them,
such as `/`, shows the last choice). Query parameters win over the cookie; a page that
receives them sets the cookie. URLs are built here and nowhere else.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any
from urllib.parse import parse_qsl, urlencode

from fastapi import HTTPException, Request

from breakeven.collector.price.config import PricingConfig
from breakeven.collector.price.fx import USD
from breakeven.collector.price.periods import iso_z, month_start

COOKIE = "breakeven_view"
COOKIE_MAX_AGE = 365 * 86_400
# Preset ranges: name -> (label, days back from today, None for calendar ranges).
PRESETS: dict[str, str] = {
    "7d": "last 7 days",
    "30d": "last 30 days",
    "90d": "last 90 days",
    "mtd": "month to date",
    "last-month": "last month",
}
DEFAULT_RANGE = "30d"
VIEW_PARAMS = ("currency", "range", "since", "until")


class ViewError(HTTPException):
    """A currency or range the dashboard cannot show (400 naming the parameter)."""

    def __init__(self, message: str) -> None:
        super().__init__(400, message)


@dataclass(frozen=True, slots=True)
class View:
    """The chosen currency and [since, until) range, resolved against `now`."""

    currency: str
    range: str  # a PRESETS key or "custom"
    since: datetime
    until: datetime  # exclusive; never after now
    first_day: date  # since's UTC day
    last_day: date  # the last UTC day with any of the range in it
    currencies: tuple[str, ...]
    from_query: bool  # the request named the view itself (so the cookie is refreshed)

    @property
    def label(self) -> str:
        """The range in words, as the page header shows it."""
        span = f"{self.first_day.isoformat()} to {self.last_day.isoformat()}"
        return f"{PRESETS[self.range]} ({span})" if self.range in PRESETS else span

    def params(self) -> dict[str, str]:
        """The query parameters that reproduce this view."""
        out = {"currency": self.currency, "range": self.range}
        if self.range == "custom":
            out.update(since=self.first_day.isoformat(), until=self.last_day.isoformat())
        return out

    def cookie_value(self) -> str:
        """What the cookie keeps: the view's parameters, URL-encoded."""
        return urlencode(self.params())

    def days(self) -> list[date]:
        """Every UTC day of the range, in order."""
        count = (self.last_day - self.first_day).days + 1
        return [self.first_day + timedelta(days=i) for i in range(count)]

    def as_json(self) -> dict[str, Any]:
        """The view as the JSON twins report it."""
        return {
            "currency": self.currency,
            "currencies": list(self.currencies),
            "range": self.range,
            "label": self.label,
            "since": iso_z(self.since),
            "until": iso_z(self.until),
        }


def currencies(pricing: PricingConfig) -> tuple[str, ...]:
    """The currencies a page can be shown in: the reporting one first, then USD and every FX currency."""
    out = [pricing.currency]
    for code in (USD, *pricing.fx.currencies()):
        if code not in out:
            out.append(code)
    return tuple(out)


def _day(name: str, value: str) -> date:
    try:
        return date.fromisoformat(value[:10])
    except ValueError:
        raise ViewError(f"{name}: not a date (YYYY-MM-DD): {value!r}") from None


def _preset(name: str, now: datetime) -> tuple[datetime, datetime]:
    today = datetime.combine(now.date(), datetime.min.time(), UTC)
    if name == "mtd":
        return month_start(now), now
    if name == "last-month":
        this_month = month_start(now)
        return month_start(this_month - timedelta(days=1)), this_month
    days = int(name.removesuffix("d"))
    return today - timedelta(days=days - 1), now


def _range(ranged: Mapping[str, str], now: datetime) -> tuple[str, datetime, datetime]:
    name = ranged.get("range") or ("custom" if ranged.get("since") or ranged.get("until") else DEFAULT_RANGE)
    if name in PRESETS:
        since, until = _preset(name, now)
    elif name == "custom":
        first = _day("since", ranged["since"]) if ranged.get("since") else (now - timedelta(days=29)).date()
        last = _day("until", ranged["until"]) if ranged.get("until") else now.date()
        since = datetime.combine(first, datetime.min.time(), UTC)
        until = min(datetime.combine(last + timedelta(days=1), datetime.min.time(), UTC), now)
    else:
        raise ViewError(f"range: one of {', '.join(PRESETS)} or custom, got {name!r}")
    if since >= until:
        raise ViewError(f"since ({since.date().isoformat()}) must be before until ({until.date().isoformat()})")
    return name, since, until


def resolve(query: Mapping[str, str], cookie: str | None, pricing: PricingConfig, now: datetime) -> View:
    """The view a request asks for: its query parameters, else the cookie's, else the defaults."""
    known = currencies(pricing)
    saved = dict(parse_qsl(cookie or "")) if cookie else {}
    from_query = any(query.get(name) for name in VIEW_PARAMS)
    currency = (query.get("currency") or "").strip().upper()
    if currency and currency not in known:
        raise ViewError(f"currency: no [[pricing.fx]] rate converts USD to {currency!r} (known: {', '.join(known)})")
    if not currency:
        currency = (saved.get("currency") or "").upper()
        currency = currency if currency in known else pricing.currency
    ranged = {k: query[k] for k in ("range", "since", "until") if query.get(k)}
    if ranged:
        name, since, until = _range(ranged, now)
    else:  # e.g. a currency switch: the saved range stays; a saved one that no longer parses is dropped
        try:
            name, since, until = _range({k: saved[k] for k in ("range", "since", "until") if saved.get(k)}, now)
        except ViewError:
            name, since, until = _range({}, now)
    last_day = (until - timedelta(microseconds=1)).date()
    return View(currency, name, since, until, since.date(), last_day, known, from_query)


def view_of(request: Request, pricing: PricingConfig, now: datetime | None = None) -> View:
    """The view of a request (query parameters, then the cookie)."""
    query = {k: v for k, v in request.query_params.items() if k in VIEW_PARAMS}
    return resolve(query, request.cookies.get(COOKIE), pricing, now or datetime.now(UTC))


def url(path: str, view: View | None, **params: Any) -> str:
    """A dashboard URL carrying the view; params that are None or "" are left out."""
    query: dict[str, str] = dict(view.params()) if view is not None else {}
    for key, value in params.items():
        if value is None or value == "":
            query.pop(key, None)
        elif isinstance(value, (list, tuple)):
            query[key] = ",".join(str(v) for v in value)
        else:
            query[key] = str(value)
    return f"{path}?{urlencode(query)}" if query else path
