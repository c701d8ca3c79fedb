"""Self-hosted GPU pools: fixed cost, busy seconds, utilization, idle spend, allocation.

DOMAIN.md, Pricing self-hosted pools:

    pool_cost(period) = boxes x (rent per period, or purchase price / amortization months)
                        + power (kW x hours x price per kWh x PUE) + ops overhead per period
    busy_seconds      = input_tokens / input_tps + output_tokens / output_tps
    utilization       = busy_seconds / (boxes x period_seconds)
    idle              = pool_cost x (1 - utilization)
    call cost         = pool_cost(period) x call busy seconds / all busy seconds + variable

Decisions where DOMAIN.md is silent (docs/pricing.md says the same):
- rent, purchase and power are per box; ops overhead is for the whole pool;
- monthly amounts are prorated by calendar month (a whole February costs one month's rent,
  as does a whole March); hourly rent and power are prorated by the hour;
- a purchase is amortized over amortization_months whole calendar months from the month of
  purchased_on (when given: before and after that window the hardware costs nothing), else
  at purchase_price / amortization_months every month;
- busy seconds count every prompt token, cached or not, as input (capacity is measured on
  whole prompts); the variable cost is per million tokens in and out;
- idle applies to the fixed cost only, and is 0 when utilization reaches 1 or more
  (utilization itself is reported unclamped: above 1 means the measured capacity is low).
"""

from __future__ import annotations

from collections.abc import Hashable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any, TypeVar

from breakeven.collector.price.gpu_match import GpuMetricsConfig
from breakeven.collector.price.money import MILLION, ONE, ZERO
from breakeven.collector.price.periods import add_months, calendar_months, seconds_between, utc
from breakeven.collector.price.usage import TokenUsage
from breakeven.collector.records import Call

K = TypeVar("K", bound=Hashable)
HOUR = Decimal(3600)


@dataclass(frozen=True, slots=True)
class Capacity:
    """What one box serves at saturation, measured: prompt and output tokens per second."""

    input_tps: Decimal
    output_tps: Decimal

    def busy_seconds(self, usage: TokenUsage) -> Decimal:
        """Box-seconds this usage occupies: total_input / input_tps + output / output_tps."""
        return Decimal(usage.total_input) / self.input_tps + Decimal(usage.output) / self.output_tps


@dataclass(frozen=True, slots=True)
class Power:
    """One box's average electrical draw and what it costs."""

    kw: Decimal
    price_per_kwh: Decimal
    pue: Decimal = ONE


@dataclass(frozen=True, slots=True)
class BoxCost:
    """What running boxes of one kind costs. Exactly one of rent_per_month, rent_per_hour or
    purchase_price (with amortization_months) is set."""

    rent_per_month: Decimal | None = None
    rent_per_hour: Decimal | None = None
    purchase_price: Decimal | None = None
    amortization_months: int | None = None
    purchased_on: date | None = None
    power: Power | None = None
    ops_per_month: Decimal = ZERO  # the whole pool's, not per box
    variable_per_million: Decimal = ZERO


@dataclass(frozen=True, slots=True)
class FixedCost:
    """A pool's fixed cost over a period, by line, in USD."""

    hardware: Decimal  # rent or amortization, all boxes
    power: Decimal
    ops: Decimal

    @property
    def total(self) -> Decimal:
        """hardware + power + ops."""
        return self.hardware + self.power + self.ops


@dataclass(frozen=True, slots=True)
class PoolMatch:
    """Which calls a pool served: every field given must equal the call's (case-insensitive).

    model matches the response model or the request model. Only self_hosted and unknown
    calls can match: a frontier or managed call for the same model was bought, not served.
    """

    backend: str | None = None
    server_address: str | None = None
    model: str | None = None
    quantization: str | None = None

    def matches(self, call: Call) -> bool:
        """Whether the pool served this call."""
        if call.backend_class not in ("self_hosted", "unknown"):
            return False
        checks = (
            (self.backend, (call.backend,)),
            (self.server_address, (call.server_address,)),
            (self.model, (call.response_model, call.request_model)),
            (self.quantization, (call.quantization,)),
        )
        return all(
            want is None or any(have is not None and have.lower() == want.lower() for have in haves)
            for want, haves in checks
        )


@dataclass(frozen=True, slots=True)
class Alternative:
    """The per-token offer that would serve the pool's traffic if bought."""

    provider: str
    model: str


@dataclass(frozen=True, slots=True)
class InvoiceMatch:
    """Which lines of a cloud's bill (FOCUS) are the pool's boxes: a ResourceId glob and/or tags
    (each tag's value a glob); every one given must match (collector/reconcile/pools.py)."""

    resource_id: str | None = None
    tags: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True, slots=True)
class Pool:
    """A set of identical boxes serving one model build."""

    name: str
    match: PoolMatch
    boxes: int
    cost: BoxCost
    capacity: Capacity
    alternative: Alternative
    gpu_metrics: GpuMetricsConfig | None = None  # its own GPU metric series (collector/gpu), if any
    invoice_match: InvoiceMatch | None = None  # its boxes' lines in a FOCUS bill, for reconciliation


@dataclass(frozen=True, slots=True)
class PoolPeriod:
    """A pool's figures over [since, until), in USD and seconds, unrounded."""

    pool: str
    since: datetime
    until: datetime
    calls: int
    usage: TokenUsage
    fixed: FixedCost
    variable_usd: Decimal
    busy_seconds: Decimal
    capacity_seconds: Decimal  # boxes x period seconds
    utilization: Decimal
    idle_usd: Decimal

    @property
    def cost_usd(self) -> Decimal:
        """Fixed plus variable cost."""
        return self.fixed.total + self.variable_usd

    @property
    def cost_per_million_usd(self) -> Decimal | None:
        """Cost per million tokens served (in and out); None when nothing was served."""
        if self.usage.total == 0:
            return None
        return self.cost_usd * MILLION / self.usage.total


def pool_for(pools: Sequence[Pool], call: Call) -> Pool | None:
    """The first pool (in config order) whose match takes the call, or None."""
    return next((pool for pool in pools if pool.match.matches(call)), None)


def fixed_cost(cost: BoxCost, boxes: int, since: datetime, until: datetime) -> FixedCost:
    """The fixed cost of `boxes` boxes over [since, until) (DOMAIN.md pool_cost, less variable)."""
    hours = seconds_between(since, until) / HOUR
    months = calendar_months(since, until)
    if cost.rent_per_hour is not None:
        hardware = cost.rent_per_hour * hours
    elif cost.rent_per_month is not None:
        hardware = cost.rent_per_month * months
    elif cost.purchase_price is not None and cost.amortization_months:
        per_month = cost.purchase_price / cost.amortization_months
        hardware = per_month * _amortized_months(cost, since, until, months)
    else:
        hardware = ZERO
    power = ZERO
    if cost.power is not None:
        power = cost.power.kw * hours * cost.power.price_per_kwh * cost.power.pue
    return FixedCost(hardware=hardware * boxes, power=power * boxes, ops=cost.ops_per_month * months)


def _amortized_months(cost: BoxCost, since: datetime, until: datetime, months: Decimal) -> Decimal:
    """Months of [since, until) inside the amortization window (whole calendar months from
    the purchase month), or all of them when no purchase date is known."""
    if cost.purchased_on is None or cost.amortization_months is None:
        return months
    start = datetime(cost.purchased_on.year, cost.purchased_on.month, 1, tzinfo=UTC)
    end = add_months(start, cost.amortization_months)
    lo, hi = max(utc(since), start), min(utc(until), end)
    return calendar_months(lo, hi) if lo < hi else ZERO


def pool_period(pool: Pool, since: datetime, until: datetime, usages: Iterable[TokenUsage]) -> PoolPeriod:
    """Pool cost, busy seconds, utilization and idle spend over [since, until)."""
    total = TokenUsage()
    calls = 0
    for usage in usages:
        total += usage
        calls += 1
    fixed = fixed_cost(pool.cost, pool.boxes, since, until)
    busy = pool.capacity.busy_seconds(total)
    capacity_seconds = pool.boxes * seconds_between(since, until)
    utilization = busy / capacity_seconds if capacity_seconds else ZERO
    idle = fixed.total * (ONE - utilization) if utilization < ONE else ZERO
    return PoolPeriod(
        pool=pool.name,
        since=utc(since),
        until=utc(until),
        calls=calls,
        usage=total,
        fixed=fixed,
        variable_usd=pool.cost.variable_per_million * total.total / MILLION,
        busy_seconds=busy,
        capacity_seconds=capacity_seconds,
        utilization=utilization,
        idle_usd=idle,
    )


def allocate(pool: Pool, since: datetime, until: datetime, items: Iterable[tuple[K, TokenUsage]]) -> dict[K, Decimal]:
    """Each key's share of the pool's cost over [since, until), in USD.

    A key's share of the fixed cost is its busy seconds over all busy seconds in the period
    (idle included: the whole fixed cost is spread over the traffic), plus the variable
    cost of its own tokens. Keys may be calls, services, teams: anything hashable. With no
    traffic nothing is allocated and the whole fixed cost is idle.
    """
    busy: dict[K, Decimal] = {}
    tokens: dict[K, int] = {}
    for key, usage in items:
        busy[key] = busy.get(key, ZERO) + pool.capacity.busy_seconds(usage)
        tokens[key] = tokens.get(key, 0) + usage.total
    all_busy = sum(busy.values(), ZERO)
    fixed = fixed_cost(pool.cost, pool.boxes, since, until).total
    variable = pool.cost.variable_per_million
    return {
        key: (fixed * busy[key] / all_busy if all_busy else ZERO) + variable * tokens[key] / MILLION for key in busy
    }


def pool_of(pools: Iterable[Pool], attributes: Mapping[str, Any], resource: Mapping[str, Any]) -> str | None:
    """The first pool (config order) whose gpu_metrics.match takes a pushed point, or None."""
    for pool in pools:
        if pool.gpu_metrics is not None and pool.gpu_metrics.matches(attributes, resource):
            return pool.name
    return None
