"""Records <-> table rows: the one place that knows the column order."""

from __future__ import annotations

import json
import operator
from collections.abc import Sequence
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import orjson

from breakeven.collector.price.fx import USD
from breakeven.collector.price.money import stored
from breakeven.collector.price.periods import iso_z
from breakeven.collector.records import POOL, PRICED, TOKEN_FIELDS, Call, CallPrice, LlmSpan
from breakeven.collector.store.schema import calls, llm_spans

CALL_COLUMNS = tuple(c.name for c in calls.columns)
SPAN_COLUMNS = tuple(c.name for c in llm_spans.columns)
TIME_COLUMNS = frozenset({"start_time", "end_time", "received_at"})
_SHARED = (
    "ttft_ms", "service", "environment", "team", "feature", "operation", "provider", "backend",
    "backend_class", "server_address", "request_model", "response_model", "quantization",
    "prompt_hash", "streaming", "status", "error_type", "emitter", "response_id", "process",
)  # fmt: skip
_IDENTITY = ("trace_id", "span_id", "parent_span_id")
_CALL_ATTRS = (*_IDENTITY, *_SHARED, *TOKEN_FIELDS, "usage_reported", "conventions")
PRICE_COLUMNS = (  # calls column, CallPrice attribute
    ("pool", "pool"), ("price_status", "status"), ("cost_usd", "cost_usd"), ("list_cost_usd", "list_cost_usd"),
    ("price_source", "source"), ("price_entry", "entry"), ("unpriced_reason", "unpriced_reason"),
)  # fmt: skip
_RAW_MONEY = frozenset({"cost_usd", "list_cost_usd"})  # shown as `cost`, a decimal string, never a float
_SPAN_ATTRS = (*_IDENTITY, *_SHARED, *TOKEN_FIELDS, "name", "kind", "is_engine")


def ns_to_datetime(ns: int) -> datetime:
    """Nanoseconds since the epoch as an aware UTC datetime (microsecond precision)."""
    return datetime.fromtimestamp(ns // 1000 / 1e6, tz=UTC)


def datetime_to_ns(value: datetime) -> int:
    """An aware datetime as nanoseconds since the epoch."""
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return round(value.timestamp() * 1e6) * 1000


def _columns(records: Sequence[Any], names: Sequence[str]) -> dict[str, list[Any]]:
    """name -> the records' values of that attribute (one attrgetter per record, then a transpose)."""
    if not records:
        return {name: [] for name in names}
    rows = map(operator.attrgetter(*names), records)  # a tuple per record: len(names) > 1
    return dict(zip(names, map(list, zip(*rows, strict=True)), strict=True))


def call_columns(calls: Sequence[Call], prices: Sequence[CallPrice], received_at_us: int) -> dict[str, list[Any]]:
    """Calls and their prices as column -> values (built column-wise for Arrow), times in us."""
    cols = _columns(calls, _CALL_ATTRS)
    price_cols = _columns(prices, [attr for _, attr in PRICE_COLUMNS])
    cols.update({column: price_cols[attr] for column, attr in PRICE_COLUMNS})
    cols.update(
        start_time=[c.start_ns // 1000 for c in calls],
        end_time=[c.end_ns // 1000 for c in calls],
        received_at=[received_at_us] * len(calls),
        span_count=[len(c.member_span_ids) for c in calls],
        member_span_ids=[",".join(c.member_span_ids) for c in calls],
    )
    return {name: cols[name] for name in CALL_COLUMNS}


def span_columns(spans: Sequence[LlmSpan], received_at_us: int) -> dict[str, list[Any]]:
    """LLM spans as column -> values, times in microseconds, attributes as JSON."""
    cols = _columns(spans, _SPAN_ATTRS)
    cols.update(
        start_time=[s.start_ns // 1000 for s in spans],
        end_time=[s.end_ns // 1000 for s in spans],
        received_at=[received_at_us] * len(spans),
        conventions=[",".join(s.conventions) for s in spans],
        attributes=[attributes_json(s.attributes) if s.attributes_json is None else s.attributes_json for s in spans],
    )
    return {name: cols[name] for name in SPAN_COLUMNS}


_PLAIN_JSON = json.JSONEncoder(default=str, ensure_ascii=False).encode


def attributes_json(attributes: dict[str, Any]) -> str:
    """A span's audit attributes as JSON text (orjson: a sixth of json's time per span).

    NaN and infinities become null, as JSON has no such numbers. The rare span orjson refuses
    (a lone surrogate, which an OTLP/JSON escape can carry) takes json, which writes them as
    the NaN and Infinity it always wrote.
    """
    try:
        return orjson.dumps(attributes, default=str).decode()
    except orjson.JSONEncodeError:
        return _PLAIN_JSON(attributes)


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


def call_from_row(row: Any) -> Call:
    """A call read back from calls, as the pipeline priced it (for `breakeven reprice`)."""
    m = row._mapping
    return Call(
        start_ns=datetime_to_ns(m["start_time"]),
        end_ns=datetime_to_ns(m["end_time"]),
        member_span_ids=tuple(x for x in m["member_span_ids"].split(",") if x),
        **{name: m[name] for name in _CALL_ATTRS},
    )


def public_call(m: Any) -> dict[str, Any]:
    """A calls row as the API shows it: money as a decimal string (USD here; the API converts
    it and fills in a pool call's share, which is worked out when read)."""
    out = {name: m[name] for name in CALL_COLUMNS if name not in TIME_COLUMNS and name not in _RAW_MONEY}
    priced = m["price_status"] == PRICED and m["cost_usd"] is not None
    out["cost"] = decimal_text(m["cost_usd"]) if priced else None
    out["currency"] = USD
    out["priced"] = priced or m["price_status"] == POOL
    for name in TIME_COLUMNS:
        out[name] = iso_z(m[name])
    out["duration_ms"] = (m["end_time"] - m["start_time"]).total_seconds() * 1000.0
    out["member_span_ids"] = [s for s in m["member_span_ids"].split(",") if s]
    out["conventions"] = [s for s in m["conventions"].split(",") if s]
    return out


def decimal_text(amount: Decimal | None, places: int = 2) -> str | None:
    """A decimal as JSON shows it: a string, exact to 10 places, trailing zeros trimmed to
    `places` (2 for money, 0 for ratios and counts); never a float."""
    if amount is None:
        return None
    value = stored(amount)
    text = f"{abs(value) if value == 0 else value:f}"
    whole, _, fraction = text.partition(".")
    fraction = fraction.rstrip("0").ljust(places, "0")
    return f"{whole}.{fraction}" if fraction else whole
