"""Alerts: what fires, what is pending, what resolved, and the transitions (GET /api/v1/alerts'
data, read through breakeven.collector.alerts.store). A notification's link names one alert
(`?alert=<fingerprint>`): the page marks it and shows its history."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from breakeven.collector.alerts import store
from breakeven.collector.alerts.rules import FIRING, PENDING, RESOLVED
from breakeven.dashboard.view import View

HISTORY = 100


def context(conn: sa.Connection, view: View, fingerprint: str | None) -> dict[str, Any]:
    """The Alerts page."""
    alerts = store.list_alerts(conn)
    history = store.list_history(conn, None, fingerprint or None, None, HISTORY)
    counts = {state: sum(1 for a in alerts if a["state"] == state) for state in (FIRING, PENDING, RESOLVED)}
    return {
        "page": "alerts",
        "view": view.as_json(),
        "selected": fingerprint or None,
        "counts": counts,
        "alerts": alerts,
        "history": history,
    }
