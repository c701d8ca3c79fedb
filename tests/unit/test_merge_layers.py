"""A framework's span and a client's span beside it, in one trace: one call when each is the
other's only candidate (collector/calls/merge.py, two_layers and layered_pairs).

The shape is LangChain's (tests/fixtures/emitters/README.md, LangChain): OpenLLMetry's LangChain
LLM span is never made current, so OpenInference's OpenAI span hangs beside it under the chain's
span; OpenInference's LangChain spans are never made current either, so under an app's own span
the client's span is the chain's sibling, the LLM span's cousin.
"""

from __future__ import annotations

from typing import Any

import pytest

from breakeven.collector.calls.merge import calls_of_trace, group_spans, layered_pairs, two_layers
from breakeven.collector.records import LlmSpan
from tests.spans import llm

LANGCHAIN = "opentelemetry.instrumentation.langchain@0.62.4"
CLIENT = "openinference.instrumentation.openai@0.1.66"


def framework(
    span_id: str = "lc", parent: str | None = "chain", start: int = 10, end: int = 900, **fields: Any
) -> LlmSpan:
    """OpenLLMetry's LangChain LLM span: the outer one, no server address."""
    base: dict[str, Any] = dict(emitter=LANGCHAIN, backend=None, server_address=None, process="pid-1")
    return llm(span_id, parent, start=start, end=end, **{**base, **fields})


def client(
    span_id: str = "oa", parent: str | None = "chain", start: int = 40, end: int = 880, **fields: Any
) -> LlmSpan:
    """OpenInference's OpenAI span, inside the framework's in time, beside it in the tree."""
    base: dict[str, Any] = dict(emitter=CLIENT, process="pid-1", response_model="gpt-4o-2024-08-06")
    return llm(span_id, parent, start=start, end=end, **{**base, **fields})


FAILED = dict(status="error", input_tokens=None, output_tokens=None)


@pytest.mark.parametrize(
    ("outer", "inner", "one_call"),
    [
        pytest.param(framework(), client(), True, id="siblings under the chain's span: one call"),
        pytest.param(framework(), client(parent="app"), True, id="cousins (the client under the app's span): one call"),
        pytest.param(framework(**FAILED), client(**FAILED), True, id="a failed call: neither reports usage"),
        pytest.param(
            framework(reasoning_tokens=None),
            client(reasoning_tokens=300, output_tokens=20),
            True,
            id="token kinds only one reports do not matter; the counts both report agree",
        ),
        pytest.param(framework(operation=None), client(), True, id="an operation only one names does not matter"),
        pytest.param(framework(), client(emitter=LANGCHAIN), False, id="one scope: two parallel calls"),
        pytest.param(
            framework(),
            client(emitter="opentelemetry.instrumentation.langchain@0.61.0"),
            False,
            id="one scope in another version: still one layer",
        ),
        pytest.param(framework(), client(output_tokens=21), False, id="output differs"),
        pytest.param(framework(), client(input_tokens=99), False, id="input differs"),
        pytest.param(framework(), client(**FAILED), False, id="one failed, the other did not"),
        pytest.param(framework(**FAILED), client(status="error"), False, id="only one reports usage"),
        pytest.param(framework(), client(request_model="gpt-4o-mini"), False, id="another request model"),
        pytest.param(framework(), client(provider="anthropic"), False, id="another provider"),
        pytest.param(framework(), client(service="other"), False, id="another service"),
        pytest.param(framework(), client(process="pid-2"), False, id="another process"),
        pytest.param(framework(), client(process=None), True, id="a process read back from the store is unknown"),
        pytest.param(framework(), client(operation="embeddings"), False, id="another operation"),
        pytest.param(framework(), client(start=5), False, id="the client starts before the framework"),
        pytest.param(framework(), client(end=905), False, id="the client ends after it: no clock skew in one process"),
        pytest.param(framework(provider=None), client(provider=None), False, id="no provider: nothing to compare"),
        pytest.param(framework(), client(is_engine=True), False, id="an engine's span is never a layer"),
    ],
)
def test_two_layers(outer: LlmSpan, inner: LlmSpan, one_call: bool) -> None:
    assert two_layers(outer, inner) is one_call
    assert two_layers(inner, outer) is one_call
    assert len(calls_of_trace([outer, inner])) == (1 if one_call else 2)


def test_a_merged_call_takes_the_callers_fields_and_the_clients_answer() -> None:
    outer = framework(prompt_hash="h-sent", response_model="gpt-4o", streaming=None, reasoning_tokens=None)
    inner = client(prompt_hash="h-client", streaming=True, reasoning_tokens=7, output_tokens=20)
    (call,) = calls_of_trace([outer, inner])
    assert (call.span_id, call.member_span_ids) == ("lc", ("lc", "oa"))
    assert (call.emitter, call.prompt_hash) == (LANGCHAIN, "h-sent")  # the caller's
    assert call.response_model == "gpt-4o-2024-08-06"  # the client saw the answer's model
    assert (call.streaming, call.reasoning_tokens, call.output_tokens) == (True, 7, 20)


@pytest.mark.parametrize(
    ("spans", "groups"),
    [
        pytest.param(
            [framework("l1"), framework("l2", start=12), client("c1"), client("c2", start=45)],
            [{"l1"}, {"l2"}, {"c1"}, {"c2"}],
            id="two alike calls in parallel: each client has two candidates, nothing merges",
        ),
        pytest.param(
            [
                framework("l1"),
                framework("l2", start=12, input_tokens=300),
                client("c1"),
                client("c2", input_tokens=300),
            ],
            [{"l1", "c1"}, {"l2", "c2"}],
            id="two parallel calls told apart by their usage: two calls",
        ),
        pytest.param(
            [framework("l1"), client("c1"), llm("e1", "c1", start=50, end=870, emitter="engine", is_engine=True)],
            [{"l1", "c1", "e1"}],
            id="the client's span with an engine's beneath it: one call",
        ),
        pytest.param(
            [framework("l1", end=400), client("c1", start=500, end=880)],
            [{"l1"}, {"c1"}],
            id="one after the other: two calls",
        ),
    ],
)
def test_layered_pairs_merge_only_unambiguous_pairs(spans: list[LlmSpan], groups: list[set[str]]) -> None:
    found = [{s.span_id for s in g} for g in group_spans(spans)]
    assert sorted(found, key=sorted) == sorted(groups, key=sorted)


def test_layered_pairs_are_outer_first() -> None:
    outer, inner = framework(), client()
    assert layered_pairs([inner, outer]) == [(outer, inner)]
