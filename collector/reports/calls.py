"""The cost of each call of a page, in one currency: its per-token cost, or its share of its pool.

A pool call's share is worked out when read (its allocation window may still be open),
so a page of calls asks the store for the pool shares of just its pool calls.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import sqlalchemy as sa

from breakeven.collector.price.config import PricingConfig
from breakeven.collector.price.periods import parse_instant, utc
from breakeven.collector.price.usage import TokenUsage
from breakeven.collector.records import POOL, PRICED
from breakeven.collector.reports.currency import Converter
from breakeven.collector.reports.fields import money
from breakeven.collector.store import spend as store


def call_costs(
    conn: sa.Connection, pricing: PricingConfig, page: list[dict[str, Any]], currency: str | None
) -> list[dict[str, Any]]:
    """The calls of a page with `cost` in the currency: per-token cost, or the pool share."""
    conv = Converter(pricing.fx, currency)
    starts = [utc(parse_instant(c["start_time"])) for c in page]
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
