"""pydantic-ai and the LiteLLM proxy, as captured (tests/fixtures/emitters/README.md): table-driven.

pydantic-ai: a model request's reasoning count under its usage details; its agent run span,
which carries the run's summed usage (and before 1.0 no operation), is no call; before 1.0 a
request's prompt is in one `events` attribute. LiteLLM: its call types are operations (its
`completion` is a chat). A failed call through a gateway is one call (merge.failed_hops).
"""

from __future__ import annotations

import itertools
import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from breakeven.collector.calls.merge import calls_of_trace, failed_hop, failed_hops, group_spans
from breakeven.collector.config.settings import load_settings
from breakeven.collector.normalize import normalize_span
from breakeven.collector.normalize.keep import audit_names
from breakeven.collector.normalize.redact import prompt_messages
from breakeven.collector.records import LlmSpan
from tests.spans import calls_by_definition, decoded, llm

SETTINGS = load_settings({}, environ={})
REQUEST = {
    "gen_ai.operation.name": "chat",
    "gen_ai.provider.name": "openai",
    "gen_ai.request.model": "gpt-4o-mini",
    "gen_ai.usage.input_tokens": 2345,
    "gen_ai.usage.output_tokens": 432,
}


@pytest.mark.parametrize(
    ("attrs", "scope", "want"),
    [
        pytest.param(
            {**REQUEST, "gen_ai.usage.cache_read.input_tokens": 2048, "gen_ai.usage.details.reasoning_tokens": 210},
            "pydantic-ai",
            (297, 2048, 432, 210),
            id="pydantic-ai: reasoning from its usage details, already inside the output",
        ),
        pytest.param(
            {**REQUEST, "gen_ai.usage.reasoning.output_tokens": 100, "gen_ai.usage.details.reasoning_tokens": 210},
            "pydantic-ai",
            (2345, None, 432, 100),
            id="the OTel GenAI name comes first",
        ),
    ],
)
def test_pydantic_ai_usage(attrs: dict[str, Any], scope: str, want: tuple[Any, ...]) -> None:
    span = normalize_span(decoded(attrs, scope=scope), SETTINGS)
    assert isinstance(span, LlmSpan)
    assert (span.input_tokens, span.cache_read_tokens, span.output_tokens, span.reasoning_tokens) == want


AGENT_RUN_0X = {"model_name": "gpt-4o-mini", "agent_name": "agent", "logfire.msg": "agent run", "final_result": "x"}


@pytest.mark.parametrize(
    ("attrs", "scope", "is_call"),
    [
        pytest.param(
            {**AGENT_RUN_0X, "gen_ai.usage.input_tokens": 451, "gen_ai.usage.output_tokens": 42},
            "pydantic-ai",
            False,
            id="pydantic-ai <1.0 agent run: summed usage, no operation",
        ),
        pytest.param(
            {**AGENT_RUN_0X, "gen_ai.operation.name": "invoke_agent", "gen_ai.aggregated_usage.input_tokens": 451},
            "pydantic-ai",
            False,
            id="pydantic-ai agent run (invoke_agent)",
        ),
        pytest.param(REQUEST, "pydantic-ai", True, id="pydantic-ai model request"),
        pytest.param(
            {**REQUEST, "agent_name": "mine"}, "some.other.scope", True, id="agent_name elsewhere decides nothing"
        ),
    ],
)
def test_pydantic_ai_agent_run_is_no_call(attrs: dict[str, Any], scope: str, is_call: bool) -> None:
    assert isinstance(normalize_span(decoded(attrs, scope=scope), SETTINGS), LlmSpan) is is_call


@pytest.mark.parametrize(
    ("raw", "scope", "want"),
    [
        pytest.param("acompletion", "litellm", "chat", id="litellm acompletion is a chat"),
        pytest.param("completion", "litellm", "chat", id="litellm completion is a chat"),
        pytest.param("aembedding", "litellm", "embeddings", id="litellm aembedding"),
        pytest.param("atext_completion", "litellm", "text_completion", id="litellm atext_completion"),
        pytest.param("completion", "tests", "text_completion", id="elsewhere completion stays a text completion"),
        pytest.param("acompletion", "tests", "acompletion", id="elsewhere an unknown name is kept"),
    ],
)
def test_litellm_call_types(raw: str, scope: str, want: str) -> None:
    attrs = {"gen_ai.operation.name": raw, "gen_ai.system": "openai", "gen_ai.request.model": "gpt-4o-mini"}
    span = normalize_span(decoded(attrs, scope=scope), SETTINGS)
    assert isinstance(span, LlmSpan)
    assert span.operation == want


SYSTEM = {"role": "system", "content": "be terse", "event.name": "gen_ai.system.message"}
USER = {"role": "user", "content": "hello", "event.name": "gen_ai.user.message"}
CHOICE = {"index": 0, "message": {"role": "assistant", "content": "hi"}, "event.name": "gen_ai.choice"}


@pytest.mark.parametrize(
    ("events", "want"),
    [
        pytest.param(
            json.dumps([SYSTEM, USER, CHOICE]),
            [["system", "be terse"], ["user", "hello"]],
            id="the message events, not the answer",
        ),
        pytest.param([SYSTEM, USER], [["system", "be terse"], ["user", "hello"]], id="a list, not JSON"),
        pytest.param(json.dumps([{"event.name": ["x"]}, 3, "y"]), [], id="nothing that is an event"),
        pytest.param("not json", [], id="not a list"),
    ],
)
def test_pydantic_ai_0x_events_attribute(events: Any, want: list[list[str]]) -> None:
    assert prompt_messages({"events": events}) == want


def test_pydantic_ai_content_keys_are_dropped_from_the_audit_copy() -> None:
    names = ["events", "all_messages_events", "pydantic_ai.all_messages", "final_result", "tool_arguments"]
    kept, summarized = audit_names([*names, "gen_ai.aggregated_usage.input_tokens"], frozenset(), ())
    assert (kept, summarized) == (("gen_ai.aggregated_usage.input_tokens",), ())


def _failed(span_id: str, parent: str | None = None, **fields: Any) -> LlmSpan:
    base: dict[str, Any] = dict(status="error", error_type="RateLimitError", input_tokens=None, output_tokens=None)
    return llm(span_id, parent, **{**base, **fields})


CLIENT = _failed("c1", start=0, end=140, service="app", operation="chat")
GATEWAY = _failed("g1", "proxy-server-span", start=20, end=35, service="litellm", operation="chat")


@pytest.mark.parametrize(
    ("spans", "calls"),
    [
        pytest.param([CLIENT, GATEWAY], 1, id="a failed call through a gateway is one call"),
        pytest.param(
            [CLIENT, _failed("g1", "proxy-server-span", start=-200, end=100, service="litellm")],
            1,
            id="within the clock skew",
        ),
        pytest.param([CLIENT, _failed("g1", "p", start=20, end=35, service="app")], 2, id="one service: no hop"),
        pytest.param([CLIENT, _failed("g1", "p", start=20, end=35, service=None)], 2, id="an unknown service"),
        pytest.param(
            [CLIENT, _failed("g1", "p", start=20, end=35, service="litellm", operation="embeddings")],
            2,
            id="two operations",
        ),
        pytest.param(
            [CLIENT, _failed("g1", "p", start=500, end=600, service="litellm")], 2, id="after the client's span"
        ),
        pytest.param(
            [CLIENT, _failed("g1", "p", start=20, end=35, service="litellm", status="ok", error_type=None)],
            2,
            id="the gateway's span did not fail",
        ),
        pytest.param(
            [CLIENT, _failed("g1", "p", start=20, end=35, service="litellm", input_tokens=5, output_tokens=0)],
            2,
            id="a span with usage is no bare failure",
        ),
        pytest.param(
            [CLIENT, GATEWAY, _failed("g2", "q", start=50, end=70, service="litellm")],
            3,
            id="two failures inside: ambiguous, nothing merged",
        ),
        pytest.param(
            [_failed("c1", "agent", start=0, end=140, service="app"), _failed("g1", "agent", service="gw", start=9)],
            2,
            id="siblings",
        ),
        pytest.param(
            [llm("c1", start=0, end=140, service="app"), llm("g1", "p", start=20, end=35, service="litellm")],
            1,
            id="a call that succeeded merges by its usage, as before",
        ),
    ],
)
def test_failed_hops(spans: list[LlmSpan], calls: int) -> None:
    for order in itertools.permutations(spans):
        assert len(calls_of_trace(list(order))) == calls


def test_failed_hop_pairs_are_outer_first() -> None:
    assert failed_hops([GATEWAY, CLIENT]) == [(CLIENT, GATEWAY)]
    assert failed_hop(CLIENT, GATEWAY)  # and the other way round too, within the clock skew
    (call,) = calls_of_trace([GATEWAY, CLIENT])
    assert (call.span_id, call.member_span_ids, call.status, call.service) == ("c1", ("c1", "g1"), "error", "app")


_IDS = [f"{i:016x}" for i in range(1, 8)]
_FAILED_DRAFTS = st.lists(
    st.tuples(
        st.sampled_from([None, "f" * 16, *_IDS]),  # parent: none, one we do not hold, or one of these
        st.integers(-600, 1500),  # start, ms (the clock skew is 250 ms)
        st.sampled_from([0, 5, 50, 300, 1000]),  # duration, ms
        st.sampled_from(["app", "gateway", "engine-host"]),  # service
        st.booleans(),  # failed (else it succeeded, without usage too)
    ),
    min_size=1,
    max_size=7,
)


@settings(max_examples=300, deadline=None)
@given(drafts=_FAILED_DRAFTS)
def test_grouping_equals_the_definition_with_failed_hops(drafts: list) -> None:
    spans = [
        llm(
            sid,
            parent if parent != sid else None,
            start=start,
            end=start + duration,
            service=service,
            input_tokens=None,
            output_tokens=None,
            status="error" if failed else "ok",
        )
        for sid, (parent, start, duration, service, failed) in zip(_IDS, drafts, strict=False)
    ]
    # The definition: connected components of same_call over every pair, and of the failed_hop
    # pairs (either way round) in which each is the other's only candidate.
    hops = {s.span_id: [o.span_id for o in spans if failed_hop(s, o) or failed_hop(o, s)] for s in spans}
    assert {frozenset(s.span_id for s in g) for g in group_spans(spans)} == calls_by_definition(spans, hops)
