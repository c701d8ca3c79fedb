"""Read queries over the ledger; the API and dashboard read only through here."""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from breakeven.collector.providers import canonical_provider
from breakeven.collector.store.rows import public_call
from breakeven.collector.store.schema import calls, ingest_counters


class CursorError(ValueError):
    """A pagination cursor that this server did not make."""


@dataclass(frozen=True, slots=True)
class CallFilters:
    """Filters of GET /api/v1/calls; None means no filter."""

    service: str | None = None
    provider: str | None = None
    model: str | None = None
    backend: str | None = None
    trace_id: str | None = None
    prompt_hash: str | None = None
    since: datetime | None = None
    until: datetime | None = None


def encode_cursor(start_time: datetime, trace_id: str, span_id: str) -> str:
    """An opaque cursor pointing just past this call in newest-first order."""
    raw = json.dumps([start_time.isoformat(), trace_id, span_id]).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[datetime, str, str]:
    """The position a cursor points at; raises CursorError for anything else."""
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        start, trace_id, span_id = json.loads(raw)
        return datetime.fromisoformat(start), str(trace_id), str(span_id)
    except (ValueError, TypeError) as exc:
        raise CursorError(f"invalid cursor: {exc}") from None


def list_calls(
    conn: sa.Connection, filters: CallFilters, limit: int, cursor: str | None = None
) -> tuple[list[dict[str, Any]], str | None]:
    """Calls newest first, one page, and the cursor of the next page (None at the end)."""
    query = sa.select(calls)
    conditions = []
    for name in ("service", "provider", "backend", "trace_id", "prompt_hash"):
        value = getattr(filters, name)
        if value is not None:
            # A provider may be asked for by any alias ("google", "aws_bedrock"): rows hold the canonical name.
            conditions.append(calls.c[name] == (canonical_provider(value) if name == "provider" else value))
    if filters.model is not None:
        conditions.append(sa.or_(calls.c.request_model == filters.model, calls.c.response_model == filters.model))
    if filters.since is not None:
        conditions.append(calls.c.start_time >= filters.since)
    if filters.until is not None:
        conditions.append(calls.c.start_time < filters.until)
    if cursor is not None:
        start, trace_id, span_id = decode_cursor(cursor)
        conditions.append(
            sa.or_(
                calls.c.start_time < start,
                sa.and_(
                    calls.c.start_time == start,
                    sa.or_(
                        calls.c.trace_id < trace_id,
                        sa.and_(calls.c.trace_id == trace_id, calls.c.span_id < span_id),
                    ),
                ),
            )
        )
    query = query.where(*conditions).order_by(
        calls.c.start_time.desc(), calls.c.trace_id.desc(), calls.c.span_id.desc()
    )
    rows = conn.execute(query.limit(limit + 1)).mappings().all()
    page = [public_call(r) for r in rows[:limit]]
    next_cursor = None
    if len(rows) > limit:
        last = rows[limit - 1]
        next_cursor = encode_cursor(last["start_time"], last["trace_id"], last["span_id"])
    return page, next_cursor


def ingest_totals(conn: sa.Connection) -> dict[str, Any]:
    """Cumulative ingest counters: plain counters, and rejects by reason."""
    totals: dict[str, Any] = {
        "spans_received": 0,
        "llm_spans_stored": 0,
        "calls_stored": 0,
        "spans_merged": 0,
        "non_llm_dropped": 0,
        "duplicates_ignored": 0,
        "rejected": {},
        "rejected_total": 0,
        "log_records_received": 0,
        "prompt_hashes_from_logs": 0,
        "failed_calls_unlinked": 0,
        "sdk_calls_unlinked": 0,
        "metric_points_received": 0,
        # GPU metric points by outcome, then source (otlp, scrape); collector/gpu.
        "gpu_points": {"stored": {}, "unmatched": {}, "invalid": {}},
        "gpu_scrapes_failed": 0,
    }
    c = ingest_counters.c  # appended on DuckDB (collector/store/counters.py): summed by key
    for name, reason, value in conn.execute(
        sa.select(c.name, c.reason, sa.func.sum(c.value)).group_by(c.name, c.reason)
    ):
        if name == "rejected":
            totals["rejected"][reason] = int(value)
            totals["rejected_total"] += int(value)
        elif name.startswith("gpu_points_"):
            totals["gpu_points"].setdefault(name.removeprefix("gpu_points_"), {})[reason] = int(value)
        else:
            totals[name] = int(value)
    return totals
