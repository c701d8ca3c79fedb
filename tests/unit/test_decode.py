"""OTLP/JSON and protobuf decode to the same spans; bad ids, and spans past a limit, are rejected per span."""

from __future__ import annotations

import json

import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, ArrayValue, InstrumentationScope, KeyValue
from opentelemetry.proto.resource.v1.resource_pb2 import Resource
from opentelemetry.proto.trace.v1.trace_pb2 import ResourceSpans, ScopeSpans, Span

from breakeven.collector.config.settings import load_settings
from breakeven.collector.ingest.decode import Limits, decode_traces
from breakeven.collector.ingest.exports import limits_of
from breakeven.collector.ingest.parse import PayloadError, parse_traces
from breakeven.collector.records import DecodedSpan

SPAN_JSON = {
    "resourceSpans": [
        {
            "resource": {"attributes": [{"key": "service.name", "value": {"stringValue": "svc"}}]},
            "scopeSpans": [
                {
                    "scope": {"name": "s", "version": "1"},
                    "spans": [
                        {
                            "traceId": "5b8efff798038103d269b633813fc60c",
                            "spanId": "eee19b7ec3c1b174",
                            "parentSpanId": "",
                            "name": "chat",
                            "kind": 3,
                            "startTimeUnixNano": "1544712660000000000",
                            "endTimeUnixNano": "1544712661000000000",
                            "attributes": [
                                {"key": "gen_ai.usage.input_tokens", "value": {"intValue": "12"}},
                                {"key": "x.list", "value": {"arrayValue": {"values": [{"stringValue": "a"}]}}},
                                {"key": "x.bool", "value": {"boolValue": True}},
                                {"key": "x.double", "value": {"doubleValue": 1.5}},
                            ],
                            "status": {"code": 2, "message": "boom"},
                        }
                    ],
                }
            ],
        }
    ]
}


def test_otlp_json_hex_ids_and_int64_strings() -> None:
    request = parse_traces(json.dumps(SPAN_JSON).encode(), "application/json")
    out = decode_traces(request)
    (span,) = out.spans
    assert span.trace_id == "5b8efff798038103d269b633813fc60c"
    assert span.span_id == "eee19b7ec3c1b174"
    assert span.parent_span_id is None
    assert span.start_ns == 1544712660000000000
    assert span.attributes == {"gen_ai.usage.input_tokens": 12, "x.list": ["a"], "x.bool": True, "x.double": 1.5}
    assert span.resource == {"service.name": "svc"}
    assert (span.status_code, span.status_message) == (2, "boom")
    # The protobuf encoding of the same message decodes to the same span.
    again = decode_traces(parse_traces(request.SerializeToString(), "application/x-protobuf"))
    assert again.spans == out.spans


@pytest.mark.parametrize(
    ("patch", "reason"),
    [
        pytest.param({"traceId": ""}, "invalid_trace_id", id="missing trace id"),
        pytest.param({"traceId": "zz"}, "invalid_trace_id", id="trace id not hex"),
        pytest.param({"traceId": "0" * 32}, "invalid_trace_id", id="all-zero trace id"),
        pytest.param({"spanId": "abcd"}, "invalid_span_id", id="short span id"),
        pytest.param({"startTimeUnixNano": "0"}, "invalid_time", id="no start time"),
        pytest.param({"endTimeUnixNano": "1"}, "invalid_time", id="ends before it starts"),
    ],
)
def test_unusable_span_is_rejected_with_reason(patch: dict, reason: str) -> None:
    doc = json.loads(json.dumps(SPAN_JSON))
    doc["resourceSpans"][0]["scopeSpans"][0]["spans"][0].update(patch)
    out = decode_traces(parse_traces(json.dumps(doc).encode(), "application/json"))
    assert out.spans == []
    assert [r.reason for r in out.rejected] == [reason]


@pytest.mark.parametrize(
    ("body", "content_type"),
    [
        pytest.param(b"\xff\xff\xff", "application/x-protobuf", id="garbage protobuf"),
        pytest.param(b"{not json", "application/json", id="broken JSON"),
        pytest.param(b"[1,2]", "application/json", id="JSON but not an object"),
        pytest.param(b'{"resourceSpans": "nope"}', "application/json", id="JSON of the wrong shape"),
    ],
)
def test_unusable_body_raises_payload_error(body: bytes, content_type: str) -> None:
    with pytest.raises(PayloadError):
        parse_traces(body, content_type)


@pytest.mark.parametrize(
    "body",
    [
        pytest.param(
            b"[" * 100_000, id="arrays opened 100000 deep (json.loads raised RecursionError, found by fuzzing)"
        ),
        pytest.param(b'{"a":' * 100_000, id="objects opened 100000 deep"),
        pytest.param(b'{"resourceSpans": ' + b"1" * 5000 + b"}", id="a 5000-digit number (int() raised ValueError)"),
    ],
)
def test_hostile_json_is_a_payload_error(body: bytes) -> None:
    with pytest.raises(PayloadError):
        parse_traces(body, "application/json")


# ---------------------------------------------------------------- limits

LIMITS = Limits(attributes=8, value_bytes=64, events=3, array_items=4, read=frozenset({"gen_ai.request.model"}))


def _kv(key: str, value: object) -> KeyValue:
    if isinstance(value, AnyValue):
        return KeyValue(key=key, value=value)
    if isinstance(value, int):
        return KeyValue(key=key, value=AnyValue(int_value=value))
    return KeyValue(key=key, value=AnyValue(string_value=str(value)))


def _strings(*items: str) -> AnyValue:
    return AnyValue(array_value=ArrayValue(values=[AnyValue(string_value=s) for s in items]))


def _export(
    attrs: dict[str, object],
    *,
    resource: dict[str, object] | None = None,
    scope: str = "s",
    name: str = "chat",
    events: int = 0,
) -> ExportTraceServiceRequest:
    span = Span(
        trace_id=b"\x01" * 16,
        span_id=b"\x02" * 8,
        name=name,
        start_time_unix_nano=1,
        end_time_unix_nano=2,
        attributes=[_kv(k, v) for k, v in attrs.items()],
        events=[Span.Event(name=f"e{i}", time_unix_nano=1 + i) for i in range(events)],
    )
    return ExportTraceServiceRequest(
        resource_spans=[
            ResourceSpans(
                resource=Resource(attributes=[_kv(k, v) for k, v in (resource or {}).items()]),
                scope_spans=[ScopeSpans(scope=InstrumentationScope(name=scope), spans=[span])],
            )
        ]
    )


def _one(request: ExportTraceServiceRequest) -> DecodedSpan:
    out = decode_traces(request, LIMITS)
    assert not out.rejected, out.rejected
    (span,) = out.spans
    return span


PAST_A_LIMIT = [
    pytest.param(_export({f"a.{i}": i for i in range(9)}), "too_many_attributes", id="a span past max_attributes"),
    pytest.param(
        _export({}, resource={f"r.{i}": i for i in range(9)}), "too_many_attributes", id="its resource past it"
    ),
    pytest.param(
        _export({"gen_ai.request.model": "m" * 65}), "attribute_too_long", id="a value the ledger reads, too long"
    ),
    pytest.param(
        _export({"gen_ai.request.model": "é" * 33}),
        "attribute_too_long",
        id="counted in UTF-8 bytes, not characters",
    ),
    pytest.param(
        _export({"breakeven.team": "t" * 65}), "attribute_too_long", id="breakeven.* is read whatever its name"
    ),
    pytest.param(
        _export({"gen_ai.request.model": _strings(*"abcde")}),
        "attribute_too_long",
        id="an array the ledger reads, past max_array_items",
    ),
    pytest.param(_export({}, name="n" * 65), "attribute_too_long", id="span name (stored, and read)"),
    pytest.param(_export({}, scope="s" * 65), "attribute_too_long", id="scope name (the emitter)"),
]


@pytest.mark.parametrize(("request_", "reason"), PAST_A_LIMIT)
def test_past_a_limit_the_span_is_rejected_with_a_reason(request_: ExportTraceServiceRequest, reason: str) -> None:
    out = decode_traces(request_, LIMITS)
    assert out.spans == []
    assert [r.reason for r in out.rejected] == [reason]
    assert len(out.rejected[0].detail) < 200


AUDIT_ONLY = _export(
    {
        "gen_ai.request.model": "m" * 64,  # read, at the limit: kept
        "http.user_agent": "u" * 100,  # audit only: cut to 64 bytes
        "x.accents": "é" * 40,  # cut on a character boundary
        "x.list": _strings("a" * 100, "b", "c", "d", "e", "f"),  # 4 items, each cut
        "gen_ai.input.messages": "p" * 1000,  # content: hashed, then dropped, so kept whole here
        "x.bytes": AnyValue(bytes_value=b"\xff" * 40),  # hex: 80 characters, cut to 64
    }
)
MANY_EVENTS = _export({}, events=10)
WITHIN_THE_LIMITS = _export({f"a.{i}": "v" * 16 for i in range(8)})


def test_audit_only_values_are_cut_content_is_kept_whole() -> None:
    attrs = _one(AUDIT_ONLY).attributes
    assert attrs["gen_ai.request.model"] == "m" * 64
    assert attrs["http.user_agent"] == "u" * 64
    assert attrs["x.accents"] == "é" * 32
    assert attrs["x.list"] == ["a" * 64, "b", "c", "d"]
    assert attrs["gen_ai.input.messages"] == "p" * 1000
    assert attrs["x.bytes"] == "ff" * 32


def test_events_past_the_limit_are_dropped_keeping_the_first() -> None:
    span = _one(MANY_EVENTS)
    assert [e.name for e in span.events] == ["e0", "e1", "e2"]


def test_within_the_limits_nothing_changes() -> None:
    assert _one(WITHIN_THE_LIMITS).attributes == {f"a.{i}": "v" * 16 for i in range(8)}


def test_the_settings_name_the_limits_and_the_attributes_the_ledger_reads() -> None:
    settings = load_settings({}, environ={})
    settings = type(settings)(**{**settings.__dict__, "attributes": {"team": ("app.team",)}})
    limits = limits_of(settings)
    assert (limits.attributes, limits.value_bytes, limits.events, limits.array_items) == (256, 16384, 128, 256)
    assert {"app.team", "gen_ai.request.model", "gen_ai.usage.input_tokens", "service.name"} <= limits.read
    assert "llm.invocation_parameters" not in limits.read  # cut like any audit value (see conventions.READ)
    assert limits_of(settings) is limits
