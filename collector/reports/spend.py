"""The spend report: calls, tokens by kind and cost per group, in the requested currency."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa

from breakeven.collector.price.config import PricingConfig
from breakeven.collector.price.money import ZERO
from breakeven.collector.reports.currency import Converter, header
from breakeven.collector.reports.errors import ReportError
from breakeven.collector.reports.fields import key_json, money, tokens
from breakeven.collector.store import spend as store


def spend_report(
    conn: sa.Connection, pricing: PricingConfig, conv: Converter, since: datetime, until: datetime, group_by: str | None
) -> dict[str, Any]:
    """GET /api/v1/spend's body: calls, tokens and cost per group over [since, until)."""
    try:
        keys = store.group_keys(group_by)
    except store.GroupByError as exc:
        raise ReportError(str(exc)) from None
    result = store.spend(conn, pricing, since, until, keys, conv.breaks())
    rows = []
    total = ZERO
    for row in result.rows:
        cost = conv.total(row.cost_usd) if row.cost_usd else None
        total += cost or ZERO
        rows.append(
            {
                **{name: key_json(name, value) for name, value in zip(keys, row.key, strict=True)},
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
        **header(conv, pricing, since, until),
        "group_by": list(keys),
        "rows": rows,
        "unpriced": {"calls": result.unpriced_calls, "by_reason": dict(sorted(result.unpriced_reasons.items()))},
        "unallocated_pool_cost": {name: money(amount) for name, amount in unallocated.items()},
        "total_cost": money(total),
    }
