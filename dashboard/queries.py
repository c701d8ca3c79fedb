"""The dashboard's own reads of the ledger: what no API reads yet (data quality, repeated prompts,
the spans of one call). Spend and pool figures are never computed here: the pages call
breakeven.collector.store.spend and the money API's functions for those, so both always agree.

Each query is bounded by [since, until) on start_time, which DuckDB prunes by zone maps and
PostgreSQL by its start_time indexes; repeated prompts read the prompt rollups for the
hours they hold (collector/store/prompts.py).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

import sqlalchemy as sa

from breakeven.collector.price.usage import TokenUsage
from breakeven.collector.records import POOL, PRICED, UNPRICED
from breakeven.collector.store.prompts import prompt_rows
from breakeven.collector.store.schema import calls, llm_spans

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_TOKENS = ("input_tokens", "cache_read_tokens", "cache_write_tokens", "output_tokens", "reasoning_tokens")


def _utc(value: datetime | None) -> datetime | None:
    if value is None:
        return None
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _in_range(table: sa.Table, since: datetime, until: datetime) -> list[sa.ColumnElement[bool]]:
    return [table.c.start_time >= since, table.c.start_time < until]


def emitters(conn: sa.Connection, since: datetime, until: datetime) -> list[dict[str, Any]]:
    """Which emitters (instrumentation scope@version) and conventions sent LLM spans, and when last.

    No count of distinct services: over millions of spans it doubles the query's time.
    """
    query = (
        sa.select(
            llm_spans.c.emitter,
            llm_spans.c.conventions,
            sa.func.count().label("spans"),
            sa.func.max(llm_spans.c.start_time).label("last_start"),
            sa.func.max(llm_spans.c.received_at).label("last_received"),
        )
        .where(*_in_range(llm_spans, since, until))
        .group_by(llm_spans.c.emitter, llm_spans.c.conventions)
        .order_by(sa.desc("spans"), llm_spans.c.emitter)
    )
    return [
        {
            "emitter": r.emitter,
            "conventions": [c for c in (r.conventions or "").split(",") if c],
            "spans": int(r.spans),
            "last_start": _utc(r.last_start),
            "last_received": _utc(r.last_received),
        }
        for r in conn.execute(query)
    ]


def services(conn: sa.Connection, since: datetime, until: datetime) -> list[dict[str, Any]]:
    """Per service: calls, errors, unpriced calls, and its last call (start and arrival)."""
    query = (
        sa.select(
            calls.c.service,
            sa.func.count().label("calls"),
            sa.func.sum(sa.case((calls.c.status != "ok", 1), else_=0)).label("errors"),
            sa.func.sum(sa.case((calls.c.price_status == UNPRICED, 1), else_=0)).label("unpriced"),
            sa.func.max(calls.c.start_time).label("last_start"),
            sa.func.max(calls.c.received_at).label("last_received"),
        )
        .where(*_in_range(calls, since, until))
        .group_by(calls.c.service)
        .order_by(sa.desc("last_start"))
    )
    return [
        {
            "service": r.service,
            "calls": int(r.calls),
            "errors": int(r.errors or 0),
            "unpriced": int(r.unpriced or 0),
            "last_start": _utc(r.last_start),
            "last_received": _utc(r.last_received),
        }
        for r in conn.execute(query)
    ]


def unpriced_models(conn: sa.Connection, since: datetime, until: datetime) -> list[dict[str, Any]]:
    """Unpriced calls by provider, model and reason: each a price book entry (or a fix) waiting to happen."""
    model = sa.func.coalesce(calls.c.response_model, calls.c.request_model)
    query = (
        sa.select(
            calls.c.provider,
            model.label("model"),
            calls.c.backend_class,
            calls.c.unpriced_reason,
            sa.func.count().label("calls"),
            sa.func.count(sa.distinct(calls.c.service)).label("services"),
            sa.func.max(calls.c.start_time).label("last_start"),
        )
        .where(*_in_range(calls, since, until), calls.c.price_status == UNPRICED)
        .group_by(calls.c.provider, model, calls.c.backend_class, calls.c.unpriced_reason)
        .order_by(sa.desc("calls"))
    )
    return [
        {
            "provider": r.provider,
            "model": r.model,
            "backend_class": r.backend_class,
            "reason": r.unpriced_reason,
            "calls": int(r.calls),
            "services": int(r.services),
            "last_start": _utc(r.last_start),
        }
        for r in conn.execute(query)
    ]


def unknown_backends(conn: sa.Connection, since: datetime, until: datetime) -> list[dict[str, Any]]:
    """Calls whose backend class is unknown (a client aimed at an address nobody classified), by address."""
    query = (
        sa.select(
            calls.c.server_address,
            calls.c.provider,
            sa.func.count().label("calls"),
            sa.func.max(calls.c.start_time).label("last_start"),
        )
        .where(*_in_range(calls, since, until), calls.c.backend_class == "unknown")
        .group_by(calls.c.server_address, calls.c.provider)
        .order_by(sa.desc("calls"))
    )
    return [
        {
            "server_address": r.server_address,
            "provider": r.provider,
            "calls": int(r.calls),
            "last_start": _utc(r.last_start),
        }
        for r in conn.execute(query)
    ]


@dataclass(slots=True)
class RepeatedPrompt:
    """One prompt hash sent more than once: how often, by whom, with what tokens and cost (USD by day)."""

    prompt_hash: str
    calls: int
    services: int
    first_service: str | None
    models: int
    usage: TokenUsage
    first_start: datetime
    last_start: datetime
    priced_usd: dict[date, Decimal]  # per-token cost by UTC day
    pool_items: list[tuple[str, datetime, TokenUsage]]  # (pool, a time in the window, usage) to allocate
    unpriced_calls: int = 0


def repeated_prompts(
    conn: sa.Connection, since: datetime, until: datetime, limit: int, allocation_seconds: int
) -> list[RepeatedPrompt]:
    """Prompt hashes sent more than once in the range, the costliest first (the caller converts their cost).

    Two reads of the range's prompt rows (collector/store/prompts.py: prompt rollups, and
    calls where those are not rolled up yet; in a range up to a week, only rows that share
    their prompt key with another, not the millions of distinct prompts): the top hashes,
    then, for those only, their calls by service, model, price status, pool and allocation
    bucket, which hold both who sent them and what they cost.
    """
    rows = prompt_rows(conn, since, until)
    tokens = rows.c.input_tokens + rows.c.cache_read_tokens + rows.c.output_tokens
    head = (
        sa.select(rows.c.prompt_hash)
        .group_by(rows.c.prompt_hash)
        .having(sa.func.sum(rows.c.calls) > 1)
        # Per-token cost first (what a cache saves outright), then tokens (pool calls have no stored cost).
        .order_by(
            sa.func.coalesce(sa.func.sum(rows.c.cost_usd), 0).desc(), sa.func.sum(tokens).desc(), rows.c.prompt_hash
        )
        .limit(limit)
    )
    top = list(conn.execute(head).scalars())
    if not top:
        return []
    # Rows are hours: an hour lies in one allocation bucket (an hour or a day), as its calls do.
    epoch = sa.func.date_part("epoch", rows.c.hour)
    bucket = sa.cast(sa.func.floor(epoch / sa.literal_column(str(allocation_seconds))), sa.BigInteger)
    keys = (rows.c.prompt_hash, rows.c.service, rows.c.model, rows.c.price_status, rows.c.pool, bucket)
    detail = (
        sa.select(
            *keys[:-1],
            bucket.label("bucket"),
            sa.func.sum(rows.c.calls).label("calls"),
            *(sa.func.sum(rows.c[name]).label(name) for name in _TOKENS),
            sa.func.sum(rows.c.cost_usd).label("cost"),
            sa.func.min(rows.c.first_start).label("first_start"),
            sa.func.max(rows.c.last_start).label("last_start"),
            # The database's own order of names, as a plain min over the hash's calls would give.
            sa.func.min(rows.c.service).over(partition_by=rows.c.prompt_hash).label("first_service"),
        )
        .where(rows.c.prompt_hash.in_(top))
        .group_by(*keys)
    )
    found = {h: _Sums() for h in top}
    for r in conn.execute(detail):
        found[r.prompt_hash].add(r, allocation_seconds)
    return [found[h].prompt(h, since) for h in top if found[h].calls]


@dataclass(slots=True)
class _Sums:
    """One prompt hash's detail rows, summed up into a RepeatedPrompt."""

    calls: int = 0
    services: set[str] = field(default_factory=set)
    first_service: str | None = None
    models: set[str] = field(default_factory=set)
    starts: list[datetime] = field(default_factory=list)
    # (price status, pool, bucket start) -> calls, tokens, cost: what a GROUP BY of those would give.
    buckets: dict[tuple[str | None, str | None, datetime], tuple[int, TokenUsage, Decimal | None]] = field(
        default_factory=dict
    )

    def add(self, r: Any, allocation_seconds: int) -> None:
        """Add a detail row (one service, model, price status, pool and bucket)."""
        self.calls += int(r.calls)
        self.services.update(x for x in [r.service] if x is not None)
        self.models.update(x for x in [r.model] if x is not None)
        self.first_service = r.first_service
        self.starts.extend(t for t in (_utc(r.first_start), _utc(r.last_start)) if t is not None)
        key = (r.price_status, r.pool, EPOCH + timedelta(seconds=int(r.bucket) * allocation_seconds))
        count, usage, cost = self.buckets.get(key, (0, TokenUsage(), None))
        more = None if r.cost is None else Decimal(r.cost)
        cost = more if cost is None else cost if more is None else cost + more
        usage += TokenUsage(*(int(getattr(r, name) or 0) for name in _TOKENS))
        self.buckets[key] = (count + int(r.calls), usage, cost)

    def prompt(self, prompt_hash: str, since: datetime) -> RepeatedPrompt:
        """The RepeatedPrompt these rows make."""
        usage = sum((u for _, u, _ in self.buckets.values()), TokenUsage())
        found = RepeatedPrompt(
            prompt_hash, self.calls, len(self.services), self.first_service, len(self.models), usage,
            min(self.starts, default=since), max(self.starts, default=since), {}, [],
        )  # fmt: skip
        for (status, pool, start), (count, bucket_usage, cost) in self.buckets.items():
            if status == PRICED and cost is not None:
                found.priced_usd[start.date()] = found.priced_usd.get(start.date(), Decimal(0)) + cost
            elif status == POOL and pool is not None:
                found.pool_items.append((pool, max(start, since), bucket_usage))
            else:
                found.unpriced_calls += count
        return found


def call_spans(conn: sa.Connection, trace_id: str, around: datetime) -> list[dict[str, Any]]:
    """The LLM spans stored for a trace, within a day of a call of it (DuckDB has no index: time bounds it)."""
    query = (
        sa.select(
            llm_spans.c.span_id,
            llm_spans.c.parent_span_id,
            llm_spans.c.name,
            llm_spans.c.service,
            llm_spans.c.emitter,
            llm_spans.c.conventions,
            llm_spans.c.is_engine,
            llm_spans.c.provider,
            llm_spans.c.response_model,
            llm_spans.c.request_model,
            llm_spans.c.start_time,
            llm_spans.c.input_tokens,
            llm_spans.c.output_tokens,
        )
        .where(
            llm_spans.c.trace_id == trace_id,
            llm_spans.c.start_time >= around - timedelta(days=1),
            llm_spans.c.start_time < around + timedelta(days=1),
        )
        .order_by(llm_spans.c.start_time, llm_spans.c.span_id)
    )
    return [
        {
            "span_id": r.span_id,
            "parent_span_id": r.parent_span_id,
            "name": r.name,
            "service": r.service,
            "emitter": r.emitter,
            "conventions": [c for c in (r.conventions or "").split(",") if c],
            "engine": bool(r.is_engine),
            "provider": r.provider,
            "model": r.response_model or r.request_model,
            "start_time": _utc(r.start_time),
            "input_tokens": r.input_tokens,
            "output_tokens": r.output_tokens,
        }
        for r in conn.execute(query)
    ]
