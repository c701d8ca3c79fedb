"""Break-even: per traffic class bought per token, the month's run rate against the cheapest pool
that could serve it, sorted by savings; per pool, its distance to break-even; verdicts in words.

Figures are GET /api/v1/breakeven's (breakeven.collector.reports.breakeven.breakeven_report): classes are the
month `until` falls in, projected by the linear run rate; pools cover the range. A pool's
savings over the range are also shown per month at the range's pace (x average month / range
length), so both halves of the page speak in money per month. Each verdict links to its plan
on the Plans page (`plan_anchor`: the class's, or the pool's own traffic's, anchor there).
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import sqlalchemy as sa

from breakeven.collector.price.config import PricingConfig
from breakeven.collector.price.periods import seconds_between
from breakeven.collector.reports.breakeven import breakeven_report
from breakeven.collector.reports.fields import money
from breakeven.dashboard import fmt
from breakeven.dashboard.pages.common import converter
from breakeven.dashboard.pages.plans import class_anchor, pool_anchor
from breakeven.dashboard.view import View

AVERAGE_MONTH_SECONDS = Decimal("2629746")  # 365.2425 days / 12


def _box(pool: dict[str, Any]) -> str:
    candidate, boxes = pool["candidate"], pool["boxes"]
    count = f"{boxes} box{'es' if boxes != 1 else ''}"
    if candidate.startswith("pool "):  # a configured pool's box, as a new pool of its own
        return f"a pool like {candidate.removeprefix('pool ')} ({count})"
    return f"a pool of {boxes} x {candidate}"


def class_verdict(c: dict[str, Any], currency: str) -> str:
    """One traffic class's verdict, in the words finance reads."""
    who = f"{c['service'] or '(no service)'}'s {c['model']} traffic ({c['provider']})"
    pool = c["cheapest_pool"]
    if c["projected"] is None:
        return f"No verdict for {who}: none of its calls could be priced."
    if pool is None:
        return (
            f"No verdict for {who}: no candidate box runs {c['model']} or a substitute declared for it"
            " ([[pricing.substitutes]])."
        )
    savings = Decimal(c["savings"])
    runs = _runs(pool)
    part = "" if Decimal(pool["share"]) == 1 else f"the {fmt.percent(pool['share'])} of "
    if savings > 0:
        return (
            f"Moving {part}{who} to {_box(pool)} running {runs} would save about {fmt.money(savings, currency)} "
            f"per month at today's volume ({fmt.money(c['projected'], currency)} projected against "
            f"{fmt.money(pool['cost'], currency)} for the pool, {fmt.percent(pool['utilization'])} busy)."
        )
    taken = f"the {fmt.percent(pool['share'])} of it that may move" if part else "it"
    return (
        f"Keep buying {who}: at today's volume ({fmt.money(c['projected'], currency)} a month) the best pool, "
        f"{_box(pool)} running {runs}, would cost {fmt.money(-savings, currency)} a month more than buying {taken}."
    )


def _runs(pool: dict[str, Any]) -> str:
    """What the pool would run, and why it may: "meta-llama/Llama-3.3-70B-Instruct (fp8; passes eval)"."""
    detail = "; ".join(x for x in (pool.get("quantization"), pool.get("evidence")) if x)
    return f"{pool['model']} ({detail})" if detail else str(pool["model"])


def pool_verdict(p: dict[str, Any], currency: str) -> str:
    """One pool's distance to break-even, in words."""
    be = p["break_even"]
    if be["tokens"] is None:
        return f"Pool {p['name']}: no break-even for this range ({be['reason']})."
    per_month = Decimal(p["savings_per_month"]) if p["savings_per_month"] is not None else None
    if p["above_break_even"]:
        return (
            f"Pool {p['name']} pays for itself: self-hosting saves about {fmt.money(per_month, currency)} per month "
            f"against buying its traffic, at {fmt.percent(p['utilization'])} utilization "
            f"(break-even {fmt.percent(be['utilization'])})."
        )
    lost = fmt.money(-per_month, currency) if per_month is not None else "—"
    return (
        f"Pool {p['name']} is under break-even: buying its traffic would save about {lost} per month at today's "
        f"volume, unless traffic grows to {fmt.tokens(be['tokens'])} tokens over a range like this one "
        f"(utilization {fmt.percent(p['utilization'])}, break-even {fmt.percent(be['utilization'])})."
    )


def context(conn: sa.Connection, pricing: PricingConfig, view: View) -> dict[str, Any]:
    """The Break-even page."""
    conv = converter(pricing, view)
    report = breakeven_report(conn, pricing, conv, view.since, view.until)
    per_month = AVERAGE_MONTH_SECONDS / seconds_between(view.since, view.until)
    for c in report["classes"]:
        c["verdict"] = class_verdict(c, conv.currency)
        c["plan_anchor"] = class_anchor(c["service"], c["provider"], c["model"])
    for p in report["pools"]:
        savings = p["break_even"]["savings"]
        p["savings_per_month"] = money(Decimal(savings) * per_month) if savings is not None else None
        p["verdict"] = pool_verdict(p, conv.currency)
        p["plan_anchor"] = pool_anchor(p["name"])
    report["pools"].sort(key=lambda p: (p["savings_per_month"] is None, Decimal(p["savings_per_month"] or 0)))
    return {"page": "breakeven", "view": view.as_json(), **report, "fx": conv.described(view.until)}
