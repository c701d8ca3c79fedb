"""The money API: /api/v1/spend, /api/v1/pools, /api/v1/breakeven, and the cost of each call.

Reads through breakeven.collector.store.spend (USD, unrounded, by UTC day) and shows every figure in
the requested currency. Decisions where issue 3 is silent (README, API, says the same):

- money and every other decimal (ratios, seconds, projected tokens) is a JSON string,
  exact to 10 decimal places, never a float; token counts are integers;
- currency defaults to pricing.currency for the three reports and to USD for
  /api/v1/calls (as the issue says); each amount is converted at the rate in force on its
  own UTC day (a call's day; for idle pool cost, each stretch between rate changes at its
  first day's rate) and the converted amounts are summed. A day without a rate is a 400;
- since defaults to the start of the UTC month `until` falls in; until defaults to now.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

import sqlalchemy as sa
from breakeven.collector.price import periods
from breakeven.collector.price.breakeven import (
    Candidate,
    ClassProjection,
    ClassTraffic,
    PoolBreakEven,
    alternative_cost,
    pool_break_even,
    pool_candidates,
    project_class,
    size_pool,
)
from breakeven.collector.price.config import PricingConfig
from breakeven.collector.price.entries import PriceEntry
from breakeven.collector.price.fx import USD, FxTable
from breakeven.collector.price.ledger import POOL, PRICED
from breakeven.collector.price.money import MILLION, ONE, ZERO
from breakeven.collector.price.periods import month_start, utc
from breakeven.collector.price.pools import Pool, PoolPeriod, fixed_cost, pool_period
from breakeven.collector.price.pricer import DayCachedPricer, Pricer
from breakeven.collector.price.usage import TokenUsage
from breakeven.collector.reports.gpu import add_gpu_figures
from breakeven.collector.store import spend as store
from breakeven.collector.store.rows import decimal_text
from breakeven.collector.store.schema import calls
from fastapi import APIRouter, HTTPException

FX_RULE = (
    "each amount is converted at the rate in force on its own UTC day (the latest [[pricing.fx]] rate dated on "
    "or before it), and converted amounts are summed"
)
_BOUGHT = ("frontier", "managed")
_MICROSECOND = timedelta(microseconds=1)


def money(amount: Decimal | None) -> str | None:
    """Money as JSON shows it: a decimal string, at least two places."""
    return decimal_text(amount, 2)


def number(value: Decimal | None) -> str | None:
    """A ratio, seconds or fractional tokens as JSON shows it: a decimal string."""
    return decimal_text(value, 0)


def tokens(usage: TokenUsage) -> dict[str, int]:
    """Tokens by kind, and their total."""
    return {
        "input": usage.input, "cache_read": usage.cache_read, "cache_write": usage.cache_write,
        "output": usage.output, "reasoning": usage.reasoning, "total": usage.total,
    }  # fmt: skip


def parse_instant(name: str, value: str | None) -> datetime | None:
    """An ISO 8601 date or datetime (naive means UTC); 400 naming the parameter if not."""
    if not value:
        return None
    try:
        return utc(periods.parse_instant(value))
    except ValueError:
        raise HTTPException(400, f"{name}: not an ISO 8601 date or datetime: {value!r}") from None


def time_range(since: str | None, until: str | None) -> tuple[datetime, datetime]:
    """[since, until): until defaults to now, since to the start of the UTC month until falls in."""
    end = parse_instant("until", until) or datetime.now(UTC)
    start = parse_instant("since", since) or month_start(end - _MICROSECOND)
    if start >= end:
        raise HTTPException(400, f"since ({start.isoformat()}) must be before until ({end.isoformat()})")
    return start, end


class Converter:
    """USD amounts dated by UTC day into one currency; remembers which rates it used."""

    def __init__(self, fx: FxTable, currency: str | None, default: str = USD) -> None:
        code = (currency or default).strip().upper()
        if code != USD and code not in fx.currencies():
            known = ", ".join(fx.currencies())
            raise HTTPException(400, f"currency: no [[pricing.fx]] rate converts USD to {code!r} (known: {known})")
        self.fx = fx
        self.currency = code
        self.used: dict[date, Decimal] = {}

    def breaks(self) -> list[datetime]:
        """Instants where this currency's rate changes (none for USD)."""
        return [datetime.combine(r.day, datetime.min.time(), UTC) for r in self.fx.rates if r.currency == self.currency]

    def at(self, amount: Decimal, day: date) -> Decimal:
        """The amount converted at the rate in force on `day`; 400 when there is none."""
        if self.currency == USD:
            return amount
        converted = self.fx.convert(amount, self.currency, datetime.combine(day, datetime.min.time(), UTC))
        if converted is None or converted.rate_date is None:
            raise HTTPException(400, f"currency: no {self.currency} rate on or before {day.isoformat()}")
        self.used[converted.rate_date] = converted.rate
        return converted.amount

    def total(self, by_day: Mapping[date, Decimal]) -> Decimal:
        """Each day's amount converted at its own rate, summed."""
        return sum((self.at(amount, day) for day, amount in by_day.items()), ZERO)

    def described(self, until: datetime) -> dict[str, Any] | None:
        """The response's fx object: None for USD, else the rates used (latest first) and the rule."""
        if self.currency == USD:
            return None
        if not self.used:  # nothing converted: name the rate that would have been
            rate = self.fx.rate_at(self.currency, until - _MICROSECOND)
            if rate is not None:
                self.used[rate.day] = rate.per_usd
        rates = [{"rate": number(rate), "rate_date": day.isoformat()} for day, rate in sorted(self.used.items())]
        latest = rates[-1] if rates else {"rate": None, "rate_date": None}
        return {**latest, "rates": rates, "rule": FX_RULE}


def _header(conv: Converter, pricing: PricingConfig, since: datetime, until: datetime) -> dict[str, Any]:
    return {
        "since": _iso(since),
        "until": _iso(until),
        "currency": conv.currency,
        "fx": conv.described(until),
        "allocation_period": pricing.allocation_period,
    }


def _iso(at: datetime) -> str:
    return utc(at).isoformat().replace("+00:00", "Z")


def _key_json(name: str, value: Any) -> Any:
    if name == "month" and value is not None:
        return value.strftime("%Y-%m")
    if isinstance(value, date):
        return value.isoformat()
    return value


def spend_report(
    conn: sa.Connection, pricing: PricingConfig, conv: Converter, since: datetime, until: datetime, group_by: str | None
) -> dict[str, Any]:
    """GET /api/v1/spend's body."""
    try:
        keys = store.group_keys(group_by)
    except store.GroupByError as exc:
        raise HTTPException(400, str(exc)) from None
    result = store.spend(conn, pricing, since, until, keys, conv.breaks())
    rows = []
    total = ZERO
    for row in result.rows:
        cost = conv.total(row.cost_usd) if row.cost_usd else None
        total += cost or ZERO
        rows.append(
            {
                **{name: _key_json(name, value) for name, value in zip(keys, row.key, strict=True)},
                "calls": row.calls,
                "priced_calls": row.priced_calls,
                "unpriced_calls": row.unpriced_calls,
                "tokens": tokens(row.usage),
                "cost": money(cost),
            }
        )
    unallocated = {name: conv.total(by_day) for name, by_day in result.unallocated_usd.items()}
    total += sum(unallocated.values(), ZERO)
    return {
        **_header(conv, pricing, since, until),
        "group_by": list(keys),
        "rows": rows,
        "unpriced": {"calls": result.unpriced_calls, "by_reason": dict(sorted(result.unpriced_reasons.items()))},
        "unallocated_pool_cost": {name: money(amount) for name, amount in unallocated.items()},
        "total_cost": money(total),
    }


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
        "break_even": _break_even_json(be, alternative, cost),
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


def _break_even_json(be: PoolBreakEven, alternative: Decimal | None, cost: Decimal) -> dict[str, Any]:
    return {
        "tokens": number(be.break_even_tokens),
        "utilization": number(be.break_even_utilization),
        "tokens_above": number(be.tokens_above),
        "utilization_above": number(be.utilization_above),
        "savings": money(alternative - cost) if alternative is not None else None,
        "reason": be.reason,
    }


def breakeven_report(
    conn: sa.Connection, pricing: PricingConfig, conv: Converter, since: datetime, until: datetime
) -> dict[str, Any]:
    """GET /api/v1/breakeven's body: traffic classes by savings, and each pool's distance."""
    # The month to date is the month `until` falls in; an until on a month's first instant
    # means the month that just ended (its run rate is then its whole month).
    complete = until == month_start(until)
    now = until - _MICROSECOND if complete else until
    month = month_start(now)
    breaks = conv.breaks()
    bought = store.spend(
        conn, pricing, month, until, ("service", "provider", "model"), breaks, [calls.c.backend_class.in_(_BOUGHT)]
    )
    candidates = (*pricing.candidates, *pool_candidates(pricing.pools))
    ranked: list[tuple[Decimal | None, dict[str, Any]]] = []
    for row in bought.rows:
        service, provider, model = row.key
        spend_usd = store.days_of(row.cost_usd)
        traffic = ClassTraffic(service, provider or "", model or "", spend_usd, row.usage)
        projection = project_class(traffic, now, candidates)
        if complete:
            projection = _observed(projection, traffic, candidates, month)
        # A class none of whose calls could be priced has no spend to project (never zero).
        mtd = conv.total(row.cost_usd) if row.cost_usd else None
        scale = projection.projected_usd / spend_usd if spend_usd else ZERO
        projected = None if mtd is None else mtd * scale
        cheapest = projection.cheapest
        cheapest_cost = conv.at(cheapest.cost_usd, now.date()) if cheapest is not None else None
        savings = projected - cheapest_cost if projected is not None and cheapest_cost is not None else None
        ranked.append(
            (
                savings,
                {
                    "service": service,
                    "provider": provider,
                    "model": model,
                    "calls": row.calls,
                    "unpriced_calls": row.unpriced_calls,
                    "tokens": tokens(row.usage),
                    "month_to_date": money(mtd),
                    "projected": money(projected),
                    "projected_input_tokens": number(projection.projected_input_tokens),
                    "projected_output_tokens": number(projection.projected_output_tokens),
                    "method": projection.method,
                    "cheapest_pool": None
                    if cheapest is None
                    else {
                        "candidate": cheapest.candidate,
                        "boxes": cheapest.boxes,
                        "cost": money(cheapest_cost),
                        "utilization": number(cheapest.utilization),
                    },
                    "savings": money(savings),
                },
            )
        )
    ranked.sort(key=lambda item: (item[0] is None, -(item[0] or ZERO)))  # by savings, unknown last
    classes = [body for _, body in ranked]
    pools = []
    for f in pool_figures(conn, pricing, since, until, breaks):
        p = pool_json(f, conv, since, until)
        be = f.break_even
        pools.append(
            {
                "name": p["name"],
                "tokens": p["tokens"]["total"],
                "utilization": p["utilization"],
                "cost": p["cost"]["total"],
                "alternative_cost": p["alternative"]["cost"],
                "break_even": p["break_even"],
                "above_break_even": None if be.tokens_above is None else be.tokens_above >= 0,
            }
        )
    header = _header(conv, pricing, since, until)
    return {**header, "month": month.strftime("%Y-%m"), "classes": classes, "pools": pools}


def _observed(
    projection: ClassProjection, traffic: ClassTraffic, candidates: Sequence[Candidate], month: datetime
) -> ClassProjection:
    """A whole month observed: its projection is the month itself, exactly (project_class
    was asked for the month's last microsecond, which scales by a hair over 1)."""
    cheapest = projection.cheapest
    tokens_in, tokens_out = Decimal(traffic.usage.total_input), Decimal(traffic.usage.output)
    if cheapest is not None:
        box = next(c for c in candidates if c.name == cheapest.candidate)
        cheapest = size_pool(box, tokens_in, tokens_out, month)
    return replace(
        projection,
        projected_usd=traffic.spend_usd,
        projected_input_tokens=tokens_in,
        projected_output_tokens=tokens_out,
        cheapest=cheapest,
        savings_usd=None if cheapest is None else traffic.spend_usd - cheapest.cost_usd,
    )


def call_costs(
    conn: sa.Connection, pricing: PricingConfig, page: list[dict[str, Any]], currency: str | None
) -> list[dict[str, Any]]:
    """The calls of a page with `cost` in the currency: per-token cost, or the pool share."""
    conv = Converter(pricing.fx, currency)
    starts = [parse_instant("start_time", c["start_time"]) or datetime.min for c in page]
    pooled = [i for i, c in enumerate(page) if c["price_status"] == POOL]
    kinds = ("input", "cache_read", "cache_write", "output", "reasoning")
    items = [(page[i]["pool"], starts[i], TokenUsage(*(page[i][f"{k}_tokens"] for k in kinds))) for i in pooled]
    shares = store.pool_call_costs(conn, pricing, items)
    usd: dict[int, Decimal | None] = dict(zip(pooled, shares, strict=True))
    for i, c in enumerate(page):
        if c["price_status"] == PRICED and c["cost"] is not None:
            usd[i] = Decimal(c["cost"])
        amount = usd.get(i)
        c["cost"] = money(conv.at(amount, starts[i].date())) if amount is not None else None
        c["currency"] = conv.currency
        c["priced"] = amount is not None
    return page


def money_router(engine: sa.Engine, pricing: PricingConfig) -> APIRouter:
    """The routes of the money API, over this engine and pricing config."""
    router = APIRouter()

    @router.get("/api/v1/spend")
    def get_spend(
        group_by: str | None = None, since: str | None = None, until: str | None = None, currency: str | None = None
    ) -> dict[str, Any]:
        """Calls, tokens by kind and cost per group over [since, until).

        group_by: comma-separated backend_class, provider, model, service, team, feature, pool,
        day, month. cost is a decimal string: per-token cost plus the allocated share of pool
        cost; unpriced calls are counted apart, never as zero; idle pool cost (allocation
        windows without traffic) is in unallocated_pool_cost, not in the rows.
        """
        start, end = time_range(since, until)
        conv = Converter(pricing.fx, currency, pricing.currency)
        with engine.connect() as conn:
            return spend_report(conn, pricing, conv, start, end, group_by)

    @router.get("/api/v1/pools")
    def get_pools(since: str | None = None, until: str | None = None, currency: str | None = None) -> dict[str, Any]:
        """Per configured pool over [since, until): cost, utilization, idle, alternative, break-even, allocation;
        beside the busy-seconds utilization, the GPU metric utilization the boxes reported (gpu_metrics, null
        when none was collected) and the health of its scrape endpoints (gpu_scrape)."""
        start, end = time_range(since, until)
        conv = Converter(pricing.fx, currency, pricing.currency)
        with engine.connect() as conn:
            figures = pool_figures(conn, pricing, start, end, conv.breaks())
            pools = [pool_json(f, conv, start, end) for f in figures]
            add_gpu_figures(conn, pricing.pools, start, end, pools)  # beside busy seconds: what the GPUs said
        return {**_header(conv, pricing, start, end), "pools": pools}

    @router.get("/api/v1/breakeven")
    def get_breakeven(
        since: str | None = None, until: str | None = None, currency: str | None = None
    ) -> dict[str, Any]:
        """Per traffic class (service x model, bought per token): month to date, run-rate projection,
        the cheapest pool that could serve it and the savings (sorted by savings); per pool, its
        distance to break-even over [since, until)."""
        start, end = time_range(since, until)
        conv = Converter(pricing.fx, currency, pricing.currency)
        with engine.connect() as conn:
            return breakeven_report(conn, pricing, conv, start, end)

    return router
