"""Data quality: which emitters and conventions arrive, what ingest dropped or rejected and why,
unpriced models, calls nobody classified, and the last call seen per service.

The ingest counters are cumulative since the database was created (GET /api/v1/ingest);
everything else covers the chosen range.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa

from breakeven.collector.price.config import PricingConfig
from breakeven.collector.store import queries as store_queries
from breakeven.dashboard import queries
from breakeven.dashboard.pages.common import iso
from breakeven.dashboard.view import View

# What each reject reason means and what to do about it (docs/operations.md, hostile input).
REJECT_REASONS = {
    "too_many_attributes": "more attributes than max_attributes_per_span on the span, its resource or an event",
    "attribute_too_long": "a value the ledger reads (model, provider, team...) longer than max_attribute_value_bytes",
    "invalid_tokens": "a token count that is negative, fractional or above max_tokens_per_call",
    "invalid_trace_id": "a trace id that is not 16 bytes (or all zero)",
    "invalid_span_id": "a span id that is not 8 bytes (or all zero)",
    "invalid_time": "a span without a start time, or one that ends before it starts",
}
UNPRICED_HINTS = {
    "no_price": "add a [[pricing.prices]] entry (price book) for this provider and model",
    "no_provider": "the spans name no provider: send gen_ai.provider.name or map the server address",
    "no_model": "the spans name no model: send gen_ai.request.model or gen_ai.response.model",
    "no_usage": "no span of the call reported token usage: enable usage reporting in the client",
    "unknown_pool": "a pool call whose pool is no longer configured",
}


def _times(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    for row in rows:
        for key, value in row.items():
            if isinstance(value, datetime):
                row[key] = iso(value)
    return rows


def context(conn: sa.Connection, pricing: PricingConfig, view: View, now: datetime) -> dict[str, Any]:
    """The Data quality page."""
    totals = store_queries.ingest_totals(conn)
    rejected = [
        {"reason": reason, "spans": count, "meaning": REJECT_REASONS.get(reason, "")}
        for reason, count in sorted(totals["rejected"].items(), key=lambda kv: -kv[1])
    ]
    unpriced = _times(queries.unpriced_models(conn, view.since, view.until))
    for row in unpriced:
        row["hint"] = UNPRICED_HINTS.get(row["reason"] or "", "")
    services = _times(queries.services(conn, view.since, view.until))
    for row in services:
        last = datetime.fromisoformat(row["last_start"].replace("Z", "+00:00")) if row["last_start"] else None
        row["silent_hours"] = None if last is None else round((now - last).total_seconds() / 3600, 1)
    return {
        "page": "quality",
        "view": view.as_json(),
        "ingest": {k: v for k, v in totals.items() if k not in ("rejected",)},
        "rejected": rejected,
        "emitters": _times(queries.emitters(conn, view.since, view.until)),
        "unpriced_models": unpriced,
        "unknown_backends": _times(queries.unknown_backends(conn, view.since, view.until)),
        "services": services,
        "pools_configured": [p.name for p in pricing.pools],
    }
