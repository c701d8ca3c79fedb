"""Which span each field of a merged call comes from: merge._merge_many against the merge as first written."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from breakeven.collector.calls.merge import _has_usage, _merge_many, _outer_first
from breakeven.collector.records import TOKEN_FIELDS, Call, LlmSpan
from tests.spans import llm


def _first(values: Iterable[object]) -> object:
    return next((v for v in values if v is not None), None)


def reference_merge(group: Sequence[LlmSpan]) -> Call:
    """_merge_many as first written: each field by name, through getattr."""
    outer_first = sorted(group, key=_outer_first)
    outer = outer_first[0]
    engine_first = sorted(group, key=lambda s: (not s.is_engine, -s.start_ns, s.end_ns, s.span_id))
    usage_span = max(
        engine_first[::-1],
        key=lambda s: (sum(getattr(s, name) is not None for name in TOKEN_FIELDS), s.is_engine, s.start_ns),
    )

    def caller(name: str) -> object:
        return _first(getattr(s, name) for s in outer_first)

    def engine(name: str) -> object:
        return _first(getattr(s, name) for s in engine_first)

    located = [s for s in engine_first if s.server_address or s.backend] or engine_first
    classes = [s.backend_class for s in located if s.backend_class != "unknown"]
    errors = [s for s in outer_first if s.status == "error"]
    conventions = sorted({d for s in group for d in s.conventions})
    tokens = {name: getattr(usage_span, name) or 0 for name in TOKEN_FIELDS}
    return Call(
        trace_id=outer.trace_id,
        span_id=outer.span_id,
        parent_span_id=outer.parent_span_id,
        start_ns=outer.start_ns,
        end_ns=outer.end_ns,
        ttft_ms=engine("ttft_ms"),  # type: ignore[arg-type]
        service=caller("service"),  # type: ignore[arg-type]
        environment=caller("environment"),  # type: ignore[arg-type]
        team=caller("team"),  # type: ignore[arg-type]
        feature=caller("feature"),  # type: ignore[arg-type]
        operation=caller("operation"),  # type: ignore[arg-type]
        provider=engine("provider"),  # type: ignore[arg-type]
        backend=engine("backend"),  # type: ignore[arg-type]
        backend_class=classes[0] if classes else "unknown",
        server_address=engine("server_address"),  # type: ignore[arg-type]
        request_model=caller("request_model"),  # type: ignore[arg-type]
        response_model=engine("response_model"),  # type: ignore[arg-type]
        quantization=engine("quantization"),  # type: ignore[arg-type]
        prompt_hash=caller("prompt_hash"),  # type: ignore[arg-type]
        usage_reported=any(_has_usage(s) for s in group),
        streaming=caller("streaming"),  # type: ignore[arg-type]
        status="error" if errors else "ok",
        error_type=errors[0].error_type if errors else None,
        emitter=outer.emitter,
        conventions=",".join(conventions),
        member_span_ids=tuple(s.span_id for s in outer_first),
        response_id=caller("response_id"),  # type: ignore[arg-type]
        process=outer.process,
        **tokens,
    )


def _maybe(*values: object) -> st.SearchStrategy:
    return st.sampled_from([None, *values])


_SPAN = st.fixed_dictionaries(
    {
        "start": st.sampled_from([0, 0, 5, 40]),
        "end": st.sampled_from([100, 100, 90, 200]),
        "ttft_ms": _maybe(1.5, 9.0),
        "service": _maybe("app", "router"),
        "environment": _maybe("prod", "dev"),
        "team": _maybe("search"),
        "feature": _maybe("chat", "rank"),
        "operation": _maybe("chat", "text_completion"),
        "provider": _maybe("openai", "vllm"),
        "backend": _maybe("api.openai.com", "vllm-a"),
        "backend_class": st.sampled_from(["frontier", "self_hosted", "unknown"]),
        "server_address": _maybe("10.0.0.1", "api.openai.com"),
        "request_model": _maybe("gpt-4o", "llama"),
        "response_model": _maybe("gpt-4o-2024", "llama-3"),
        "quantization": _maybe("fp8"),
        "prompt_hash": _maybe("h1", "h2"),
        "input_tokens": _maybe(0, 100),
        "cache_read_tokens": _maybe(0, 40),
        "cache_write_tokens": _maybe(7),
        "output_tokens": _maybe(0, 20),
        "reasoning_tokens": _maybe(5),
        "streaming": _maybe(True, False),
        "status": st.sampled_from(["ok", "ok", "error"]),
        "error_type": _maybe("RateLimitError", "500"),
        "emitter": st.sampled_from(["openllmetry", "vllm"]),
        "conventions": st.lists(st.sampled_from(["otel_genai", "openinference", "traceloop"]), max_size=3).map(tuple),
        "is_engine": st.booleans(),
        "response_id": _maybe("resp-1", "resp-2"),
    }
)


@pytest.mark.slow  # a property test of 400 examples, like the fuzz suites
@settings(max_examples=400, deadline=None)
@given(drafts=st.lists(_SPAN, min_size=1, max_size=5))
def test_merged_fields_equal_the_merge_as_first_written(drafts: list[dict]) -> None:
    group = [llm(f"{i:016x}", **draft) for i, draft in enumerate(drafts)]
    assert _merge_many(group) == reference_merge(group)
