"""OTLP/JSON and protobuf decode to the same spans; bad ids are rejected per span."""

from __future__ import annotations

import json

import pytest

from collector.decode import PayloadError, decode_traces, parse_traces

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
