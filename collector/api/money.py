"""The money API: /api/v1/spend, /pools, /breakeven and /plans (and a plan as a LiteLLM router),
over the report builders.

Routes only: each parses its range (api/times.py), builds its report (breakeven.collector.reports)
and returns it. The currency defaults to pricing.currency here (and to USD for /api/v1/calls);
since defaults to the start of the UTC month `until` falls in, until to now. The plans routes
share their what-if query parameters through one dependency (reports/plans.py `what_if`).
"""

from __future__ import annotations

from typing import Annotated, Any

import sqlalchemy as sa
from fastapi import APIRouter, Depends, HTTPException, Response

from breakeven.collector.api.times import time_range
from breakeven.collector.price.config import PricingConfig
from breakeven.collector.reports.breakeven import breakeven_report
from breakeven.collector.reports.currency import Converter, header
from breakeven.collector.reports.gpu import add_gpu_figures
from breakeven.collector.reports.plans import WhatIf, plans_report, what_if
from breakeven.collector.reports.pools import pool_figures, pool_json
from breakeven.collector.reports.router import NoPlan, litellm_report
from breakeven.collector.reports.spend import spend_report


def money_router(engine: sa.Engine, pricing: PricingConfig) -> APIRouter:
    """The routes of the money API, over this engine and pricing config."""
    router = APIRouter()

    @router.get("/api/v1/spend")
    def get_spend(
        group_by: str | None = None, since: str | None = None, until: str | None = None, currency: str | None = None
    ) -> dict[str, Any]:
        """Calls, tokens by kind and cost per group over [since, until).

        group_by: comma-separated backend_class, provider, model, service, team, feature, pool,
        day, month. cost is a decimal string: per-token cost plus the allocated share of pool
        cost; unpriced calls are counted apart, never as zero; idle pool cost (allocation
        windows without traffic) is in unallocated_pool_cost, not in the rows.
        """
        start, end = time_range(since, until)
        conv = Converter(pricing.fx, currency, pricing.currency)
        with engine.connect() as conn:
            return spend_report(conn, pricing, conv, start, end, group_by)

    @router.get("/api/v1/pools")
    def get_pools(since: str | None = None, until: str | None = None, currency: str | None = None) -> dict[str, Any]:
        """Per configured pool over [since, until): cost, utilization, idle, alternative, break-even, allocation;
        beside the busy-seconds utilization, the GPU metric utilization the boxes reported (gpu_metrics, null
        when none was collected) and the health of its scrape endpoints (gpu_scrape)."""
        start, end = time_range(since, until)
        conv = Converter(pricing.fx, currency, pricing.currency)
        with engine.connect() as conn:
            figures = pool_figures(conn, pricing, start, end, conv.breaks())
            pools = [pool_json(f, conv, start, end) for f in figures]
            add_gpu_figures(conn, pricing.pools, start, end, pools)  # beside busy seconds: what the GPUs said
        return {**header(conv, pricing, start, end), "pools": pools}

    @router.get("/api/v1/breakeven")
    def get_breakeven(
        since: str | None = None, until: str | None = None, currency: str | None = None
    ) -> dict[str, Any]:
        """Per traffic class (service x model, bought per token): month to date, run-rate projection,
        the cheapest pool that could serve it and the savings (sorted by savings); per pool, its
        distance to break-even over [since, until)."""
        start, end = time_range(since, until)
        conv = Converter(pricing.fx, currency, pricing.currency)
        with engine.connect() as conn:
            return breakeven_report(conn, pricing, conv, start, end)

    @router.get("/api/v1/plans")
    def get_plans(
        assume: Annotated[WhatIf, Depends(what_if)],
        since: str | None = None,
        until: str | None = None,
        currency: str | None = None,
    ) -> dict[str, Any]:
        """Per traffic class (and per pool's own traffic), the cost of running 0, 1, 2 ... boxes of each
        candidate that may take it over the range's whole hours, the rest bought per token: the whole
        curve, the cheapest plan and a sentence. What-if: growth (x1.5), max_utilization (0.6), discount
        (provider:percent,...), price (candidate:rent,...), deferrable (services at batch price),
        quantization (only candidates running it). Nothing is stored."""
        start, end = time_range(since, until)
        conv = Converter(pricing.fx, currency, pricing.currency)
        with engine.connect() as conn:
            return plans_report(conn, pricing, conv, start, end, assume)

    @router.get("/api/v1/plans/litellm", response_class=Response)
    def get_plan_router(
        model: str,
        assume: Annotated[WhatIf, Depends(what_if)],
        service: str | None = None,
        provider: str | None = None,
        since: str | None = None,
        until: str | None = None,
    ) -> Response:
        """One class's plan (as /api/v1/plans costs it, with the same what-ifs) as a LiteLLM router
        config.yaml: the plan's boxes first, up to their tokens per minute, the per-token provider
        taking the overflow. model names the class (a pool's own traffic: the pool); service and
        provider narrow it. 404 when no such class has a plan."""
        start, end = time_range(since, until)
        try:
            with engine.connect() as conn:
                body = litellm_report(conn, pricing, start, end, assume, service or None, provider or None, model)
        except NoPlan as exc:
            raise HTTPException(status_code=404, detail=str(exc)) from None
        return Response(body, media_type="application/yaml")

    return router
