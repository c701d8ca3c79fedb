"""GET /api/v1/alerts: the built-in rules' alerts (firing, pending, resolved) and their history.

The JSON twin of the dashboard's Alerts page: one query over alert_states, one over
alert_history, the rules as configured, and when they were last evaluated.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any

import sqlalchemy as sa
from fastapi import APIRouter, HTTPException, Query

from breakeven.collector.alerts import store
from breakeven.collector.alerts.conditions import duration_text
from breakeven.collector.alerts.rules import FIRING, PENDING, RESOLVED
from breakeven.collector.api.times import parse_time
from breakeven.collector.config.alerts import AlertsConfig, Rule
from breakeven.collector.price.periods import iso_z

if TYPE_CHECKING:
    from breakeven.collector.alerts.runner import AlertRunner

MAX_HISTORY = 1000
STATES = (FIRING, PENDING, RESOLVED)


def rule_json(rule: Rule) -> dict[str, Any]:
    """A configured rule as the API shows it (durations as config spells them, margin as a string)."""
    out: dict[str, Any] = {
        "name": rule.name,
        "kind": rule.kind,
        "severity": rule.severity,
        "labels": dict(rule.labels),
        "window": duration_text(rule.window),
        "margin": str(rule.margin),
        "for": duration_text(rule.for_) if rule.for_ else "0s",
        "repeat_interval": duration_text(rule.repeat_interval),
    }
    if rule.kind == "pool_below_breakeven":
        out["pools"] = list(rule.pools)
    elif rule.kind == "class_past_breakeven":
        out["backend_classes"] = list(rule.backend_classes)
        out["budget"] = None if rule.budget_usd is None else str(rule.budget_usd)
    elif rule.kind == "spend_drift":
        out.update(group_by=rule.group_by, baseline=duration_text(rule.baseline), min_spend=str(rule.min_spend_usd))
    elif rule.kind == "ingest_unhealthy":
        out["baseline"] = duration_text(rule.baseline)
    return out


def alerts_router(engine: sa.Engine, config: AlertsConfig, runner: AlertRunner | None = None) -> APIRouter:
    """The alerts API."""
    router = APIRouter()

    @router.get("/api/v1/alerts")
    def get_alerts(
        state: str | None = None,
        rule: str | None = None,
        fingerprint: str | None = None,
        since: str | None = None,
        limit: Annotated[int, Query(ge=1, le=MAX_HISTORY)] = 100,
    ) -> dict[str, Any]:
        """Alerts (firing, then pending, then resolved) and their transitions, newest first.

        `state` and `rule` filter the alerts; `rule`, `fingerprint`, `since` and `limit` the history.
        """
        if state is not None and state not in STATES:
            raise HTTPException(400, f"state: one of {', '.join(STATES)}, got {state!r}")
        since_at = parse_time("since", since)
        with engine.connect() as conn:
            alerts = store.list_alerts(conn, state, rule)
            history = store.list_history(conn, rule, fingerprint, since_at, limit)
        counts = {s: sum(1 for a in alerts if a["state"] == s) for s in STATES}
        last = runner.last_evaluation if runner is not None else None
        return {
            "counts": counts,
            "alerts": alerts,
            "history": history,
            "rules": [rule_json(r) for r in config.rules],
            "interval": duration_text(config.interval),
            "evaluated_at": None if last is None else iso_z(last),
        }

    return router
