"""Real OpenTelemetry SDK tracers exporting to a collector under test."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter as GrpcSpanExporter
from opentelemetry.exporter.otlp.proto.http import Compression
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter as HttpSpanExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import Tracer, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor


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
