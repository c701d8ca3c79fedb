"""`breakeven demo`: a month of hybrid LLM traffic, sent through the real OTLP path into a fresh
database, with the config that prices it, so every dashboard page has something to show.

The fleet (per UTC day, before weekday and growth factors):
- frontier: support-bot on Anthropic (Claude Sonnet agent with long contexts, Haiku triage),
  checkout-api on an OpenAI fine-tune (price book entry), growth-email on gpt-4o (whose
  version changes mid-month) and o4-mini (reasoning tokens);
- managed: Together for doc-pipeline's overflow and search's bursts, and a model Together
  sells that no price list knows (unpriced, on purpose: Data quality shows it);
- self-hosted: two vLLM pools. llama-70b-fp8 (a rented H100) serves doc-pipeline's nightly
  long-document batch and support drafts, a little above its break-even; llama-8b-owned (an
  L40S bought last year) serves search's reranking, far under its break-even.
Spans come in the dialects real emitters speak (OTel GenAI current and legacy, OpenLLMetry,
OpenInference, vLLM's engine spans nested under the client's, breakeven.* attributes), with
HTTP parents that are dropped, a few rejected spans and failed calls. Each pool's box also
reports GPU utilization every 5 minutes as OTLP metrics, following its traffic: the 70B box
as hw.gpu.utilization (and vLLM's KV cache usage), the 8B box as DCGM_FI_DEV_GPU_UTIL with
DCGM's labels, as an OpenTelemetry Collector scraping a DCGM exporter forwards it.

How they travel: OTLP/HTTP protobuf bodies built with opentelemetry-proto (a runtime
dependency already) and POSTed with the standard library to a collector started in-process
on free loopback ports. That is the receiver, decoder, normalizer, merge, pricer and writer
a real exporter reaches, without making the OTel SDK's exporter (and `requests`) a runtime
dependency for one command, and with every span's timestamp set exactly.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import hashlib
import http.client
import json
import random
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import ExportMetricsServiceRequest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, ArrayValue, InstrumentationScope, KeyValue
from opentelemetry.proto.metrics.v1.metrics_pb2 import Gauge, Metric, NumberDataPoint, ResourceMetrics, ScopeMetrics
from opentelemetry.proto.resource.v1.resource_pb2 import Resource
from opentelemetry.proto.trace.v1.trace_pb2 import ResourceSpans, ScopeSpans, Span, Status

CONFIG_NAME = "breakeven.toml"
DB_NAME = "breakeven-demo.duckdb"
BATCH_SPANS = 1500
SENDERS = 3
NS = 1_000_000_000
DAY = timedelta(days=1)
GPU_SLOT_SECONDS = 300  # each box reports its GPU utilization every 5 minutes

SCOPES = {
    "otel": ("opentelemetry.instrumentation.openai_v2", "2.1b0"),
    "otel_legacy": ("opentelemetry.instrumentation.openai_v2", "2.0b0"),
    "openllmetry": ("opentelemetry.instrumentation.anthropic", "0.62.4"),
    "openinference": ("openinference.instrumentation.openai", "0.1.66"),
    "vllm": ("vllm.tracing", "0.11.0"),
    "http": ("opentelemetry.instrumentation.fastapi", "0.56b0"),
}
BUSINESS_HOURS = [1, 1, 1, 1, 1, 2, 3, 5, 8, 10, 10, 10, 9, 10, 10, 10, 9, 8, 6, 4, 3, 2, 1, 1]
NIGHT_BATCH = [10, 10, 10, 10, 8, 6, 2, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 3, 6]
FAQ = [
    "How do I reset my password?", "Where is my refund?", "Can I change my plan mid-cycle?",
    "Why was my card declined?", "How do I export my invoices?", "Is there an API rate limit?",
    "How do I add a team member?", "Do you support SSO?", "How do I cancel?", "What regions do you host in?",
    "Can I get a VAT invoice?", "Why did my bill go up?",
]  # fmt: skip


@dataclass(frozen=True)
class Stream:
    """One kind of call a service makes: who, what, how many a day, how big, in which dialect."""

    service: str
    team: str
    feature: str
    provider: str  # what the client's instrumentation names
    address: str
    port: int
    request_model: str
    response_model: Callable[[float], str]  # share of the month elapsed -> version that answered
    per_day: int
    input_tokens: tuple[int, int]  # uniform range, cache reads included
    output_tokens: tuple[int, int]
    dialect: str
    hours: list[int] = field(default_factory=lambda: BUSINESS_HOURS)
    weekend: float = 0.55  # share of a weekday's traffic on Saturdays and Sundays
    growth: float = 0.0  # per day, compounding, centred on the middle of the month
    cache_share: float = 0.0  # share of calls that read part of the prompt from a cache
    reasoning: tuple[int, int] | None = None
    engine: str | None = None  # the vLLM service whose engine span nests under the client's
    extra: dict[str, Any] = field(default_factory=dict)  # attributes the app adds (breakeven.*)
    prompts: int = 0  # calls draw from this many distinct prompts (repeats: caching opportunities)
    prompt_share: float = 0.0
    prompt_by_hash: bool = False  # the app sends breakeven.prompt_hash rather than content
    errors: float = 0.0
    http_parent: float = 0.0


def _fixed(name: str) -> Callable[[float], str]:
    return lambda _share: name


def _gpt4o(share: float) -> str:
    return "gpt-4o-2024-08-06" if share < 0.5 else "gpt-4o-2024-11-20"


POOL_70B = "meta-llama/Llama-3.3-70B-Instruct-FP8"
POOL_8B = "meta-llama/Llama-3.1-8B-Instruct"
# Each pool's box: (capacity as the config measures it: input tps, output tps), what it reports.
POOL_BOXES = {
    "llama-70b-fp8": ((12_000, 1_500), "gpu-70b-1"),
    "llama-8b-owned": ((20_000, 2_500), "gpu-8b-1"),
}
STREAMS = (
    Stream("support-bot", "support", "answer", "anthropic", "api.anthropic.com", 443, "claude-sonnet-4-5",
           _fixed("claude-sonnet-4-5-20250929"), 340, (40_000, 140_000), (800, 2_500), "openllmetry",
           growth=0.012, cache_share=0.5, errors=0.01, http_parent=0.1, prompts=40, prompt_share=0.15),
    Stream("support-bot", "support", "triage", "anthropic", "api.anthropic.com", 443, "claude-haiku-4-5",
           _fixed("claude-haiku-4-5-20251001"), 120, (2_000, 5_000), (50, 300), "openllmetry",
           prompts=len(FAQ), prompt_share=0.6, errors=0.01),
    Stream("support-bot", "support", "draft", "openai", "vllm-llama70b.internal", 8000, "llama-3.3-70b",
           _fixed(POOL_70B), 80, (5_000, 12_000), (300, 900), "otel", engine="vllm-llama70b"),
    Stream("doc-pipeline", "platform", "summarize", "openai", "vllm-llama70b.internal", 8000, "llama-3.3-70b",
           _fixed(POOL_70B), 340, (70_000, 125_000), (1_000, 3_000), "openinference", hours=NIGHT_BATCH,
           weekend=1.0, engine="vllm-llama70b"),
    Stream("doc-pipeline", "platform", "summarize-overflow", "together", "api.together.xyz", 443,
           "meta-llama/Llama-3.3-70B-Instruct-Turbo", _fixed("meta-llama/Llama-3.3-70B-Instruct-Turbo"), 30,
           (20_000, 60_000), (500, 1_500), "otel", hours=NIGHT_BATCH, weekend=1.0),
    Stream("checkout-api", "payments", "fraud-explain", "openai", "api.openai.com", 443,
           "ft:gpt-4o-mini-2024-07-18:acme::b7x2k9", _fixed("ft:gpt-4o-mini-2024-07-18:acme::b7x2k9"), 100,
           (1_500, 3_000), (100, 300), "otel_legacy", cache_share=0.3, prompts=30, prompt_share=0.5,
           prompt_by_hash=True, errors=0.005),
    Stream("growth-email", "growth", "copywriting", "openai", "api.openai.com", 443, "gpt-4o", _gpt4o, 60,
           (3_000, 8_000), (800, 2_000), "otel", weekend=0.2, prompts=20, prompt_share=0.5, growth=0.02),
    Stream("growth-email", "growth", "campaign-plan", "openai", "api.openai.com", 443, "o4-mini",
           _fixed("o4-mini-2025-04-16"), 20, (2_000, 6_000), (1_500, 6_000), "otel", weekend=0.2,
           reasoning=(800, 4_000)),
    Stream("search-rerank", "search", "rerank-explain", "openai", "10.0.0.7", 8000, POOL_8B, _fixed(POOL_8B), 150,
           (3_000, 8_000), (100, 300), "otel", extra={"breakeven.provider": "vllm", "breakeven.quantization": "bf16"}),
    Stream("search-rerank", "search", "burst", "together", "api.together.xyz", 443,
           "meta-llama/Meta-Llama-3.1-8B-Instruct-Turbo", _fixed("meta-llama/Meta-Llama-3.1-8B-Instruct-Turbo"), 40,
           (3_000, 8_000), (100, 300), "otel"),
    Stream("research-agent", "labs", "experiments", "together", "api.together.xyz", 443, "deepseek-ai/DeepSeek-V3",
           _fixed("deepseek-ai/DeepSeek-V3"), 8, (5_000, 30_000), (500, 3_000), "openinference", weekend=0.1),
)  # fmt: skip


def config_text(db_url: str, port: int, first_day: date) -> str:
    """The config that prices the demo: price book, discount, FX, the two pools, a candidate box, alerts."""
    fx_from = first_day - timedelta(days=365)
    fx_change = first_day + timedelta(days=12)
    bought = first_day - timedelta(days=200)
    return f"""\
# breakeven demo: the hybrid fleet `breakeven demo` generated traffic for.
# Serve it with: breakeven serve --config {CONFIG_NAME} (from this directory, or give the path).
# Money is USD unless a key says otherwise; token rates are USD per million tokens.

db = "{db_url}"
http_port = {port}

[attributes]
team = ["app.team"]              # our services tag calls with app.team and app.feature
feature = ["app.feature"]

[backend_classes]
"vllm-llama70b.internal" = "self_hosted"
"10.0.0.7" = "self_hosted"

[pricing]
currency = "GBP"
allocation_period = "day"

[[pricing.prices]]             # checkout-api's fine-tune: no public price list knows it
provider = "openai"
model = "ft:gpt-4o-mini-2024-07-18:acme::b7x2k9"
effective_from = {fx_from.isoformat()}
input = 0.30
cache_read = 0.15
output = 1.20

[[pricing.discounts]]          # enterprise agreement: 8% off the Anthropic bill
provider = "anthropic"
percent = 8
effective_from = {fx_from.isoformat()}

[[pricing.fx]]
currency = "GBP"
date = {fx_from.isoformat()}
per_usd = 0.79

[[pricing.fx]]
currency = "GBP"
date = {fx_change.isoformat()}
per_usd = 0.76

[[pricing.fx]]
currency = "EUR"
date = {fx_from.isoformat()}
per_usd = 0.92

[[pricing.pools]]              # one rented H100 serving Llama 3.3 70B in FP8 (vLLM)
name = "llama-70b-fp8"
boxes = 1
rent_per_month = 700
ops_per_month = 100
variable_per_million = 0.02
capacity = {{ input_tps = 12000, output_tps = 1500 }}
match = {{ model = "{POOL_70B}" }}
alternative = {{ provider = "together", model = "meta-llama/Llama-3.3-70B-Instruct-Turbo" }}

[pricing.pools.gpu_metrics]    # its GPU utilization, pushed over OTLP by the box's agent (hw.gpu.utilization)
match = {{ "host.name" = "gpu-70b-*" }}

[[pricing.pools]]              # one L40S we bought, serving Llama 3.1 8B for search
name = "llama-8b-owned"
boxes = 1
purchase_price = 9000
amortization_months = 36
purchased_on = {bought.isoformat()}
ops_per_month = 150
power = {{ kw = 0.35, price_per_kwh = 0.18, pue = 1.4 }}
capacity = {{ input_tps = 20000, output_tps = 2500 }}
match = {{ server_address = "10.0.0.7" }}
alternative = {{ provider = "together", model = "meta-llama/Meta-Llama-3.1-8B-Instruct-Turbo" }}

[pricing.pools.gpu_metrics]    # DCGM exporter's series, forwarded over OTLP by an OpenTelemetry Collector
match = {{ Hostname = "gpu-8b-*" }}
# scrape = ["http://gpu-8b-1:9400/metrics"]   # or let breakeven scrape the exporter itself

[[pricing.candidates]]         # what a new pool would cost, for traffic we still buy
name = "h100-rented"
rent_per_month = 1400
power = {{ kw = 0.70, price_per_kwh = 0.25, pue = 1.3 }}
capacity = {{ input_tps = 12000, output_tps = 1500 }}
max_utilization = 0.6

[alerts]
interval = "1m"

[[alerts.rules]]
name = "PoolBelowBreakEven"
kind = "pool_below_breakeven"
window = "7d"
margin = 0.01
for = "0s"

[[alerts.rules]]
name = "UnpricedTraffic"
kind = "unpriced_traffic"
window = "7d"
"""


# ---------------------------------------------------------------- spans


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


@dataclass(frozen=True, slots=True)
class Usage:
    """One call's tokens: prompt (cache reads included, as every dialect here reports it)."""

    prompt: int
    cache_read: int
    output: int
    reasoning: int


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


@dataclass
class Plan:
    """The month to send: request bodies, and what they hold."""

    bodies: list[bytes] = field(default_factory=list)
    calls: int = 0
    spans: int = 0
    # pool -> GPU slot start (s since the epoch) -> busy seconds its calls started then (at the config's capacity)
    busy: dict[str, dict[int, float]] = field(default_factory=dict)
    metric_bodies: list[bytes] = field(default_factory=list)
    metric_points: int = 0


def _day_factor(s: Stream, day: date, index: int, days: int) -> float:
    weekend = s.weekend if day.weekday() >= 5 else 1.0
    return weekend * (1 + s.growth) ** (index - days / 2)


def _start(rng: random.Random, day_start: datetime, hours: list[int], latest: datetime) -> datetime | None:
    hour = rng.choices(range(24), weights=hours)[0]
    at = day_start + timedelta(hours=hour, seconds=rng.uniform(0, 3600))
    return at if at < latest else None


def plan_month(days: int, now: datetime, seed: int = 7) -> Plan:
    """Every span of the demo month ending at `now`, cut into OTLP/HTTP request bodies."""
    rng = random.Random(seed)
    today = datetime.combine(now.date(), datetime.min.time(), UTC)
    latest = now - timedelta(minutes=2)
    plan, batch = Plan(), Batch()

    def flush() -> None:
        nonlocal batch
        if batch.count:
            plan.bodies.append(batch.body())
            plan.spans += batch.count
            batch = Batch()

    for index in range(days):
        day_start = today - timedelta(days=days - 1 - index)
        share = index / max(1, days - 1)
        for s in STREAMS:
            mean = s.per_day * _day_factor(s, day_start.date(), index, days) * rng.uniform(0.85, 1.15)
            for _ in range(max(0, round(mean))):
                at = _start(rng, day_start, s.hours, latest)
                if at is not None:
                    served = lambda usage, s=s, at=at: _add_busy(plan, s, usage, at)  # noqa: E731
                    for service, dialect, span in _call_spans(rng, s, at, share, served):
                        batch.add(service, dialect, span)
                    plan.calls += 1
            if batch.count >= BATCH_SPANS:
                flush()
        for service, dialect, span in _rejected_spans(rng, day_start, latest):
            batch.add(service, dialect, span)
    flush()
    _plan_gpu_metrics(plan, random.Random(seed + 1), today - timedelta(days=days - 1), latest)
    return plan


def _pool_of(s: Stream) -> str | None:
    if s.response_model(0) == POOL_70B:
        return "llama-70b-fp8"
    return "llama-8b-owned" if s.address == "10.0.0.7" else None


def _add_busy(plan: Plan, s: Stream, usage: Usage, at: datetime) -> None:
    """The box-seconds a served pool call's tokens take, at the config's capacity, in its GPU slot."""
    pool = _pool_of(s)
    if pool is None:
        return
    (input_tps, output_tps), _ = POOL_BOXES[pool]
    slot = int(at.timestamp()) // GPU_SLOT_SECONDS * GPU_SLOT_SECONDS
    by_slot = plan.busy.setdefault(pool, {})
    by_slot[slot] = by_slot.get(slot, 0.0) + usage.prompt / input_tps + usage.output / output_tps


def _plan_gpu_metrics(plan: Plan, rng: random.Random, first: datetime, latest: datetime) -> None:
    """Every 5 minutes, each pool's GPU utilization as its box reports it: a day's points per export.

    A GPU counts a sample period busy whenever a kernel runs, so it reads above the token-based
    busy share (batches keep it occupied between tokens), plus an idle floor and some noise.
    """
    slot = int(first.timestamp())
    end = int(latest.timestamp())
    day_points: dict[str, list[tuple[int, float, float]]] = {pool: [] for pool in POOL_BOXES}
    while slot < end:
        for pool, points in day_points.items():
            busy = plan.busy.get(pool, {}).get(slot, 0.0) / GPU_SLOT_SECONDS
            gpu = min(0.99, 0.02 + 1.5 * busy + rng.uniform(0, 0.03))
            kv = min(0.97, 0.05 + 2.2 * busy + rng.uniform(0, 0.05))
            points.append((slot * NS, gpu, kv))
        slot += GPU_SLOT_SECONDS
        if slot % 86_400 == 0 or slot >= end:
            plan.metric_bodies.append(_gpu_body(day_points))
            plan.metric_points += 2 * len(day_points["llama-70b-fp8"]) + len(day_points["llama-8b-owned"])
            day_points = {pool: [] for pool in POOL_BOXES}


def _gpu_body(day_points: dict[str, list[tuple[int, float, float]]]) -> bytes:
    """One ExportMetricsServiceRequest: the 70B box's hw.gpu.utilization and KV cache, the 8B box's DCGM gauge."""

    def gauge(name: str, unit: str, points: list[NumberDataPoint]) -> Metric:
        return Metric(name=name, unit=unit, gauge=Gauge(data_points=points))

    def point(at_ns: int, value: float | int, **attrs: str) -> NumberDataPoint:
        kvs = [key_value(k, v) for k, v in attrs.items()]
        if isinstance(value, int):
            return NumberDataPoint(time_unix_nano=at_ns, as_int=value, attributes=kvs)
        return NumberDataPoint(time_unix_nano=at_ns, as_double=round(value, 4), attributes=kvs)

    big, small = day_points["llama-70b-fp8"], day_points["llama-8b-owned"]
    dcgm = {"gpu": "0", "UUID": "GPU-5e2b7c1a-8d3f-4b6e-9a10-2c4d6e8f0a1b", "device": "nvidia0",
            "modelName": "NVIDIA L40S", "Hostname": "gpu-8b-1"}  # fmt: skip
    boxes = [
        (
            {"host.name": "gpu-70b-1", "service.name": "gpu-agent"},
            [
                gauge("hw.gpu.utilization", "1", [point(t, gpu, **{"hw.id": "gpu-0"}) for t, gpu, _ in big]),
                gauge("vllm:kv_cache_usage_perc", "", [point(t, kv, engine="0") for t, _, kv in big]),
            ],
        ),
        (
            {"service.name": "dcgm-exporter", "server.address": "gpu-8b-1"},
            [gauge("DCGM_FI_DEV_GPU_UTIL", "", [point(t, round(gpu * 100), **dcgm) for t, gpu, _ in small])],
        ),
    ]
    scope = InstrumentationScope(name="breakeven.demo")
    request = ExportMetricsServiceRequest(
        resource_metrics=[
            ResourceMetrics(
                resource=Resource(attributes=[key_value(k, v) for k, v in resource.items()]),
                scope_metrics=[ScopeMetrics(scope=scope, metrics=metrics)],
            )
            for resource, metrics in boxes
        ]
    )
    return request.SerializeToString()


def _call_spans(
    rng: random.Random, s: Stream, at: datetime, share: float, served: Callable[[Usage], None] = lambda usage: None
) -> Iterator[tuple[str, str, Span]]:
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


def _rejected_spans(rng: random.Random, day_start: datetime, latest: datetime) -> Iterator[tuple[str, str, Span]]:
    """A legacy batch job whose old SDK reports a negative token count now and then: rejected, counted."""
    for _ in range(rng.choice((0, 1, 2, 3))):
        at = _start(rng, day_start, BUSINESS_HOURS, latest)
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


# ---------------------------------------------------------------- sending


def send(port: int, bodies: list[bytes], senders: int = SENDERS, path: str = "/v1/traces") -> None:
    """POST every body to `path` (/v1/traces); 200 means committed. Retries 429/503 as an exporter would."""

    def post_all(chunk: list[bytes]) -> None:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
        try:
            for body in chunk:
                for attempt in range(20):
                    conn.request("POST", path, body, {"Content-Type": "application/x-protobuf"})
                    reply = conn.getresponse()
                    reply.read()
                    if reply.status == 200:
                        break
                    if reply.status not in (429, 503) or attempt == 19:
                        raise RuntimeError(f"collector answered {reply.status} to a demo export")
                    time.sleep(float(reply.getheader("Retry-After") or 1))
        finally:
            conn.close()

    chunks = [bodies[i::senders] for i in range(senders)]
    with concurrent.futures.ThreadPoolExecutor(senders) as pool:
        for future in [pool.submit(post_all, chunk) for chunk in chunks if chunk]:
            future.result()


# ---------------------------------------------------------------- the command


def add_parser(sub: Any) -> None:
    """The `demo` subcommand's arguments."""
    demo = sub.add_parser(
        "demo",
        help="generate a month of hybrid LLM traffic into a fresh database, with its config",
        description="Send a realistic month of hybrid traffic (frontier, managed, two self-hosted vLLM pools) "
        "through the real OTLP path into a fresh database, write the matching config next to it, and print the "
        "command that serves it.",
    )
    demo.add_argument("--out", default="breakeven-demo", help="directory for the config and DuckDB file")
    demo.add_argument("--db", help=f"SQLAlchemy URL of an empty database (default: duckdb:///OUT/{DB_NAME})")
    demo.add_argument("--days", type=int, default=30, help="days of traffic, ending now (default 30)")
    demo.add_argument("--port", type=int, default=8000, help="dashboard port the config serves on (8000)")
    demo.add_argument("--seed", type=int, default=7, help="random seed (the same seed, the same month)")
    demo.add_argument("--force", action="store_true", help="replace an existing demo database")


def _fail(message: str) -> int:
    print(f"breakeven: error: {message}", file=sys.stderr)
    return 2


def run(args: argparse.Namespace) -> int:
    """Generate, send, write the config; print how to serve it. 2 on bad arguments."""
    import sqlalchemy as sa
    from breakeven.collector.app import Collector
    from breakeven.collector.config.settings import SettingsError, load_settings

    if not 1 <= args.days <= 366:
        return _fail(f"--days: between 1 and 366, got {args.days}")
    out = Path(args.out).resolve()
    out.mkdir(parents=True, exist_ok=True)
    db_path = out / DB_NAME
    db_url = args.db or f"duckdb:///{db_path}"
    if args.db is None and db_path.exists():
        if not args.force:
            return _fail(f"{db_path} exists: pass --force to replace it, or --out another directory")
        db_path.unlink()
        Path(f"{db_path}.wal").unlink(missing_ok=True)
    now = datetime.now(UTC)
    first_day = (now - timedelta(days=args.days - 1)).date()
    config = out / CONFIG_NAME
    config.write_text(config_text(db_url, args.port, first_day), encoding="utf-8")
    started = time.monotonic()
    try:
        settings = load_settings(
            {"config": str(config), "otlp_http_port": 0, "otlp_grpc_port": 0, "http_port": 0, "log_level": "warning"},
            environ={},
        )
        collector = Collector(settings)
        collector.start()
    except SettingsError as exc:
        return _fail(str(exc))
    try:
        with collector.engine.connect() as conn:
            existing = conn.execute(sa.text("SELECT count(*) FROM calls")).scalar_one()
        if existing:
            return _fail(f"{db_url} already holds {existing:,} calls: the demo needs an empty database")
        plan = plan_month(args.days, now, args.seed)
        send(collector.otlp_http_port, plan.bodies)
        send(collector.otlp_http_port, plan.metric_bodies, path="/v1/metrics")
    finally:
        collector.stop()
    elapsed = time.monotonic() - started
    shown = _relative(config)
    print(
        f"breakeven demo: {plan.calls:,} calls ({plan.spans:,} spans) and {plan.metric_points:,} GPU metric points "
        f"over {args.days} days, sent over OTLP/HTTP into {db_url} in {elapsed:.1f} s\n"
        f"config: {shown}\n\n"
        f"serve it:\n  breakeven serve --config {shown}\n"
        f"then open http://127.0.0.1:{args.port}/",
        flush=True,
    )
    return 0


def _relative(path: Path) -> str:
    try:
        return str(path.relative_to(Path.cwd()))
    except ValueError:
        return str(path)
