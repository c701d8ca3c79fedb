"""UTC hours: their arithmetic, in Python and in SQL, and which of them are dirty.

An hour is dirty (a row in rollup_dirty) from the transaction that changes one of its calls
until the roller has rolled it up again (collector/store/rollup.py). Readers take clean
hours from the rollups and the rest from calls (raw_stretches).
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime, timedelta

import sqlalchemy as sa

from breakeven.collector.store.schema import rollup_dirty

HOUR = timedelta(hours=1)
DAY = timedelta(days=1)
HOUR_NS = 3600 * 10**9
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_LAST = datetime(9999, 12, 31, tzinfo=UTC)  # the last day start datetime can hold
# Past this many stretches read from calls, the closest are merged (clean hours between
# them are then read from calls too): one SELECT per stretch keeps each a plain range.
MAX_RAW_STRETCHES = 16


def utc(at: datetime) -> datetime:
    """The instant in UTC (naive means UTC)."""
    return at.replace(tzinfo=UTC) if at.tzinfo is None else at.astimezone(UTC)


def hour_of_ns(ns: int) -> datetime:
    """The UTC hour that holds an instant (ns since the epoch)."""
    return EPOCH + timedelta(hours=ns // HOUR_NS)


def hours_of_ns(instants: Iterable[int]) -> list[datetime]:
    """The UTC hours that hold these instants (ns since the epoch), each once, in order."""
    return [EPOCH + timedelta(hours=hour) for hour in sorted({ns // HOUR_NS for ns in instants})]


def floor_hour(at: datetime) -> datetime:
    """The start of the UTC hour that holds `at` (naive means UTC)."""
    return EPOCH + timedelta(hours=(utc(at) - EPOCH) // HOUR)


def ceil_hour(at: datetime) -> datetime:
    """The first UTC hour start at or after `at` (or `at`, past the last one datetime holds)."""
    start = floor_hour(at)
    return start if start == at else at if at > _LAST else start + HOUR


def floor_day(at: datetime) -> datetime:
    """The start of the UTC day that holds `at`."""
    return EPOCH + timedelta(days=(utc(at) - EPOCH) // DAY)


def ceil_day(at: datetime) -> datetime:
    """The first UTC day start at or after `at` (or `at`, past the last one datetime holds)."""
    start = floor_day(at)
    return start if start == at else at if at > _LAST else start + DAY


def bucket_start(column: sa.ColumnElement[datetime], seconds: int = 3600) -> sa.ColumnElement[datetime]:
    """SQL: the start of the UTC hour (or of the day: seconds=86400) a timestamp falls in.

    Epoch arithmetic: date_trunc of a timestamptz follows the session time zone.
    """
    units = sa.func.floor(sa.func.date_part("epoch", column) / sa.literal_column(str(seconds)))
    return sa.func.to_timestamp(units * sa.literal_column(str(seconds)))


def mark_dirty(conn: sa.Connection, hours: Iterable[datetime]) -> None:
    """Mark hours to roll up again; call it in the transaction that changed their calls."""
    rows = [{"hour": hour} for hour in sorted(set(hours))]
    if rows:
        conn.execute(sa.insert(rollup_dirty).values(rows))  # one statement: executemany is slow on DuckDB


def ranges(starts: Iterable[datetime], width: timedelta = HOUR) -> list[tuple[datetime, datetime]]:
    """Hours (or days, width=DAY) as [start, end) runs of consecutive ones."""
    out: list[tuple[datetime, datetime]] = []
    for start in sorted(set(starts)):
        if out and out[-1][1] == start:
            out[-1] = (out[-1][0], start + width)
        else:
            out.append((start, start + width))
    return out


def dirty_hours(conn: sa.Connection, since: datetime, until: datetime) -> list[datetime]:
    """The dirty hours that overlap [since, until), in order."""
    query = (
        sa.select(rollup_dirty.c.hour)
        .where(rollup_dirty.c.hour >= floor_hour(since), rollup_dirty.c.hour < until)
        .distinct()
        .order_by(rollup_dirty.c.hour)
    )
    return [utc(h) for h in conn.execute(query).scalars()]


def raw_stretches(since: datetime, until: datetime, dirty: Iterable[datetime]) -> list[tuple[datetime, datetime]]:
    """What a reader of [since, until) takes from calls, not the rollups: the partial hours at
    either end and the dirty hours, clipped, merged where they touch, at most MAX_RAW_STRETCHES."""
    spans = [(since, ceil_hour(since)), (floor_hour(until), until), *((h, h + HOUR) for h in dirty)]
    out: list[tuple[datetime, datetime]] = []
    for a, b in sorted((max(a, since), min(b, until)) for a, b in spans):
        if a >= b:
            continue
        if out and a <= out[-1][1]:
            out[-1] = (out[-1][0], max(out[-1][1], b))
        else:
            out.append((a, b))
    while len(out) > MAX_RAW_STRETCHES:
        i = min(range(len(out) - 1), key=lambda i: out[i + 1][0] - out[i][1])
        out[i : i + 2] = [(out[i][0], out[i + 1][1])]
    return out
