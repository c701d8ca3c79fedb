"""Spans of one call arriving in different exports, in any order, across services: one call."""

from __future__ import annotations

import itertools
import uuid

import httpx
import pytest
import sqlalchemy as sa
from opentelemetry import trace
from opentelemetry.trace import NonRecordingSpan, SpanContext, TraceFlags

from tests.conftest import RunningCollector
from tests.otel import chat_attributes, chat_export, tracer

USAGE = {"gen_ai.usage.input_tokens": 900, "gen_ai.usage.output_tokens": 100}


def _remote_parent(trace_id: int, span_id: int):
    ctx = SpanContext(trace_id, span_id, is_remote=True, trace_flags=TraceFlags(1))
    return trace.set_span_in_context(NonRecordingSpan(ctx))


@pytest.mark.parametrize("order", list(itertools.permutations(["client", "router", "engine"])), ids="-".join)
def test_client_router_engine_in_any_order(shared_collector: RunningCollector, order: tuple[str, ...]) -> None:
    """Three services, three exports, each span's parent an HTTP span we never see."""
    trace_id = uuid.uuid4().int >> 64 << 64 | 1
    app = f"web-{uuid.uuid4().hex[:6]}"
    start = 1_790_000_000_000_000_000
    plans = {
        "client": (
            app,
            0,
            1000,
            {
                **chat_attributes(**USAGE),
                "server.address": "router.internal",
                "breakeven.team": "growth",
                "gen_ai.request.model": "llama-70b",
            },
        ),
        "router": ("router", 10, 980, {**chat_attributes(**USAGE), "server.address": "10.0.0.7", "server.port": 8000}),
        "engine": (
            "vllm-70b",
            20,
            970,
            {
                "gen_ai.response.model": "meta-llama/Llama-3.3-70B-Instruct-FP8",
                "gen_ai.usage.prompt_tokens": 900,
                "gen_ai.usage.completion_tokens": 100,
                "gen_ai.latency.time_to_first_token": 0.04,
                "gen_ai.latency.e2e": 0.95,
            },
        ),
    }
    for i, name in enumerate(order):
        service, begin, end, attrs = plans[name]
        with tracer(shared_collector.otlp_http, service) as t:
            parent = _remote_parent(trace_id, 0x1000 + i)  # each hangs off a span we never see
            span = t.start_span(
                f"{name} span",
                context=parent,
                attributes=attrs,
                start_time=start + begin * 1_000_000,
                kind=trace.SpanKind.SERVER if name == "engine" else trace.SpanKind.CLIENT,
            )
            span.end(end_time=start + end * 1_000_000)
    (call,) = shared_collector.calls(trace_id=f"{trace_id:032x}")
    assert call["service"] == app
    assert call["team"] == "growth"
    assert call["request_model"] == "llama-70b"
    assert call["backend"] == "vllm-70b"
    assert call["backend_class"] == "self_hosted"
    assert call["provider"] == "vllm"
    assert call["response_model"] == "meta-llama/Llama-3.3-70B-Instruct-FP8"
    assert call["quantization"] == "fp8"
    assert call["ttft_ms"] == pytest.approx(40.0)
    assert call["span_count"] == 3
    assert call["input_tokens"] == 900


def test_instrumentation_and_sdk_span_in_one_export(shared_collector: RunningCollector) -> None:
    service = f"app-{uuid.uuid4().hex[:6]}"
    with (
        tracer(shared_collector.otlp_http, service) as t,
        t.start_as_current_span(
            "openai.chat",
            attributes={
                "gen_ai.system": "openai",
                "llm.request.type": "chat",
                "gen_ai.request.model": "gpt-4o",
                "gen_ai.usage.prompt_tokens": 1234,
                "gen_ai.usage.completion_tokens": 567,
                "llm.usage.total_tokens": 1801,
            },
        ),
        t.start_as_current_span(
            "chat gpt-4o",
            attributes=chat_attributes(
                **{
                    "gen_ai.usage.input_tokens": 1234,
                    "gen_ai.usage.output_tokens": 567,
                    "gen_ai.usage.cache_read.input_tokens": 1000,
                }
            ),
        ),
    ):
        pass
    (call,) = shared_collector.calls(service=service)
    # The SDK span reports more token kinds: its split wins.
    assert (call["input_tokens"], call["cache_read_tokens"], call["output_tokens"]) == (234, 1000, 567)
    assert call["span_count"] == 2
    counters = shared_collector.ingest()
    assert counters["spans_merged"] >= 1


def test_ttft_reads_back_as_sent_on_both_dialects(shared_collector: RunningCollector) -> None:
    """DuckDB's FLOAT is 32 bits (102.621534 ms read back as 102.62153625488281); ttft_ms is a
    double on both dialects (migration 0011), in calls and in llm_spans."""
    service = f"ttft-{uuid.uuid4().hex}"
    export = chat_export(service, **{"gen_ai.server.time_to_first_token": 0.102621534})
    reply = httpx.post(
        f"{shared_collector.otlp_http}/v1/traces",
        content=export.SerializeToString(),
        headers={"Content-Type": "application/x-protobuf"},
    )
    assert reply.status_code == 200
    trace_id = export.resource_spans[0].scope_spans[0].spans[0].trace_id.hex()
    sent = 0.102621534 * 1000
    with shared_collector.app.engine.connect() as conn:
        for table in ("calls", "llm_spans"):
            stored = conn.execute(sa.text(f"SELECT ttft_ms FROM {table} WHERE trace_id = :t"), {"t": trace_id})
            assert stored.scalar_one() == pytest.approx(sent, rel=0, abs=1e-9), table
    (call,) = shared_collector.calls(service=service)
    assert call["ttft_ms"] == pytest.approx(sent, rel=0, abs=1e-9)
