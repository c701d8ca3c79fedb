"""OTLP protobuf and OTLP/JSON -> decoded spans, log hints and metric counts.

OTLP/JSON is turned into the protobuf message first (parse.py), so the resource -> scope
-> span loop exists once and gRPC, HTTP protobuf and HTTP JSON share it.

Trace export bodies enter through decode_trace_body. Plain protobuf goes to the native
decoder (collector/ingest/_otlp.c, an optional C extension) when it is built: it reads the wire
format straight into the same DecodedSpans, and declines anything unusual (malformed,
past a limit, fields it does not know), which then takes the upb walk below. That walk is
the reference; tests/unit/test_native_decode.py holds the two to the same answers.

Hostile input is bounded here, before dicts are built (Limits; docs/operations.md, hostile input):
a span with too many attributes, or a value the ledger reads past the length limit, is
rejected; an audit-only value past a limit is cut, as the OTel SDK cuts; content (prompt
and completion text) is kept whole, since it is only hashed and then dropped.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, fields
from typing import Any

from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (
    ExportMetricsServiceRequest,
)
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue

from breakeven.collector.ingest.parse import parse_traces
from breakeven.collector.normalize.redact import is_content
from breakeven.collector.records import Attributes, DecodedSpan, Rejection, SpanEvent

_ZERO_TRACE = b"\x00" * 16
_ZERO_SPAN = b"\x00" * 8


class TooLarge(ValueError):
    """The export carries more items than a setting allows (answered 413)."""


@dataclass(frozen=True, slots=True)
class Limits:
    """What one span may carry; the defaults are the settings' defaults."""

    attributes: int = 256  # keys on a span, its resource or one of its events; more rejects the span
    value_bytes: int = 16 * 1024  # UTF-8 bytes of one string (bytes: hex) value; see _long_text
    events: int = 128  # events kept per span, the first ones (first token, prompt, exception)
    array_items: int = 256  # items kept per array or kvlist value, at each level
    # Attribute names the ledger reads (models, token counts, who): their values are never
    # cut, as a cut model name would misprice; past a limit the span is rejected instead.
    read: frozenset[str] = frozenset()
    read_prefixes: tuple[str, ...] = ("breakeven.",)

    def is_read(self, key: str) -> bool:
        """Whether the ledger reads this attribute (so it may not be cut)."""
        return key in self.read or key.startswith(self.read_prefixes)


DEFAULT_LIMITS = Limits()


class _Refused(Exception):
    """A value past a limit that cannot be cut: the span (or its whole resource or scope) is rejected."""

    def __init__(self, reason: str, what: str) -> None:
        super().__init__(what)
        self.reason = reason
        self.what = what


@dataclass(slots=True)
class DecodedTraces:
    """What one trace export decoded to."""

    spans: list[DecodedSpan] = field(default_factory=list)
    rejected: list[Rejection] = field(default_factory=list)


@dataclass(slots=True)
class DecodedLogRecord:
    """A log record that names a span: what GenAI content events look like as logs."""

    trace_id: str | None
    span_id: str | None
    time_ns: int
    event_name: str
    body: Any
    attributes: Attributes
    resource: Attributes


# ---------------------------------------------------------------- parsing


def any_value(value: AnyValue) -> Any:
    """An OTLP AnyValue as a plain Python value (bytes as hex)."""
    kind = value.WhichOneof("value")
    if kind == "string_value":
        return value.string_value
    if kind == "int_value":
        return value.int_value
    if kind == "bool_value":
        return value.bool_value
    if kind == "double_value":
        return value.double_value
    if kind == "array_value":
        return [any_value(v) for v in value.array_value.values]
    if kind == "kvlist_value":
        return attributes(value.kvlist_value.values)
    if kind == "bytes_value":
        return value.bytes_value.hex()
    return None


def attributes(pairs: Iterable[KeyValue]) -> Attributes:
    """OTLP key-values as a dict; the last of repeated keys wins.

    The hot loop of ingest: strings and ints, most attributes, are read inline.
    """
    out: Attributes = {}
    for kv in pairs:
        value = kv.value
        kind = value.WhichOneof("value")
        if kind == "string_value":
            out[kv.key] = value.string_value
        elif kind == "int_value":
            out[kv.key] = value.int_value
        else:
            out[kv.key] = any_value(value)
    return out


# ---------------------------------------------------------------- limits


def _limited_attributes(pairs: Any, limits: Limits) -> Attributes:
    """attributes() within limits: a value past one is cut, or _Refused is raised.

    The hot loop of ingest: a normal span pays one length test per string, nothing more.
    """
    if len(pairs) > limits.attributes:
        raise _Refused(
            "too_many_attributes", f"{len(pairs)} attributes (max_attributes_per_span is {limits.attributes})"
        )
    short = limits.value_bytes // 4  # a string of at most this many characters fits in any UTF-8 encoding
    out: Attributes = {}
    for kv in pairs:
        value = kv.value
        kind = value.WhichOneof("value")
        if kind == "string_value":
            text = value.string_value
            out[kv.key] = text if len(text) <= short else _long_text(kv.key, text, limits)
        elif kind == "int_value":
            out[kv.key] = value.int_value
        elif kind == "double_value":
            out[kv.key] = value.double_value
        elif kind == "bool_value":
            out[kv.key] = value.bool_value
        elif kind is None:
            out[kv.key] = None
        else:  # arrays, kvlists, bytes
            key = kv.key
            # Content is read whole for the prompt hash and dropped before anything is stored.
            out[key] = any_value(value) if is_content(key) else _bounded(key, value, limits)
    return out


def _long_text(key: str, text: str, limits: Limits) -> str:
    """A string that may be past the byte limit, as the ledger may keep it.

    Content is kept (hashed, then dropped); a value the ledger reads rejects the span;
    anything else is audit-only and is cut, as the OTel SDK's attribute value length
    limit cuts.
    """
    if is_content(key):
        return text
    encoded = text.encode("utf-8", "surrogatepass")
    if len(encoded) <= limits.value_bytes:
        return text
    if limits.is_read(key):
        raise _Refused(
            "attribute_too_long",
            f"attribute {_shown(key)} is {len(encoded)} bytes (max_attribute_value_bytes is {limits.value_bytes})",
        )
    return encoded[: limits.value_bytes].decode("utf-8", "ignore")


def _bounded(key: str, value: AnyValue, limits: Limits) -> Any:
    """any_value() of a non-content attribute, each string, array and kvlist within limits."""
    kind = value.WhichOneof("value")
    if kind == "string_value":
        text = value.string_value
        return text if len(text) <= limits.value_bytes // 4 else _long_text(key, text, limits)
    if kind == "array_value":
        return [_bounded(key, v, limits) for v in _items(key, value.array_value.values, limits)]
    if kind == "kvlist_value":
        return {
            _long_text("", kv.key, limits): _bounded(key, kv.value, limits)
            for kv in _items(key, value.kvlist_value.values, limits)
        }
    if kind == "bytes_value":
        return _long_text(key, value.bytes_value.hex(), limits)
    return any_value(value)


def _items(key: str, items: Any, limits: Limits) -> Any:
    if len(items) <= limits.array_items:
        return items
    if limits.is_read(key):
        raise _Refused(
            "attribute_too_long",
            f"attribute {_shown(key)} holds {len(items)} items (max_array_items is {limits.array_items})",
        )
    return items[: limits.array_items]


def _name_problem(what: str, name: str, limits: Limits) -> str | None:
    """Why a span or scope name (stored, and read) is unusable, or None."""
    if len(name) <= limits.value_bytes // 4:
        return None
    size = len(name.encode("utf-8", "surrogatepass"))
    if size <= limits.value_bytes:
        return None
    return f"{what} is {size} bytes (max_attribute_value_bytes is {limits.value_bytes})"


def _shown(text: str) -> str:
    """A name as a rejection message quotes it: short, whatever the sender sent."""
    return repr(text) if len(text) <= 64 else repr(text[:64]) + "..."


# ---------------------------------------------------------------- spans


def decode_traces(request: ExportTraceServiceRequest, limits: Limits = DEFAULT_LIMITS) -> DecodedTraces:
    """Walk resource -> scope -> span once, keeping good spans and naming the bad."""
    out = DecodedTraces()
    for rs in request.resource_spans:
        resource: Attributes = {}
        refused: Rejection | None = None
        try:
            resource = _limited_attributes(rs.resource.attributes, limits)
        except _Refused as exc:
            refused = Rejection(exc.reason, f"resource: {exc.what}")
        for ss in rs.scope_spans:
            scope_name = ss.scope.name
            scope_version = ss.scope.version
            problem = _name_problem("scope name", scope_name, limits) or _name_problem(
                "scope version", scope_version, limits
            )
            scope_refused = refused or (Rejection("attribute_too_long", problem) if problem else None)
            for sp in ss.spans:
                name = sp.name
                rejection = scope_refused or _span_problem(sp, name, limits)
                if rejection is None:
                    try:
                        out.spans.append(_decoded(sp, name, resource, scope_name, scope_version, limits))
                        continue
                    except _Refused as exc:
                        rejection = Rejection(exc.reason, f"span {_shown(name)}: {exc.what}")
                out.rejected.append(rejection)
    return out


def _decoded(
    sp: Any, name: str, resource: Attributes, scope_name: str, scope_version: str, limits: Limits
) -> DecodedSpan:
    parent = sp.parent_span_id
    events = sp.events
    if len(events) > limits.events:
        events = events[: limits.events]
    return DecodedSpan(
        trace_id=sp.trace_id.hex(),
        span_id=sp.span_id.hex(),
        parent_span_id=parent.hex() if len(parent) == 8 and parent != _ZERO_SPAN else None,
        name=name,
        kind=sp.kind,
        start_ns=sp.start_time_unix_nano,
        end_ns=sp.end_time_unix_nano,
        attributes=_limited_attributes(sp.attributes, limits),
        events=[SpanEvent(ev.name, ev.time_unix_nano, _limited_attributes(ev.attributes, limits)) for ev in events]
        if events
        else [],
        status_code=sp.status.code,
        status_message=sp.status.message,
        resource=resource,
        scope_name=scope_name,
        scope_version=scope_version,
    )


def _span_problem(sp: Any, name: str, limits: Limits) -> Rejection | None:
    if len(sp.trace_id) != 16 or sp.trace_id == _ZERO_TRACE:
        return Rejection("invalid_trace_id", f"span {_shown(name)}: trace id must be 16 non-zero bytes")
    if len(sp.span_id) != 8 or sp.span_id == _ZERO_SPAN:
        return Rejection("invalid_span_id", f"span {_shown(name)}: span id must be 8 non-zero bytes")
    if sp.start_time_unix_nano == 0 or sp.end_time_unix_nano < sp.start_time_unix_nano:
        return Rejection("invalid_time", f"span {_shown(name)}: start must be set and not after end")
    problem = _name_problem("span name", name, limits)
    if problem is not None:
        return Rejection("attribute_too_long", f"span {_shown(name)}: {problem}")
    return None


def count_spans(request: ExportTraceServiceRequest) -> int:
    """How many spans a trace export carries."""
    return sum(len(ss.spans) for rs in request.resource_spans for ss in rs.scope_spans)


def check_span_count(request: ExportTraceServiceRequest, max_spans: int) -> None:
    """Raise TooLarge when the export carries more than max_spans spans."""
    total = count_spans(request)
    if total > max_spans:
        raise TooLarge(f"export carries {total} spans; max_spans_per_request is {max_spans}")


# ---------------------------------------------------------------- bodies, natively when possible

PROTOBUF = "application/x-protobuf"
NativeDecoder = Callable[..., tuple[list[DecodedSpan], list[Rejection]] | None]


def _native_decoder() -> NativeDecoder | None:
    """The native decoder (collector/ingest/_otlp.c) set up for the records, or None where it was not built."""
    try:
        from breakeven.collector.ingest import _otlp
    except ImportError:  # no compiler at install time: the upb path does all the work
        return None
    try:
        _otlp.setup(
            DecodedSpan,
            tuple(f.name for f in fields(DecodedSpan)),
            SpanEvent,
            tuple(f.name for f in fields(SpanEvent)),
            Rejection,
        )
    except TypeError:  # the records changed shape and the extension was not rebuilt to fit
        return None
    return _otlp.decode_traces


_NATIVE = _native_decoder()


def native_available() -> bool:
    """Whether the native decoder was built and fits the records (else every body takes upb)."""
    return _NATIVE is not None


def native_traces(body: bytes, limits: Limits = DEFAULT_LIMITS, max_spans: int = sys.maxsize) -> DecodedTraces | None:
    """An OTLP protobuf trace export decoded natively, or None where the native decoder declines.

    It declines bodies that are anything but plain and well-formed, and values at a limit
    decode_traces would cut or refuse (see collector/ingest/_otlp.c); when it answers, the answer
    is decode_traces'.
    """
    if _NATIVE is None:
        return None
    # Past sys.maxsize a limit cannot be reached: clamped, as the C side takes machine integers.
    sizes = [min(n, sys.maxsize) for n in (limits.attributes, limits.value_bytes, limits.events, limits.array_items)]
    out = _NATIVE(body, *sizes, min(max_spans, sys.maxsize), is_content)
    return None if out is None else DecodedTraces(out[0], out[1])


def decode_trace_body(
    body: bytes,
    content_type: str,
    limits: Limits = DEFAULT_LIMITS,
    max_spans: int = sys.maxsize,
    *,
    native: bool = True,
) -> DecodedTraces:
    """A trace export body as decoded spans: natively when it can (and native), else through upb.

    Raises PayloadError for an unusable body, TooLarge past max_spans.
    """
    if native and content_type == PROTOBUF:
        decoded = native_traces(body, limits, max_spans)
        if decoded is not None:
            return decoded
    request = parse_traces(body, content_type)
    check_span_count(request, max_spans)
    return decode_traces(request, limits)


# ---------------------------------------------------------------- logs and metrics


def decode_logs(request: ExportLogsServiceRequest) -> list[DecodedLogRecord]:
    """Log records as plain values, keeping only what GenAI content detection needs."""
    records: list[DecodedLogRecord] = []
    for rl in request.resource_logs:
        resource = attributes(rl.resource.attributes)
        for sl in rl.scope_logs:
            for rec in sl.log_records:
                attrs = attributes(rec.attributes)
                event_name = getattr(rec, "event_name", "") or str(attrs.get("event.name", ""))
                records.append(
                    DecodedLogRecord(
                        trace_id=rec.trace_id.hex() if len(rec.trace_id) == 16 else None,
                        span_id=rec.span_id.hex() if len(rec.span_id) == 8 else None,
                        time_ns=rec.time_unix_nano or rec.observed_time_unix_nano,
                        event_name=event_name,
                        body=any_value(rec.body),
                        attributes=attrs,
                        resource=resource,
                    )
                )
    return records


def count_log_records(request: ExportLogsServiceRequest) -> int:
    """How many log records a logs export carries."""
    return sum(len(sl.log_records) for rl in request.resource_logs for sl in rl.scope_logs)


def count_data_points(request: ExportMetricsServiceRequest) -> int:
    """How many data points a metrics export carries (metrics are accepted, not yet stored)."""
    total = 0
    for rm in request.resource_metrics:
        for sm in rm.scope_metrics:
            for metric in sm.metrics:
                kind = metric.WhichOneof("data")
                if kind is not None:
                    total += len(getattr(metric, kind).data_points)
    return total
