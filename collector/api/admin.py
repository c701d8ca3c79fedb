"""Admin endpoints: the audit trail of `breakeven reprice` (GET /api/v1/reprice-runs)."""

from __future__ import annotations

from typing import Annotated, Any

import sqlalchemy as sa
from fastapi import APIRouter, Query

from breakeven.collector.store.reprice import list_runs

MAX_RUNS = 1000


def admin_router(engine: sa.Engine) -> APIRouter:
    """The admin routes, reading through `engine`."""
    router = APIRouter()

    @router.get("/api/v1/reprice-runs")
    def reprice_runs(limit: Annotated[int, Query(ge=1, le=MAX_RUNS)] = 100) -> dict[str, Any]:
        """`breakeven reprice` runs, newest first: who, when, the range, which prices, calls
        repriced, and the per-token total of the range before and after (USD, decimal strings).
        A run whose finished_at is null was interrupted, or is still running."""
        with engine.connect() as conn:
            return {"runs": list_runs(conn, limit)}

    return router
