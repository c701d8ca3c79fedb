"""The demo's calls as OTLP spans, in the dialects real emitters speak, batched into export bodies.

OTel GenAI current and legacy, OpenLLMetry, OpenInference, vLLM's engine spans nested under the
client's, breakeven.* attributes; HTTP parents that are dropped, a few rejected spans and failed
calls. Bodies are built with opentelemetry-proto so every span's timestamp is set exactly.
"""

from __future__ import annotations

import hashlib
import json
import random
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, ArrayValue, InstrumentationScope, KeyValue
from opentelemetry.proto.resource.v1.resource_pb2 import Resource
from opentelemetry.proto.trace.v1.trace_pb2 import ResourceSpans, ScopeSpans, Span, Status

from breakeven.collector.demo.traffic import BUSINESS_HOURS, FAQ, Stream, Usage, call_start

NS = 1_000_000_000

SCOPES = {
    "otel": ("opentelemetry.instrumentation.openai_v2", "2.1b0"),
    "otel_legacy": ("opentelemetry.instrumentation.openai_v2", "2.0b0"),
    "openllmetry": ("opentelemetry.instrumentation.anthropic", "0.62.4"),
    "openinference": ("openinference.instrumentation.openai", "0.1.66"),
    "vllm": ("vllm.tracing", "0.11.0"),
    "http": ("opentelemetry.instrumentation.fastapi", "0.56b0"),
}


def key_value(key: str, value: Any) -> KeyValue:
    """An OTLP attribute from a plain value (lists become string arrays)."""
    if isinstance(value, bool):
        return KeyValue(key=key, value=AnyValue(bool_value=value))
    if isinstance(value, int):
        return KeyValue(key=key, value=AnyValue(int_value=value))
    if isinstance(value, float):
        return KeyValue(key=key, value=AnyValue(double_value=value))
    if isinstance(value, (list, tuple)):
        values = [AnyValue(string_value=str(v)) for v in value]
        return KeyValue(key=key, value=AnyValue(array_value=ArrayValue(values=values)))
    return KeyValue(key=key, value=AnyValue(string_value=str(value)))


def _client_attributes(s: Stream, model: str, u: Usage, prompt: int | None, ok: bool) -> dict[str, Any]:
    if s.dialect in ("otel", "otel_legacy"):
        attrs: dict[str, Any] = {
            "gen_ai.operation.name": "chat",
            "gen_ai.request.model": s.request_model,
            "gen_ai.response.model": model,
            "server.address": s.address,
            "server.port": s.port,
        }
        if s.dialect == "otel":
            attrs.update({
                "gen_ai.provider.name": s.provider, "gen_ai.usage.input_tokens": u.prompt,
                "gen_ai.usage.output_tokens": u.output, "gen_ai.usage.cache_read.input_tokens": u.cache_read,
            })  # fmt: skip
            if u.reasoning:
                attrs["gen_ai.usage.reasoning.output_tokens"] = u.reasoning
            if prompt is not None and not s.prompt_by_hash:
                messages = [{"role": "user", "parts": [{"type": "text", "content": f"{s.feature} brief #{prompt}"}]}]
                attrs["gen_ai.input.messages"] = json.dumps(messages)
        else:
            attrs.update({
                "gen_ai.system": s.provider, "gen_ai.usage.prompt_tokens": u.prompt,
                "gen_ai.usage.completion_tokens": u.output, "gen_ai.usage.cache_read_input_tokens": u.cache_read,
            })  # fmt: skip
    elif s.dialect == "openllmetry":
        attrs = {
            "llm.request.type": "chat", "gen_ai.system": "Anthropic", "gen_ai.request.model": s.request_model,
            "gen_ai.response.model": model, "gen_ai.usage.prompt_tokens": u.prompt,
            "gen_ai.usage.completion_tokens": u.output, "gen_ai.usage.cache_read_input_tokens": u.cache_read,
            "llm.usage.total_tokens": u.prompt + u.output, "llm.is_streaming": False,
        }  # fmt: skip
        if prompt is not None:  # triage sees the FAQ as asked; answers go out as ticket macros, the same each time
            text = (
                FAQ[prompt % len(FAQ)] if s.feature == "triage" else f"Ticket macro #{prompt}: {FAQ[prompt % len(FAQ)]}"
            )
            attrs.update({"gen_ai.prompt.0.role": "user", "gen_ai.prompt.0.content": text})
    else:  # OpenInference
        attrs = {
            "openinference.span.kind": "LLM", "llm.provider": s.provider, "llm.system": s.provider,
            "llm.model_name": model, "llm.token_count.prompt": u.prompt, "llm.token_count.completion": u.output,
            "llm.token_count.total": u.prompt + u.output, "llm.token_count.prompt_details.cache_read": u.cache_read,
            "llm.invocation_parameters": json.dumps({"model": s.request_model, "temperature": 0.2}),
            "server.address": s.address,
        }  # fmt: skip
    if not ok:
        for key in [k for k in attrs if "usage" in k or "token_count" in k]:
            attrs[key] = 0
        attrs["error.type"] = "RateLimitError" if s.provider != "anthropic" else "overloaded_error"
    if prompt is not None and s.prompt_by_hash:
        attrs["breakeven.prompt_hash"] = hashlib.sha256(f"{s.service}:{s.feature}:{prompt}".encode()).hexdigest()
    attrs.update(s.extra)
    attrs.update({"app.team": s.team, "app.feature": s.feature})
    return attrs


def _engine_attributes(model: str, u: Usage, seconds: float) -> dict[str, Any]:
    return {
        "gen_ai.response.model": model, "gen_ai.usage.prompt_tokens": u.prompt,
        "gen_ai.usage.completion_tokens": u.output, "gen_ai.latency.time_in_queue": 0.02,
        "gen_ai.latency.time_to_first_token": min(seconds, 0.2 + u.prompt / 40_000), "gen_ai.latency.e2e": seconds,
        "gen_ai.request.max_tokens": 4096,
    }  # fmt: skip


def _resource(service: str) -> dict[str, str]:
    return {
        "service.name": service,
        "deployment.environment.name": "prod",
        "telemetry.sdk.name": "opentelemetry",
        "telemetry.sdk.language": "python",
    }


@dataclass
class Batch:
    """Spans waiting to be sent, by (service, scope)."""

    spans: dict[tuple[str, str], list[Span]] = field(default_factory=dict)
    count: int = 0

    def add(self, service: str, dialect: str, span: Span) -> None:
        self.spans.setdefault((service, dialect), []).append(span)
        self.count += 1

    def body(self) -> bytes:
        """The spans as one ExportTraceServiceRequest, a ResourceSpans per service."""
        by_service: dict[str, list[ScopeSpans]] = {}
        for (service, dialect), spans in self.spans.items():
            name, version = SCOPES[dialect]
            scope = ScopeSpans(scope=InstrumentationScope(name=name, version=version), spans=spans)
            by_service.setdefault(service, []).append(scope)
        resources = [
            ResourceSpans(
                resource=Resource(attributes=[key_value(k, v) for k, v in _resource(service).items()]),
                scope_spans=scopes,
            )
            for service, scopes in by_service.items()
        ]
        return ExportTraceServiceRequest(resource_spans=resources).SerializeToString()


def call_spans(
    rng: random.Random, s: Stream, at: datetime, share: float, served: Callable[[Usage], None] = lambda usage: None
) -> Iterator[tuple[str, str, Span]]:
    """One call of a stream at `at`, as (service, dialect, span): maybe an HTTP parent, the client's span,
    and the vLLM engine's under it. `share` is how far into the month it is (which model version answers);
    `served` hears the tokens of a call that succeeded.
    """
    prompt_tokens = rng.randint(*s.input_tokens)
    cached = int(prompt_tokens * rng.uniform(0.2, 0.6)) if rng.random() < s.cache_share else 0
    reasoning = rng.randint(*s.reasoning) if s.reasoning else 0
    usage = Usage(prompt_tokens, cached, rng.randint(*s.output_tokens) + reasoning, reasoning)
    ok = rng.random() >= s.errors
    prompt = rng.randrange(s.prompts) if s.prompts and rng.random() < s.prompt_share else None
    if ok:
        served(usage)
    model = s.response_model(share)
    seconds = 0.3 + usage.prompt / 25_000 + usage.output / 60 if ok else 0.4
    start_ns = int(at.timestamp() * NS)
    end_ns = start_ns + int(seconds * NS)
    trace_id = rng.getrandbits(128).to_bytes(16, "big")
    parent = b""
    if rng.random() < s.http_parent:
        parent = rng.getrandbits(64).to_bytes(8, "big")
        yield s.service, "http", Span(
            trace_id=trace_id, span_id=parent, name=f"POST /v1/{s.feature}", kind=Span.SPAN_KIND_SERVER,
            start_time_unix_nano=start_ns - 5_000_000, end_time_unix_nano=end_ns + 5_000_000,
            attributes=[key_value("http.request.method", "POST"), key_value("http.route", f"/v1/{s.feature}"),
                        key_value("http.response.status_code", 200 if ok else 502)],
        )  # fmt: skip
    client_id = rng.getrandbits(64).to_bytes(8, "big")
    attrs = _client_attributes(s, model, usage, prompt, ok)
    yield s.service, s.dialect, Span(
        trace_id=trace_id, span_id=client_id, parent_span_id=parent, name=f"chat {s.request_model}",
        kind=Span.SPAN_KIND_CLIENT, start_time_unix_nano=start_ns, end_time_unix_nano=end_ns,
        attributes=[key_value(k, v) for k, v in attrs.items()],
        status=Status(code=Status.STATUS_CODE_OK if ok else Status.STATUS_CODE_ERROR),
    )  # fmt: skip
    if s.engine and ok:
        yield s.engine, "vllm", Span(
            trace_id=trace_id, span_id=rng.getrandbits(64).to_bytes(8, "big"), parent_span_id=client_id,
            name="llm_request", kind=Span.SPAN_KIND_SERVER, start_time_unix_nano=start_ns + 3_000_000,
            end_time_unix_nano=end_ns - 2_000_000,
            attributes=[key_value(k, v) for k, v in _engine_attributes(model, usage, seconds - 0.005).items()],
        )  # fmt: skip


def rejected_spans(rng: random.Random, day_start: datetime, latest: datetime) -> Iterator[tuple[str, str, Span]]:
    """A legacy batch job whose old SDK reports a negative token count now and then: rejected, counted."""
    for _ in range(rng.choice((0, 1, 2, 3))):
        at = call_start(rng, day_start, BUSINESS_HOURS, latest)
        if at is None:
            continue
        start_ns = int(at.timestamp() * NS)
        attrs = {
            "gen_ai.operation.name": "chat", "gen_ai.provider.name": "openai", "gen_ai.request.model": "gpt-4o-mini",
            "gen_ai.usage.input_tokens": -1, "gen_ai.usage.output_tokens": 12, "app.team": "finance-ops",
        }  # fmt: skip
        yield "legacy-batch", "otel", Span(
            trace_id=rng.getrandbits(128).to_bytes(16, "big"), span_id=rng.getrandbits(64).to_bytes(8, "big"),
            name="chat gpt-4o-mini", kind=Span.SPAN_KIND_CLIENT, start_time_unix_nano=start_ns,
            end_time_unix_nano=start_ns + NS, attributes=[key_value(k, v) for k, v in attrs.items()],
        )  # fmt: skip
