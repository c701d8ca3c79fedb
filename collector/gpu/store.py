"""GPU metric buckets and scrape health in the database (tables gpu_metric_minutes, gpu_scrape_targets).

Writes add a bucket to the row of its key (samples and sums added, maxima kept): on
PostgreSQL with INSERT ... ON CONFLICT, atomic between collectors; on DuckDB, which one
process writes, with MERGE under the store's lock (the receivers' threads and the scraper
share one store). Reads sum every row of a key, so a duplicate would change nothing.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import pyarrow as pa
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

from breakeven.collector.gpu.samples import EPOCH, Bucket
from breakeven.collector.store.hours import bucket_start
from breakeven.collector.store.schema import gpu_metric_minutes as minutes
from breakeven.collector.store.schema import gpu_scrape_targets as targets

_KEY = ("minute", "pool", "source", "metric", "host")
_PG_ROWS_PER_STATEMENT = 2000  # 11 parameters a row, under PostgreSQL's 65,535
_RATIO = pa.decimal128(20, 10)
_TS = pa.timestamp("us", tz="UTC")
_ARROW = pa.schema(
    [
        ("minute", _TS), ("pool", pa.string()), ("source", pa.string()), ("metric", pa.string()),
        ("host", pa.string()), ("kind", pa.string()), ("samples", pa.int64()), ("value_sum", _RATIO),
        ("value_max", _RATIO), ("gpus", pa.int32()), ("last_sample_at", _TS),
    ]
)  # fmt: skip
_COLUMNS = ", ".join(_ARROW.names)
_MERGE = f"""
MERGE INTO gpu_metric_minutes t USING _gpu_buckets n
ON t.minute = n.minute AND t.pool = n.pool AND t.source = n.source AND t.metric = n.metric AND t.host = n.host
WHEN MATCHED THEN UPDATE SET
    samples = t.samples + n.samples, value_sum = t.value_sum + n.value_sum,
    value_max = greatest(t.value_max, n.value_max), gpus = greatest(t.gpus, n.gpus),
    last_sample_at = greatest(t.last_sample_at, n.last_sample_at)
WHEN NOT MATCHED THEN INSERT ({_COLUMNS}) VALUES ({", ".join(f"n.{c}" for c in _ARROW.names)})
"""


@dataclass(frozen=True, slots=True)
class ScrapeOutcome:
    """One scrape of one endpoint: the samples it held, or why it failed."""

    url: str
    pool: str
    at: datetime
    samples: int = 0
    error: str | None = None


class GpuStore:
    """The one writer of GPU metric rows in its process (the receivers' threads and the scraper share it)."""

    def __init__(self, engine: sa.Engine) -> None:
        self.engine = engine
        self._lock = threading.Lock()

    def write(self, buckets: Sequence[Bucket], scrape: ScrapeOutcome | None = None) -> None:
        """Add the buckets (and a scrape's outcome) in one transaction; raises, committing nothing, on failure."""
        if not buckets and scrape is None:
            return
        with self._lock, self.engine.begin() as conn:
            add_buckets(conn, buckets)
            if scrape is not None:
                record_scrape(conn, scrape)

    def merge_old_minutes(self, before: datetime, stop: threading.Event | None = None) -> int:
        """Merge every host's minutes before `before` (an hour start) into hours, a day per transaction; rows merged."""
        total = 0
        while stop is None or not stop.is_set():
            with self._lock, self.engine.begin() as conn:
                merged = merge_day_of_minutes(conn, before)
            if merged is None:
                return total
            total += merged
        return total


def _rows(buckets: Sequence[Bucket]) -> list[dict[str, object]]:
    return [
        {
            "minute": b.minute, "pool": b.pool, "source": b.source, "metric": b.metric, "host": b.host,
            "kind": b.kind, "samples": b.samples, "value_sum": b.value_sum, "value_max": b.value_max,
            "gpus": b.gpus, "last_sample_at": b.last_sample_at,
        }
        for b in buckets
    ]  # fmt: skip


def add_buckets(conn: sa.Connection, buckets: Sequence[Bucket]) -> None:
    """Add buckets to their keys' rows (a new key gets a row)."""
    if not buckets:
        return
    rows = _rows(buckets)
    if conn.dialect.name == "duckdb":
        raw = conn.connection.driver_connection
        assert raw is not None
        raw.register("_gpu_buckets", pa.Table.from_pylist(rows, schema=_ARROW))
        try:
            raw.execute(_MERGE)
        finally:
            raw.unregister("_gpu_buckets")
        return
    for i in range(0, len(rows), _PG_ROWS_PER_STATEMENT):
        stmt = postgresql.insert(minutes).values(rows[i : i + _PG_ROWS_PER_STATEMENT])
        conn.execute(
            stmt.on_conflict_do_update(
                index_elements=list(_KEY),
                set_={
                    "samples": minutes.c.samples + stmt.excluded.samples,
                    "value_sum": minutes.c.value_sum + stmt.excluded.value_sum,
                    "value_max": sa.func.greatest(minutes.c.value_max, stmt.excluded.value_max),
                    "gpus": sa.func.greatest(minutes.c.gpus, stmt.excluded.gpus),
                    "last_sample_at": sa.func.greatest(minutes.c.last_sample_at, stmt.excluded.last_sample_at),
                },
            )
        )


def record_scrape(conn: sa.Connection, outcome: ScrapeOutcome) -> None:
    """Update the endpoint's health row (a first scrape creates it)."""
    failed = outcome.error is not None
    changes: dict[str, object] = {"pool": outcome.pool, "last_attempt_at": outcome.at}
    if failed:
        changes.update(
            last_error_at=outcome.at,
            last_error=outcome.error,
            consecutive_failures=targets.c.consecutive_failures + 1,
            failures=targets.c.failures + 1,
        )
    else:
        changes.update(last_success_at=outcome.at, consecutive_failures=0, last_samples=outcome.samples)
    updated = conn.execute(targets.update().where(targets.c.url == outcome.url).values(changes))
    if updated.rowcount:
        return
    row = {
        "url": outcome.url, "pool": outcome.pool, "last_attempt_at": outcome.at,
        "last_success_at": None if failed else outcome.at, "last_error_at": outcome.at if failed else None,
        "last_error": outcome.error, "consecutive_failures": int(failed), "failures": int(failed),
        "last_samples": outcome.samples,
    }  # fmt: skip
    if conn.dialect.name == "postgresql":  # another collector may have created it meanwhile: theirs stands
        conn.execute(postgresql.insert(targets).values(row).on_conflict_do_nothing(index_elements=["url"]))
    else:
        conn.execute(targets.insert().values(row))


def _epoch_seconds(column: sa.ColumnElement[datetime]) -> sa.ColumnElement[int]:
    # Epoch arithmetic, not date_trunc: truncating a timestamptz follows the session time zone.
    return sa.cast(sa.func.floor(sa.func.date_part("epoch", column)), sa.BigInteger)


def merge_day_of_minutes(conn: sa.Connection, before: datetime) -> int | None:
    """Merge the oldest day's minutes before `before` into hour rows; rows merged, None when none are left."""
    seconds = _epoch_seconds(minutes.c.minute)
    oldest = conn.execute(
        sa.select(sa.func.min(minutes.c.minute)).where(minutes.c.minute < before, seconds % 3600 != 0)
    ).scalar()
    if oldest is None:
        return None
    lo = _utc(oldest).replace(minute=0, second=0, microsecond=0)
    hi = min(before, lo + timedelta(days=1))
    hour = bucket_start(minutes.c.minute, 3600)
    in_range = (minutes.c.minute >= lo, minutes.c.minute < hi)
    grouped = conn.execute(
        sa.select(
            hour.label("minute"), minutes.c.pool, minutes.c.source, minutes.c.metric, minutes.c.host,
            sa.func.max(minutes.c.kind).label("kind"), sa.func.sum(minutes.c.samples).label("samples"),
            sa.func.sum(minutes.c.value_sum).label("value_sum"), sa.func.max(minutes.c.value_max).label("value_max"),
            sa.func.max(minutes.c.gpus).label("gpus"), sa.func.max(minutes.c.last_sample_at).label("last_sample_at"),
        )
        .where(*in_range)
        .group_by(hour, minutes.c.pool, minutes.c.source, minutes.c.metric, minutes.c.host)
    ).all()  # fmt: skip
    deleted = conn.execute(minutes.delete().where(*in_range)).rowcount
    rows = [dict(r._mapping) for r in grouped]
    for row in rows:
        row["minute"] = _utc(row["minute"])
    if rows:
        conn.execute(minutes.insert(), rows)
    return max(deleted or 0, len(rows))


# ---------------------------------------------------------------- reads


@dataclass(frozen=True, slots=True)
class SourceTotals:
    """One (pool, source, metric) over a range: samples, their sum and peak, boxes and GPUs, first and last."""

    pool: str
    source: str
    metric: str
    kind: str
    samples: int
    value_sum: Decimal
    value_max: Decimal
    hosts: int
    gpus: int  # the most GPUs (or engines) reported in one minute, all hosts together
    first_minute: datetime
    last_sample_at: datetime

    @property
    def mean(self) -> Decimal:
        """The mean of the samples: each GPU's reading at each sample weighs the same."""
        return self.value_sum / self.samples if self.samples else Decimal(0)


def _range(since: datetime, until: datetime) -> tuple[sa.ColumnElement[bool], ...]:
    # A minute belongs to the range when it starts in it, counting the minute `since` falls in.
    start = EPOCH + timedelta(minutes=(_utc(since) - EPOCH) // timedelta(minutes=1))
    return (minutes.c.minute >= start, minutes.c.minute < until)


def source_totals(conn: sa.Connection, since: datetime, until: datetime) -> list[SourceTotals]:
    """Every (pool, source, metric) with samples in [since, until), in key order."""
    key = (minutes.c.pool, minutes.c.source, minutes.c.metric)
    totals = conn.execute(
        sa.select(
            *key, sa.func.max(minutes.c.kind), sa.func.sum(minutes.c.samples), sa.func.sum(minutes.c.value_sum),
            sa.func.max(minutes.c.value_max), sa.func.count(sa.distinct(minutes.c.host)), sa.func.min(minutes.c.minute),
            sa.func.max(minutes.c.last_sample_at),
        )
        .where(*_range(since, until))
        .group_by(*key)
        .order_by(*key)
    ).all()  # fmt: skip
    per_host = (
        sa.select(*key, minutes.c.minute, sa.func.max(minutes.c.gpus).label("gpus"))
        .where(*_range(since, until))
        .group_by(*key, minutes.c.minute, minutes.c.host)
        .subquery()
    )
    per_minute = (
        sa.select(per_host.c.pool, per_host.c.source, per_host.c.metric, sa.func.sum(per_host.c.gpus).label("gpus"))
        .group_by(per_host.c.pool, per_host.c.source, per_host.c.metric, per_host.c.minute)
        .subquery()
    )
    most = {
        (pool, source, metric): int(gpus)
        for pool, source, metric, gpus in conn.execute(
            sa.select(
                per_minute.c.pool, per_minute.c.source, per_minute.c.metric, sa.func.max(per_minute.c.gpus)
            ).group_by(per_minute.c.pool, per_minute.c.source, per_minute.c.metric)
        )
    }
    return [
        SourceTotals(
            pool, source, metric, kind, int(samples), Decimal(value_sum), Decimal(value_max), int(hosts),
            most.get((pool, source, metric), 0), _utc(first), _utc(last),
        )
        for pool, source, metric, kind, samples, value_sum, value_max, hosts, first, last in totals
    ]  # fmt: skip


def daily_means(
    conn: sa.Connection, since: datetime, until: datetime
) -> dict[tuple[str, str, str], dict[date, Decimal]]:
    """(pool, source, metric) -> UTC day -> the mean of that day's samples (days without samples absent)."""
    day = sa.cast(sa.func.floor(sa.func.date_part("epoch", minutes.c.minute) / 86400), sa.BigInteger)
    key = (minutes.c.pool, minutes.c.source, minutes.c.metric)
    rows = conn.execute(
        sa.select(*key, day, sa.func.sum(minutes.c.samples), sa.func.sum(minutes.c.value_sum))
        .where(*_range(since, until))
        .group_by(*key, day)
    )
    out: dict[tuple[str, str, str], dict[date, Decimal]] = {}
    for pool, source, metric, day_number, samples, value_sum in rows:
        if samples:
            the_day = (EPOCH + timedelta(days=int(day_number))).date()
            out.setdefault((pool, source, metric), {})[the_day] = Decimal(value_sum) / int(samples)
    return out


@dataclass(frozen=True, slots=True)
class TargetHealth:
    """A scrape endpoint's health as last recorded."""

    url: str
    pool: str
    last_attempt_at: datetime
    last_success_at: datetime | None
    last_error_at: datetime | None
    last_error: str | None
    consecutive_failures: int
    failures: int
    last_samples: int


def scrape_health(conn: sa.Connection) -> dict[str, TargetHealth]:
    """Every recorded scrape endpoint's health, by URL."""
    out = {}
    for row in conn.execute(sa.select(targets)).mappings():
        values = dict(row)
        for name in ("last_attempt_at", "last_success_at", "last_error_at"):
            values[name] = None if values[name] is None else _utc(values[name])
        out[row["url"]] = TargetHealth(**values)
    return out


def _utc(at: datetime) -> datetime:
    return at.replace(tzinfo=UTC) if at.tzinfo is None else at.astimezone(UTC)
