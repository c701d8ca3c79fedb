"""The pools report: each self-hosted pool's cost, utilization, idle cost, alternative and break-even.

Reads through breakeven.collector.store.spend (USD, unrounded, by UTC day): PoolFigures are
the domain figures of a pool over a range, pool_json shows them in one currency.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

import sqlalchemy as sa

from breakeven.collector.price.breakeven import PoolBreakEven, alternative_cost, pool_break_even
from breakeven.collector.price.config import PricingConfig
from breakeven.collector.price.entries import PriceEntry
from breakeven.collector.price.money import MILLION, ONE, ZERO
from breakeven.collector.price.pools import Pool, PoolPeriod, fixed_cost, pool_period
from breakeven.collector.price.pricer import DayCachedPricer, Pricer
from breakeven.collector.price.usage import TokenUsage
from breakeven.collector.records import POOL
from breakeven.collector.reports.currency import Converter
from breakeven.collector.reports.fields import money, number, tokens
from breakeven.collector.store import spend as store
from breakeven.collector.store.schema import calls


def _linear(found: tuple[PriceEntry, str] | None) -> bool:
    # Without context tiers or a per-request fee, an entry prices a day's summed tokens
    # exactly as it prices each call (reasoning never exceeds output after normalization).
    if found is None:
        return True
    entry = found[0]
    rates = (entry.input, entry.output, entry.cache_read, entry.cache_write, entry.reasoning)
    return entry.per_request is None and not any(rate is not None and rate.tiers for rate in rates)


@dataclass(frozen=True, slots=True)
class PoolFigures:
    """One pool over [since, until): the domain figures (USD) and the by-day pieces to convert."""

    pool: Pool
    period: PoolPeriod
    break_even: PoolBreakEven
    usage_by_day: dict[date, TokenUsage]
    alternative_by_day: dict[date, Decimal]
    alternative_unpriced: int
    alternative_detail: str | None
    allocation: dict[str, list[store.SpendRow]]  # "service" / "team" -> rows keyed (name,)
    unallocated_usd: dict[date, Decimal]


def pool_figures(
    conn: sa.Connection, pricing: PricingConfig, since: datetime, until: datetime, breaks: Sequence[datetime]
) -> list[PoolFigures]:
    """Every configured pool's figures over [since, until)."""
    # Three small GROUP BYs over the pools' calls rather than one by pool x service x team x day.
    pooled = [calls.c.price_status == POOL]
    days = store.spend(conn, pricing, since, until, ("pool", "day"), breaks, pooled)
    services = store.spend(conn, pricing, since, until, ("pool", "service"), breaks, pooled).rows
    teams = store.spend(conn, pricing, since, until, ("pool", "team"), breaks, pooled).rows
    pricer = DayCachedPricer(pricing.pricer())
    out = []
    for pool in pricing.pools:
        by_day = {row.key[1]: row for row in days.rows if row.key[0] == pool.name}
        usage_by_day = {day: row.usage for day, row in by_day.items()}
        calls_total = sum(row.calls for row in by_day.values())
        usage_total = sum(usage_by_day.values(), TokenUsage())
        period = replace(pool_period(pool, since, until, [usage_total]), calls=calls_total)
        alt_by_day, unpriced, detail = _alternative(conn, pool, pricer, since, until, by_day)
        alternative_usd = None if unpriced else sum(alt_by_day.values(), ZERO)
        out.append(
            PoolFigures(
                pool=pool,
                period=period,
                break_even=pool_break_even(pool, period, alternative_usd),
                usage_by_day=usage_by_day,
                alternative_by_day=alt_by_day,
                alternative_unpriced=unpriced,
                alternative_detail=detail,
                allocation={
                    "service": store.rollup((r for r in services if r.key[0] == pool.name), (1,)),
                    "team": store.rollup((r for r in teams if r.key[0] == pool.name), (1,)),
                },
                unallocated_usd=days.unallocated_usd.get(pool.name, {}),
            )
        )
    return out


def _alternative(
    conn: sa.Connection,
    pool: Pool,
    pricer: Pricer,
    since: datetime,
    until: datetime,
    by_day: Mapping[date, store.SpendRow],
) -> tuple[dict[date, Decimal], int, str | None]:
    """What the alternative would have charged for the pool's traffic, by UTC day.

    A day's summed tokens are priced at that day's entry when the entry is linear; days whose
    entry has context tiers or a per-request fee are priced call by call.
    """
    alt = pool.alternative
    out: dict[date, Decimal] = {}
    unpriced = 0
    detail = None
    per_call: dict[date, list[tuple[datetime, TokenUsage]]] = {}
    for day, row in by_day.items():
        at = max(since, datetime.combine(day, datetime.min.time(), UTC))
        if _linear(pricer.entry(alt.provider, (alt.model,), at)):
            priced = alternative_cost(pool, pricer, [(at, row.usage)])
            if priced.cost_usd is None:
                unpriced += row.calls
                detail = detail or priced.detail
            else:
                out[day] = priced.cost_usd
        else:
            per_call[day] = []
    if per_call:
        for at, usage in store.pool_calls(conn, pool.name, since, until):
            if at.date() in per_call:
                per_call[at.date()].append((at, usage))
        for day, items in per_call.items():
            priced = alternative_cost(pool, pricer, items)
            unpriced += priced.unpriced
            detail = detail or priced.detail
            if priced.cost_usd is not None:
                out[day] = priced.cost_usd
    return out, unpriced, detail


def _converted_fixed(conv: Converter, pool: Pool, since: datetime, until: datetime) -> dict[str, Decimal]:
    lines = {"hardware": ZERO, "power": ZERO, "ops": ZERO}
    for lo, hi in store.segments(since, until, conv.breaks()):
        fixed = fixed_cost(pool.cost, pool.boxes, lo, hi)
        day = lo.date()
        lines["hardware"] += conv.at(fixed.hardware, day)
        lines["power"] += conv.at(fixed.power, day)
        lines["ops"] += conv.at(fixed.ops, day)
    return lines


def pool_json(f: PoolFigures, conv: Converter, since: datetime, until: datetime) -> dict[str, Any]:
    """One pool of GET /api/v1/pools, in the converter's currency."""
    pool, period, be = f.pool, f.period, f.break_even
    lines = _converted_fixed(conv, pool, since, until)
    fixed = sum(lines.values(), ZERO)
    variable = conv.total(
        {day: pool.cost.variable_per_million * usage.total / MILLION for day, usage in f.usage_by_day.items()}
    )
    cost = fixed + variable
    served = period.usage.total
    alternative = conv.total(f.alternative_by_day) if not f.alternative_unpriced else None
    return {
        "name": pool.name,
        "boxes": pool.boxes,
        "calls": period.calls,
        "tokens": tokens(period.usage),
        "cost": {**{k: money(v) for k, v in lines.items()}, "variable": money(variable), "total": money(cost)},
        "busy_seconds": number(period.busy_seconds),
        "capacity_seconds": number(period.capacity_seconds),
        "utilization": number(period.utilization),
        "cost_per_million_tokens": money(cost * MILLION / served) if served else None,
        "idle_cost": money(fixed * (ONE - period.utilization) if period.utilization < ONE else ZERO),
        "unallocated_cost": money(conv.total(f.unallocated_usd)),
        "alternative": {
            "provider": pool.alternative.provider,
            "model": pool.alternative.model,
            "cost": money(alternative),
            "per_million_tokens": money(alternative * MILLION / served) if alternative is not None and served else None,
            "unpriced_calls": f.alternative_unpriced,
            "detail": f.alternative_detail,
        },
        "break_even": break_even_json(be, alternative, cost),
        "allocation": {
            dimension: [
                {
                    dimension: row.key[0],
                    "calls": row.calls,
                    "tokens": row.usage.total,
                    "cost": money(conv.total(row.cost_usd)),
                }
                for row in sorted(rows, key=lambda r: (r.key[0] is None, r.key[0] or ""))
            ]
            for dimension, rows in f.allocation.items()
        },
    }


def break_even_json(be: PoolBreakEven, alternative: Decimal | None, cost: Decimal) -> dict[str, Any]:
    return {
        "tokens": number(be.break_even_tokens),
        "utilization": number(be.break_even_utilization),
        "tokens_above": number(be.tokens_above),
        "utilization_above": number(be.utilization_above),
        "savings": money(alternative - cost) if alternative is not None else None,
        "reason": be.reason,
    }
