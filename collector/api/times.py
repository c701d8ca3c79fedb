"""The API's one time parser: ?since= and ?until= as ISO 8601, a bad one is a 400 naming it."""

from __future__ import annotations

from datetime import UTC, datetime

from fastapi import HTTPException

from breakeven.collector.price.periods import MICROSECOND, month_start, parse_instant, utc


def parse_time(name: str, value: str | None) -> datetime | None:
    """An ISO 8601 date or datetime in UTC (naive means UTC), None when absent; 400 naming the parameter if bad."""
    if not value:
        return None
    try:
        return utc(parse_instant(value))
    except ValueError:
        raise HTTPException(400, f"{name}: not an ISO 8601 date or datetime: {value!r}") from None


def time_range(since: str | None, until: str | None) -> tuple[datetime, datetime]:
    """[since, until): until defaults to now, since to the start of the UTC month until falls in."""
    end = parse_time("until", until) or datetime.now(UTC)
    start = parse_time("since", since) or month_start(end - MICROSECOND)
    if start >= end:
        raise HTTPException(400, f"since ({start.isoformat()}) must be before until ({end.isoformat()})")
    return start, end
