"""Hostile input: no body makes the decoders, the normalizer or the merge raise anything
but a clean answer (PayloadError -> 400, TooLarge -> 413, a per-span Rejection), and a
running collector never answers 5xx.

Structured exports are built from the attribute names every dialect really uses (so
the normalizer's paths are reached, not just the decoder's), mixed with random names
and every AnyValue kind: nested arrays and kvlists, huge and negative counts, NaN and
infinities, empty and zero ids, spans that end before they start, long and
multi-byte strings around the length limit, deep JSON inside attribute strings.

By default (about 15 s) the in-process tests run; the one against a running collector,
over HTTP and gRPC, is marked slow.
"""

from __future__ import annotations

import base64
import contextlib
import gzip
import json
import math
import zlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import grpc
import httpx
import pytest
from google.protobuf import json_format
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2_grpc
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import (
    AnyValue,
    ArrayValue,
    InstrumentationScope,
    KeyValue,
    KeyValueList,
)
from opentelemetry.proto.logs.v1.logs_pb2 import LogRecord, ResourceLogs, ScopeLogs
from opentelemetry.proto.resource.v1.resource_pb2 import Resource
from opentelemetry.proto.trace.v1.trace_pb2 import ResourceSpans, ScopeSpans, Span, Status

from breakeven.collector.calls.merge import calls_of_trace
from breakeven.collector.config.settings import load_settings
from breakeven.collector.ingest.decode import count_spans, decode_traces
from breakeven.collector.ingest.exports import TooLarge, limits_of, logs_outcome, metrics_outcome, traces_outcome
from breakeven.collector.ingest.parse import PayloadError, parse_logs, parse_metrics, parse_traces
from breakeven.collector.normalize import conventions as c
from breakeven.collector.normalize import redact
from breakeven.collector.price.ledger import ledger_pricer
from breakeven.collector.records import TOKEN_FIELDS, LlmSpan
from breakeven.collector.store.rows import call_columns, span_columns
from tests.conftest import RunningCollector, running_collector

pytestmark = pytest.mark.slow  # seconds per test: not the fast part

SETTINGS = load_settings({}, environ={})
LIMITS = limits_of(SETTINGS)
PRICE = ledger_pricer(SETTINGS.pricing)
PROTOBUF = "application/x-protobuf"
JSON = "application/json"
NOW_NS = 1_790_000_000_000_000_000
_HEALTH = [HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.large_base_example]
FUZZ = settings(max_examples=200, deadline=None, suppress_health_check=_HEALTH)
# Whole exports take longer to draw than bytes do: fewer of them keep the suite near 20 s.
FUZZ_EXPORTS = settings(max_examples=120, deadline=None, suppress_health_check=_HEALTH)
# Every reason a span may be refused with; anything else is a new, undocumented answer.
REASONS = {
    "invalid_trace_id",
    "invalid_span_id",
    "invalid_time",
    "invalid_tokens",
    "too_many_attributes",
    "attribute_too_long",
}

# ---------------------------------------------------------------- strategies
# Strategies are built once, at module level: hypothesis spends most of its time on
# strategies made afresh inside composites, not on drawing.

CONTENT_KEYS = (
    *sorted(redact.CONTENT_KEYS),
    "gen_ai.prompt.0.role", "gen_ai.prompt.0.content", "gen_ai.prompt.1.content", "gen_ai.completion.0.content",
    "llm.input_messages.0.message.role", "llm.input_messages.0.message.content",
    "llm.input_messages.1.message.contents.0.message_content.text",
    "gen_ai.prompt." + "9" * 4400 + ".content",  # an index Python will not turn into an int
    "embedding.embeddings.0.embedding.vector",
)  # fmt: skip
TOKEN_KEYS = (
    *c.INPUT_TOKENS, *c.OUTPUT_TOKENS, *c.CACHE_READ_TOKENS, *c.CACHE_WRITE_TOKENS, *c.REASONING_TOKENS,
    *c.TOTAL_TOKENS,
)  # fmt: skip
OTHER_KEYS = tuple(
    dict.fromkeys(
        [
            *c.PROVIDER, *c.REQUEST_MODEL, *c.RESPONSE_MODEL, *c.RESPONSE_ID, *c.OPERATION, *c.STREAMING,
            *(name for names in c.FIELD_DEFAULTS.values() for name in names),
            "openinference.span.kind", "traceloop.span.kind", "traceloop.entity.name", "gen_ai.sdk.version",
            "gen_ai.latency.e2e", "gen_ai.latency.time_in_queue", "error.type", "exception.type",
            "telemetry.sdk.name", "breakeven.team", "breakeven.feature", "breakeven.prompt_hash",
            "breakeven.quantization", "breakeven.backend", "breakeven.provider", "breakeven.request_model",
            "breakeven.response_model", "breakeven.environment", "breakeven.streaming", "litellm.call_id",
        ]
    )
)  # fmt: skip
WORDS = (
    "openai", "anthropic", "gcp.gemini", "vllm", "sglang", "tgi", "together", "aws.bedrock", "azure.ai.openai",
    "chat", "text_completion", "embeddings", "rerank", "invoke_agent", "execute_tool", "workflow", "LLM",
    "EMBEDDING", "CHAIN", "llm", "gpt-4o", "gpt-4o-2024-08-06", "claude-sonnet-4-5-20250929",
    "meta-llama/Llama-3.1-8B-Instruct-FP8", "models/gemini-2.5-pro", "true", "false", "TRUE", "", " ",
)  # fmt: skip
NUMBERISH = ("12", "-5", "--5", "²", "٣", "1e3", " 7 ", "1" * 5000, "NaN", "", "0x10", "+3", "1_000")
ADDRESSES = (
    "api.openai.com", "api.together.xyz", "https://api.openai.com/v1/", "http://[::1", "http://h:99999/",
    "http://h:port/", "http://", "://", "10.0.0.7", "[::1]", "VLLM-LLAMA.internal", "x" * 300,
)  # fmt: skip
DEEP_JSON = ("[" * 3000, "{" * 3000, '{"a":' * 3000, "[" * 900 + "]" * 900, '{"model":' * 900 + "1" + "}" * 900)
JSON_TEXTS = (
    '{"model": "gpt-4o", "stream": true}', '{"model": ["x"], "stream": "yes"}', '{"model": null}', "[1, 2]",
    '[{"role": "user", "content": "hi"}]', '{"messages": [{"role": "user", "parts": [{"type": "text"}]}]}',
    '[{"role": 5, "parts": {"x": NaN}}]', '[{"role": "user", "content": [{"text": {"content": 1}}]}]',
    '{"role": "system", "text": "be brief"}', "not json", *DEEP_JSON,
)  # fmt: skip
INT64 = st.one_of(
    st.integers(-(2**63), 2**63 - 1),
    st.sampled_from([0, 1, -1, 12, 1200, 100_000_000, 100_000_001, 2**53 + 1, 2**63 - 1, -(2**63)]),
)
DOUBLES = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from([math.nan, math.inf, -math.inf, 1e308, 0.25, 12.0, -0.0, 1e-300, 12.5]),
)
LONG = st.one_of(  # around the value limit, in bytes: 1-, 2-, 3- and 4-byte characters
    st.integers(0, 20_000).map(lambda n: "m" * n),
    st.tuples(st.sampled_from(["é", "中", "😀", "\x00"]), st.integers(0, 6_000)).map(lambda t: t[0] * t[1]),
)
STRINGS = st.one_of(st.text(max_size=24), st.sampled_from(WORDS), LONG)
KEYS = st.one_of(
    st.sampled_from(OTHER_KEYS),
    st.sampled_from(TOKEN_KEYS),
    st.sampled_from(CONTENT_KEYS),
    st.text(max_size=16),
    st.integers(0, 20_000).map(lambda n: "k" * n),
)


def _array(values: list[AnyValue]) -> AnyValue:
    return AnyValue(array_value=ArrayValue(values=values))


def _kvlist(pairs: list[tuple[str, AnyValue]]) -> AnyValue:
    return AnyValue(kvlist_value=KeyValueList(values=[KeyValue(key=k, value=v) for k, v in pairs]))


def _nested(depth: int) -> AnyValue:
    value = AnyValue(string_value="leaf")
    for i in range(depth):
        value = _array([value]) if i % 2 else _kvlist([("k", value)])
    return value


def _text_value(s: str) -> AnyValue:
    return AnyValue(string_value=s)


LEAVES = st.one_of(
    STRINGS.map(_text_value),
    INT64.map(lambda i: AnyValue(int_value=i)),
    DOUBLES.map(lambda d: AnyValue(double_value=d)),
    st.booleans().map(lambda b: AnyValue(bool_value=b)),
    st.binary(max_size=24).map(lambda b: AnyValue(bytes_value=b)),
    st.just(AnyValue()),  # no value set at all
)
CONTAINERS = st.one_of(
    st.lists(LEAVES, max_size=4).map(_array),
    st.lists(st.tuples(KEYS, LEAVES), max_size=3).map(_kvlist),
    st.lists(st.lists(LEAVES, max_size=3).map(_array), max_size=3).map(_array),
    st.lists(st.tuples(KEYS, st.lists(LEAVES, max_size=2).map(_array)), max_size=2).map(_kvlist),
    st.integers(0, 700).map(lambda n: _array([AnyValue(int_value=i) for i in range(n)])),  # long arrays
    st.integers(0, 30).map(_nested),  # deep ones (protobuf builds and parses at most 100 message levels)
)
# Mostly scalars, as in real spans.
ANY_VALUES = st.one_of(LEAVES, LEAVES, LEAVES, CONTAINERS)
# Values shaped for what a key means, so the normalizer's paths are reached with hostile data.
COUNTS = st.one_of(
    INT64.map(lambda i: AnyValue(int_value=i)),
    DOUBLES.map(lambda d: AnyValue(double_value=d)),
    st.sampled_from(NUMBERISH).map(_text_value),
    st.integers(0, 10**9).map(lambda i: AnyValue(int_value=i)),
    st.integers(0, 10**6).map(lambda i: _text_value(str(i))),
)
CONTENT_VALUES = st.one_of(
    st.sampled_from(JSON_TEXTS).map(_text_value),
    STRINGS.map(_text_value),
    CONTAINERS,
    st.lists(st.sampled_from(JSON_TEXTS).map(_text_value), max_size=3).map(_array),
)
WORD_VALUES = st.one_of(st.sampled_from(WORDS).map(_text_value), ANY_VALUES)


def _kv(key: str, value: AnyValue) -> KeyValue:
    return KeyValue(key=key, value=value)


KEY_VALUES = st.one_of(
    st.builds(_kv, st.sampled_from(TOKEN_KEYS), COUNTS),
    st.builds(_kv, st.sampled_from(CONTENT_KEYS), CONTENT_VALUES),
    st.builds(_kv, st.sampled_from(OTHER_KEYS), WORD_VALUES),
    st.builds(_kv, st.sampled_from(c.SERVER_ADDRESS), st.sampled_from(ADDRESSES).map(_text_value)),
    st.builds(_kv, st.sampled_from(c.SERVER_PORT), st.one_of(COUNTS, ANY_VALUES)),
    st.builds(_kv, st.sampled_from(c.TTFT_SECONDS), st.one_of(DOUBLES.map(lambda d: AnyValue(double_value=d)), COUNTS)),
    st.builds(_kv, st.sampled_from(c.INVOCATION_PARAMETERS), st.one_of(st.sampled_from(JSON_TEXTS).map(_text_value), CONTAINERS)),
    st.builds(_kv, KEYS, ANY_VALUES),
)  # fmt: skip
ATTRIBUTES = st.one_of(
    st.lists(KEY_VALUES, max_size=8),
    st.lists(KEY_VALUES, max_size=8),
    st.integers(250, 270).map(lambda n: [KeyValue(key=f"x.{i}", value=AnyValue(int_value=i)) for i in range(n)]),
)
EVENT_NAMES = st.one_of(
    st.sampled_from([*c.FIRST_TOKEN_EVENTS, *sorted(redact.CONTENT_EVENTS), "exception"]), st.text(max_size=12)
)
EVENT_DRAFTS = st.one_of(
    st.lists(st.tuples(EVENT_NAMES, st.integers(-(10**9), 10**10), st.lists(KEY_VALUES, max_size=2)), max_size=3),
    st.integers(100, 300).map(lambda n: [("llm.content.completion.chunk", i, []) for i in range(n)]),  # very many
)
SCOPES = st.one_of(
    st.sampled_from(
        [
            "opentelemetry.instrumentation.openai_v2",
            "openinference.instrumentation.openai",
            "opentelemetry.instrumentation.openai.v1",
            "openlit.instrumentation.openai",
            "openlit.instrumentation.",
            "vllm.tracing",
            "sglang",
            "text_generation_router",
            "litellm",
            "",
        ]
    ),
    st.text(max_size=20),
    LONG,
)
TRACE_IDS = [bytes([i]) * 16 for i in range(1, 4)]
SPAN_IDS = [bytes([i]) * 8 for i in range(1, 7)]
TRACE_ID_VALUES = st.one_of(st.sampled_from(TRACE_IDS), st.sampled_from([b"", b"\0" * 16]), st.binary(max_size=17))
SPAN_ID_VALUES = st.one_of(st.sampled_from(SPAN_IDS), st.sampled_from([b"", b"\0" * 8]), st.binary(max_size=9))
PARENT_ID_VALUES = st.one_of(st.just(b""), st.sampled_from(SPAN_IDS), st.binary(max_size=9))
STARTS = st.one_of(st.integers(NOW_NS - 10**12, NOW_NS + 10**12), st.integers(0, 2**64 - 1), st.just(0))
DURATIONS = st.one_of(st.integers(-(10**9), 10**11), st.just(0))
KINDS = st.one_of(st.integers(0, 5), st.integers(-(2**31), 2**31 - 1))


def _clip(ns: int) -> int:
    return max(0, min(2**64 - 1, ns))


@st.composite
def spans(draw: st.DrawFn) -> Span:
    start = draw(STARTS)
    return Span(
        trace_id=draw(TRACE_ID_VALUES),
        span_id=draw(SPAN_ID_VALUES),
        parent_span_id=draw(PARENT_ID_VALUES),
        name=draw(STRINGS),
        kind=draw(KINDS),
        start_time_unix_nano=start,
        end_time_unix_nano=_clip(start + draw(DURATIONS)),
        attributes=draw(ATTRIBUTES),
        events=[
            Span.Event(name=name, time_unix_nano=_clip(start + delta), attributes=attrs)
            for name, delta, attrs in draw(EVENT_DRAFTS)
        ],
        status=Status(code=draw(st.integers(0, 2)), message=draw(STRINGS)),
    )


SCOPE_SPANS = st.builds(
    lambda name, version, spans: ScopeSpans(scope=InstrumentationScope(name=name, version=version), spans=spans),
    SCOPES,
    st.text(max_size=8),
    st.lists(spans(), min_size=1, max_size=3),
)
RESOURCE_SPANS = st.builds(
    lambda attrs, scopes: ResourceSpans(resource=Resource(attributes=attrs), scope_spans=scopes),
    st.lists(KEY_VALUES, max_size=4),
    st.one_of(st.lists(SCOPE_SPANS, min_size=1, max_size=1), st.lists(SCOPE_SPANS, min_size=1, max_size=2)),
)
# Mostly one resource and one scope; two of each now and then (state shared per resource).
TRACE_REQUESTS = st.one_of(
    st.lists(RESOURCE_SPANS, min_size=1, max_size=1), st.lists(RESOURCE_SPANS, min_size=1, max_size=2)
).map(lambda rs: ExportTraceServiceRequest(resource_spans=rs))
LOG_RECORDS = st.builds(
    lambda time, trace_id, span_id, name, body, attrs: LogRecord(
        time_unix_nano=time, trace_id=trace_id, span_id=span_id, event_name=name, body=body, attributes=attrs
    ),
    st.integers(0, 2**64 - 1),
    TRACE_ID_VALUES,
    SPAN_ID_VALUES,
    st.one_of(st.sampled_from(["gen_ai.client.inference.operation.details", "gen_ai.user.message"]), EVENT_NAMES),
    st.one_of(CONTENT_VALUES, ANY_VALUES),
    st.lists(KEY_VALUES, max_size=5),
)
LOG_REQUESTS = st.lists(LOG_RECORDS, min_size=1, max_size=4).map(
    lambda records: ExportLogsServiceRequest(resource_logs=[ResourceLogs(scope_logs=[ScopeLogs(log_records=records)])])
)


def otlp_json(request: Any) -> bytes:
    """A request as OTLP/JSON: proto3 JSON with hex trace and span ids."""
    doc = json_format.MessageToDict(request)

    def hexify(node: Any) -> None:
        if isinstance(node, dict):
            for key, value in node.items():
                if key in ("traceId", "spanId", "parentSpanId") and isinstance(value, str):
                    node[key] = base64.b64decode(value).hex()
                else:
                    hexify(value)
        elif isinstance(node, list):
            for item in node:
                hexify(item)

    hexify(doc)
    return json.dumps(doc).encode()


JSON_VALUES = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(), st.floats(), st.text(max_size=10)),
    lambda children: st.one_of(
        st.lists(children, max_size=3),
        st.dictionaries(
            st.one_of(
                st.text(max_size=8),
                st.sampled_from(["resourceSpans", "scopeSpans", "spans", "attributes", "value", "traceId", "key"]),
            ),
            children,
            max_size=3,
        ),
    ),
    max_leaves=8,
)


def _seed_bodies() -> list[bytes]:
    """A few valid exports of each kind, as protobuf and as OTLP/JSON, to mutate."""
    attrs = [
        _kv("gen_ai.operation.name", _text_value("chat")),
        _kv("gen_ai.provider.name", _text_value("openai")),
        _kv("gen_ai.request.model", _text_value("gpt-4o")),
        _kv("gen_ai.usage.input_tokens", AnyValue(int_value=1200)),
        _kv("gen_ai.usage.output_tokens", AnyValue(int_value=300)),
        _kv("gen_ai.input.messages", _text_value('[{"role": "user", "content": "hi"}]')),
        _kv("x.list", _array([_text_value("a"), AnyValue(double_value=1.5)])),
    ]
    span = Span(
        trace_id=TRACE_IDS[0],
        span_id=SPAN_IDS[0],
        parent_span_id=SPAN_IDS[1],
        name="chat gpt-4o",
        kind=3,
        start_time_unix_nano=NOW_NS,
        end_time_unix_nano=NOW_NS + 10**9,
        attributes=attrs,
        events=[Span.Event(name="gen_ai.user.message", time_unix_nano=NOW_NS, attributes=attrs[:2])],
    )
    traces = ExportTraceServiceRequest(
        resource_spans=[
            ResourceSpans(
                resource=Resource(attributes=[_kv("service.name", _text_value("svc"))]),
                scope_spans=[ScopeSpans(scope=InstrumentationScope(name="s", version="1"), spans=[span])],
            )
        ]
    )
    record = LogRecord(
        time_unix_nano=NOW_NS, trace_id=TRACE_IDS[0], span_id=SPAN_IDS[0], event_name="gen_ai.user.message"
    )
    record.body.string_value = "hello"
    logs = ExportLogsServiceRequest(resource_logs=[ResourceLogs(scope_logs=[ScopeLogs(log_records=[record])])])
    return [traces.SerializeToString(), otlp_json(traces), logs.SerializeToString(), otlp_json(logs)]


SEED_BODIES = st.sampled_from(_seed_bodies())


@st.composite
def mutated(draw: st.DrawFn) -> bytes:
    """A valid body with a few bytes flipped, cut or inserted."""
    data = bytearray(draw(SEED_BODIES))
    for _ in range(draw(st.integers(1, 4))):
        at = draw(st.integers(0, len(data)))
        op = draw(st.sampled_from(["flip", "cut", "insert"]))
        if op == "flip" and at < len(data):
            data[at] ^= draw(st.integers(1, 255))
        elif op == "cut":
            del data[at : at + draw(st.integers(1, 8))]
        else:
            data[at:at] = draw(st.binary(min_size=1, max_size=8))
    return bytes(data)


BODIES = st.one_of(
    st.binary(max_size=512),
    mutated(),
    mutated(),
    JSON_VALUES.map(lambda v: json.dumps(v).encode()),
    st.tuples(st.sampled_from([b"[", b'{"a":', b'{"resourceSpans":[']), st.integers(1, 200_000)).map(
        lambda t: t[0] * t[1]
    ),
)


# ---------------------------------------------------------------- the path a span takes


def through_the_ledger(request: ExportTraceServiceRequest) -> None:
    """Decode, normalize, merge, price and build rows; check what comes out is sane."""
    try:
        outcome = traces_outcome(request, SETTINGS)
    except TooLarge:
        return
    work = outcome.work
    assert set(outcome.reasons) <= REASONS, outcome.reasons
    dropped = work.counters.get(("non_llm_dropped", ""), 0)
    assert len(work.spans) + outcome.rejected + dropped == count_spans(request)
    assert len(outcome.message()) < 2_000  # the partial-success message stays short
    for span in work.spans:
        _check_span(span)
    by_trace: dict[str, list[LlmSpan]] = {}
    for span in work.spans:
        by_trace.setdefault(span.trace_id, []).append(span)
    calls = [call for group in by_trace.values() for call in calls_of_trace(group)]
    prices = [PRICE(call) for call in calls]
    span_columns(work.spans, NOW_NS // 1000)
    cols = call_columns(calls, prices, NOW_NS // 1000)
    # The API answers with these values: strict JSON has no NaN or infinity.
    json.dumps(cols, default=str, allow_nan=False)


def _check_span(span: LlmSpan) -> None:
    for name in TOKEN_FIELDS:
        value = getattr(span, name)
        assert value is None or 0 <= value <= SETTINGS.max_tokens_per_call, (name, value)
    assert span.ttft_ms is None or (math.isfinite(span.ttft_ms) and span.ttft_ms >= 0), span.ttft_ms
    assert not any(redact.is_content_key(k) for k in span.attributes), "content left in the audit copy"
    limit = SETTINGS.max_attribute_value_bytes
    for key, value in span.attributes.items():
        assert len(key.encode()) <= limit
        if isinstance(value, str):
            assert len(value.encode()) <= limit
    for text in (span.service, span.team, span.request_model, span.response_model, span.provider, span.name):
        assert text is None or len(text.encode()) <= limit


# ---------------------------------------------------------------- (a) bytes


PARSERS: list[tuple[Callable[[bytes, str], Any], Callable[[Any], Any]]] = [
    (parse_traces, lambda r: traces_outcome(r, SETTINGS)),
    (parse_logs, logs_outcome),
    (parse_metrics, metrics_outcome),
]


@FUZZ
@given(body=BODIES, content_type=st.sampled_from([PROTOBUF, JSON]))
def test_any_bytes_parse_or_raise_payload_error_only(body: bytes, content_type: str) -> None:
    for parse, handle in PARSERS:
        try:
            request = parse(body, content_type)
        except PayloadError:
            continue
        with contextlib.suppress(TooLarge):  # 413, a clean answer
            handle(request)


# ---------------------------------------------------------------- (b) structured protobuf


@FUZZ_EXPORTS
@given(request=TRACE_REQUESTS)
def test_structured_exports_go_through_the_ledger_or_are_rejected_cleanly(request: ExportTraceServiceRequest) -> None:
    through_the_ledger(request)
    through_the_ledger(parse_traces(request.SerializeToString(), PROTOBUF))


@FUZZ
@given(request=LOG_REQUESTS)
def test_structured_log_exports_give_hints_or_nothing(request: ExportLogsServiceRequest) -> None:
    outcome = logs_outcome(request)
    assert all(len(h.prompt_hash) == 64 for h in outcome.work.hints)


# ---------------------------------------------------------------- (c) OTLP/JSON


@FUZZ_EXPORTS
@given(request=TRACE_REQUESTS)
def test_the_same_exports_as_otlp_json_decode_to_the_same_spans(request: ExportTraceServiceRequest) -> None:
    parsed = parse_traces(otlp_json(request), JSON)
    # repr: NaN attribute values are equal to themselves there.
    assert repr(decode_traces(parsed, LIMITS)) == repr(decode_traces(request, LIMITS))
    through_the_ledger(parsed)


@FUZZ_EXPORTS
@given(request=TRACE_REQUESTS, data=st.data())
def test_otlp_json_with_nodes_replaced_by_junk(request: ExportTraceServiceRequest, data: st.DataObject) -> None:
    doc = json.loads(otlp_json(request))
    nodes: list[tuple[Any, Any]] = []

    def walk(node: Any) -> None:
        items = node.items() if isinstance(node, dict) else enumerate(node) if isinstance(node, list) else ()
        for key, child in items:
            nodes.append((node, key))
            walk(child)

    walk(doc)
    if nodes:
        for _ in range(data.draw(st.integers(1, 3))):
            node, key = data.draw(st.sampled_from(nodes))
            node[key] = data.draw(JSON_VALUES)
    try:
        parsed = parse_traces(json.dumps(doc).encode(), JSON)
    except PayloadError:
        return
    through_the_ledger(parsed)


# ---------------------------------------------------------------- (d) a running collector


def _compress(body: bytes, encoding: str) -> bytes:
    """The body as sent: gzip, deflate, or as is (also under "bogus-gzip": a lie in the header)."""
    if encoding == "gzip":
        return gzip.compress(body)
    if encoding == "deflate":
        return zlib.compress(body)
    return body


HTTP_CASES = st.one_of(
    st.tuples(st.just("/v1/traces"), st.sampled_from([PROTOBUF, JSON]), TRACE_REQUESTS).map(
        lambda t: (t[0], t[1], t[2].SerializeToString() if t[1] == PROTOBUF else otlp_json(t[2]))
    ),
    st.tuples(st.just("/v1/logs"), st.sampled_from([PROTOBUF, JSON]), LOG_REQUESTS).map(
        lambda t: (t[0], t[1], t[2].SerializeToString() if t[1] == PROTOBUF else otlp_json(t[2]))
    ),
    st.tuples(st.sampled_from(["/v1/traces", "/v1/logs", "/v1/metrics"]), st.sampled_from([PROTOBUF, JSON]), BODIES),
)


@pytest.mark.slow
def test_a_running_collector_never_answers_5xx(collector: RunningCollector) -> None:
    _never_5xx(collector)


@pytest.mark.slow
def test_nor_with_the_native_decoder_off(tmp_path: Path) -> None:
    with running_collector(tmp_path, "duckdb", native_decode=False) as running:
        _never_5xx(running)


def _never_5xx(collector: RunningCollector) -> None:
    client = httpx.Client(timeout=30)
    channel = grpc.insecure_channel(collector.otlp_grpc)
    stub = trace_service_pb2_grpc.TraceServiceStub(channel)

    @settings(max_examples=300, deadline=None, suppress_health_check=list(HealthCheck), database=None)
    @given(case=HTTP_CASES, encoding=st.sampled_from(["", "", "gzip", "deflate", "bogus-gzip"]))
    def post(case: tuple[str, str, bytes], encoding: str) -> None:
        path, content_type, body = case
        headers = {"Content-Type": content_type}
        if encoding:
            headers["Content-Encoding"] = encoding.removeprefix("bogus-")
        reply = client.post(f"{collector.otlp_http}{path}", content=_compress(body, encoding), headers=headers)
        assert reply.status_code in (200, 400, 413), (reply.status_code, reply.text[:500])

    @settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck), database=None)
    @given(request=TRACE_REQUESTS)
    def export(request: ExportTraceServiceRequest) -> None:
        refused: grpc.RpcError | None = None
        try:
            stub.Export(request, timeout=30)
        except grpc.RpcError as exc:
            refused = exc
        if refused is not None:  # a clean refusal only: never INTERNAL, UNKNOWN or UNAVAILABLE
            assert refused.code() in (grpc.StatusCode.INVALID_ARGUMENT, grpc.StatusCode.RESOURCE_EXHAUSTED), refused

    try:
        post()
        export()
        assert client.get(f"{collector.api}/healthz").status_code == 200
        # What was stored can be shown: the API and the dashboard render every fuzzed call.
        calls = client.get(f"{collector.api}/api/v1/calls", params={"limit": 1000})
        assert calls.status_code == 200, calls.text[:500]
        assert client.get(f"{collector.api}/api/v1/ingest").status_code == 200
        assert client.get(f"{collector.api}/").status_code == 200
    finally:
        client.close()
        channel.close()
