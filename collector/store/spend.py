"""Spend: calls, tokens and cost over [since, until), grouped; pool cost allocated on read.

One GROUP BY over the calls (SQLAlchemy Core: DuckDB and PostgreSQL alike; whole clean hours
read from their hourly rollups, the rest from the calls table, see _source) returns counts,
token sums and per-token cost sums per group key, UTC time bucket, price status and pool.
Everything else is Decimal arithmetic in Python over those few rows:

- a per-token call (price_status "priced") costs its stored cost_usd;
- a self-hosted call (price_status "pool") gets its share of its pool's cost for the
  allocation window that holds it (pricing.allocation_period: hour, day or month, UTC):
  the window's fixed cost split by busy seconds (breakeven.collector.price.pools.allocate), plus the
  variable cost of its tokens. Busy seconds are linear in tokens, so token sums per
  (pool, bucket, group) allocate exactly as the calls one by one would;
- a window partly outside [since, until) contributes only the overlap: its fixed cost is
  prorated to the overlap and split over the calls inside the range. So a report's pool
  cost is exactly the pool's cost for [since, until), whatever the window size, and the
  cost of one call in /api/v1/calls (always its whole window) may differ from its share
  in a report that cuts its window;
- windows (or overlaps) without traffic are idle spend that belongs to no group: it is
  returned per pool as unallocated, never spread over rows;
- unpriced calls (and pool calls whose pool is no longer configured) are counted apart,
  by reason, and never priced as zero.

Amounts stay USD, unrounded, keyed by the UTC day they belong to, so the caller can
convert each day at that day's exchange rate. `breaks` names the instants where a rate
changes: an interval cost (idle spend) is split there.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from itertools import pairwise
from typing import Any

import sqlalchemy as sa
from sqlalchemy.sql.visitors import replacement_traverse

from breakeven.collector.price.config import PricingConfig
from breakeven.collector.price.periods import allocation_window, utc
from breakeven.collector.price.pools import Pool, allocate, fixed_cost
from breakeven.collector.price.usage import TokenUsage
from breakeven.collector.records import POOL, PRICED
from breakeven.collector.store import hours
from breakeven.collector.store import rollup as rollups
from breakeven.collector.store.schema import call_rollups, call_rollups_daily, calls

GROUP_KEYS = (
    "backend_class", "provider", "model", "model_version", "quantization", "service", "team", "feature", "pool",
    "day", "month",
)  # fmt: skip
TIME_KEYS = ("day", "month")
UNKNOWN_POOL = "unknown_pool"  # a pool call whose pool the config no longer has
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)

ByDay = dict[date, Decimal]
Key = tuple[Any, ...]


class GroupByError(ValueError):
    """A group_by that names something spend cannot group by."""


def group_keys(text: str | Sequence[str] | None) -> tuple[str, ...]:
    """The group_by names, validated, in order, without repeats; GroupByError naming a bad one."""
    names = text.split(",") if isinstance(text, str) else list(text or ())
    out: list[str] = []
    for raw in names:
        name = raw.strip()
        if not name:
            continue
        if name not in GROUP_KEYS:
            raise GroupByError(f"group_by: cannot group by {name!r} (one of {', '.join(GROUP_KEYS)})")
        if name not in out:
            out.append(name)
    return tuple(out)


@dataclass(slots=True)
class SpendRow:
    """One group: its key values (in group_by order), calls, tokens and cost by UTC day."""

    key: Key
    calls: int = 0
    unpriced_calls: int = 0
    usage: TokenUsage = field(default_factory=TokenUsage)
    cost_usd: ByDay = field(default_factory=dict)  # empty: no call of the group could be priced

    @property
    def priced_calls(self) -> int:
        """Calls whose cost is in cost_usd (per-token or pool)."""
        return self.calls - self.unpriced_calls


@dataclass(frozen=True, slots=True)
class Spend:
    """Spend over [since, until), grouped, in USD by UTC day."""

    since: datetime
    until: datetime
    group_by: tuple[str, ...]
    rows: list[SpendRow]
    unpriced_calls: int
    unpriced_reasons: dict[str, int]
    unallocated_usd: dict[str, ByDay]  # per configured pool: fixed cost of windows without traffic


def add(by_day: ByDay, day: date, amount: Decimal) -> None:
    """Add an amount to a day's total."""
    by_day[day] = by_day.get(day, Decimal(0)) + amount


def _bucket(src: sa.Subquery, seconds: int, pool_only: bool = False) -> sa.ColumnElement[int]:
    # Seconds since the epoch, not date_trunc: truncation of a timestamptz follows the
    # session time zone on both databases, and buckets must be UTC. date_part is a double
    # (EXTRACT is numeric on PostgreSQL, twice as slow); at today's epoch a double resolves
    # well under a microsecond, so no call lands in the wrong hour or day.
    epoch = sa.func.date_part("epoch", src.c.at)
    bucket = sa.cast(sa.func.floor(epoch / sa.literal_column(str(seconds))), sa.BigInteger)
    if not pool_only or seconds == 86_400:
        return bucket
    # Only pool calls need hours (their allocation windows); the rest need their day, so
    # they share its first hour and hourly allocation does not multiply their rows by 24.
    per_day: sa.ColumnElement[int] = sa.literal_column(str(86_400 // seconds), sa.BigInteger)
    day_start = sa.cast(sa.func.floor(epoch / sa.literal_column("86400")), sa.BigInteger) * per_day
    return sa.case((src.c.price_status == POOL, bucket), else_=day_start)


def dimension(src: sa.FromClause, name: str) -> sa.ColumnElement[Any]:
    """The column (or expression) a group_by or filter name means, over calls or a subquery of it."""
    if name == "model":
        return sa.func.coalesce(src.c.response_model, src.c.request_model)
    if name == "model_version":  # the version that answered, as the provider reported it
        return src.c.response_model
    return src.c[name]


def _token_sums(src: sa.Subquery) -> tuple[sa.Label[Any], ...]:
    return (
        sa.func.sum(src.c.input_tokens).label("input"),
        sa.func.sum(src.c.cache_read_tokens).label("cache_read"),
        sa.func.sum(src.c.cache_write_tokens).label("cache_write"),
        sa.func.sum(src.c.output_tokens).label("output"),
        sa.func.sum(src.c.reasoning_tokens).label("reasoning"),
    )


def _source(
    conn: sa.Connection,
    since: datetime,
    until: datetime,
    where: Sequence[sa.ColumnElement[bool]],
    pool_hours: bool = False,
    hours_only: bool = False,
) -> sa.Subquery:
    """The calls of [since, until) that pass `where`, as rows to sum (calls, tokens, cost, at).

    Whole days without a dirty hour come from call_rollups_daily (pool calls from the
    hourly rollups when pool_hours, as hourly allocation needs their hours), other whole
    clean hours from call_rollups, dirty hours and the partial hours at either end from
    calls (collector/store/rollup.py): exact whether or not the roller has caught up. A
    `where` on a column the rollups lack reads everything from calls. Below the retention
    horizon an hour is its rollup plus its late calls, and counts when it starts in
    [since, until) (its calls are gone, so it cannot be cut).
    """
    on_rollups = _on_rollups(where)
    stretches = [(since, until)]
    parts: list[sa.Select[Any]] = []
    if on_rollups is not None:
        lo, hi = hours.ceil_hour(since), hours.floor_hour(until)
        dirty = hours.dirty_hours(conn, since, until)
        stretches = hours.raw_stretches(since, until, dirty)
        days = [] if hours_only else _clean_days(since, until, stretches)  # hours_only: every call keeps its hour
        r, d = call_rollups, call_rollups_daily
        pooled = r.c.price_status == POOL
        horizon = rollups.horizon_clause()
        in_days = sa.or_(sa.false(), *(sa.and_(r.c.hour >= a, r.c.hour < b) for a, b in days))
        from_calls = sa.or_(sa.false(), *(sa.and_(r.c.hour >= a, r.c.hour < b) for a, b in stretches))
        parts.append(
            _rows(r, r.c.hour).where(
                r.c.hour >= lo,
                r.c.hour < hours.ceil_hour(until),
                sa.or_(r.c.hour < hi, r.c.hour < horizon),
                sa.not_(sa.and_(r.c.hour >= horizon, from_calls)),
                sa.or_(sa.not_(in_days), pooled) if pool_hours else sa.not_(in_days),
                *on_rollups,
            )
        )
        if days:
            on_days = [_swapped(clause, d) for clause in on_rollups]
            not_pooled = sa.or_(d.c.price_status != POOL, d.c.price_status.is_(None))
            parts.append(
                _rows(d, d.c.day).where(
                    sa.or_(*(sa.and_(d.c.day >= a, d.c.day < b) for a, b in days)),
                    *([not_pooled] if pool_hours else []),
                    *on_days,
                )
            )
    for a, b in stretches:
        parts.append(
            sa.select(
                *(calls.c[name] for name in rollups.DIMENSIONS),
                calls.c.start_time.label("at"),
                sa.literal(1, sa.BigInteger).label("n"),
                *(calls.c[name] for name in rollups.TOKENS),
                calls.c.cost_usd.label("cost"),
            ).where(calls.c.start_time >= a, calls.c.start_time < b, *where)
        )
    return (sa.union_all(*parts) if len(parts) > 1 else parts[0]).subquery("src")


def _rows(table: sa.Table, at: sa.ColumnElement[datetime]) -> sa.Select[Any]:
    """A rollup table's rows in the shape of _source's."""
    return sa.select(
        *(table.c[name] for name in rollups.DIMENSIONS),
        at.label("at"),
        table.c.calls.label("n"),
        *(table.c[name] for name in rollups.TOKENS),
        table.c.cost_usd.label("cost"),
    )


def _clean_days(
    since: datetime, until: datetime, stretches: Sequence[tuple[datetime, datetime]]
) -> list[tuple[datetime, datetime]]:
    """Runs of whole UTC days in [since, until) that no stretch read from calls touches."""
    out: list[tuple[datetime, datetime]] = []
    at, end = hours.ceil_day(since), hours.floor_day(until)
    for a, b in sorted(stretches):
        lo, hi = hours.floor_day(a), hours.ceil_day(b)
        if at < min(lo, end):
            out.append((at, min(lo, end)))
        at = max(at, hi)
    if at < end:
        out.append((at, end))
    return out


def _on_rollups(where: Sequence[sa.ColumnElement[bool]]) -> list[sa.ColumnElement[bool]] | None:
    """`where` over call_rollups' columns; None when it names a calls column the rollups lack."""
    missing: list[str] = []

    def swap(element: Any, **_: Any) -> Any:
        if isinstance(element, sa.Column) and element.table is calls:
            if element.name in rollups.DIMENSIONS:
                return call_rollups.c[element.name]
            missing.append(element.name)
        return None

    swapped = [replacement_traverse(clause, {}, swap) for clause in where]
    return None if missing else swapped


def _swapped(clause: sa.ColumnElement[bool], table: sa.Table) -> sa.ColumnElement[bool]:
    """A condition on call_rollups' columns, on another rollup table's."""

    def swap(element: Any, **_: Any) -> Any:
        if isinstance(element, sa.Column) and element.table is call_rollups:
            return table.c[element.name]
        return None

    return replacement_traverse(clause, {}, swap)


def _usage(row: Any) -> TokenUsage:
    return TokenUsage(
        int(row.input or 0), int(row.cache_read or 0), int(row.cache_write or 0), int(row.output or 0),
        int(row.reasoning or 0),
    )  # fmt: skip


def _bucket_seconds(pricing: PricingConfig) -> int:
    return 3600 if pricing.allocation_period == "hour" else 86_400


def spend(
    conn: sa.Connection,
    pricing: PricingConfig,
    since: datetime,
    until: datetime,
    group_by: Sequence[str] = (),
    breaks: Sequence[datetime] = (),
    where: Sequence[sa.ColumnElement[bool]] = (),
) -> Spend:
    """Calls, tokens and cost (per-token plus allocated pool cost) per group over [since, until)."""
    group_by = group_keys(group_by)
    seconds = _bucket_seconds(pricing)
    dims = [name for name in group_by if name not in TIME_KEYS and name != "pool"]
    src = _source(conn, since, until, where, pool_hours=seconds == 3600)
    bucket = _bucket(src, seconds, pool_only=True)
    keys = [dimension(src, name) for name in dims] + [bucket, src.c.price_status, src.c.pool, src.c.unpriced_reason]
    labels = [*dims, "bucket", "price_status", "pool", "unpriced_reason"]
    query = sa.select(
        *(k.label(n) for k, n in zip(keys, labels, strict=True)),
        sa.func.sum(src.c.n).label("calls"),
        *_token_sums(src),
        sa.func.sum(src.c.cost).label("cost"),
    ).group_by(*keys)
    pools = {pool.name: pool for pool in pricing.pools}
    table: dict[Key, SpendRow] = {}
    reasons: dict[str, int] = {}
    windows: dict[tuple[str, datetime, datetime], list[tuple[tuple[Key, date], TokenUsage]]] = {}
    buckets: dict[int, tuple[date, date, datetime, datetime]] = {}
    n = len(dims)
    # Where each key value comes from in (*dimensions, pool, day, month).
    picks = [dims.index(name) if name in dims else n + ("pool", "day", "month").index(name) for name in group_by]
    for r in conn.execute(query).all():
        number, status, pool_name, reason, count = r[n : n + 5]
        count = int(count)  # a sum of rollup counts: numeric on PostgreSQL
        if number not in buckets:
            start = EPOCH + timedelta(seconds=int(number) * seconds)
            window = allocation_window(start, pricing.allocation_period)
            buckets[number] = (start.date(), start.date().replace(day=1), *window)
        day, month, ws, we = buckets[number]
        values = (*r[:n], pool_name, day, month)
        key = tuple(values[i] for i in picks)
        row = table.get(key)
        if row is None:
            row = table[key] = SpendRow(key)
        usage = TokenUsage(*(int(v or 0) for v in r[n + 5 : n + 10]))
        row.calls += count
        row.usage += usage
        cost = r[n + 10]
        if status == PRICED and cost is not None:
            add(row.cost_usd, day, Decimal(cost))
        elif status == POOL and pool_name in pools:
            windows.setdefault((pool_name, ws, we), []).append(((key, day), usage))
        else:
            row.unpriced_calls += count
            reason = UNKNOWN_POOL if status == POOL else (reason or "unknown")
            reasons[reason] = reasons.get(reason, 0) + count
    allocated: dict[str, list[tuple[datetime, datetime]]] = {name: [] for name in pools}
    # In window and key order, not the order rows came in: busy seconds and shares are rounded
    # quotients (tokens / 12,000 per second ...), so the same figures must be summed in the
    # same order to give the same digits every time, from rollups or calls, on either database.
    for (name, ws, we), items in sorted(windows.items(), key=lambda item: item[0]):
        pool = pools[name]
        lo, hi = max(ws, since), min(we, until)
        items.sort(key=lambda item: (_orderable(item[0][0]), item[0][1]))
        for (key, day), amount in allocate(pool, lo, hi, items).items():
            add(table[key].cost_usd, day, amount)
        if any(usage.total for _, usage in items):  # busy seconds > 0: capacity is positive
            allocated[name].append((lo, hi))
    unallocated = {name: _unallocated(pools[name], since, until, spans, breaks) for name, spans in allocated.items()}
    rows = sorted(table.values(), key=lambda row: _orderable(row.key))
    return Spend(since, until, group_by, rows, sum(reasons.values()), reasons, unallocated)


def _orderable(key: Key) -> tuple[tuple[bool, Any], ...]:
    """A key that sorts (None last in each place)."""
    return tuple((v is None, v if v is not None else "") for v in key)


def segments(since: datetime, until: datetime, breaks: Iterable[datetime]) -> list[tuple[datetime, datetime]]:
    """[since, until) cut at every break strictly inside it."""
    cuts = sorted({b for b in breaks if since < b < until})
    edges = [since, *cuts, until]
    return [(lo, hi) for lo, hi in pairwise(edges) if lo < hi]


def _unallocated(
    pool: Pool, since: datetime, until: datetime, busy: list[tuple[datetime, datetime]], breaks: Sequence[datetime]
) -> ByDay:
    # The fixed cost of the whole range less that of the windows that had traffic: what is
    # left is the windows without any, without walking every empty hour of a long range.
    # fixed_cost is additive over intervals (hours and prorated months both add up).
    out: ByDay = {}
    for lo, hi in segments(since, until, breaks):
        amount = fixed_cost(pool.cost, pool.boxes, lo, hi).total
        for wlo, whi in busy:
            a, b = max(lo, wlo), min(hi, whi)
            if a < b:
                amount -= fixed_cost(pool.cost, pool.boxes, a, b).total
        add(out, lo.date(), amount)
    return out


def rollup(rows: Iterable[SpendRow], positions: Sequence[int]) -> list[SpendRow]:
    """Rows merged onto the key values at these positions (e.g. pool x day -> pool)."""
    merged: dict[Key, SpendRow] = {}
    for row in rows:
        key = tuple(row.key[i] for i in positions)
        out = merged.get(key)
        if out is None:
            out = merged[key] = SpendRow(key)
        out.calls += row.calls
        out.unpriced_calls += row.unpriced_calls
        out.usage += row.usage
        for day, amount in row.cost_usd.items():
            add(out.cost_usd, day, amount)
    return list(merged.values())


def pool_calls(conn: sa.Connection, pool: str, since: datetime, until: datetime) -> list[tuple[datetime, TokenUsage]]:
    """Start time and usage of each of a pool's calls over [since, until) (for exact re-pricing)."""
    query = sa.select(
        calls.c.start_time,
        calls.c.input_tokens.label("input"),
        calls.c.cache_read_tokens.label("cache_read"),
        calls.c.cache_write_tokens.label("cache_write"),
        calls.c.output_tokens.label("output"),
        calls.c.reasoning_tokens.label("reasoning"),
    ).where(
        calls.c.pool == pool,
        calls.c.price_status == POOL,
        calls.c.start_time >= since,
        calls.c.start_time < until,
    )
    return [(utc(r.start_time), _usage(r)) for r in conn.execute(query)]


def pool_call_costs(
    conn: sa.Connection, pricing: PricingConfig, items: Sequence[tuple[str | None, datetime, TokenUsage]]
) -> list[Decimal | None]:
    """Each (pool, start, usage) call's share of its pool's cost over its whole allocation window.

    The whole window, even while it is still open: the share moves as traffic arrives.
    None for a pool the config does not have.
    """
    pools = {pool.name: pool for pool in pricing.pools}
    period = pricing.allocation_period
    wanted = {(name, *allocation_window(utc(at), period)) for name, at, _ in items if name in pools}
    if not wanted:
        return [None] * len(items)
    seconds = _bucket_seconds(pricing)
    pooled = [calls.c.price_status == POOL, calls.c.pool.in_(sorted({name for name, _, _ in wanted}))]
    src = _source(conn, min(w[1] for w in wanted), max(w[2] for w in wanted), pooled, seconds == 3600)
    bucket = _bucket(src, seconds)
    query = sa.select(src.c.pool, bucket.label("bucket"), *_token_sums(src)).group_by(src.c.pool, bucket)
    totals: dict[tuple[str, datetime, datetime], TokenUsage] = {}
    for r in conn.execute(query):
        window = (r.pool, *allocation_window(EPOCH + timedelta(seconds=int(r.bucket) * seconds), period))
        if window in wanted:
            totals[window] = totals.get(window, TokenUsage()) + _usage(r)
    out: list[Decimal | None] = []
    for name, at, usage in items:
        if name not in pools:
            out.append(None)
            continue
        window = (name, *allocation_window(utc(at), period))
        others = _minus(totals.get(window, usage), usage)
        shares = allocate(pools[name], window[1], window[2], [(0, usage), (1, others)])
        out.append(shares[0])
    return out


def _minus(total: TokenUsage, part: TokenUsage) -> TokenUsage:
    return TokenUsage(
        total.input - part.input, total.cache_read - part.cache_read, total.cache_write - part.cache_write,
        total.output - part.output, total.reasoning - part.reasoning,
    )  # fmt: skip


def days_of(by_day: Mapping[date, Decimal]) -> Decimal:
    """The sum over days (USD, unconverted)."""
    return sum(by_day.values(), Decimal(0))


@dataclass(frozen=True, slots=True)
class HourRow:
    """One UTC hour of one traffic class (service x provider x model) and price status / pool."""

    service: str | None
    provider: str | None
    model: str | None
    pool: str | None
    price_status: str | None
    hour: datetime
    calls: int
    usage: TokenUsage
    cost_usd: Decimal | None  # per-token calls: their stored cost (None when none was priced)


def hourly(conn: sa.Connection, since: datetime, until: datetime) -> list[HourRow]:
    """Calls, tokens and per-token cost per UTC hour, service, provider, model, pool and price
    status over [since, until): a traffic class's arrival profile (collector/price/plans.py),
    whole hours from the hourly rollups, the rest from calls, as spend reads them."""
    src = _source(conn, since, until, (), pool_hours=True, hours_only=True)
    bucket = _bucket(src, 3600)
    # The hour first: PostgreSQL sorts to group, and an integer settles most comparisons (a quarter
    # faster over a month than sorting on the texts first). A month of 50 classes is some 40,000
    # rows: turning DuckDB's HUGEINT and DECIMAL(38,10) sums (PostgreSQL's numeric) into Python
    # objects took longer than the query. Counts fit BIGINT, and a decimal's text is the same
    # Decimal, read several times faster.
    keys = [bucket, *(dimension(src, n) for n in ("service", "provider", "model", "pool")), src.c.price_status]
    counts = [sa.cast(sa.func.sum(src.c[name]), sa.BigInteger) for name in ("n", *rollups.TOKENS)]
    query = sa.select(*keys, *counts, sa.cast(sa.func.sum(src.c.cost), sa.String)).group_by(*keys)
    at: dict[int, datetime] = {}
    out = []
    for number, service, provider, model, pool, status, count, i, cr, cw, o, r, cost in conn.execute(query).all():
        hour = at.get(number) or at.setdefault(number, EPOCH + timedelta(hours=number))
        usage = TokenUsage(i or 0, cr or 0, cw or 0, o or 0, r or 0)
        out.append(
            HourRow(service, provider, model, pool, status, hour, count, usage, None if cost is None else Decimal(cost))
        )
    return out
