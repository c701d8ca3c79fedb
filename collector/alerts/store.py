"""Alert states and history in the database (tables alert_states, alert_history; migration 0004)."""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa

from breakeven.collector.alerts.rules import FIRING, PENDING, RESOLVED, AlertState, Evaluation
from breakeven.collector.store.schema import alert_history, alert_states

STATE_ORDER = {FIRING: 0, PENDING: 1, RESOLVED: 2}


def _utc(value: datetime | None) -> datetime | None:
    if value is None:
        return None
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _state_of(row: Any) -> AlertState:
    active_since, updated_at = _utc(row.active_since), _utc(row.updated_at)
    assert active_since is not None
    assert updated_at is not None
    return AlertState(
        fingerprint=row.fingerprint,
        rule=row.rule,
        state=row.state,
        severity=row.severity,
        labels=json.loads(row.labels),
        annotations=json.loads(row.annotations),
        active_since=active_since,
        updated_at=updated_at,
        fired_at=_utc(row.fired_at),
        resolved_at=_utc(row.resolved_at),
        last_notified_at=_utc(row.last_notified_at),
    )


def _row_of(state: AlertState) -> dict[str, Any]:
    return {
        "fingerprint": state.fingerprint,
        "rule": state.rule,
        "state": state.state,
        "severity": state.severity,
        "labels": json.dumps(dict(state.labels), sort_keys=True),
        "annotations": json.dumps(dict(state.annotations), sort_keys=True),
        "active_since": state.active_since,
        "updated_at": state.updated_at,
        "fired_at": state.fired_at,
        "resolved_at": state.resolved_at,
        "last_notified_at": state.last_notified_at,
    }


def load_states(conn: sa.Connection) -> dict[str, AlertState]:
    """Every stored alert state by fingerprint."""
    return {row.fingerprint: _state_of(row) for row in conn.execute(sa.select(alert_states))}


def save(conn: sa.Connection, evaluation: Evaluation, previous: Mapping[str, AlertState]) -> int:
    """Write what an evaluation changed (states and history) in the caller's transaction; how many states."""
    changed = evaluation.changed(previous)
    gone = [fp for fp in previous if fp not in evaluation.states]
    stale = [s.fingerprint for s in changed if s.fingerprint in previous] + gone
    if stale:
        conn.execute(alert_states.delete().where(alert_states.c.fingerprint.in_(stale)))
    if changed:
        conn.execute(alert_states.insert(), [_row_of(s) for s in changed])
    if evaluation.history:
        conn.execute(
            alert_history.insert(),
            [
                {
                    "occurred_at": e.at,
                    "fingerprint": e.alert.fingerprint,
                    "rule": e.alert.rule,
                    "event": e.event,
                    "severity": e.alert.severity,
                    "labels": json.dumps(dict(e.alert.labels), sort_keys=True),
                    "summary": e.alert.annotations.get("summary", ""),
                }
                for e in evaluation.history
            ],
        )
    return len(changed) + len(gone)


def _iso(value: datetime | None) -> str | None:
    value = _utc(value)
    return None if value is None else value.isoformat().replace("+00:00", "Z")


def alert_json(state: AlertState) -> dict[str, Any]:
    """An alert state as GET /api/v1/alerts shows it."""
    return {
        "fingerprint": state.fingerprint,
        "rule": state.rule,
        "state": state.state,
        "severity": state.severity,
        "labels": dict(state.labels),
        "annotations": dict(state.annotations),
        "active_since": _iso(state.active_since),
        "fired_at": _iso(state.fired_at),
        "resolved_at": _iso(state.resolved_at),
        "last_notified_at": _iso(state.last_notified_at),
        "updated_at": _iso(state.updated_at),
    }


def list_alerts(conn: sa.Connection, state: str | None = None, rule: str | None = None) -> list[dict[str, Any]]:
    """Alert states: firing, then pending, then resolved; the most recent change first within each."""
    query = sa.select(alert_states)
    if state is not None:
        query = query.where(alert_states.c.state == state)
    if rule is not None:
        query = query.where(alert_states.c.rule == rule)
    states = [_state_of(row) for row in conn.execute(query)]
    states.sort(key=lambda s: s.fingerprint)
    states.sort(key=lambda s: s.resolved_at or s.fired_at or s.active_since, reverse=True)
    states.sort(key=lambda s: STATE_ORDER.get(s.state, 3))
    return [alert_json(s) for s in states]


def list_history(
    conn: sa.Connection,
    rule: str | None = None,
    fingerprint: str | None = None,
    since: datetime | None = None,
    limit: int = 100,
) -> list[dict[str, Any]]:
    """Transitions, newest first."""
    query = sa.select(alert_history)
    if rule is not None:
        query = query.where(alert_history.c.rule == rule)
    if fingerprint is not None:
        query = query.where(alert_history.c.fingerprint == fingerprint)
    if since is not None:
        query = query.where(alert_history.c.occurred_at >= since)
    query = query.order_by(alert_history.c.occurred_at.desc(), alert_history.c.fingerprint).limit(limit)
    return [
        {
            "at": _iso(row.occurred_at),
            "fingerprint": row.fingerprint,
            "rule": row.rule,
            "event": row.event,
            "severity": row.severity,
            "labels": json.loads(row.labels),
            "summary": row.summary,
        }
        for row in conn.execute(query)
    ]


def state_counts(conn: sa.Connection) -> dict[tuple[str, str, str], int]:
    """(rule, severity, state) -> how many alert instances are in it."""
    query = sa.select(alert_states.c.rule, alert_states.c.severity, alert_states.c.state, sa.func.count()).group_by(
        alert_states.c.rule, alert_states.c.severity, alert_states.c.state
    )
    return {(rule, severity, state): n for rule, severity, state, n in conn.execute(query)}
