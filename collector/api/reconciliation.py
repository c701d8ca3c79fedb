"""GET /api/v1/reconciliation: the ledger against what the providers and clouds billed.

Routes only: the range (api/times.py; since defaults to the start of the UTC month, until to
now, both taken to whole UTC days), the currency (pricing.currency by default) and group_by go
to breakeven.collector.reports.reconciliation.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from fastapi import APIRouter

from breakeven.collector.api.times import time_range
from breakeven.collector.config.reconcile import ReconcileConfig
from breakeven.collector.price.config import PricingConfig
from breakeven.collector.reports.currency import Converter
from breakeven.collector.reports.reconciliation import reconciliation_report


def reconciliation_router(engine: sa.Engine, pricing: PricingConfig, config: ReconcileConfig) -> APIRouter:
    """The reconciliation route, over this engine, pricing and the configured bills."""
    router = APIRouter()

    @router.get("/api/v1/reconciliation")
    def get_reconciliation(
        since: str | None = None, until: str | None = None, group_by: str | None = None, currency: str | None = None
    ) -> dict[str, Any]:
        """Per group (comma-separated provider, model, day, service, team, source; default provider,day;
        or pool alone): the ledger's tokens by kind and cost beside the billed ones, coverage (ledger
        tokens / billed tokens), the delta (billed - ledger, amount and percent) and its causes in
        words with their evidence and, for a price the ledger does not know, the TOML that closes it.
        Also per source its totals and last fetch, per pool and month its configured rent against
        its invoiced lines, and the per-token traffic no configured source bills (unbilled)."""
        start, end = time_range(since, until)
        conv = Converter(pricing.fx, currency, pricing.currency)
        with engine.connect() as conn:
            return reconciliation_report(conn, pricing, config, conv, start, end, group_by)

    return router
