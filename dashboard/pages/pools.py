"""Pools: per self-hosted pool, utilization day by day against its break-even line, cost per
million tokens against its alternative's, idle spend, allocation, and a verdict in words.

Every figure is GET /api/v1/pools' (breakeven.collector.reports.pools.pool_json) for the range; the daily
series apply the same formulas to each UTC day. The break-even utilization is the range's
(it depends on the traffic mix, which a single day may not show). Beside it, the GPU metric
utilization the boxes reported (breakeven.collector.reports.gpu, as GET /api/v1/pools has it), its
daily means on the same chart, and each scrape endpoint's health.
"""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from typing import Any

import sqlalchemy as sa

from breakeven.collector.price.config import PricingConfig
from breakeven.collector.reports.currency import Converter
from breakeven.collector.reports.fields import money
from breakeven.collector.reports.gpu import add_gpu_figures, daily_by_source, gpu_daily
from breakeven.collector.reports.pools import pool_figures, pool_json
from breakeven.dashboard import fmt
from breakeven.dashboard.pages.common import converter, pool_days, ratio
from breakeven.dashboard.view import View

GPU_METRICS_NOTE = (
    "Two utilizations: busy seconds are the tokens each pool served over its measured capacity (what its traffic "
    "would have kept the boxes busy: the figure break-even is worked out on); GPU metric utilization is what the "
    "GPUs reported (DCGM, hw.gpu.utilization, pushed over OTLP or scraped; the mean of the samples in the range). "
    "KV cache usage (vLLM) is how full the engine's cache was, not how busy the GPU was."
)


def verdict(pool: dict[str, Any], currency: str) -> str:
    """The pool's standing against buying its traffic, in one or two sentences."""
    be = pool["break_even"]
    alt = pool["alternative"]
    name, offer = pool["name"], f"{alt['provider']} {alt['model']}"
    if be["tokens"] is None:
        return f"Pool {name}: no break-even for this range ({be['reason']})."
    savings = Decimal(be["savings"]) if be["savings"] is not None else None
    above = Decimal(be["tokens_above"])
    utilization, needed = fmt.percent(pool["utilization"]), fmt.percent(be["utilization"])
    if above >= 0:
        saved = fmt.money(savings, currency) if savings is not None else "—"
        return (
            f"Pool {name} is above break-even: buying its traffic from {offer} would have cost {saved} more "
            f"over this range. Utilization {utilization} against a break-even of {needed}."
        )
    lost = fmt.money(-savings, currency) if savings is not None else "—"
    more = Decimal(be["tokens"]) / Decimal(pool["tokens"]["total"]) if pool["tokens"]["total"] else None
    factor = f" ({more:.1f}x today's volume)" if more is not None else ""
    return (
        f"Pool {name} is below break-even: buying its traffic from {offer} would have cost {lost} less over this "
        f"range. It breaks even at {fmt.tokens(be['tokens'])} tokens{factor}; utilization {utilization} "
        f"against a break-even of {needed}."
    )


def _daily(figure: Any, shown: dict[str, Any], conv: Converter, view: View) -> dict[str, Any]:
    days = pool_days(figure, view.days(), view.since, view.until)
    return {
        "days": [d.day.isoformat() for d in days],
        "utilization": [ratio(d.utilization) for d in days],
        "cost": [money(conv.at(d.cost_usd, d.day)) for d in days],
        "idle_cost": [money(conv.at(d.idle_usd, d.day)) for d in days],
        "tokens": [d.usage.total for d in days],
        "break_even_utilization": shown["break_even"]["utilization"],
    }


def context(conn: sa.Connection, pricing: PricingConfig, view: View) -> dict[str, Any]:
    """The Pools page."""
    conv = converter(pricing, view)
    figures = pool_figures(conn, pricing, view.since, view.until, conv.breaks())
    pools = [pool_json(figure, conv, view.since, view.until) for figure in figures]
    add_gpu_figures(conn, pricing.pools, view.since, view.until, pools)
    collected = any(p["gpu_metrics"] for p in pools)
    means = daily_by_source(conn, view.since, view.until) if collected else {}
    for figure, shown in zip(figures, pools, strict=True):
        shown["daily"] = _daily(figure, shown, conv, view)
        days = [date.fromisoformat(day) for day in shown["daily"]["days"]]
        shown["daily"]["gpu_utilization"] = gpu_daily(means, days, shown)
        shown["alternative_name"] = f"{figure.pool.alternative.provider} {figure.pool.alternative.model}"
        shown["verdict"] = verdict(shown, conv.currency)
    return {
        "page": "pools",
        "view": view.as_json(),
        "allocation_period": pricing.allocation_period,
        "pools": pools,
        "gpu_metrics": GPU_METRICS_NOTE,
        "fx": conv.described(view.until),
    }
