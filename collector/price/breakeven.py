"""Break-even: where self-hosting a pool equals buying its traffic, both ways round.

DOMAIN.md, Break-even. For the traffic mix a pool actually served, with A the
alternative's price per million of those tokens and v the pool's variable cost per
million:

    break_even_tokens(period) = pool_cost(period) / (A - v)
    break_even_utilization    = busy_seconds at break-even / (boxes x period_seconds)

pool_cost here is the fixed cost; A is measured (the alternative's price of the very calls
served, divided by their tokens), so tiers, caching and the input/output mix are in it,
and the break-even assumes the mix stays the same. Busy seconds scale with tokens at a
fixed mix, so break_even_utilization = utilization x break_even_tokens / tokens.

The mirror case, per traffic class (service x model) bought per token: project the month
from its run rate (month-to-date x month length / time elapsed, linear), and size the
smallest pool of each candidate box that could serve the projected volume.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from breakeven.collector.price.money import MILLION, ONE, ZERO
from breakeven.collector.price.periods import month_start, next_month, seconds_between, utc
from breakeven.collector.price.pools import BoxCost, Capacity, Pool, PoolPeriod, fixed_cost
from breakeven.collector.price.pricer import Pricer, Unpriced
from breakeven.collector.price.substitutes import Move, Substitute, move
from breakeven.collector.price.usage import TokenUsage

RUN_RATE_METHOD = "linear run rate: month-to-date x (month length / time elapsed this month)"


@dataclass(frozen=True, slots=True)
class AlternativeCost:
    """What the pool's calls would have cost bought from its alternative, in USD."""

    cost_usd: Decimal | None  # None when any call could not be priced
    calls: int
    unpriced: int
    detail: str | None = None


@dataclass(frozen=True, slots=True)
class PoolBreakEven:
    """Where a pool stands against buying its traffic, over one period.

    Positive distances mean above break-even (self-hosting is cheaper); negative, below.
    Figures are None with a reason when the break-even does not exist.
    """

    pool: str
    tokens: int
    cost_usd: Decimal  # fixed + variable
    alternative_usd: Decimal | None
    alternative_per_million: Decimal | None  # A
    variable_per_million: Decimal  # v
    break_even_tokens: Decimal | None
    break_even_utilization: Decimal | None
    utilization: Decimal
    tokens_above: Decimal | None  # tokens - break_even_tokens
    utilization_above: Decimal | None  # utilization - break_even_utilization
    savings_usd: Decimal | None  # alternative - cost: what self-hosting saved (negative: lost)
    reason: str | None = None


@dataclass(frozen=True, slots=True)
class Candidate:
    """A box that could be rented or bought to serve per-token traffic in-house.

    model (and quantization) is what it would run: it takes the traffic of that model, and of
    the models declared substitutes of it (price/substitutes.py); models lists further models
    (case-insensitive) whose traffic it may take whole. max_utilization is the share of
    capacity sizing may plan on (1 = saturation).
    """

    name: str
    cost: BoxCost
    capacity: Capacity
    max_utilization: Decimal = ONE
    models: tuple[str, ...] = ()  # models whose traffic it may take (a declaration, as substitutes are)
    model: str | None = None  # the model it would run (price/substitutes.py decides what it may take)
    quantization: str | None = None


@dataclass(frozen=True, slots=True)
class ClassTraffic:
    """A traffic class's month-to-date: per-token spend and tokens of one service x model."""

    service: str | None
    provider: str
    model: str
    spend_usd: Decimal
    usage: TokenUsage


@dataclass(frozen=True, slots=True)
class SizedPool:
    """The smallest pool of one candidate box that serves a projected month."""

    candidate: str
    boxes: int
    cost_usd: Decimal  # fixed cost for the whole month + variable cost of the projected tokens
    utilization: Decimal


@dataclass(frozen=True, slots=True)
class ClassProjection:
    """A traffic class's month: to date, projected, and the cheapest pool that could serve it."""

    service: str | None
    provider: str
    model: str
    month_to_date_usd: Decimal
    projected_usd: Decimal
    projected_input_tokens: Decimal  # every prompt token, cached or not
    projected_output_tokens: Decimal
    cheapest: SizedPool | None  # the candidate pool that saves the most on the share that may move
    savings_usd: Decimal | None  # projected_usd x move.share - cheapest.cost_usd: positive, self-hosting wins
    method: str = RUN_RATE_METHOD
    move: Move | None = None  # the model the pool would run, the share that may move, and why


def alternative_cost(pool: Pool, pricer: Pricer, calls: Iterable[tuple[datetime, TokenUsage]]) -> AlternativeCost:
    """The alternative's price of each (start time, usage) the pool served, summed."""
    total = ZERO
    count = unpriced = 0
    detail = None
    for at, usage in calls:
        count += 1
        result = pricer.price(pool.alternative.provider, pool.alternative.model, at, usage)
        if isinstance(result, Unpriced):
            unpriced += 1
            detail = detail or result.detail
        else:
            total += result.cost_usd
    return AlternativeCost(None if unpriced else total, count, unpriced, detail)


def pool_break_even(pool: Pool, period: PoolPeriod, alternative_usd: Decimal | None) -> PoolBreakEven:
    """Break-even tokens and utilization for the period's traffic mix, and the distance to them."""
    tokens = period.usage.total
    variable = pool.cost.variable_per_million
    per_million = alternative_usd * MILLION / tokens if alternative_usd is not None and tokens else None
    be_tokens = be_utilization = None
    reason = None
    if alternative_usd is None:
        reason = "the alternative could not price this traffic"
    elif per_million is None:
        reason = "no traffic: the mix that break-even depends on is unknown"
    elif per_million <= variable:
        reason = "the alternative costs no more than the variable cost: self-hosting never breaks even"
    else:
        be_tokens = period.fixed.total * MILLION / (per_million - variable)
        be_utilization = period.utilization * be_tokens / tokens
    return PoolBreakEven(
        pool=period.pool,
        tokens=tokens,
        cost_usd=period.cost_usd,
        alternative_usd=alternative_usd,
        alternative_per_million=per_million,
        variable_per_million=variable,
        break_even_tokens=be_tokens,
        break_even_utilization=be_utilization,
        utilization=period.utilization,
        tokens_above=None if be_tokens is None else tokens - be_tokens,
        utilization_above=None if be_utilization is None else period.utilization - be_utilization,
        savings_usd=None if alternative_usd is None else alternative_usd - period.cost_usd,
        reason=reason,
    )


def pool_candidates(pools: Iterable[Pool]) -> tuple[Candidate, ...]:
    """Configured pools as candidate boxes: running their own model (match.model, else the
    alternative's) for the traffic they replace (their alternative's model)."""
    return tuple(
        Candidate(
            name=f"pool {pool.name}",
            cost=pool.cost,
            capacity=pool.capacity,
            models=(pool.alternative.model,),
            model=pool.match.model or pool.alternative.model,
            quantization=pool.match.quantization,
        )
        for pool in pools
    )


def size_pool(candidate: Candidate, input_tokens: Decimal, output_tokens: Decimal, month: datetime) -> SizedPool:
    """The fewest boxes of a candidate that serve these tokens in `month`'s calendar month, and their cost."""
    since = month_start(month)
    until = next_month(since)
    busy = input_tokens / candidate.capacity.input_tps + output_tokens / candidate.capacity.output_tps
    month_seconds = seconds_between(since, until)
    boxes = max(1, math.ceil(busy / (month_seconds * candidate.max_utilization)))
    fixed = fixed_cost(candidate.cost, boxes, since, until).total
    variable = candidate.cost.variable_per_million * (input_tokens + output_tokens) / MILLION
    return SizedPool(candidate.name, boxes, fixed + variable, busy / (boxes * month_seconds))


def project_class(
    traffic: ClassTraffic, now: datetime, candidates: Sequence[Candidate], substitutes: Sequence[Substitute] = ()
) -> ClassProjection:
    """Month-to-date, run-rate projection to month end, and the candidate pool that would save
    the most on the share of it that may move (price/substitutes.py: the same model, or a
    declared substitute; nothing else)."""
    since = month_start(now)
    elapsed = seconds_between(since, now)
    scale = seconds_between(since, next_month(since)) / elapsed if elapsed else ZERO
    projected_in = traffic.usage.total_input * scale
    projected_out = traffic.usage.output * scale
    projected = traffic.spend_usd * scale
    best: tuple[Decimal, SizedPool, Move] | None = None
    # At the very start of a month there is no run rate to size a pool for.
    for candidate in candidates if elapsed else ():
        found = move(
            traffic.provider, traffic.model, traffic.service, candidate.model, candidate.quantization,
            candidate.models, substitutes,
        )  # fmt: skip
        if found is None:
            continue
        sized = size_pool(candidate, projected_in * found.share, projected_out * found.share, utc(now))
        savings = projected * found.share - sized.cost_usd
        if best is None or savings > best[0]:
            best = (savings, sized, found)
    return ClassProjection(
        service=traffic.service,
        provider=traffic.provider,
        model=traffic.model,
        month_to_date_usd=traffic.spend_usd,
        projected_usd=projected,
        projected_input_tokens=projected_in,
        projected_output_tokens=projected_out,
        cheapest=None if best is None else best[1],
        savings_usd=None if best is None else best[0],
        move=None if best is None else best[2],
    )
