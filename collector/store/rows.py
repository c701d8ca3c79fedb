"""Records <-> table rows: the one place that knows the column order."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from collector.records import TOKEN_FIELDS, Call, LlmSpan
from collector.store.schema import calls, llm_spans

CALL_COLUMNS = tuple(c.name for c in calls.columns)
SPAN_COLUMNS = tuple(c.name for c in llm_spans.columns)
TIME_COLUMNS = frozenset({"start_time", "end_time", "received_at"})
_SHARED = (
    "ttft_ms", "service", "environment", "team", "feature", "operation", "provider", "backend",
    "backend_class", "server_address", "request_model", "response_model", "quantization",
    "prompt_hash", "streaming", "status", "error_type", "emitter",
)  # fmt: skip


def ns_to_datetime(ns: int) -> datetime:
    """Nanoseconds since the epoch as an aware UTC datetime (microsecond precision)."""
    return datetime.fromtimestamp(ns // 1000 / 1e6, tz=UTC)


def datetime_to_ns(value: datetime) -> int:
    """An aware datetime as nanoseconds since the epoch."""
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return round(value.timestamp() * 1e6) * 1000


def call_values(call: Call, received_at_us: int) -> dict[str, Any]:
    """A call as column -> value, times as microseconds since the epoch."""
    row: dict[str, Any] = {name: getattr(call, name) for name in _SHARED}
    row.update({name: getattr(call, name) for name in TOKEN_FIELDS})
    row.update(
        trace_id=call.trace_id,
        span_id=call.span_id,
        parent_span_id=call.parent_span_id,
        start_time=call.start_ns // 1000,
        end_time=call.end_ns // 1000,
        conventions=call.conventions,
        received_at=received_at_us,
        usage_reported=call.usage_reported,
        span_count=len(call.member_span_ids),
        member_span_ids=",".join(call.member_span_ids),
    )
    return row


def span_values(span: LlmSpan, received_at_us: int) -> dict[str, Any]:
    """An LLM span as column -> value, times as microseconds since the epoch."""
    row: dict[str, Any] = {name: getattr(span, name) for name in _SHARED}
    row.update({name: getattr(span, name) for name in TOKEN_FIELDS})
    row.update(
        trace_id=span.trace_id,
        span_id=span.span_id,
        parent_span_id=span.parent_span_id,
        name=span.name,
        kind=span.kind,
        is_engine=span.is_engine,
        start_time=span.start_ns // 1000,
        end_time=span.end_ns // 1000,
        conventions=",".join(span.conventions),
        received_at=received_at_us,
        attributes=json.dumps(span.attributes, default=str, ensure_ascii=False),
    )
    return row


def span_from_row(row: Any) -> LlmSpan:
    """An LLM span read back from llm_spans (for re-merging a trace)."""
    m = row._mapping
    return LlmSpan(
        trace_id=m["trace_id"],
        span_id=m["span_id"],
        parent_span_id=m["parent_span_id"],
        name=m["name"],
        kind=m["kind"],
        start_ns=datetime_to_ns(m["start_time"]),
        end_ns=datetime_to_ns(m["end_time"]),
        conventions=tuple(x for x in m["conventions"].split(",") if x),
        is_engine=m["is_engine"],
        attributes={},
        **{name: m[name] for name in _SHARED},
        **{name: m[name] for name in TOKEN_FIELDS},
    )


def public_call(m: Any) -> dict[str, Any]:
    """A calls row as the API shows it."""
    out = {name: m[name] for name in CALL_COLUMNS if name not in TIME_COLUMNS}
    for name in TIME_COLUMNS:
        out[name] = _iso(m[name])
    out["duration_ms"] = (m["end_time"] - m["start_time"]).total_seconds() * 1000.0
    out["member_span_ids"] = [s for s in m["member_span_ids"].split(",") if s]
    out["conventions"] = [s for s in m["conventions"].split(",") if s]
    return out


def _iso(value: datetime) -> str:
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z")
