"""Builders for decoded spans in unit tests."""

from __future__ import annotations

import itertools
from typing import Any

from breakeven.collector.records import DecodedSpan, LlmSpan, SpanEvent

_ids = itertools.count(1)
T0 = 1_790_000_000_000_000_000  # ns


def decoded(
    attrs: dict[str, Any],
    *,
    resource: dict[str, Any] | None = None,
    scope: str = "tests",
    scope_version: str = "",
    trace_id: str = "a" * 32,
    span_id: str | None = None,
    parent: str | None = None,
    kind: int = 3,
    start: int = T0,
    end: int = T0 + 1_000_000_000,
    events: list[SpanEvent] | None = None,
    status_code: int = 0,
    status_message: str = "",
    name: str = "chat",
) -> DecodedSpan:
    """A decoded span with sensible defaults."""
    return DecodedSpan(
        trace_id=trace_id,
        span_id=span_id or f"{next(_ids):016x}",
        parent_span_id=parent,
        name=name,
        kind=kind,
        start_ns=start,
        end_ns=end,
        attributes=attrs,
        events=events or [],
        status_code=status_code,
        status_message=status_message,
        resource={"service.name": "svc", **(resource or {})},
        scope_name=scope,
        scope_version=scope_version,
    )


def llm(span_id: str, parent: str | None = None, *, start: int = 0, end: int = 1000, **fields: Any) -> LlmSpan:
    """An LlmSpan for merge tests; times in ms from T0."""
    base: dict[str, Any] = dict(
        trace_id="t" * 32,
        span_id=span_id,
        parent_span_id=parent,
        name="chat",
        kind=3,
        start_ns=T0 + start * 1_000_000,
        end_ns=T0 + end * 1_000_000,
        ttft_ms=None,
        service="app",
        environment=None,
        team=None,
        feature=None,
        operation="chat",
        provider="openai",
        backend="api.openai.com",
        backend_class="frontier",
        server_address="api.openai.com",
        request_model="gpt-4o",
        response_model=None,
        quantization=None,
        prompt_hash=None,
        input_tokens=100,
        cache_read_tokens=None,
        cache_write_tokens=None,
        output_tokens=20,
        reasoning_tokens=None,
        streaming=None,
        status="ok",
        error_type=None,
        emitter="tests",
        conventions=("otel_genai",),
        is_engine=False,
    )
    base.update(fields)
    return LlmSpan(**base)


def calls_by_definition(spans: list[LlmSpan], candidates: dict[str, list[str]]) -> set[frozenset[str]]:
    """The calls merge.group_spans must find, by the definition, as sets of span ids: connected
    components of merge.same_call over every pair, and of the pairs that a second rule
    (`candidates`: each span's candidates under it) makes each other's only candidate."""
    from breakeven.collector.calls.merge import same_call

    by_id = {s.span_id: s for s in spans}
    component = {s.span_id: {s.span_id} for s in spans}
    for a, b in itertools.combinations(spans, 2):
        unique_pair = candidates[a.span_id] == [b.span_id] and candidates[b.span_id] == [a.span_id]
        if component[a.span_id] is not component[b.span_id] and (same_call(a, b, by_id) or unique_pair):
            merged = component[a.span_id] | component[b.span_id]
            for sid in merged:
                component[sid] = merged
    return {frozenset(c) for c in component.values()}
