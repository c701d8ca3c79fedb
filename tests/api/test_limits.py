"""Each ingest limit, end to end on a collector started with small ones: the answer it gives
(413 for a whole export, a partial-success reason for one span) and what gets stored.

Body and decompressed-size limits are in test_otlp_receivers.py.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import grpc
import httpx
import pytest
import sqlalchemy as sa
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2_grpc
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, ArrayValue, InstrumentationScope, KeyValue
from opentelemetry.proto.resource.v1.resource_pb2 import Resource
from opentelemetry.proto.trace.v1.trace_pb2 import ResourceSpans, ScopeSpans, Span

from breakeven.collector.store.schema import llm_spans
from tests.conftest import RunningCollector, start_collector
from tests.otel import chat_attributes

LIMITS = {
    "max_spans_per_request": 20,
    "max_attributes_per_span": 16,
    "max_attribute_value_bytes": 256,
    "max_events_per_span": 4,
    "max_array_items": 8,
}
PROTOBUF = {"Content-Type": "application/x-protobuf"}
T0 = 1_790_000_000_000_000_000


@pytest.fixture(scope="module", params=[True, False], ids=["native decode", "upb decode"])
def limited(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningCollector]:
    # x.* kept verbatim ([privacy] keep_attributes), so the audit copy shows how values are cut.
    running = start_collector(
        tmp_path_factory.mktemp("limits"), **LIMITS, native_decode=request.param, privacy={"keep_attributes": ["x.*"]}
    )
    yield running
    running.app.stop()


def _value(value: Any) -> AnyValue:
    if isinstance(value, list):
        return AnyValue(array_value=ArrayValue(values=[_value(v) for v in value]))
    if isinstance(value, int):
        return AnyValue(int_value=value)
    return AnyValue(string_value=str(value))


def _span(n: int, attrs: dict[str, Any], events: list[Span.Event] | None = None) -> Span:
    return Span(
        trace_id=b"",  # set by _export
        span_id=n.to_bytes(8, "big"),
        name="chat gpt-4o",
        kind=3,
        start_time_unix_nano=T0,
        end_time_unix_nano=T0 + 10**9,
        attributes=[KeyValue(key=k, value=_value(v)) for k, v in attrs.items()],
        events=events or [],
    )


def _export(trace_id: str, *spans: Span) -> ExportTraceServiceRequest:
    for span in spans:
        span.trace_id = bytes.fromhex(trace_id)
    resource = Resource(attributes=[KeyValue(key="service.name", value=_value("limits-svc"))])
    scope = InstrumentationScope(name="tests.limits")
    return ExportTraceServiceRequest(
        resource_spans=[ResourceSpans(resource=resource, scope_spans=[ScopeSpans(scope=scope, spans=list(spans))])]
    )


def _post(running: RunningCollector, request: ExportTraceServiceRequest) -> httpx.Response:
    return httpx.post(f"{running.otlp_http}/v1/traces", content=request.SerializeToString(), headers=PROTOBUF)


def _grpc_export(running: RunningCollector, request: ExportTraceServiceRequest) -> ExportTraceServiceResponse:
    with grpc.insecure_channel(running.otlp_grpc) as channel:
        return trace_service_pb2_grpc.TraceServiceStub(channel).Export(request, timeout=30)


def _trace_id() -> str:
    return os.urandom(16).hex()


@pytest.mark.parametrize(
    ("bad", "reason"),
    [
        pytest.param(
            {**chat_attributes(), **{f"x.{i}": i for i in range(10)}}, "too_many_attributes", id="17 attributes"
        ),
        pytest.param(
            chat_attributes(**{"gen_ai.request.model": "m" * 257}),
            "attribute_too_long",
            id="a request model past max_attribute_value_bytes",
        ),
        pytest.param(
            chat_attributes(**{"breakeven.team": "t" * 257}), "attribute_too_long", id="a team past it, as breakeven.*"
        ),
        pytest.param(
            chat_attributes(**{"gen_ai.response.model": ["m"] * 9}),
            "attribute_too_long",
            id="a model array past max_array_items",
        ),
        pytest.param(
            chat_attributes(**{"ü" * 200: 1}),
            "attribute_too_long",
            id="an attribute name past it (200 characters, 400 bytes)",
        ),
    ],
)
@pytest.mark.parametrize("protocol", ["http", "grpc"])
def test_a_span_past_a_limit_is_rejected_and_the_rest_of_its_export_stored(
    limited: RunningCollector, bad: dict[str, Any], reason: str, protocol: str
) -> None:
    trace_id = _trace_id()
    request = _export(trace_id, _span(1, chat_attributes()), _span(2, bad))
    if protocol == "http":
        reply = _post(limited, request)
        assert reply.status_code == 200, reply.text
        partial = ExportTraceServiceResponse.FromString(reply.content).partial_success
    else:
        partial = _grpc_export(limited, request).partial_success
    assert partial.rejected_spans == 1
    assert f"1 {reason}" in partial.error_message
    assert len(partial.error_message) < 500
    (call,) = limited.calls(trace_id=trace_id)
    assert call["span_id"] == (1).to_bytes(8, "big").hex()
    assert limited.ingest()["rejected"][reason] >= 1


def test_audit_only_values_are_cut_and_the_call_is_kept(limited: RunningCollector) -> None:
    trace_id = _trace_id()
    attrs = chat_attributes(**{"http.user_agent": "ü" * 200, "x.tags": [f"t{i}" for i in range(20)]})
    chunks = [Span.Event(name="llm.content.completion.chunk", time_unix_nano=T0 + (i + 1) * 10**8) for i in range(9)]
    reply = _post(limited, _export(trace_id, _span(1, attrs, chunks)))
    assert reply.status_code == 200
    assert not ExportTraceServiceResponse.FromString(reply.content).HasField("partial_success")
    (call,) = limited.calls(trace_id=trace_id)
    assert call["input_tokens"] == 1200
    assert call["request_model"] == "gpt-4o"
    assert call["ttft_ms"] == pytest.approx(100.0)  # the first chunk event is among the 4 kept
    with limited.app.engine.connect() as conn:
        stored = conn.execute(sa.select(llm_spans.c.attributes).where(llm_spans.c.trace_id == trace_id)).scalar_one()
    audit = json.loads(stored)
    assert audit["http.user_agent"] == "ü" * 128  # 256 bytes, cut between characters
    assert audit["x.tags"] == [f"t{i}" for i in range(8)]


@pytest.mark.parametrize("protocol", ["http", "grpc"])
def test_an_export_past_max_spans_per_request_is_refused_whole(limited: RunningCollector, protocol: str) -> None:
    trace_id = _trace_id()
    request = _export(trace_id, *(_span(n, chat_attributes()) for n in range(1, 22)))
    if protocol == "http":
        reply = _post(limited, request)
        assert reply.status_code == 413
        assert b"max_spans_per_request" in reply.content
    else:
        with pytest.raises(grpc.RpcError) as err:
            _grpc_export(limited, request)
        assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert "max_spans_per_request" in (err.value.details() or "")
    assert limited.calls(trace_id=trace_id) == []
    at_limit = _export(trace_id, *(_span(n, chat_attributes()) for n in range(1, 21)))
    assert _post(limited, at_limit).status_code == 200


def test_the_limits_are_settings(tmp_path: Path) -> None:
    from breakeven.collector.config.checks import SettingsError
    from breakeven.collector.config.settings import load_settings

    settings = load_settings({}, environ={"BREAKEVEN_MAX_ATTRIBUTES_PER_SPAN": "64", "BREAKEVEN_MAX_ARRAY_ITEMS": "32"})
    assert (settings.max_attributes_per_span, settings.max_array_items) == (64, 32)
    config = tmp_path / "breakeven.toml"
    config.write_text("max_attribute_value_bytes = 4096\nmax_events_per_span = 16\n")
    settings = load_settings({"config": str(config)}, environ={})
    assert (settings.max_attribute_value_bytes, settings.max_events_per_span) == (4096, 16)
    with pytest.raises(SettingsError, match="max_attribute_value_bytes"):
        load_settings({}, environ={"BREAKEVEN_MAX_ATTRIBUTE_VALUE_BYTES": "0"})
