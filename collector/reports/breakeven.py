"""The break-even report: traffic classes bought per token ranked by what a pool would save, and
each pool's distance to its break-even.

The month to date is the month `until` falls in; an until on a month's first instant means
the month that just ended (its run rate is then its whole month).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from datetime import datetime
from decimal import Decimal
from typing import Any

import sqlalchemy as sa

from breakeven.collector.price.breakeven import (
    Candidate,
    ClassProjection,
    ClassTraffic,
    pool_candidates,
    project_class,
    size_pool,
)
from breakeven.collector.price.config import PricingConfig
from breakeven.collector.price.money import ONE, ZERO
from breakeven.collector.price.periods import MICROSECOND, month_start
from breakeven.collector.reports.currency import Converter, header
from breakeven.collector.reports.fields import money, number, tokens
from breakeven.collector.reports.pools import pool_figures, pool_json
from breakeven.collector.store import spend as store
from breakeven.collector.store.schema import calls

_BOUGHT = ("frontier", "managed")


def breakeven_report(
    conn: sa.Connection, pricing: PricingConfig, conv: Converter, since: datetime, until: datetime
) -> dict[str, Any]:
    """GET /api/v1/breakeven's body: traffic classes by savings, and each pool's distance."""
    # The month to date is the month `until` falls in; an until on a month's first instant
    # means the month that just ended (its run rate is then its whole month).
    complete = until == month_start(until)
    now = until - MICROSECOND if complete else until
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
        projection = project_class(traffic, now, candidates, pricing.substitutes)
        if complete:
            projection = _observed(projection, traffic, candidates, month)
        # A class none of whose calls could be priced has no spend to project (never zero).
        mtd = conv.total(row.cost_usd) if row.cost_usd else None
        scale = projection.projected_usd / spend_usd if spend_usd else ZERO
        projected = None if mtd is None else mtd * scale
        cheapest, moved = projection.cheapest, projection.move
        cheapest_cost = conv.at(cheapest.cost_usd, now.date()) if cheapest is not None else None
        share = moved.share if moved is not None else ONE
        savings = projected * share - cheapest_cost if projected is not None and cheapest_cost is not None else None
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
                        # what it would run, how much of the class may move, and why (price/substitutes.py)
                        "model": moved.model if moved else None,
                        "quantization": moved.quantization if moved else None,
                        "share": number(share),
                        "evidence": moved.evidence if moved else None,
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
    header_ = header(conv, pricing, since, until)
    return {**header_, "month": month.strftime("%Y-%m"), "classes": classes, "pools": pools}


def _observed(
    projection: ClassProjection, traffic: ClassTraffic, candidates: Sequence[Candidate], month: datetime
) -> ClassProjection:
    """A whole month observed: its projection is the month itself, exactly (project_class
    was asked for the month's last microsecond, which scales by a hair over 1)."""
    cheapest = projection.cheapest
    tokens_in, tokens_out = Decimal(traffic.usage.total_input), Decimal(traffic.usage.output)
    share = projection.move.share if projection.move is not None else ONE
    if cheapest is not None:
        box = next(c for c in candidates if c.name == cheapest.candidate)
        cheapest = size_pool(box, tokens_in * share, tokens_out * share, month)
    return replace(
        projection,
        projected_usd=traffic.spend_usd,
        projected_input_tokens=tokens_in,
        projected_output_tokens=tokens_out,
        cheapest=cheapest,
        savings_usd=None if cheapest is None else traffic.spend_usd * share - cheapest.cost_usd,
    )
