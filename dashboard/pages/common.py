"""Helpers the page contexts share: the converter, per-day pool figures, spend rows as JSON."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

from breakeven.collector.price.config import PricingConfig
from breakeven.collector.price.money import MILLION, ONE, ZERO
from breakeven.collector.price.periods import iso_z, seconds_between
from breakeven.collector.price.pools import fixed_cost
from breakeven.collector.price.usage import TokenUsage
from breakeven.collector.reports.currency import Converter
from breakeven.collector.reports.fields import money, number
from breakeven.collector.reports.pools import PoolFigures
from breakeven.collector.store import spend as store
from breakeven.dashboard.view import View

DAY = timedelta(days=1)
CLASS_ORDER = ("frontier", "managed", "self_hosted", "self_hosted idle", "unknown")
NONE_VALUE = "(none)"  # how a missing dimension value is shown and filtered on


def converter(pricing: PricingConfig, view: View) -> Converter:
    """The money API's converter for the view's currency (the same rules, the same rates)."""
    return Converter(pricing.fx, view.currency, pricing.currency)


def day_start(day: date) -> datetime:
    """00:00 UTC of a day."""
    return datetime.combine(day, datetime.min.time(), UTC)


def clipped_day(day: date, since: datetime, until: datetime) -> tuple[datetime, datetime]:
    """The part of a UTC day inside [since, until)."""
    return max(since, day_start(day)), min(until, day_start(day) + DAY)


@dataclass(frozen=True, slots=True)
class PoolDay:
    """One pool's UTC day (clipped to the range), USD: fixed and variable cost, utilization, idle."""

    day: date
    usage: TokenUsage
    fixed_usd: Decimal
    variable_usd: Decimal
    utilization: Decimal
    idle_usd: Decimal  # fixed x (1 - utilization), the DOMAIN's idle share

    @property
    def cost_usd(self) -> Decimal:
        """Fixed plus variable cost."""
        return self.fixed_usd + self.variable_usd


def pool_days(figure: PoolFigures, days: Iterable[date], since: datetime, until: datetime) -> list[PoolDay]:
    """A pool's figures day by day over the range (the same formulas as the whole range, per day)."""
    pool = figure.pool
    out = []
    for day in days:
        lo, hi = clipped_day(day, since, until)
        if lo >= hi:
            continue
        usage = figure.usage_by_day.get(day, TokenUsage())
        fixed = fixed_cost(pool.cost, pool.boxes, lo, hi).total
        capacity = pool.boxes * seconds_between(lo, hi)
        utilization = pool.capacity.busy_seconds(usage) / capacity if capacity else ZERO
        idle = fixed * (ONE - utilization) if utilization < ONE else ZERO
        variable = pool.cost.variable_per_million * usage.total / MILLION
        out.append(PoolDay(day, usage, fixed, variable, utilization, idle))
    return out


def tokens_json(usage: TokenUsage) -> dict[str, int]:
    """Tokens by kind, and their total (as the money API shows them)."""
    return {
        "input": usage.input, "cache_read": usage.cache_read, "cache_write": usage.cache_write,
        "output": usage.output, "reasoning": usage.reasoning, "total": usage.total,
    }  # fmt: skip


def row_json(row: store.SpendRow, names: Sequence[str], conv: Converter) -> dict[str, Any]:
    """A spend row as the pages show it: key values by name, calls, tokens, cost (None: unpriced)."""
    cost = conv.total(row.cost_usd) if row.cost_usd else None
    return {
        "key": {name: value for name, value in zip(names, row.key, strict=True)},
        "calls": row.calls,
        "priced_calls": row.priced_calls,
        "unpriced_calls": row.unpriced_calls,
        "tokens": tokens_json(row.usage),
        "cost": money(cost),
    }


def by_cost(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Rows by cost, largest first; unpriced ones last."""
    return sorted(rows, key=lambda r: (r["cost"] is None, -Decimal(r["cost"] or 0)))


def key_text(value: Any) -> str:
    """A dimension value as a label: missing values read "(none)"."""
    return NONE_VALUE if value is None or value == "" else str(value)


def ratio(value: Decimal | None) -> str | None:
    """A ratio as the JSON twins carry it (decimal string)."""
    return number(value)


def iso(at: datetime) -> str:
    """An instant as ISO 8601 UTC with Z."""
    return iso_z(at)
