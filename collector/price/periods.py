"""UTC period arithmetic: calendar months, allocation windows, proration of monthly costs."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

ALLOCATION_PERIODS = ("hour", "day", "month")
NS_PER_SECOND = 1_000_000_000


MICROSECOND = timedelta(microseconds=1)  # the last instant of a range [since, until) is until - MICROSECOND


def parse_instant(text: str) -> datetime:
    """A date (00:00 UTC) or an ISO 8601 datetime (naive means UTC; `Z` accepted). ValueError if neither."""
    if len(text) == 10:
        day = date.fromisoformat(text)
        return datetime(day.year, day.month, day.day, tzinfo=UTC)
    parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def utc(at: datetime) -> datetime:
    """The same instant in UTC; a naive datetime is taken as UTC."""
    return at.replace(tzinfo=UTC) if at.tzinfo is None else at.astimezone(UTC)


def iso_z(at: datetime) -> str:
    """An instant as the API and the dashboard show it: ISO 8601 in UTC, with Z (naive means UTC)."""
    return utc(at).isoformat().replace("+00:00", "Z")


def utc_date(at: datetime) -> date:
    """The UTC calendar day of an instant (prices and rates change at 00:00 UTC)."""
    return utc(at).date()


def from_ns(ns: int) -> datetime:
    """A record's nanosecond timestamp as a UTC datetime (microsecond precision, no float)."""
    seconds, rest = divmod(ns, NS_PER_SECOND)
    return datetime.fromtimestamp(seconds, UTC) + timedelta(microseconds=rest // 1000)


def seconds_between(since: datetime, until: datetime) -> Decimal:
    """Length of [since, until) in seconds, exactly (0 when until is not after since)."""
    delta = utc(until) - utc(since)
    if delta <= timedelta(0):
        return Decimal(0)
    return Decimal(delta.days * 86_400 + delta.seconds) + Decimal(delta.microseconds) / 1_000_000


def month_start(at: datetime) -> datetime:
    """00:00 UTC on the first day of the instant's month."""
    at = utc(at)
    return datetime(at.year, at.month, 1, tzinfo=UTC)


def next_month(start: datetime) -> datetime:
    """The first instant of the month after the one `start` is in."""
    return add_months(start, 1)


def add_months(start: datetime, months: int) -> datetime:
    """The first instant of the month `months` calendar months after `start`'s month."""
    start = month_start(start)
    index = start.month - 1 + months
    return start.replace(year=start.year + index // 12, month=index % 12 + 1)


def calendar_months(since: datetime, until: datetime) -> Decimal:
    """How many calendar months [since, until) spans, each month prorated by its own length.

    A whole February and a whole March are one month each, so a monthly rent is billed
    exactly once per calendar month whatever its length; a part of a month counts its
    share of that month's seconds.
    """
    since, until = utc(since), utc(until)
    months = Decimal(0)
    start = month_start(since)
    while start < until:
        end = next_month(start)
        overlap = seconds_between(max(since, start), min(until, end))
        months += overlap / seconds_between(start, end)
        start = end
    return months


def allocation_window(at: datetime, period: str) -> tuple[datetime, datetime]:
    """The [since, until) allocation period (hour, day or month, UTC) that contains `at`."""
    at = utc(at)
    if period == "hour":
        since = at.replace(minute=0, second=0, microsecond=0)
        return since, since + timedelta(hours=1)
    if period == "day":
        since = at.replace(hour=0, minute=0, second=0, microsecond=0)
        return since, since + timedelta(days=1)
    if period == "month":
        since = month_start(at)
        return since, next_month(since)
    raise ValueError(f"allocation period must be one of {', '.join(ALLOCATION_PERIODS)}, not {period!r}")
