"""The reconciliation report: the ledger against what the providers and clouds billed.

GET /api/v1/reconciliation's body, and the figures the dashboard, the ledger_drift alert and
/metrics read. It covers whole UTC days: since is taken back to its day's start, until on to
the next day's unless it is one. Both sides are put in the report's currency first (a bill's
own currency through [[pricing.fx]], USD amounts at their day's rate, as every report does),
then collector/reconcile/compare.py and pools.py set them side by side.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from typing import Any

import sqlalchemy as sa

from breakeven.collector.config.reconcile import ReconcileConfig
from breakeven.collector.price.config import PricingConfig
from breakeven.collector.price.fx import USD
from breakeven.collector.price.pools import fixed_cost
from breakeven.collector.reconcile import compare
from breakeven.collector.reconcile.pools import PoolMonth, pool_months
from breakeven.collector.reconcile.rows import LedgerCell, Row
from breakeven.collector.records import BilledLine
from breakeven.collector.reports.currency import Converter, header
from breakeven.collector.reports.errors import ReportError
from breakeven.collector.reports.fields import money, number
from breakeven.collector.store.bills import FetchStatus, fetch_statuses, lines_between
from breakeven.collector.store.spend import spend

HUNDRED = Decimal(100)
LEDGER_KEYS = ("day", "provider", "model", "service", "team", "pool", "backend_class")
SELF_HOSTED = "self_hosted"  # served by the company's own boxes: no provider bills it per token


@dataclasses.dataclass(frozen=True, slots=True)
class Reconciliation:
    """The report's figures before JSON: token rows, pool months, and what no source bills."""

    first: date
    last: date  # exclusive
    group_by: tuple[str, ...]
    rows: list[Row]
    by_source: list[Row]  # the same, one row per source
    pools: list[PoolMonth]
    unbilled: dict[str, tuple[int, Decimal | None]]  # provider -> calls, cost: per-token traffic no source bills


def whole_days(since: datetime, until: datetime) -> tuple[date, date]:
    """[first, last) UTC days covering [since, until)."""
    first = since.astimezone(UTC).date()
    end = until.astimezone(UTC)
    last = end.date() if end.timetz() == time(0, tzinfo=UTC) else end.date() + timedelta(days=1)
    return first, max(last, first + timedelta(days=1))


def reconcile(
    conn: sa.Connection,
    pricing: PricingConfig,
    config: ReconcileConfig,
    conv: Converter,
    since: datetime,
    until: datetime,
    group_by: str | Sequence[str] | None = None,
) -> Reconciliation:
    """Ledger against bill over the whole days of [since, until), grouped (compare.GROUP_KEYS)."""
    try:
        keys = compare.group_keys(group_by)
    except compare.GroupError as exc:
        raise ReportError(str(exc)) from None
    first, last = whole_days(since, until)
    start, end = (datetime.combine(d, time(0), UTC) for d in (first, last))
    spent = spend(conn, pricing, start, end, LEDGER_KEYS, conv.breaks())
    cells = []
    unbilled: dict[str, tuple[int, Decimal | None]] = {}
    lines = [_converted(line, conv, pricing) for line in lines_between(conn, first, last)]
    billers = compare.billed_providers(config.sources, lines)
    for row in spent.rows:
        day, provider, model, service, team, pool, backend_class = row.key
        if pool is not None or provider is None or backend_class == SELF_HOSTED:
            continue
        cost = conv.total(row.cost_usd) if row.cost_usd else None
        if provider not in billers:
            calls, total = unbilled.get(provider, (0, None))
            unbilled[provider] = (calls + row.calls, _plus(total, cost))
            continue
        cells.append(LedgerCell(day, provider, model, service, team, row.calls, row.unpriced_calls, row.usage, cost))
    at = end - timedelta(microseconds=1)
    discounts = {
        provider: found.percent
        for provider in billers
        if (found := pricing.book.discount_for(provider, at)) is not None
    }
    tolerance = config.tolerance_percent / HUNDRED
    token_keys = () if keys == ("pool",) else keys
    rows = compare.reconcile_rows(cells, lines, config.sources, token_keys or ("source",), tolerance, discounts)
    by_source = (
        rows
        if token_keys == ("source",)
        else compare.reconcile_rows(cells, lines, config.sources, ("source",), tolerance, discounts)
    )
    months = _pool_rent(pricing, conv, start, end)
    pools = pool_months([(p.name, p.invoice_match) for p in pricing.pools], months, lines)
    return Reconciliation(first, last, keys, rows, by_source, pools, unbilled)


def reconciliation_report(
    conn: sa.Connection,
    pricing: PricingConfig,
    config: ReconcileConfig,
    conv: Converter,
    since: datetime,
    until: datetime,
    group_by: str | None,
) -> dict[str, Any]:
    """GET /api/v1/reconciliation's body."""
    found = reconcile(conn, pricing, config, conv, since, until, group_by)
    start, end = (datetime.combine(d, time(0), UTC) for d in (found.first, found.last))
    tolerance = config.tolerance_percent / HUNDRED
    boxes = {p.name: p.boxes for p in pricing.pools}
    statuses = fetch_statuses(conn)
    pools = [_pool_json(p, tolerance, boxes.get(p.pool, 0)) for p in found.pools]
    sources = {row.key[0]: row for row in found.by_source}
    return {
        **header(conv, pricing, start, end),
        "group_by": list(found.group_by),
        "tolerance_percent": number(config.tolerance_percent),
        "summary": _summary(found.rows),
        "sources": [_source_json(s.name, s.kind, sources.get(s.name), statuses.get(s.name)) for s in config.sources],
        "rows": pools if found.group_by == ("pool",) else [row_json(row, found.group_by) for row in found.rows],
        "pools": pools,
        "unbilled": [
            {"provider": provider, "calls": calls, "cost": money(cost)}
            for provider, (calls, cost) in sorted(found.unbilled.items())
        ],
    }


def row_json(row: Row, group_by: Sequence[str]) -> dict[str, Any]:
    """One row: its key, both sides, coverage, delta, and causes (the first in words as `cause`)."""
    ledger, billed = row.ledger, row.billed
    return {
        **{name: _key(value) for name, value in zip(group_by, row.key, strict=True)},
        "status": row.status,
        "ledger": {
            "calls": ledger.calls,
            "unpriced_calls": row.unpriced_calls,
            "tokens": _tokens(ledger.usage, reasoning=True),
            "cost": money(ledger.cost),
        },
        "billed": {"requests": billed.calls, "tokens": _tokens(billed.usage), "cost": money(billed.cost)},
        "coverage": number(row.coverage),
        "delta": {"amount": money(row.delta), "percent": number(row.delta_percent)},
        "cause": row.causes[0].words if row.causes else None,
        "causes": [
            {
                "kind": c.kind,
                "words": c.words,
                "amount": money(c.amount),
                "evidence": [_plain(e) for e in c.evidence],
                "suggestion": c.suggestion,
            }
            for c in row.causes
        ],
    }


def _summary(rows: Sequence[Row]) -> dict[str, Any]:
    """The whole range: ledger and billed cost and tokens, how much of the bill the ledger explains."""
    ledger_cost = sum((r.ledger.cost or Decimal(0) for r in rows), Decimal(0))
    billed_cost = sum((r.billed.cost or Decimal(0) for r in rows), Decimal(0))
    ledger_tokens = sum(r.ledger.usage.total for r in rows)
    billed_tokens = sum(r.billed.usage.total for r in rows)
    has_bill = any(r.billed.cost is not None for r in rows)
    return {
        "ledger_cost": money(ledger_cost),
        "billed_cost": money(billed_cost) if has_bill else None,
        "explained_percent": number(ledger_cost / billed_cost * HUNDRED) if billed_cost else None,
        "ledger_tokens": ledger_tokens,
        "billed_tokens": billed_tokens,
        "coverage": number(Decimal(ledger_tokens) / billed_tokens) if billed_tokens else None,
        "delta": money(billed_cost - ledger_cost) if has_bill else None,
        "rows_differing": sum(1 for r in rows if r.causes),
    }


def _source_json(name: str, kind: str, row: Row | None, status: FetchStatus | None) -> dict[str, Any]:
    """A source: its totals over the range, and its last fetch (API sources fetched by serve or the CLI)."""
    return {
        "name": name,
        "kind": kind,
        "ledger_cost": money(row.ledger.cost if row else None),
        "billed_cost": money(row.billed.cost if row else None),
        "coverage": number(row.coverage if row else None),
        "delta": {"amount": money(row.delta if row else None), "percent": number(row.delta_percent if row else None)},
        "last_fetch": None
        if status is None
        else {
            "attempted_at": status.attempted_at.isoformat(),
            "succeeded_at": status.succeeded_at.isoformat() if status.succeeded_at else None,
            "error": status.error,
        },
    }


def _pool_json(row: PoolMonth, tolerance: Decimal, boxes: int) -> dict[str, Any]:
    return {
        "pool": row.pool,
        "month": row.month.strftime("%Y-%m"),
        "configured_cost": money(row.configured),
        "invoiced_cost": money(row.invoiced) if row.lines else None,
        "invoiced_lines": row.lines,
        "resources": [{"resource_id": r, "cost": money(c)} for r, c in sorted(row.by_resource.items())],
        "delta": {"amount": money(row.delta), "percent": number(row.delta_percent)},
        "cause": row.cause(tolerance, boxes),
    }


def _pool_rent(
    pricing: PricingConfig, conv: Converter, start: datetime, end: datetime
) -> dict[tuple[str, date], Decimal]:
    """Each pool's configured fixed cost per UTC month of [start, end), day by day in the currency."""
    out: dict[tuple[str, date], Decimal] = {}
    for pool in pricing.pools:
        day = start
        while day < end:
            nxt = day + timedelta(days=1)
            amount = conv.at(fixed_cost(pool.cost, pool.boxes, day, nxt).total, day.date())
            key = (pool.name, day.date().replace(day=1))
            out[key] = out.get(key, Decimal(0)) + amount
            day = nxt
    return out


def _converted(line: BilledLine, conv: Converter, pricing: PricingConfig) -> BilledLine:
    """The line with its amounts in the report's currency, at its day's rates."""
    currency = (line.currency or USD).upper()
    if currency == conv.currency or (line.cost is None and line.list_cost is None):
        return line

    def convert(amount: Decimal | None) -> Decimal | None:
        if amount is None:
            return None
        usd = amount
        if currency != USD:
            rate = pricing.fx.rate_at(currency, datetime.combine(line.day, time(0), UTC))
            if rate is None:
                raise ReportError(
                    f"currency: source {line.source!r} bills in {currency}; add a [[pricing.fx]] rate for"
                    f" {currency} dated on or before {line.day.isoformat()}"
                )
            usd = amount / rate.per_usd
        return conv.at(usd, line.day)

    return dataclasses.replace(line, cost=convert(line.cost), list_cost=convert(line.list_cost), currency=conv.currency)


def _tokens(usage: Any, reasoning: bool = False) -> dict[str, int]:
    out = {
        "input": usage.input,
        "cache_read": usage.cache_read,
        "cache_write": usage.cache_write,
        "output": usage.output,
        "total": usage.total,
    }
    if reasoning:
        out["reasoning"] = usage.reasoning
    return out


def _plain(evidence: Mapping[str, Any]) -> dict[str, Any]:
    """Evidence as JSON shows it: dates ISO, money and ratios as decimal strings."""
    out: dict[str, Any] = {}
    for name, value in evidence.items():
        if isinstance(value, date):
            out[name] = value.isoformat()
        elif isinstance(value, Decimal):
            out[name] = money(value) if name.endswith("cost") else number(value)
        else:
            out[name] = value
    return out


def _key(value: Any) -> Any:
    return value.isoformat() if isinstance(value, date) else value


def _plus(total: Decimal | None, amount: Decimal | None) -> Decimal | None:
    if amount is None:
        return total
    return amount if total is None else total + amount
