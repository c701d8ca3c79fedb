"""Real OTel SDK exporters over HTTP (protobuf, gzip) and gRPC; OTLP/JSON; answers per the spec."""

from __future__ import annotations

import gzip
import json
import uuid
import zlib

import grpc
import httpx
import pytest
from google.rpc import status_pb2
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)

from tests.conftest import RunningCollector
from tests.otel import chat_attributes, tracer

PROTOBUF = {"Content-Type": "application/x-protobuf"}


@pytest.mark.parametrize(
    ("protocol", "gzip_on"),
    [
        pytest.param("http", False, id="http protobuf"),
        pytest.param("http", True, id="http protobuf gzip"),
        pytest.param("grpc", False, id="grpc"),
    ],
)
def test_sdk_exporter_spans_are_stored_before_the_answer(
    shared_collector: RunningCollector, protocol: str, gzip_on: bool
) -> None:
    service = f"svc-{uuid.uuid4().hex[:8]}"
    endpoint = shared_collector.otlp_http if protocol == "http" else shared_collector.otlp_grpc
    with tracer(endpoint, service, protocol=protocol, gzip=gzip_on) as t:
        with t.start_as_current_span(
            "chat gpt-4o", attributes=chat_attributes(**{"gen_ai.usage.cache_read.input_tokens": 1000})
        ):
            with t.start_as_current_span("HTTP POST"):
                pass
        # SimpleSpanProcessor exported synchronously and the 200 means committed: no waiting.
        (call,) = shared_collector.calls(service=service)
    assert call["input_tokens"] == 200
    assert call["cache_read_tokens"] == 1000
    assert call["output_tokens"] == 300
    assert call["backend_class"] == "frontier"
    assert call["provider"] == "openai"
    assert call["response_model"] == "gpt-4o-2024-08-06"


def _json_export(trace_id: str, span_id: str, attrs: dict) -> bytes:
    kv = [
        {"key": k, "value": {"intValue": str(v)} if isinstance(v, int) else {"stringValue": v}}
        for k, v in attrs.items()
    ]
    doc = {
        "resourceSpans": [
            {
                "resource": {"attributes": [{"key": "service.name", "value": {"stringValue": "json-svc"}}]},
                "scopeSpans": [
                    {
                        "scope": {"name": "manual"},
                        "spans": [
                            {
                                "traceId": trace_id,
                                "spanId": span_id,
                                "name": "chat",
                                "kind": 3,
                                "startTimeUnixNano": "1790000000000000000",
                                "endTimeUnixNano": "1790000001000000000",
                                "attributes": kv,
                            }
                        ],
                    }
                ],
            }
        ]
    }
    return json.dumps(doc).encode()


def test_otlp_json_with_hex_ids_and_string_int64(shared_collector: RunningCollector) -> None:
    trace_id = uuid.uuid4().hex
    body = _json_export(trace_id, "00f067aa0ba902b7", chat_attributes())
    reply = httpx.post(
        f"{shared_collector.otlp_http}/v1/traces", content=body, headers={"Content-Type": "application/json"}
    )
    assert reply.status_code == 200
    assert reply.headers["content-type"].startswith("application/json")
    assert reply.json() == {}
    (call,) = shared_collector.calls(trace_id=trace_id)
    assert call["span_id"] == "00f067aa0ba902b7"
    assert call["start_time"].startswith("2026-09-21")


@pytest.mark.parametrize("encoding", ["gzip", "deflate"])
def test_compressed_json(shared_collector: RunningCollector, encoding: str) -> None:
    trace_id = uuid.uuid4().hex
    body = _json_export(trace_id, "00f067aa0ba902b7", chat_attributes())
    packed = gzip.compress(body) if encoding == "gzip" else zlib.compress(body)
    reply = httpx.post(
        f"{shared_collector.otlp_http}/v1/traces",
        content=packed,
        headers={"Content-Type": "application/json", "Content-Encoding": encoding},
    )
    assert reply.status_code == 200, reply.text
    assert len(shared_collector.calls(trace_id=trace_id)) == 1


def test_partial_success_names_the_rejected_spans(shared_collector: RunningCollector) -> None:
    good = uuid.uuid4().hex
    doc = json.loads(_json_export(good, "00f067aa0ba902b7", chat_attributes()))
    spans = doc["resourceSpans"][0]["scopeSpans"][0]["spans"]
    spans.append({**spans[0], "traceId": "", "spanId": "1111111111111111"})
    spans.append(
        {
            **spans[0],
            "spanId": "2222222222222222",
            "attributes": [
                {"key": "gen_ai.provider.name", "value": {"stringValue": "openai"}},
                {"key": "gen_ai.usage.input_tokens", "value": {"intValue": "-5"}},
            ],
        }
    )
    reply = httpx.post(
        f"{shared_collector.otlp_http}/v1/traces", content=json.dumps(doc), headers={"Content-Type": "application/json"}
    )
    assert reply.status_code == 200
    partial = reply.json()["partialSuccess"]
    assert partial["rejectedSpans"] == "2"
    assert "invalid_trace_id" in partial["errorMessage"]
    assert "invalid_tokens" in partial["errorMessage"]
    assert len(shared_collector.calls(trace_id=good)) == 1
    counters = shared_collector.ingest()
    assert counters["rejected"]["invalid_trace_id"] >= 1
    assert counters["rejected"]["invalid_tokens"] >= 1


BAD_REQUESTS = [
    pytest.param(b"\x0a\xff\xff", PROTOBUF, 400, "protobuf", id="malformed protobuf"),
    pytest.param(b"{nope", {"Content-Type": "application/json"}, 400, "JSON", id="malformed JSON"),
    pytest.param(b"{}", {"Content-Type": "text/plain"}, 415, "content type", id="wrong content type"),
    pytest.param(b"{}", {}, 415, "content type", id="no content type"),
    pytest.param(b"not gzip", {**PROTOBUF, "Content-Encoding": "gzip"}, 400, "gzip", id="bad gzip"),
    pytest.param(b"x", {**PROTOBUF, "Content-Encoding": "br"}, 415, "encoding", id="unsupported encoding"),
]


@pytest.mark.parametrize(("body", "headers", "status", "words"), BAD_REQUESTS)
def test_bad_input_gets_a_clear_4xx_and_the_server_keeps_serving(
    shared_collector: RunningCollector, body: bytes, headers: dict, status: int, words: str
) -> None:
    reply = httpx.post(f"{shared_collector.otlp_http}/v1/traces", content=body, headers=headers)
    assert reply.status_code == status
    if reply.headers["content-type"].startswith("application/json"):
        message = reply.json()["message"]
    else:
        message = status_pb2.Status.FromString(reply.content).message
    assert words in message
    ok = httpx.post(
        f"{shared_collector.otlp_http}/v1/traces",
        content=ExportTraceServiceRequest().SerializeToString(),
        headers=PROTOBUF,
    )
    assert ok.status_code == 200
    ExportTraceServiceResponse.FromString(ok.content)


@pytest.mark.parametrize(
    "body",
    [
        pytest.param(b"\xff\xff\xff", id="garbage"),
        pytest.param(ExportTraceServiceRequest(resource_spans=[{}]).SerializeToString()[:-1], id="truncated"),
    ],
)
def test_a_bad_grpc_payload_gets_invalid_argument(shared_collector: RunningCollector, body: bytes) -> None:
    with grpc.insecure_channel(shared_collector.otlp_grpc) as channel:
        export = channel.unary_unary("/opentelemetry.proto.collector.trace.v1.TraceService/Export")
        with pytest.raises(grpc.RpcError) as raised:
            export(body, timeout=30)
        assert raised.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert "not a valid OTLP protobuf message" in (raised.value.details() or "")
        reply = ExportTraceServiceResponse.FromString(
            export(ExportTraceServiceRequest().SerializeToString(), timeout=30)
        )
        assert not reply.HasField("partial_success")


def test_oversized_body_and_decompression_bomb_get_413(tmp_path) -> None:
    from tests.conftest import start_collector

    running = start_collector(tmp_path, max_body_bytes=64 * 1024, max_decompressed_bytes=256 * 1024)
    try:
        url = f"{running.otlp_http}/v1/traces"
        big = httpx.post(url, content=b"\0" * (65 * 1024), headers=PROTOBUF)
        assert big.status_code == 413
        assert b"max_body_bytes" in big.content
        bomb = gzip.compress(b"\0" * (50 * 1024 * 1024))  # 50 MiB of zeros in ~50 KiB
        assert len(bomb) < 64 * 1024
        reply = httpx.post(url, content=bomb, headers={**PROTOBUF, "Content-Encoding": "gzip"})
        assert reply.status_code == 413
        assert b"max_decompressed_bytes" in reply.content
        assert httpx.get(f"{running.api}/healthz").status_code == 200
    finally:
        running.app.stop()


def test_logs_and_metrics_are_accepted(shared_collector: RunningCollector) -> None:
    for path in ("/v1/logs", "/v1/metrics"):
        reply = httpx.post(
            f"{shared_collector.otlp_http}{path}", content=b"{}", headers={"Content-Type": "application/json"}
        )
        assert reply.status_code == 200, path


def test_resent_spans_are_ignored_not_double_counted(shared_collector: RunningCollector) -> None:
    trace_id = uuid.uuid4().hex
    body = _json_export(trace_id, "00f067aa0ba902b7", chat_attributes())
    before = shared_collector.ingest()["duplicates_ignored"]
    for _ in range(3):
        assert (
            httpx.post(
                f"{shared_collector.otlp_http}/v1/traces", content=body, headers={"Content-Type": "application/json"}
            ).status_code
            == 200
        )
    assert len(shared_collector.calls(trace_id=trace_id)) == 1
    assert shared_collector.ingest()["duplicates_ignored"] == before + 2
