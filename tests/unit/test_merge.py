"""One call, one record: every shape in which one call arrives as several spans."""

from __future__ import annotations

import itertools

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from breakeven.collector.calls.merge import calls_of_trace, group_spans, two_layers
from breakeven.collector.records import LlmSpan
from tests.spans import calls_by_definition, llm


def test_instrumentation_span_with_sdk_span_beneath_is_one_call() -> None:
    outer = llm(
        "a1",
        service="app",
        team="search",
        emitter="openllmetry",
        input_tokens=234,
        cache_read_tokens=1000,
        output_tokens=50,
    )
    inner = llm(
        "a2",
        "a1",
        start=5,
        end=990,
        service="app",
        emitter="anthropic-sdk",
        input_tokens=234,
        cache_read_tokens=1000,
        cache_write_tokens=0,
        output_tokens=50,
        reasoning_tokens=0,
        response_model="claude-sonnet-4-5-20250929",
    )
    (call,) = calls_of_trace([outer, inner])
    assert call.span_id == "a1"
    assert call.member_span_ids == ("a1", "a2")
    assert call.team == "search"
    assert call.response_model == "claude-sonnet-4-5-20250929"
    assert (call.input_tokens, call.cache_read_tokens, call.output_tokens) == (234, 1000, 50)


def test_litellm_pair_outer_with_usage_inner_without() -> None:
    outer = llm("l1", name="litellm_request", input_tokens=100, output_tokens=20)
    raw = llm("l2", "l1", start=1, end=999, name="raw_gen_ai_request", input_tokens=None, output_tokens=None)
    (call,) = calls_of_trace([outer, raw])
    assert call.member_span_ids == ("l1", "l2")
    assert call.usage_reported
    assert call.input_tokens == 100


def test_client_router_engine_across_services() -> None:
    client = llm(
        "c1",
        service="web",
        team="growth",
        feature="chat",
        provider="openai",
        backend="router.internal",
        backend_class="unknown",
        request_model="llama-70b",
        input_tokens=900,
        output_tokens=100,
    )
    # The router's span hangs off an HTTP server span we never store: only time nesting links it.
    router = llm(
        "r1",
        "http-in-1",
        start=10,
        end=980,
        service="router",
        provider="openai",
        backend="10.0.0.7:8000",
        backend_class="unknown",
        input_tokens=900,
        output_tokens=100,
    )
    engine = llm(
        "e1",
        "http-in-2",
        start=20,
        end=970,
        service="vllm-70b",
        provider="vllm",
        backend="vllm-70b",
        backend_class="self_hosted",
        is_engine=True,
        response_model="meta-llama/Llama-3.3-70B-Instruct",
        quantization="fp8",
        ttft_ms=40.0,
        input_tokens=900,
        output_tokens=100,
        request_model=None,
    )
    for order in itertools.permutations([client, router, engine]):
        (call,) = calls_of_trace(list(order))
        assert call.span_id == "c1"
        assert (call.service, call.team, call.feature, call.request_model) == ("web", "growth", "chat", "llama-70b")
        assert (call.backend, call.backend_class, call.provider) == ("vllm-70b", "self_hosted", "vllm")
        assert (call.response_model, call.quantization, call.ttft_ms) == (
            "meta-llama/Llama-3.3-70B-Instruct",
            "fp8",
            40.0,
        )
        assert set(call.member_span_ids) == {"c1", "r1", "e1"}


@pytest.mark.parametrize(
    "spans",
    [
        pytest.param(
            [llm("p1", "agent", start=0, end=500), llm("p2", "agent", start=0, end=500)],
            id="parallel siblings with the same usage are two calls",
        ),
        pytest.param(
            [llm("s1", start=0, end=400), llm("s2", start=600, end=900)],
            id="sequential calls with the same usage are two calls",
        ),
        pytest.param(
            [llm("n1", start=0, end=1000, input_tokens=500), llm("n2", "n1", start=10, end=900, input_tokens=100)],
            id="nested spans with different usage are two calls (an agent's inner call)",
        ),
        pytest.param(
            [llm("x1", start=0, end=1000, is_engine=True), llm("x2", start=10, end=900, is_engine=True)],
            id="two engine spans are two calls",
        ),
        pytest.param(
            [
                llm("g1", start=0, end=1000, input_tokens=None, output_tokens=None),
                llm("g2", "other", start=10, end=900),
            ],
            id="time nesting alone does not merge a span without usage",
        ),
    ],
)
def test_distinct_calls_stay_distinct(spans: list) -> None:
    assert len(calls_of_trace(spans)) == len(spans)


def test_error_and_usage_choice() -> None:
    outer = llm("o1", status="error", error_type="RateLimitError", input_tokens=100, output_tokens=None)
    inner = llm(
        "o2",
        "o1",
        start=1,
        end=999,
        status="error",
        error_type="429",
        input_tokens=100,
        output_tokens=None,
        cache_read_tokens=0,
    )
    (call,) = calls_of_trace([outer, inner])
    assert (call.status, call.error_type) == ("error", "RateLimitError")
    assert call.output_tokens == 0  # canonical integers; usage_reported says what was known
    assert call.usage_reported


@pytest.mark.parametrize(
    "span",
    [
        llm("a"),
        llm("b", "p", input_tokens=None, output_tokens=None, reasoning_tokens=None),
        llm(
            "c",
            status="error",
            error_type="RateLimitError",
            conventions=("openinference", "otel_genai", "openinference"),
        ),
        llm("d", status="ok", error_type="ignored when ok", backend_class="unknown", streaming=True, ttft_ms=12.5),
        llm("e", cache_read_tokens=None, cache_write_tokens=7, is_engine=True, prompt_hash="h"),
        llm(  # every field its own value: a field passed in another's place shows
            "f",
            "parent",
            start=3,
            end=4_000,
            ttft_ms=7.5,
            service="svc",
            environment="env",
            team="team",
            feature="feature",
            operation="op",
            provider="prov",
            backend="backend",
            backend_class="managed",
            server_address="addr",
            request_model="req",
            response_model="resp",
            quantization="fp8",
            prompt_hash="hash",
            input_tokens=11,
            cache_read_tokens=13,
            cache_write_tokens=17,
            output_tokens=19,
            reasoning_tokens=23,
            streaming=False,
            status="error",
            error_type="Boom",
            emitter="scope@1",
            conventions=("b", "a", "b"),
            response_id="resp-id",
        ),
    ],
)
def test_lone_span_fast_path_equals_the_general_merge(span) -> None:
    from breakeven.collector.calls.merge import _merge_many, call_of_span

    assert call_of_span(span) == _merge_many([span])


_IDS = [f"{i:016x}" for i in range(1, 10)]
_SPAN_DRAFTS = st.lists(
    st.tuples(
        st.sampled_from([None, "f" * 16, *_IDS]),  # parent: none, one we do not hold, or one of these
        st.integers(-600, 1500),  # start, ms from T0 (the clock skew is 250 ms)
        st.sampled_from([0, 5, 50, 300, 1000]),  # duration, ms
        st.sampled_from([None, (10, 5), (10, 5), (12, 5), (10, 6)]),  # usage
        st.booleans(),  # engine span
        st.sampled_from(["framework", "client"]),  # its instrumentation scope (merge.two_layers)
    ),
    min_size=1,
    max_size=9,
)


@settings(max_examples=300, deadline=None)
@given(drafts=_SPAN_DRAFTS)
def test_grouping_compares_only_candidates_yet_equals_comparing_every_pair(drafts: list) -> None:
    spans = [
        llm(
            sid,
            parent if parent != sid else None,
            start=start,
            end=start + duration,
            input_tokens=usage and usage[0],
            output_tokens=usage and usage[1],
            is_engine=engine,
            emitter=scope,
        )
        for sid, (parent, start, duration, usage, engine, scope) in zip(_IDS, drafts, strict=False)
    ]
    by_id = {s.span_id: s for s in spans}
    # The definition: connected components of same_call over every pair, and of the two_layers
    # pairs off one parent chain in which each is the other's only candidate.
    chain = {s.span_id: _ancestors(s, by_id) for s in spans}
    layered = {
        s.span_id: [
            o.span_id
            for o in spans
            if two_layers(s, o) and o.span_id not in chain[s.span_id] and s.span_id not in chain[o.span_id]
        ]
        for s in spans
    }
    assert {frozenset(s.span_id for s in g) for g in group_spans(spans)} == calls_by_definition(spans, layered)


def _ancestors(span: LlmSpan, by_id: dict[str, LlmSpan]) -> set[str]:
    """Every id up the span's parent chain, through the spans held."""
    ids: set[str] = set()
    parent = span.parent_span_id
    while parent is not None and parent not in ids:
        ids.add(parent)
        parent = by_id[parent].parent_span_id if parent in by_id else None
    return ids
