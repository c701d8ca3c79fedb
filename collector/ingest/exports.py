"""One hand-off for every receiver: OTLP request -> Work for the pipeline.

HTTP (protobuf and JSON) and gRPC call these with the body (traces) or the parsed
request (logs, metrics), so what counts as a call, a drop or a reject is decided in one
place.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import ExportMetricsServiceRequest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from breakeven.collector.auth import ANYONE, Sender
from breakeven.collector.config.settings import Settings
from breakeven.collector.ingest.decode import (
    DecodedTraces,
    Limits,
    check_span_count,
    count_data_points,
    count_log_records,
    decode_logs,
    decode_trace_body,
    decode_traces,
)
from breakeven.collector.ingest.decode import TooLarge as TooLarge  # raised here too; receivers catch ingest.TooLarge
from breakeven.collector.normalize import normalize_span
from breakeven.collector.normalize.plan import read_attribute_names
from breakeven.collector.normalize.redact import hash_messages, messages_from_log
from breakeven.collector.records import PromptHashHint, Rejection, Work

MAX_DETAIL_CHARS = 300  # a rejection's detail quotes what was sent; the answer stays short
_LIMITS: dict[int, tuple[Settings, Limits]] = {}


def limits_of(settings: Settings) -> Limits:
    """The decoder's per-span limits for these settings (worked out once per Settings)."""
    cached = _LIMITS.get(id(settings))
    if cached is not None and cached[0] is settings:
        return cached[1]
    limits = Limits(
        attributes=settings.max_attributes_per_span,
        value_bytes=settings.max_attribute_value_bytes,
        events=settings.max_events_per_span,
        array_items=settings.max_array_items,
        read=read_attribute_names(settings),
    )
    if len(_LIMITS) > 100:  # tests make many Settings; a server makes one
        _LIMITS.clear()
    _LIMITS[id(settings)] = (settings, limits)
    return limits


@dataclass(slots=True)
class Outcome:
    """What the receiver needs to answer: the work, and what was refused and why."""

    work: Work
    rejected: int = 0
    reasons: Counter[str] = field(default_factory=Counter)
    first_detail: str = ""

    def message(self) -> str:
        """The OTLP partial-success message, empty when nothing was refused."""
        if not self.rejected:
            return ""
        reasons = ", ".join(f"{n} {r}" for r, n in sorted(self.reasons.items()))
        return f"{self.rejected} span(s) rejected ({reasons}); first: {self.first_detail}"


def _reject(outcome: Outcome, rejection: Rejection) -> None:
    outcome.rejected += 1
    outcome.reasons[rejection.reason] += 1
    if not outcome.first_detail:
        outcome.first_detail = (rejection.detail or rejection.reason)[:MAX_DETAIL_CHARS]


def traces_outcome(request: ExportTraceServiceRequest, settings: Settings, sender: Sender = ANYONE) -> Outcome:
    """Decode, redact and normalize a parsed trace export (see body_traces_outcome)."""
    check_span_count(request, settings.max_spans_per_request)
    return _traces_outcome(decode_traces(request, limits_of(settings)), settings, sender)


def body_traces_outcome(body: bytes, content_type: str, settings: Settings, sender: Sender = ANYONE) -> Outcome:
    """Decode, redact and normalize a trace export body; keep LLM calls, count the rest.

    Raises PayloadError for an unusable body, TooLarge past max_spans_per_request. A
    sender bound to services (an ingest token's `services`) has spans of any other
    service.name refused: reason `service_not_allowed`.
    """
    decoded = decode_trace_body(
        body, content_type, limits_of(settings), settings.max_spans_per_request, native=settings.native_decode
    )
    return _traces_outcome(decoded, settings, sender)


def _traces_outcome(decoded: DecodedTraces, settings: Settings, sender: Sender) -> Outcome:
    total = len(decoded.spans) + len(decoded.rejected)  # every span is kept or rejected
    outcome = Outcome(Work())
    for rejection in decoded.rejected:
        _reject(outcome, rejection)
    dropped = 0
    for span in decoded.spans:
        if sender.services and not sender.may_send_as(_service_of(span.resource)):
            _reject(outcome, Rejection("service_not_allowed", _not_allowed(sender, span.resource)))
            continue
        result = normalize_span(span, settings)
        if result is None:
            dropped += 1
        elif isinstance(result, Rejection):
            _reject(outcome, result)
        else:
            outcome.work.spans.append(result)
    counters = outcome.work.counters
    counters[("spans_received", "")] = total
    if dropped:
        counters[("non_llm_dropped", "")] = dropped
    for reason, n in outcome.reasons.items():
        counters[("rejected", reason)] = n
    return outcome


def _service_of(resource: Mapping[str, Any]) -> str | None:
    value = resource.get("service.name")
    return None if value is None else str(value)


def _not_allowed(sender: Sender, resource: Mapping[str, Any]) -> str:
    return f"ingest token {sender.name!r} may not send spans of service {_service_of(resource)!r}"


def logs_outcome(request: ExportLogsServiceRequest, sender: Sender = ANYONE) -> Outcome:
    """Log records: GenAI content events become prompt-hash hints; the text goes nowhere.

    Records of a service the sender may not speak for are skipped (their hints could
    otherwise mark another team's calls).
    """
    outcome = Outcome(Work())
    hints: list[PromptHashHint] = []
    by_span: dict[tuple[str, str], list[list[str]]] = {}
    times: dict[tuple[str, str], int] = {}
    for record in decode_logs(request):
        if record.trace_id is None or record.span_id is None:
            continue
        if sender.services and not sender.may_send_as(_service_of(record.resource)):
            continue
        messages = messages_from_log(record.event_name, record.body, record.attributes)
        if messages:
            key = (record.trace_id, record.span_id)
            by_span.setdefault(key, []).extend(messages)
            times[key] = times.get(key) or record.time_ns
    for (trace_id, span_id), messages in by_span.items():
        hints.append(PromptHashHint(trace_id, span_id, hash_messages(messages), times[(trace_id, span_id)]))
    outcome.work.hints = hints
    outcome.work.counters[("log_records_received", "")] = count_log_records(request)
    if hints:
        outcome.work.counters[("prompt_hashes_from_logs", "")] = len(hints)
    return outcome


def metrics_outcome(request: ExportMetricsServiceRequest) -> Outcome:
    """Metrics are accepted and counted; GPU utilization will be read from them later."""
    outcome = Outcome(Work())
    outcome.work.counters[("metric_points_received", "")] = count_data_points(request)
    return outcome
