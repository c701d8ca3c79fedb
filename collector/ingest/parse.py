"""OTLP export bodies -> protobuf messages: binary protobuf as it is, OTLP/JSON through the
protobuf library's JSON mapping with its hex ids rewritten to the proto3 JSON base64 form.

An unusable body is a PayloadError naming what is wrong; the receivers answer it 400
(gRPC INVALID_ARGUMENT).
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Callable, Iterable
from typing import Any, TypeVar

from google.protobuf import json_format
from google.protobuf.message import DecodeError, Message
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import ExportMetricsServiceRequest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

M = TypeVar("M", bound=Message)  # an OTLP export message type


class PayloadError(ValueError):
    """The whole request body is unusable; the message says why (sent back as 400)."""


def parse_traces(body: bytes, content_type: str) -> ExportTraceServiceRequest:
    """Parse a trace export body of the given content type into the protobuf message."""
    return _parse(ExportTraceServiceRequest, body, content_type, _hexify_trace_json)


def parse_logs(body: bytes, content_type: str) -> ExportLogsServiceRequest:
    """Parse a logs export body into the protobuf message."""
    return _parse(ExportLogsServiceRequest, body, content_type, _hexify_logs_json)


def parse_metrics(body: bytes, content_type: str) -> ExportMetricsServiceRequest:
    """Parse a metrics export body into the protobuf message."""
    return _parse(ExportMetricsServiceRequest, body, content_type, lambda doc: None)


def _parse(message_type: type[M], body: bytes, content_type: str, fix_ids: Callable[[dict[str, Any]], None]) -> M:
    if content_type == "application/x-protobuf":
        try:
            return message_type.FromString(body)
        except (DecodeError, RuntimeError, ValueError) as exc:
            raise PayloadError(f"body is not a valid OTLP protobuf message: {exc}") from None
    try:
        doc = json.loads(body)
    except (ValueError, RecursionError) as exc:  # bad UTF-8 or JSON, a 5000-digit number, [[[[...
        raise PayloadError(f"body is not valid JSON: {exc}") from None
    if not isinstance(doc, dict):
        raise PayloadError("body is not an OTLP/JSON object")
    fix_ids(doc)
    try:
        return json_format.ParseDict(doc, message_type(), ignore_unknown_fields=True)
    except (json_format.ParseError, ValueError, TypeError, RecursionError) as exc:
        raise PayloadError(f"body is not valid OTLP/JSON: {exc}") from None


def _hex_to_b64(value: Any) -> Any:
    """OTLP/JSON ids are hex; proto3 JSON bytes are base64. Bad hex becomes empty (rejected later)."""
    if not isinstance(value, str):
        return value
    try:
        raw = binascii.unhexlify(value)
    except (binascii.Error, ValueError):
        raw = b""
    return base64.b64encode(raw).decode("ascii")


def _fix_keys(obj: Any, keys: tuple[str, ...]) -> None:
    if isinstance(obj, dict):
        for key in keys:
            if key in obj:
                obj[key] = _hex_to_b64(obj[key])


def _children(obj: Any, *names: str) -> Iterable[Any]:
    if not isinstance(obj, dict):
        return ()
    for name in names:
        value = obj.get(name)
        if isinstance(value, list):
            return value
    return ()


_ID_KEYS = ("traceId", "spanId", "parentSpanId", "trace_id", "span_id", "parent_span_id")


def _hexify_trace_json(doc: dict[str, Any]) -> None:
    for rs in _children(doc, "resourceSpans", "resource_spans"):
        for ss in _children(rs, "scopeSpans", "scope_spans"):
            for span in _children(ss, "spans"):
                _fix_keys(span, _ID_KEYS)
                for link in _children(span, "links"):
                    _fix_keys(link, _ID_KEYS)


def _hexify_logs_json(doc: dict[str, Any]) -> None:
    for rl in _children(doc, "resourceLogs", "resource_logs"):
        for sl in _children(rl, "scopeLogs", "scope_logs"):
            for record in _children(sl, "logRecords", "log_records"):
                _fix_keys(record, _ID_KEYS)


# ---------------------------------------------------------------- values
