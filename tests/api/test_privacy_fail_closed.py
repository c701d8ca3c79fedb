"""Privacy fails closed: text under keys breakeven does not know never comes to rest.

Hypothesis makes spans whose unknown attributes (any name the ledger neither reads nor
knows as metadata) carry marker text in every OTLP value type: a short or long string,
bytes, an array, a key-value list, nested. They go in over OTLP/HTTP and OTLP/gRPC, with
the same markers in an unknown span event and an unknown log record. Then no marker may be
anywhere: in any row of any table read back as text, in the database's files, in the logs,
on /metrics, in the API's answers.
"""

from __future__ import annotations

import logging
import os
import uuid
from collections.abc import Iterator
from typing import Any

import grpc
import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2_grpc
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, ArrayValue, KeyValue, KeyValueList
from opentelemetry.proto.logs.v1.logs_pb2 import LogRecord, ResourceLogs, ScopeLogs
from opentelemetry.proto.resource.v1.resource_pb2 import Resource
from opentelemetry.proto.trace.v1.trace_pb2 import ResourceSpans, ScopeSpans, Span

from breakeven.collector.config.settings import load_settings
from breakeven.collector.normalize.keep import is_metadata_key
from breakeven.collector.normalize.plan import read_names
from breakeven.collector.normalize.redact import is_content
from tests.conftest import DIALECTS, RunningCollector, running_collector
from tests.otel import chat_attributes

PROTOBUF = {"Content-Type": "application/x-protobuf"}
READ = read_names(load_settings({}, environ={}))
NAME_PART = st.text(alphabet="abcdefghijklmnopqrstuvwxyz_", min_size=1, max_size=10)


def unknown_name(parts: list[str]) -> str:
    return ".".join(parts)


UNKNOWN_NAMES = (
    st.lists(NAME_PART, min_size=1, max_size=4)
    .map(unknown_name)
    .filter(lambda name: name not in READ and not is_metadata_key(name) and not is_content(name))
)


def marked_text(marker: str) -> st.SearchStrategy[str]:
    """Text holding the marker: alone, short, or deep inside a long value."""
    return st.tuples(st.text(max_size=20), st.sampled_from([0, 1, 3000])).map(
        lambda pair: pair[0] + ("x" * pair[1]) + marker + pair[0]
    )


def marked_value(marker: str) -> st.SearchStrategy[AnyValue]:
    """An OTLP AnyValue of any type carrying the marker somewhere."""
    text = marked_text(marker)
    leaf = st.one_of(
        text.map(lambda t: AnyValue(string_value=t)),
        text.map(lambda t: AnyValue(bytes_value=t.encode())),
    )
    return st.recursive(
        leaf,
        lambda inner: st.one_of(
            st.lists(inner, min_size=1, max_size=3).map(lambda vs: AnyValue(array_value=ArrayValue(values=vs))),
            st.lists(st.tuples(NAME_PART, inner), min_size=1, max_size=3).map(
                lambda kvs: AnyValue(kvlist_value=KeyValueList(values=[KeyValue(key=k, value=v) for k, v in kvs]))
            ),
        ),
        max_leaves=4,
    )


@st.composite
def marked_exports(draw: st.DrawFn) -> tuple[str, ExportTraceServiceRequest, ExportLogsServiceRequest, str]:
    """(marker, a chat span carrying it under unknown keys, a log record carrying it, protocol)."""
    marker = f"MARK{uuid.uuid4().hex[:12]}"
    names = draw(st.lists(UNKNOWN_NAMES, min_size=1, max_size=5, unique=True))
    unknown = [KeyValue(key=name, value=draw(marked_value(marker))) for name in names]
    known = [KeyValue(key=k, value=_plain(v)) for k, v in chat_attributes().items()]
    trace_id, span_id = os.urandom(16), os.urandom(8)
    event = Span.Event(name=draw(UNKNOWN_NAMES), time_unix_nano=1_700_000_000_500_000_000, attributes=unknown[:1])
    span = Span(
        trace_id=trace_id, span_id=span_id, name="chat gpt-4o", kind=Span.SPAN_KIND_CLIENT,
        start_time_unix_nano=1_700_000_000_000_000_000, end_time_unix_nano=1_700_000_001_000_000_000,
        attributes=known + unknown, events=[event],
    )  # fmt: skip
    resource = Resource(attributes=[KeyValue(key="service.name", value=AnyValue(string_value="fail-closed"))])
    traces = ExportTraceServiceRequest(
        resource_spans=[ResourceSpans(resource=resource, scope_spans=[ScopeSpans(spans=[span])])]
    )
    record = LogRecord(
        time_unix_nano=1_700_000_000_600_000_000, trace_id=trace_id, span_id=span_id,
        event_name=draw(UNKNOWN_NAMES), body=draw(marked_value(marker)), attributes=unknown[-1:],
    )  # fmt: skip
    logs = ExportLogsServiceRequest(
        resource_logs=[ResourceLogs(resource=resource, scope_logs=[ScopeLogs(log_records=[record])])]
    )
    return marker, traces, logs, draw(st.sampled_from(["http", "grpc"]))


def _plain(value: Any) -> AnyValue:
    if isinstance(value, bool):
        return AnyValue(bool_value=value)
    if isinstance(value, int):
        return AnyValue(int_value=value)
    if isinstance(value, float):
        return AnyValue(double_value=value)
    return AnyValue(string_value=str(value))


@pytest.fixture
def collector(tmp_path, request: pytest.FixtureRequest) -> Iterator[RunningCollector]:
    with running_collector(tmp_path, request.param, log_level="debug") as running:
        yield running


@pytest.mark.parametrize("collector", DIALECTS, indirect=True)
def test_no_marker_under_an_unknown_key_comes_to_rest(
    collector: RunningCollector, tmp_path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    markers: list[str] = []
    channel = grpc.insecure_channel(collector.otlp_grpc)
    stub = trace_service_pb2_grpc.TraceServiceStub(channel)
    client = httpx.Client(timeout=30)

    @settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
    @given(example=marked_exports())
    def send(example: tuple[str, ExportTraceServiceRequest, ExportLogsServiceRequest, str]) -> None:
        marker, traces, logs, protocol = example
        markers.append(marker)
        if protocol == "grpc":
            stub.Export(traces, timeout=30)
        else:
            reply = client.post(
                f"{collector.otlp_http}/v1/traces", content=traces.SerializeToString(), headers=PROTOBUF
            )
            assert reply.status_code == 200, reply.text
        reply = client.post(f"{collector.otlp_http}/v1/logs", content=logs.SerializeToString(), headers=PROTOBUF)
        assert reply.status_code == 200, reply.text

    try:
        send()
        calls = collector.calls(service="fail-closed")
        assert calls, "the spans were stored as calls: the check looks where the data is"
        answers = "".join(
            client.get(f"{collector.api}{path}", params=params).text
            for path, params in [
                ("/api/v1/calls", {"service": "fail-closed", "limit": 1000}),
                ("/api/v1/ingest", {}),
                ("/metrics", {}),
                ("/api/v1/spend", {"group_by": "service", "since": "2023-01-01"}),
            ]
        )
        rows = collector.rows_as_text()
    finally:
        client.close()
        channel.close()
    files = b"".join(p.read_bytes() for p in tmp_path.rglob("*") if p.is_file())
    for marker in markers:
        for form in (marker, marker.encode().hex()):  # bytes travel as hex text
            assert form not in rows, f"{form} in the database's rows"
            assert form.encode() not in files, f"{form} in the database's files"
            assert form not in caplog.text, f"{form} in the logs"
            assert form not in answers, f"{form} in an API answer"
