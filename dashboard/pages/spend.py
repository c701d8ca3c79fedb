"""Spend explorer: group by any two dimensions, filter by any of them and by the range; a table,
a daily chart stacked by the first dimension, and the same rows as CSV or Parquet.

Filters are equality on a dimension ("(none)" matches a missing value), passed to
breakeven.collector.store.spend as its `where` clauses. Idle pool cost (allocation windows without
traffic) belongs to no group: it is its own line, shown only when no filter other than pool
is set (with a service filter, the windows that service left empty are not idle).
"""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal
from typing import Any

import sqlalchemy as sa

from breakeven.collector.price.config import PricingConfig
from breakeven.collector.price.money import ZERO, presented
from breakeven.collector.reports.currency import Converter
from breakeven.collector.reports.fields import money
from breakeven.collector.store import spend as store
from breakeven.collector.store.schema import calls
from breakeven.dashboard.pages.common import NONE_VALUE, by_cost, converter, key_text, row_json
from breakeven.dashboard.view import View, ViewError

DIMENSIONS = (
    "backend_class", "provider", "model", "model_version", "quantization", "service", "team", "feature", "pool",
)  # fmt: skip
LABELS = {
    "backend_class": "backend class", "provider": "provider", "model": "model", "model_version": "model version",
    "quantization": "quantization", "service": "service", "team": "team", "feature": "feature", "pool": "pool",
}  # fmt: skip
DEFAULT_GROUP = ("service", "model")
CHART_SERIES = 7  # the largest groups of the first dimension; the rest is "other"


def group_of(query: Mapping[str, str]) -> tuple[str, ...]:
    """The one or two dimensions to group by (`g1`, then `g2`; "none" for one); 400 naming a bad one."""
    if not query.get("g1") and not query.get("g2"):
        return DEFAULT_GROUP
    names = [query.get("g1") or DEFAULT_GROUP[0], query.get("g2") or "none"]
    out: list[str] = []
    for name in names:
        if name == "none":
            continue
        if name not in DIMENSIONS:
            raise ViewError(f"group: cannot group by {name!r} (one of {', '.join(DIMENSIONS)})")
        if name not in out:
            out.append(name)
    return tuple(out)


def filters_of(query: Mapping[str, str]) -> dict[str, str]:
    """Dimension filters named in the query (a parameter per dimension)."""
    return {name: query[name] for name in DIMENSIONS if query.get(name)}


def where(filters: Mapping[str, str]) -> list[sa.ColumnElement[bool]]:
    """The filters as conditions on the calls table (for breakeven.collector.store.spend)."""
    out = []
    for name, value in filters.items():
        column = store.dimension(calls, name)  # as the spend query groups it
        out.append(column.is_(None) if value == NONE_VALUE else column == value)
    return out


def _chart(result: store.Spend, conv: Converter, days: list[str]) -> dict[str, Any]:
    per_group: dict[str, dict[str, Decimal]] = {}
    for row in result.rows:
        name, day = key_text(row.key[0]), row.key[1].isoformat()
        if row.cost_usd:
            layer = per_group.setdefault(name, {})
            layer[day] = layer.get(day, ZERO) + conv.total(row.cost_usd)
    ranked = sorted(per_group, key=lambda n: -sum(per_group[n].values(), ZERO))
    keep, rest = ranked[:CHART_SERIES], ranked[CHART_SERIES:]
    series = [{"name": n, "values": [money(per_group[n].get(d, ZERO)) for d in days]} for n in keep]
    if rest:
        other = [sum((per_group[n].get(d, ZERO) for n in rest), ZERO) for d in days]
        series.append({"name": f"other ({len(rest)})", "values": [money(v) for v in other]})
    return {"days": days, "series": series}


def context(conn: sa.Connection, pricing: PricingConfig, view: View, query: Mapping[str, str]) -> dict[str, Any]:
    """The Spend explorer page."""
    group = group_of(query)
    filters = filters_of(query)
    conv = converter(pricing, view)
    conditions = where(filters)
    result = store.spend(conn, pricing, view.since, view.until, group, conv.breaks(), conditions)
    rows = by_cost([row_json(r, group, conv) for r in result.rows])
    idle_shown = not (set(filters) - {"pool"})
    idle = {name: conv.total(by_day) for name, by_day in result.unallocated_usd.items()} if idle_shown else {}
    # Not a cent: no line; with a pool filter, the other pools' (whole-range) idle is not this view's.
    idle = {n: a for n, a in idle.items() if presented(a) and filters.get("pool", n) == n}
    total = sum((Decimal(r["cost"]) for r in rows if r["cost"] is not None), ZERO) + sum(idle.values(), ZERO)
    by_day = store.spend(conn, pricing, view.since, view.until, (group[0], "day"), conv.breaks(), conditions)
    return {
        "page": "spend",
        "view": view.as_json(),
        "group_by": list(group),
        "filters": filters,
        "dimensions": list(DIMENSIONS),
        "rows": rows,
        "idle_pool_cost": {name: money(amount) for name, amount in idle.items()},
        "idle_pool_cost_shown": idle_shown,
        "unpriced": {"calls": result.unpriced_calls, "by_reason": dict(sorted(result.unpriced_reasons.items()))},
        "total_cost": money(total),
        "chart": _chart(by_day, conv, [d.isoformat() for d in view.days()]),
        "fx": conv.described(view.until),
    }
