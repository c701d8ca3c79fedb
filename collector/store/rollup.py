"""Hourly and daily rollups of calls, kept exact by dirty hours; and retention of raw calls.

call_rollups holds, per UTC hour and per value of every dimension spend reads (backend
class, provider, request and response model, quantization, service, team, feature, pool,
price status, unpriced reason), the calls, token sums and cost sums of that hour;
call_rollups_daily the same per UTC day, summed from the hours whenever one of them is
rolled up (a month's report then reads a row per day and key instead of one per hour:
what keeps PostgreSQL's GROUP BY small).

Why dirty hours rather than deltas: a call changes after it is stored (a late span
re-merges it: the writer deletes the row and inserts the new one; `reprice` rewrites its
price), and a delta would need the old row's values at every such change, in every code
path that changes calls. Marking the hour instead is one appended row, and recomputing an
hour from its calls is idempotent, so a missed or repeated pass cannot leave a rollup
wrong. So:

- the writer and reprice append the hours they touched to rollup_dirty, in the
  transaction that changed the calls (mark_dirty);
- the roller (a thread of `breakeven serve`) recomputes each dirty hour from calls
  every few seconds: it deletes the hour's rollup rows, inserts the GROUP BY, sums its
  day again from the day's hours, and deletes the marks it saw, all in one transaction
  (roll_pass). It runs on a snapshot
  (DuckDB's transactions; REPEATABLE READ on PostgreSQL, after locking call_rollups so
  that collectors sharing the database roll one at a time), so a mark committed while it
  works is not deleted and its hour stays dirty for the next pass;
- readers (collector/store/spend.py) take whole days without a dirty hour from
  call_rollups_daily, other clean hours from call_rollups, and dirty hours from calls,
  so a report is exact at any moment, rolled up or not.

The prompt rollups (collector/store/prompts.py, migration 0007), which the repeated-prompts
page reads, are recomputed from the same dirty hours in the same transaction, then paired.

Retention (retention_days > 0): raw calls and LLM spans that started before
now - retention_days (to the hour) are deleted, a stretch of hours per transaction, each
hour's rollup recomputed in the same transaction first (purge_pass); the horizon moves
with it (retention_horizon). Rollups are kept forever. Below the horizon an hour is its
rollup plus whatever calls arrived after it was purged: such a late call marks its hour
dirty as usual, and the roller adds it to the rollup and deletes it rather than
recomputing the hour (the rest of it is gone). A late span whose partners were purged
cannot be merged with them: it counts as a call of its own. The prompt rollups are not kept
past the horizon: their rows go with their calls (they are as large), and a late call below
the horizon adds nothing to them.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.exc import DBAPIError

from breakeven.collector.store import counters, prompts
from breakeven.collector.store.hours import (
    DAY,
    EPOCH,
    HOUR,
    bucket_start,
    dirty_hours,
    floor_day,
    floor_hour,
    ranges,
    utc,
)
from breakeven.collector.store.schema import (
    call_rollups,
    call_rollups_daily,
    calls,
    llm_spans,
    retention_horizon,
    rollup_dirty,
)

log = logging.getLogger("breakeven.rollup")

# Dimensions: the rollup's key besides the hour; the calls columns of the same names.
DIMENSIONS = (
    "backend_class", "provider", "request_model", "response_model", "quantization", "service", "team", "feature",
    "pool", "price_status", "unpriced_reason",
)  # fmt: skip
TOKENS = ("input_tokens", "cache_read_tokens", "cache_write_tokens", "output_tokens", "reasoning_tokens")
MAX_HOURS_PER_PASS = 24 * 7  # one transaction recomputes at most a week of dirty hours
PURGE_BATCH_CALLS = 100_000  # about how many calls one retention transaction deletes
ROLL_INTERVAL_SECONDS = 5.0


def horizon_clause() -> sa.ScalarSelect[Any]:
    """SQL: the retention horizon (the epoch while nothing was purged), read in the reader's own statement."""
    return sa.select(sa.func.coalesce(sa.func.max(retention_horizon.c.purged_before), EPOCH)).scalar_subquery()


def _horizon(conn: sa.Connection) -> datetime | None:
    found = conn.execute(sa.select(sa.func.max(retention_horizon.c.purged_before))).scalar()
    return None if found is None else utc(found)


def _grouped_calls(lo: datetime, hi: datetime) -> sa.Select[Any]:
    """The rollup rows of the calls that started in [lo, hi)."""
    hour = bucket_start(calls.c.start_time)
    dims = [calls.c[name] for name in DIMENSIONS]
    return (
        sa.select(
            hour,
            *dims,
            sa.func.count(),
            *(sa.func.coalesce(sa.func.sum(calls.c[name]), 0) for name in TOKENS),
            sa.func.sum(calls.c.cost_usd),
            sa.func.sum(calls.c.list_cost_usd),
        )
        .where(calls.c.start_time >= lo, calls.c.start_time < hi)
        .group_by(hour, *dims)
    )


_ROLLUP_COLUMNS = ["hour", *DIMENSIONS, "calls", *TOKENS, "cost_usd", "list_cost_usd"]
_DAILY_COLUMNS = ["day", *_ROLLUP_COLUMNS[1:]]


def _recompute_days(conn: sa.Connection, hours: Iterable[datetime]) -> None:
    """The days of these hours summed again from their hours' rollups."""
    day = bucket_start(call_rollups.c.hour, 86_400)
    dims = [call_rollups.c[name] for name in DIMENSIONS]
    sums = [sa.func.sum(call_rollups.c[name]) for name in ("calls", *TOKENS, "cost_usd", "list_cost_usd")]
    for lo, hi in ranges({floor_day(h) for h in hours}, DAY):
        conn.execute(call_rollups_daily.delete().where(call_rollups_daily.c.day >= lo, call_rollups_daily.c.day < hi))
        grouped = (
            sa.select(day, *dims, *sums).where(call_rollups.c.hour >= lo, call_rollups.c.hour < hi).group_by(day, *dims)
        )
        conn.execute(call_rollups_daily.insert().from_select(_DAILY_COLUMNS, grouped))


class _Busy(Exception):
    """Another collector is rolling up (PostgreSQL): this pass is skipped."""


@contextmanager
def _rolling(engine: sa.Engine) -> Iterator[sa.Connection]:
    """A transaction on a snapshot, alone among rollers: raises _Busy when another one holds the lock."""
    if engine.dialect.name == "duckdb":  # one process: the collector's own roller is the only one
        with engine.begin() as conn:
            yield conn
        return
    with engine.connect().execution_options(isolation_level="REPEATABLE READ") as conn, conn.begin():
        # Before any query: the snapshot is taken after the lock, so it sees the last roller's work.
        try:
            conn.exec_driver_sql("LOCK TABLE call_rollups IN EXCLUSIVE MODE NOWAIT")
        except DBAPIError as exc:
            if getattr(exc.orig, "sqlstate", None) == "55P03":  # lock_not_available
                raise _Busy from None
            raise
        yield conn


def _recompute(conn: sa.Connection, lo: datetime, hi: datetime, with_prompts: bool = True) -> None:
    conn.execute(call_rollups.delete().where(call_rollups.c.hour >= lo, call_rollups.c.hour < hi))
    conn.execute(call_rollups.insert().from_select(_ROLLUP_COLUMNS, _grouped_calls(lo, hi)))
    if with_prompts:  # prompts.pair must follow, in the same transaction
        prompts.recompute(conn, lo, hi)


def _fold_in(conn: sa.Connection, lo: datetime, hi: datetime) -> None:
    """Below the horizon: add the hours' calls (all late) to their rollups, then delete them."""
    conn.execute(call_rollups.insert().from_select(_ROLLUP_COLUMNS, _grouped_calls(lo, hi)))
    conn.execute(calls.delete().where(calls.c.start_time >= lo, calls.c.start_time < hi))
    conn.execute(llm_spans.delete().where(llm_spans.c.start_time >= lo, llm_spans.c.start_time < hi))


def roll_pass(engine: sa.Engine, max_hours: int = MAX_HOURS_PER_PASS) -> int:
    """Recompute up to max_hours dirty hours (oldest first) in one transaction; how many it did."""
    try:
        with _rolling(engine) as conn:
            hours = [
                utc(h)
                for h in conn.execute(
                    sa.select(rollup_dirty.c.hour).distinct().order_by(rollup_dirty.c.hour).limit(max_hours)
                ).scalars()
            ]
            if not hours:
                return 0
            horizon = _horizon(conn)
            recomputed: list[datetime] = []
            for lo, hi in ranges(hours):
                # A run of hours may straddle the horizon: the part below it is folded in.
                cut = min(max(lo, horizon or lo), hi)
                if lo < cut:
                    _fold_in(conn, lo, cut)
                if cut < hi:
                    _recompute(conn, cut, hi)
                    recomputed.extend(h for h in hours if cut <= h < hi)
                # Only the marks this snapshot sees: one committed meanwhile keeps its hour dirty.
                conn.execute(rollup_dirty.delete().where(rollup_dirty.c.hour >= lo, rollup_dirty.c.hour < hi))
            prompts.pair(conn, recomputed)
            _recompute_days(conn, hours)
            return len(hours)
    except _Busy:
        return 0


def roll_all(engine: sa.Engine, max_hours: int = MAX_HOURS_PER_PASS) -> int:
    """Roll up every dirty hour (pass after pass); how many hours were rolled."""
    total = 0
    while (done := roll_pass(engine, max_hours)) == max_hours:
        total += done
    return total + done


def purge_pass(engine: sa.Engine, before: datetime, step: timedelta = HOUR) -> int | None:
    """Delete the raw calls and spans of the next `step` of hours before `before`; how many calls.

    None when there is nothing left to delete. The stretch's dirty hours are recomputed in
    the same transaction, before its calls go, and the horizon moves to the stretch's end.
    """
    before = floor_hour(before)
    try:
        with _rolling(engine) as conn:
            horizon = _horizon(conn)
            if horizon is None:
                oldest = conn.execute(sa.select(sa.func.min(calls.c.start_time))).scalar()
                if oldest is None:
                    return None
                horizon = floor_hour(utc(oldest))
            if horizon >= before:
                return None
            hi = min(before, horizon + step)
            dirty = dirty_hours(conn, horizon, hi)
            for lo, end in ranges(dirty):
                _recompute(conn, lo, end, with_prompts=False)  # the stretch's prompt rollups go with its calls
            _recompute_days(conn, dirty)
            conn.execute(rollup_dirty.delete().where(rollup_dirty.c.hour >= horizon, rollup_dirty.c.hour < hi))
            prompts.purge(conn, hi)
            deleted = conn.execute(calls.delete().where(calls.c.start_time >= horizon, calls.c.start_time < hi))
            conn.execute(llm_spans.delete().where(llm_spans.c.start_time < hi))
            conn.execute(retention_horizon.delete())
            conn.execute(retention_horizon.insert().values(purged_before=hi))
            return max(deleted.rowcount or 0, 0)
    except _Busy:
        return None


def purge(
    engine: sa.Engine, retention_days: int, now: datetime | None = None, stop: threading.Event | None = None
) -> int:
    """Delete the raw calls and spans older than retention_days, a stretch per transaction; how many calls.

    A stretch starts at an hour and doubles while it holds under PURGE_BATCH_CALLS calls
    (halves past twice that), so a long backlog goes in few transactions of bounded size.
    """
    before = (now or datetime.now(UTC)) - timedelta(days=retention_days)
    total = 0
    step = HOUR
    while stop is None or not stop.is_set():
        count = purge_pass(engine, before, step)
        if count is None:
            break
        total += count
        if count < PURGE_BATCH_CALLS // 2:
            step = min(step * 2, timedelta(days=31))
        elif count > 2 * PURGE_BATCH_CALLS:
            step = max(step / 2, HOUR)
    return total


class Roller:
    """The background thread that rolls dirty hours up, folds the ingest counters
    (collector/store/counters.py) and applies retention, every few seconds."""

    def __init__(self, engine: sa.Engine, retention_days: int = 0, interval: float = ROLL_INTERVAL_SECONDS) -> None:
        self.engine = engine
        self.retention_days = retention_days
        self.interval = interval
        self.passes = 0
        self.failures = 0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        """Start the thread."""
        self._thread = threading.Thread(target=self._run, name="breakeven-rollup", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 30.0) -> None:
        """Stop after the pass under way (its transaction commits or rolls back whole)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)

    def run_once(self) -> None:
        """One round: every dirty hour rolled up, then retention, and the ingest counters folded
        (whether or not the rest failed); failures logged and counted, never raised."""
        for step, work in (("rollup", self._roll), ("counter fold", lambda: counters.fold(self.engine))):
            try:
                work()
            except Exception as exc:  # a conflict with a writer, a lost connection: the next round retries
                self.failures += 1
                log.warning("%s round failed (retried in %.0f s): %s", step, self.interval, exc)
        self.passes += 1

    def _roll(self) -> None:
        roll_all(self.engine)
        if self.retention_days > 0:
            purge(self.engine, self.retention_days, stop=self._stop)

    def _run(self) -> None:
        while not self._stop.is_set():
            started = time.monotonic()
            self.run_once()
            # Under heavy ingest the current hour is large and recomputed every round: rest
            # at least four times as long as the round took, so rolling up takes at most a
            # fifth of a core from the writer.
            self._stop.wait(max(self.interval, 4 * (time.monotonic() - started)))
