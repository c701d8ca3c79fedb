"""Overview: month-to-date spend and its projection by backend class, daily spend stacked by
class (idle GPU spend as its own layer), top services, teams and models, unpriced calls, and
with `[[reconcile.sources]]` how much of the month's bill the ledger explains.

Where the issue is silent: the projection is the linear run rate (month to date x month
length / time elapsed), the money API's rule; self-hosted spend is the pools' whole cost
(fixed and variable), split into the busy share and the idle share, fixed x (1 - utilization),
which is "idle GPU spend"; per-token spend is everything else, by the call's backend class.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any

import sqlalchemy as sa

from breakeven.collector.config.reconcile import ReconcileConfig
from breakeven.collector.price.config import PricingConfig
from breakeven.collector.price.money import ZERO
from breakeven.collector.price.periods import iso_z, month_start, next_month, seconds_between
from breakeven.collector.records import POOL
from breakeven.collector.reports.currency import Converter
from breakeven.collector.reports.fields import money
from breakeven.collector.reports.pools import pool_figures, pool_json
from breakeven.collector.store import spend as store
from breakeven.collector.store.schema import calls
from breakeven.dashboard.pages.common import CLASS_ORDER, by_cost, converter, pool_days, row_json
from breakeven.dashboard.pages.reconciliation import month_explained
from breakeven.dashboard.view import View

TOP = 8
IDLE = "self_hosted idle"


def _per_token(
    conn: sa.Connection,
    pricing: PricingConfig,
    conv: Converter,
    since: datetime,
    until: datetime,
    keys: tuple[str, ...],
) -> store.Spend:
    return store.spend(conn, pricing, since, until, keys, conv.breaks(), [calls.c.price_status != POOL])


def month_summary(conn: sa.Connection, pricing: PricingConfig, conv: Converter, now: datetime) -> dict[str, Any]:
    """This UTC month to date by backend class, and each projected to the month's end."""
    month = month_start(now)
    elapsed = seconds_between(month, now)
    scale = seconds_between(month, next_month(month)) / elapsed if elapsed else None
    totals: dict[str, Decimal] = {}
    for row in _per_token(conn, pricing, conv, month, now, ("backend_class",)).rows:
        if row.cost_usd:
            totals[row.key[0]] = totals.get(row.key[0], ZERO) + conv.total(row.cost_usd)
    for figure in pool_figures(conn, pricing, month, now, conv.breaks()):
        shown = pool_json(figure, conv, month, now)
        cost, idle = Decimal(shown["cost"]["total"]), Decimal(shown["idle_cost"])
        totals["self_hosted"] = totals.get("self_hosted", ZERO) + cost - idle
        totals[IDLE] = totals.get(IDLE, ZERO) + idle
    names = [c for c in CLASS_ORDER if c in totals] + sorted(set(totals) - set(CLASS_ORDER))
    classes = [
        {
            "backend_class": name,
            "month_to_date": money(totals[name]),
            "projected": money(totals[name] * scale) if scale is not None else None,
        }
        for name in names
    ]
    total = sum(totals.values(), ZERO)
    return {
        "month": month.strftime("%Y-%m"),
        "since": iso_z(month),
        "until": iso_z(now),
        "elapsed_share": None if scale is None else str(round(1 / scale, 4)),
        "classes": classes,
        "month_to_date": money(total),
        "projected": money(total * scale) if scale is not None else None,
        "idle_gpu": {
            "month_to_date": money(totals.get(IDLE, ZERO)),
            "projected": money(totals.get(IDLE, ZERO) * scale) if scale is not None else None,
        },
        "method": "linear run rate: month to date x (month length / time elapsed this month)",
    }


def daily(conn: sa.Connection, pricing: PricingConfig, conv: Converter, view: View) -> dict[str, Any]:
    """Spend per UTC day of the range, stacked by backend class, idle GPU spend as its own layer."""
    days = view.days()
    series: dict[str, dict[str, Decimal]] = {}
    for row in _per_token(conn, pricing, conv, view.since, view.until, ("backend_class", "day")).rows:
        name, day = row.key
        if row.cost_usd:
            layer = series.setdefault(name, {})
            layer[day.isoformat()] = layer.get(day.isoformat(), ZERO) + conv.total(row.cost_usd)
    pools = []
    for figure in pool_figures(conn, pricing, view.since, view.until, conv.breaks()):
        shown = pool_json(figure, conv, view.since, view.until)
        pools.append(
            {
                "name": shown["name"],
                "cost": shown["cost"]["total"],
                "utilization": shown["utilization"],
                "idle_cost": shown["idle_cost"],
                "break_even_utilization": shown["break_even"]["utilization"],
            }
        )
        for d in pool_days(figure, days, view.since, view.until):
            key = d.day.isoformat()
            busy = series.setdefault("self_hosted", {})
            busy[key] = busy.get(key, ZERO) + conv.at(d.cost_usd - d.idle_usd, d.day)
            idle = series.setdefault(IDLE, {})
            idle[key] = idle.get(key, ZERO) + conv.at(d.idle_usd, d.day)
    names = [c for c in CLASS_ORDER if c in series] + sorted(set(series) - set(CLASS_ORDER))
    labels = [d.isoformat() for d in days]
    out = [{"name": name, "values": [money(series[name].get(day, ZERO)) for day in labels]} for name in names]
    total = sum((v for layer in series.values() for v in layer.values()), ZERO)
    return {"days": labels, "series": out, "total": money(total), "pools": pools}


def top_lists(
    conn: sa.Connection, pricing: PricingConfig, conv: Converter, view: View
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Top services, teams and models over the range (per-token cost plus allocated pool cost), and unpriced calls."""
    result = store.spend(conn, pricing, view.since, view.until, ("service", "team", "model"), conv.breaks())
    top = {}
    for i, name in enumerate(("service", "team", "model")):
        rows = [row_json(r, (name,), conv) for r in store.rollup(result.rows, (i,))]
        top[name] = by_cost(rows)[:TOP]
    unpriced = {"calls": result.unpriced_calls, "by_reason": dict(sorted(result.unpriced_reasons.items()))}
    return top, unpriced


def context(
    conn: sa.Connection, pricing: PricingConfig, view: View, now: datetime, reconcile: ReconcileConfig | None = None
) -> dict[str, Any]:
    """The Overview page."""
    conv = converter(pricing, view)
    month = month_summary(conn, pricing, conv, now)
    days = daily(conn, pricing, conv, view)
    top, unpriced = top_lists(conn, pricing, conv, view)
    return {
        "page": "overview",
        "view": view.as_json(),
        "month": month,
        "daily": days,
        "top": top,
        "unpriced": unpriced,
        "bill": month_explained(conn, pricing, reconcile or ReconcileConfig(), view, now),
        "fx": conv.described(view.until),
    }
