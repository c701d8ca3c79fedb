"""The API on port 8000: health, readiness, calls, ingest counters.

Every JSON endpoint reads through breakeven.collector.store.queries; the dashboard pages mount
beside it on the same app.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable
from typing import Annotated, Any

import sqlalchemy as sa
from fastapi import FastAPI, HTTPException, Query, Request
from fastapi.responses import JSONResponse
from sqlalchemy.exc import SQLAlchemyError

from breakeven.collector import __version__
from breakeven.collector.api.admin import admin_router
from breakeven.collector.api.money import money_router
from breakeven.collector.api.reconciliation import reconciliation_router
from breakeven.collector.api.times import parse_time
from breakeven.collector.calls.pipeline import Pipeline
from breakeven.collector.config.reconcile import ReconcileConfig
from breakeven.collector.price.config import PricingConfig
from breakeven.collector.reports.calls import call_costs
from breakeven.collector.reports.errors import ReportError
from breakeven.collector.store import queries
from breakeven.collector.store.engine import current_revision, head_revision

MAX_PAGE = 1000
log = logging.getLogger("breakeven.api")


def build_api(
    engine: sa.Engine,
    pipeline: Pipeline | None,
    pricing: PricingConfig | None = None,
    ingest_problems: Callable[[], list[str]] = list,
    reconcile: ReconcileConfig | None = None,
) -> FastAPI:
    """The FastAPI app for port 8000 (dashboard routes are added by the composition root).

    `ingest_problems` names what else keeps the collector from taking exports right now
    (the composition root's: shutting down, decode processes down); /readyz reports them.
    """
    app = FastAPI(title="breakeven", version=__version__, docs_url="/api/docs", openapi_url="/api/openapi.json")
    pricing = pricing or PricingConfig()
    app.include_router(money_router(engine, pricing))
    app.include_router(reconciliation_router(engine, pricing, reconcile or ReconcileConfig()))

    @app.exception_handler(ReportError)
    async def report_error(request: Request, exc: ReportError) -> JSONResponse:
        # The one place a report's error becomes HTTP: the request asked for what cannot be built.
        return JSONResponse({"detail": str(exc)}, status_code=400)

    @app.exception_handler(SQLAlchemyError)
    async def database_error(request: Request, exc: SQLAlchemyError) -> JSONResponse:
        # A database that is down or busy is a 503 with a reason, never a 500.
        log.warning("database error on %s: %s", request.url.path, exc.__class__.__name__)
        return JSONResponse(
            {"detail": f"database unavailable: {exc.__class__.__name__}"}, status_code=503, headers={"Retry-After": "5"}
        )

    @app.get("/healthz")
    def healthz() -> dict[str, str]:
        """Liveness: the process answers."""
        return {"status": "ok"}

    @functools.cache
    def shipped_head() -> str | None:
        """The shipped migrations' head, read once: it takes reading them all (some 6 ms)."""
        return head_revision(engine)

    @app.get("/readyz")
    def readyz() -> JSONResponse:
        """Readiness: whether an export sent now can be taken. The database answers and is
        migrated, the writer runs, and nothing in ingest_problems (shutting down, decode
        processes down). A full queue is not a problem here: it is backpressure, answered
        429 per export, and gone in a moment; were it unreadiness, every replica would leave
        its load balancer at the same peak."""
        problems = list(ingest_problems())
        try:
            if current_revision(engine) != shipped_head():
                problems.append("database is not migrated to head (run: breakeven migrate)")
        except Exception as exc:
            problems.append(f"database unreachable: {exc.__class__.__name__}")
        if pipeline is not None and not pipeline.writer_alive:
            problems.append("writer is not running")
        if problems:
            return JSONResponse({"status": "not ready", "problems": problems}, status_code=503)
        return JSONResponse({"status": "ready"})

    @app.get("/api/v1/calls")
    def list_calls(
        service: str | None = None,
        provider: str | None = None,
        model: str | None = None,
        backend: str | None = None,
        trace_id: str | None = None,
        prompt_hash: str | None = None,
        since: str | None = None,
        until: str | None = None,
        limit: Annotated[int, Query(ge=1, le=MAX_PAGE)] = 100,
        cursor: str | None = None,
        currency: str | None = None,
    ) -> dict[str, Any]:
        """Stored LLM calls, newest first, with filters and a cursor.

        Each call's `cost` is a decimal string in `currency` (USD by default; null when
        unpriced). A self-hosted call's cost is its share of its pool's cost over the whole
        allocation period (hour, day or month) that contains it, so it moves while that
        period is still open.
        """
        filters = queries.CallFilters(
            service=service,
            provider=provider,
            model=model,
            backend=backend,
            trace_id=trace_id.lower() if trace_id else None,
            prompt_hash=prompt_hash,
            since=parse_time("since", since),
            until=parse_time("until", until),
        )
        try:
            with engine.connect() as conn:
                page, next_cursor = queries.list_calls(conn, filters, limit, cursor)
                page = call_costs(conn, pricing, page, currency)
        except queries.CursorError as exc:
            raise HTTPException(400, str(exc)) from None
        return {"calls": page, "next": next_cursor}

    @app.get("/api/v1/ingest")
    def ingest_counters() -> dict[str, Any]:
        """Cumulative ingest counters, and the live queue depth."""
        with engine.connect() as conn:
            totals = queries.ingest_totals(conn)
        if pipeline is not None:
            totals["queue_depth"] = pipeline.depth
            totals["cached_traces"] = len(pipeline.cache)
        return totals

    app.include_router(admin_router(engine))
    return app
