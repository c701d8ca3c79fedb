"""Real OpenTelemetry SDK tracers exporting to a collector under test."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter as GrpcSpanExporter
from opentelemetry.exporter.otlp.proto.http import Compression
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter as HttpSpanExporter
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.resource.v1.resource_pb2 import Resource as ResourceProto
from opentelemetry.proto.trace.v1.trace_pb2 import ResourceSpans, ScopeSpans, Span
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import Tracer, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor

from breakeven.collector.demo.spans import key_value


@contextmanager
def tracer(
    endpoint: str, service: str, protocol: str = "http", gzip: bool = False, **resource: Any
) -> Iterator[Tracer]:
    """A tracer whose spans are exported synchronously on end (SimpleSpanProcessor)."""
    if protocol == "http":
        exporter: Any = HttpSpanExporter(
            endpoint=f"{endpoint}/v1/traces", compression=Compression.Gzip if gzip else Compression.NoCompression
        )
    else:
        exporter = GrpcSpanExporter(endpoint=endpoint, insecure=True)
    provider = TracerProvider(resource=Resource.create({"service.name": service, **resource}))
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    try:
        yield provider.get_tracer("tests.breakeven", "1.0")
    finally:
        provider.shutdown()


def chat_attributes(**extra: Any) -> dict[str, Any]:
    """Current OTel GenAI attributes of an OpenAI chat call; override any with extra."""
    attrs: dict[str, Any] = {
        "gen_ai.operation.name": "chat",
        "gen_ai.provider.name": "openai",
        "gen_ai.request.model": "gpt-4o",
        "gen_ai.response.model": "gpt-4o-2024-08-06",
        "gen_ai.usage.input_tokens": 1200,
        "gen_ai.usage.output_tokens": 300,
        "server.address": "api.openai.com",
    }
    attrs.update(extra)
    return {k: v for k, v in attrs.items() if v is not None}


def chat_export(
    service: str | None = None, start_ns: int = 1_700_000_000_000_000_000, **attributes: Any
) -> ExportTraceServiceRequest:
    """An OTLP export of one chat client span, built by hand (no SDK): chat_attributes
    overridden by attributes, new random ids, lasting 1 s from start_ns, and the resource's
    service.name when a service is given."""
    span = Span(
        trace_id=os.urandom(16), span_id=os.urandom(8), name="chat gpt-4o", kind=Span.SPAN_KIND_CLIENT,
        start_time_unix_nano=start_ns, end_time_unix_nano=start_ns + 1_000_000_000,
        attributes=[key_value(k, v) for k, v in chat_attributes(**attributes).items()],
    )  # fmt: skip
    resource = ResourceProto(attributes=[key_value("service.name", service)] if service else [])
    return ExportTraceServiceRequest(
        resource_spans=[ResourceSpans(resource=resource, scope_spans=[ScopeSpans(spans=[span])])]
    )
