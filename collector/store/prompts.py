"""Prompt rollups: kept by the roller, read by the repeated-prompts page. Exact, and short to read.

The page groups every call of its window by prompt hash, and most hashes are distinct:
over calls that is millions of distinct strings a week at 10M calls a month. So the roller
(collector/store/rollup.py) keeps, from the same dirty hours and in the same transaction as
call_rollups, per hour, prompt hash, service, model, price status and pool, the calls,
tokens, cost and first and last start, split in two tables:

- prompt_rollups_unpaired: rows of one call whose prompt key has no other row within
  PAIR_WINDOW (7 days) either side. Such a call repeats in no window that short, so the
  page leaves these out (most rows: most prompts are sent once);
- prompt_rollups: every other row (a prompt sent twice within a week, or twice in an hour).

A recomputed hour's rows go into the unpaired table (recompute); then pair moves to
prompt_rollups every unpaired row within PAIR_WINDOW of the recomputed hours whose key has
more than one call there. So every two rows of one key at most PAIR_WINDOW apart are in
prompt_rollups, whichever of their hours was rolled last; a row that loses its partner (a
re-merged call) stays there, which costs the page a row and never a repeat. Keys are 60
bits of md5 (prompt_key), the same on both databases: cheap to match; a collision pairs
rows needlessly, never the other way round, and the page groups by the hash itself.
Retention deletes both with their calls (purge): they are as large as the calls.

The page reads them as spend reads call_rollups (prompt_rows): clean whole hours from the
rollups, dirty hours and the partial hours at either end from calls, so the rows sum to
exactly the window's calls whether or not the roller has caught up. In a window up to
PAIR_WINDOW, the unpaired table is only probed for the keys of the dirty hours' calls:
an unpaired row can only repeat in a call the rollups do not hold yet (a partner among
the clean partial hours' calls, which the rollups hold, would have paired it). What is
read is then the calls that share a prompt key with another, and the dirty hours'.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime, timedelta
from typing import Any

import pyarrow as pa
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.functions import FunctionElement

from breakeven.collector.store.hours import (
    HOUR,
    bucket_start,
    ceil_hour,
    dirty_hours,
    floor_hour,
    ranges,
    raw_stretches,
    utc,
)
from breakeven.collector.store.schema import calls, prompt_rollups, prompt_rollups_unpaired

# Rows of one key at most this far apart are paired: the longest window the page reads
# without the unpaired ones.
PAIR_WINDOW = timedelta(days=7)
TOKENS = ("input_tokens", "cache_read_tokens", "cache_write_tokens", "output_tokens", "reasoning_tokens")
STORED = [c.name for c in prompt_rollups.c]
# What prompt_rows gives: the rollups' columns but the key (only the roller and the probe match on it).
COLUMNS = [name for name in STORED if name != "prompt_key"]
MAX_LISTED_KEYS = 5_000  # past this many, unpaired rows are matched with the dirty hours' calls in SQL

Stretches = Sequence[tuple[datetime, datetime]]


class prompt_key(FunctionElement[int]):  # noqa: N801 (an SQL function, named as one)
    """SQL: a prompt hash's key, the first 60 bits of its md5 as a BIGINT, the same on DuckDB and PostgreSQL.

    md5 rather than the database's own hash(): stored keys are compared with keys computed
    later, maybe by another version, and md5 does not change.
    """

    type = sa.BigInteger()
    name = "prompt_key"
    inherit_cache = True


PROMPT_KEY_DIGITS = 15  # hex digits of the md5 a key keeps: 60 bits, a positive BIGINT (tests make it 1)


@compiles(prompt_key)
def _prompt_key_postgresql(element: prompt_key, compiler: SQLCompiler, **kw: Any) -> str:
    md5 = f"md5({compiler.process(element.clauses, **kw)})"
    return f"CAST(CAST('x' || substr({md5}, 1, {PROMPT_KEY_DIGITS}) AS BIT({4 * PROMPT_KEY_DIGITS})) AS BIGINT)"


@compiles(prompt_key, "duckdb")
def _prompt_key_duckdb(element: prompt_key, compiler: SQLCompiler, **kw: Any) -> str:
    return f"CAST('0x' || substr(md5({compiler.process(element.clauses, **kw)}), 1, {PROMPT_KEY_DIGITS}) AS BIGINT)"


def grouped(lo: datetime, hi: datetime) -> sa.Select[Any]:
    """The prompt rollup rows of the calls that started in [lo, hi)."""
    model = sa.func.coalesce(calls.c.response_model, calls.c.request_model)
    keys = (calls.c.prompt_hash, calls.c.service, model.label("model"), calls.c.price_status, calls.c.pool)
    hour = bucket_start(calls.c.start_time).label("hour")
    rows = (
        sa.select(
            hour,
            *keys,
            sa.func.count().label("calls"),
            *(sa.func.coalesce(sa.func.sum(calls.c[name]), 0).label(name) for name in TOKENS),
            sa.func.sum(calls.c.cost_usd).label("cost_usd"),
            sa.func.min(calls.c.start_time).label("first_start"),
            sa.func.max(calls.c.start_time).label("last_start"),
        )
        .where(calls.c.start_time >= lo, calls.c.start_time < hi, calls.c.prompt_hash.is_not(None))
        .group_by(hour, *keys)
        .subquery()
    )
    # The key per row, not per call: md5 once per group.
    return sa.select(*(prompt_key(rows.c.prompt_hash) if n == "prompt_key" else rows.c[n] for n in STORED))


def recompute(conn: sa.Connection, lo: datetime, hi: datetime) -> None:
    """The prompt rollups of the hours [lo, hi) from their calls, all unpaired; pair must follow, in the
    same transaction."""
    for table in (prompt_rollups, prompt_rollups_unpaired):
        conn.execute(table.delete().where(table.c.hour >= lo, table.c.hour < hi))
    conn.execute(prompt_rollups_unpaired.insert().from_select(STORED, grouped(lo, hi)))


def pair(conn: sa.Connection, hours: Iterable[datetime]) -> None:
    """Move to prompt_rollups every unpaired row within PAIR_WINDOW of these (just recomputed) hours whose
    prompt key has more than one call there.

    One window for all the hours, from the first minus PAIR_WINDOW to the last plus it: rows
    further apart than PAIR_WINDOW may be paired too when the hours are scattered, which
    is harmless. Keys go through Python as listed_keys: a subquery in their place makes
    DuckDB hash the larger side.
    """
    p, u = prompt_rollups, prompt_rollups_unpaired
    runs = ranges(hours)
    if not runs:
        return

    def near(table: sa.Table) -> sa.ColumnElement[bool]:
        return sa.and_(table.c.hour >= runs[0][0] - PAIR_WINDOW, table.c.hour <= runs[-1][1] - HOUR + PAIR_WINDOW)

    in_runs = sa.or_(*(sa.and_(u.c.hour >= a, u.c.hour < b) for a, b in runs))
    fresh = list(conn.execute(sa.select(u.c.prompt_key).where(in_runs).distinct()).scalars())
    if not fresh:
        return
    with listed_keys(conn, fresh) as fresh_keys:
        around = sa.union_all(
            *(sa.select(t.c.prompt_key, t.c.calls).where(near(t), t.c.prompt_key.in_(fresh_keys)) for t in (u, p))
        ).subquery()
        shared = sa.select(around.c.prompt_key).group_by(around.c.prompt_key).having(sa.func.sum(around.c.calls) > 1)
        moved = list(conn.execute(shared).scalars())
    if not moved:
        return
    with listed_keys(conn, moved) as moved_keys:
        # Their hours first (a scan of two narrow columns), so that the rows' other columns are
        # read from those hours only: DuckDB reads them before it drops the rows of other keys.
        found = sa.select(u.c.hour).where(near(u), u.c.prompt_key.in_(moved_keys)).distinct()
        at = ranges(utc(h) for h in conn.execute(found).scalars())
        moving = sa.and_(sa.or_(*(sa.and_(u.c.hour >= a, u.c.hour < b) for a, b in at)), u.c.prompt_key.in_(moved_keys))
        conn.execute(p.insert().from_select(STORED, sa.select(*(u.c[n] for n in STORED)).where(moving)))
        conn.execute(u.delete().where(moving))


@contextmanager
def listed_keys(conn: sa.Connection, keys: list[int]) -> Iterator[sa.Select[tuple[int]]]:
    """A SELECT of these prompt keys whose size the database knows: an Arrow table on DuckDB (for the
    connection, while in the block), an unnested array parameter on PostgreSQL."""
    if conn.dialect.name != "duckdb":
        yield sa.select(sa.func.unnest(sa.bindparam("keys", keys, type_=postgresql.ARRAY(sa.BigInteger), unique=True)))
        return
    raw = conn.connection.driver_connection
    assert raw is not None
    name = f"_prompt_keys_{uuid.uuid4().hex}"
    raw.register(name, pa.table({"prompt_key": pa.array(keys, pa.int64())}))
    try:
        yield sa.select(sa.table(name, sa.column("prompt_key", sa.BigInteger)).c.prompt_key)
    finally:
        raw.unregister(name)


def purge(conn: sa.Connection, before: datetime) -> None:
    """Delete the prompt rollups of the hours before `before` (retention: their calls go too)."""
    for table in (prompt_rollups, prompt_rollups_unpaired):
        conn.execute(table.delete().where(table.c.hour < before))


def prompt_rows(conn: sa.Connection, since: datetime, until: datetime) -> sa.Subquery:
    """Rows (COLUMNS) holding every call of [since, until) with a prompt hash that shares its prompt key
    with another call of the range (and maybe others; all of them when the range is longer than
    PAIR_WINDOW)."""
    dirty = dirty_hours(conn, since, until)
    stretches = raw_stretches(since, until, dirty)
    clean = _clean(ceil_hour(since), floor_hour(until), stretches)
    parts = [_raw(a, b) for a, b in stretches]
    if clean:
        u = prompt_rollups_unpaired
        parts.append(_rolled(prompt_rollups, clean))
        if until - since > PAIR_WINDOW:
            parts.append(_rolled(u, clean))
        elif dirty:
            runs = [(max(a, since), min(b, until)) for a, b in ranges(dirty)]
            keys = _unpaired_partners(conn, clean, runs)
            if len(keys) > MAX_LISTED_KEYS:  # a backlog of dirty hours: matched in the database, slower
                parts.append(_rolled(u, clean, u.c.prompt_key.in_(_dirty_keys(runs))))
            elif keys:
                parts.append(_rolled(u, clean, u.c.prompt_key.in_(keys)))
    if not parts:  # an empty range
        parts.append(_rolled(prompt_rollups, []))
    return (sa.union_all(*parts) if len(parts) > 1 else parts[0]).subquery("prompt_rows")


def _raw(a: datetime, b: datetime) -> sa.Select[Any]:
    """The calls of [a, b) with a prompt hash, one row each."""
    return sa.select(
        bucket_start(calls.c.start_time).label("hour"),
        calls.c.prompt_hash,
        calls.c.service,
        sa.func.coalesce(calls.c.response_model, calls.c.request_model).label("model"),
        calls.c.price_status,
        calls.c.pool,
        sa.literal(1, sa.BigInteger).label("calls"),
        *(calls.c[name] for name in TOKENS),
        calls.c.cost_usd,
        calls.c.start_time.label("first_start"),
        calls.c.start_time.label("last_start"),
    ).where(calls.c.start_time >= a, calls.c.start_time < b, calls.c.prompt_hash.is_not(None))


def _clean(lo: datetime, hi: datetime, stretches: Stretches) -> list[tuple[datetime, datetime]]:
    """The runs of whole hours in [lo, hi) that no stretch read from calls touches."""
    out = []
    for a, b in stretches:
        if lo < min(a, hi):
            out.append((lo, min(a, hi)))
        lo = max(lo, b)
    return [*out, (lo, hi)] if lo < hi else out


def _in(column: sa.ColumnElement[datetime], runs: Stretches) -> sa.ColumnElement[bool]:
    return sa.or_(*(sa.and_(column >= a, column < b) for a, b in runs)) if runs else sa.false()


def _rolled(table: sa.Table, clean: Stretches, *where: sa.ColumnElement[bool]) -> sa.Select[Any]:
    return sa.select(*(table.c[name] for name in COLUMNS)).where(_in(table.c.hour, clean), *where)


def _dirty_keys(dirty: Stretches) -> sa.Select[Any]:
    key = prompt_key(calls.c.prompt_hash)
    return sa.select(key).where(_in(calls.c.start_time, dirty), calls.c.prompt_hash.is_not(None)).distinct()


def _unpaired_partners(conn: sa.Connection, clean: Stretches, dirty: Stretches) -> list[int]:
    """The keys of unpaired rows in the clean hours that calls of the dirty hours share.

    The dirty hours' keys are read first, then looked for as listed_keys: in one
    statement DuckDB takes the calls side for the larger one and hashes every unpaired key
    of the range (a hundred milliseconds at 10M calls a month, not ten).
    """
    keys = list(conn.execute(_dirty_keys(dirty)).scalars())
    if not keys:
        return []
    u = prompt_rollups_unpaired
    with listed_keys(conn, keys) as listed:
        probe = sa.select(u.c.prompt_key).where(_in(u.c.hour, clean), u.c.prompt_key.in_(listed)).distinct()
        return sorted(conn.execute(probe).scalars())
