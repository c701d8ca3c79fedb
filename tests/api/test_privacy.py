"""Prompt and completion text is nowhere: not in the database file, not in the logs."""

from __future__ import annotations

import logging
import uuid

import httpx
import pytest
from opentelemetry import trace
from opentelemetry.exporter.otlp.proto.http._log_exporter import OTLPLogExporter
from opentelemetry.sdk._logs import LoggerProvider
from opentelemetry.sdk._logs.export import SimpleLogRecordProcessor
from opentelemetry.sdk.resources import Resource
from opentelemetry.trace import NonRecordingSpan, SpanContext, TraceFlags

from breakeven.collector.normalize.redact import hash_messages
from tests.conftest import DIALECTS, RunningCollector, running_collector, start_collector
from tests.otel import chat_attributes, tracer

PROMPT = "SECRET-PROMPT-privacy-7f3a"


def emit_user_message_log(endpoint: str, service: str, trace_id: int, span_id: int, text: str) -> None:
    """Send a gen_ai.user.message event as a log record, the way GenAI instrumentations do."""
    provider = LoggerProvider(resource=Resource.create({"service.name": service}))
    provider.add_log_record_processor(SimpleLogRecordProcessor(OTLPLogExporter(endpoint=f"{endpoint}/v1/logs")))
    ctx = trace.set_span_in_context(NonRecordingSpan(SpanContext(trace_id, span_id, False, TraceFlags(1))))
    provider.get_logger("tests").emit(
        context=ctx,
        body={"content": text},
        attributes={"event.name": "gen_ai.user.message"},
        event_name="gen_ai.user.message",
    )
    provider.shutdown()


COMPLETION = "SECRET-COMPLETION-privacy-9c1e"


@pytest.mark.parametrize("dialect", DIALECTS)
def test_content_never_reaches_database_or_logs(tmp_path, caplog: pytest.LogCaptureFixture, dialect: str) -> None:
    caplog.set_level(logging.DEBUG)
    service = f"p-{uuid.uuid4().hex[:6]}"
    with running_collector(tmp_path, dialect, log_level="debug") as running:
        _ingest_content(running, service)
        rows = running.rows_as_text().encode()
    raw = rows + b"".join(p.read_bytes() for p in tmp_path.rglob("*") if p.is_file())
    assert service.encode() in rows  # the check looks where the data is
    assert PROMPT.encode() not in raw
    assert COMPLETION.encode() not in raw
    assert PROMPT not in caplog.text
    assert COMPLETION not in caplog.text


def _ingest_content(running: RunningCollector, service: str) -> None:
    """Spans and log records carrying the prompt and completion in every dialect."""
    with tracer(running.otlp_http, service) as t:
        messages = f'[{{"role":"user","parts":[{{"type":"text","content":"{PROMPT}"}}]}}]'
        with t.start_as_current_span(
            "chat",
            attributes=chat_attributes(
                **{
                    "gen_ai.input.messages": messages,
                    "gen_ai.output.messages": f'[{{"role":"assistant","parts":[{{"type":"text","content":"{COMPLETION}"}}]}}]',
                    "gen_ai.prompt.0.content": PROMPT,
                    "gen_ai.completion.0.content": COMPLETION,
                    "llm.input_messages.0.message.content": PROMPT,
                    "input.value": PROMPT,
                    "output.value": COMPLETION,
                    "traceloop.entity.input": PROMPT,
                }
            ),
        ) as span:
            span.add_event("gen_ai.content.prompt", {"gen_ai.prompt": PROMPT})
            span.add_event("gen_ai.content.completion", {"gen_ai.completion": COMPLETION})
            span_ctx = span.get_span_context()
        # OpenInference's embeddings span (a trace of its own): the input as texts and inside the request.
        embeddings = {
            "openinference.span.kind": "EMBEDDING",
            "llm.system": "openai",
            "embedding.model_name": "text-embedding-3-small",
            "llm.token_count.prompt": 42,
            "embedding.embeddings.0.embedding.text": PROMPT,
            "input.value": f'{{"model": "text-embedding-3-small", "input": "{PROMPT}"}}',
            "output.value": COMPLETION,
        }
        t.start_span("CreateEmbeddings", attributes=embeddings).end()
    # Content as log records (how opentelemetry-instrumentation-openai-v2 sends it).
    emit_user_message_log(running.otlp_http, service, span_ctx.trace_id, span_ctx.span_id, PROMPT)
    calls = running.calls(service=service)
    assert sorted(c["operation"] for c in calls) == ["chat", "embeddings"]
    assert [c["prompt_hash"] for c in calls] == [hash_messages([["user", PROMPT]])] * 2
    page = httpx.get(f"{running.api}/api/v1/calls", params={"service": service}).text
    assert PROMPT not in page
    assert COMPLETION not in page


def test_prompt_hash_from_a_log_record_that_arrives_first(tmp_path) -> None:
    running = start_collector(tmp_path)
    try:
        trace_id, span_id = uuid.uuid4().int >> 1, 0xABCDEF
        emit_user_message_log(running.otlp_http, "early", trace_id, span_id, PROMPT)
        with tracer(running.otlp_http, "early") as t:
            parent = trace.set_span_in_context(NonRecordingSpan(SpanContext(trace_id, 0x77, True, TraceFlags(1))))
            # Give the span the id the log named by creating it through a custom id generator.
            t.id_generator.generate_span_id = lambda: span_id  # type: ignore[attr-defined]
            with t.start_as_current_span("chat", context=parent, attributes=chat_attributes()):
                pass
        (call,) = running.calls(trace_id=f"{trace_id:032x}")
        assert call["span_id"] == f"{span_id:016x}"
        assert call["prompt_hash"] == hash_messages([["user", PROMPT]])
    finally:
        running.app.stop()
