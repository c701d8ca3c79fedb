"""A call in two traces with no response id to link them (the client's own span beside the
instrumentation's: a failed call, or a client whose spans name no response id) is one call;
two different calls never are, whatever arrives in which batch."""

from __future__ import annotations

import dataclasses
import itertools

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from breakeven.collector.calls.halves import (
    FRAMEWORK,
    INSTRUMENTATION,
    SELF_TRACED,
    Half,
    HalfMemory,
    candidates,
    half_of,
    halves_of_one_call,
    layer_of,
)
from breakeven.collector.records import Call
from tests.spans import T0

SDK = "com.anthropic.sdk.python@2.12.0"
OPENLLMETRY = "opentelemetry.instrumentation.anthropic@0.62.4"
MISTRAL_SDK = "mistralai_sdk_tracer@1.12.4"
ORIGIN = ("anthropic", "claude-sonnet-4-5", "checkout", "instance-1", "error")


def fail(
    name: str,
    start: int,
    end: int,
    *,
    sdk: bool = False,
    framework: bool = False,
    root: bool = True,
    trace: str | None = None,
    prompt: str | None = None,
    operation: str | None = "chat",
    usage: tuple[int, int] | None = None,
    **origin: str | None,
) -> Half:
    """A half named `name` (its trace too, unless given); times in ms from T0; failed unless status says."""
    fields = dict(zip(("provider", "model", "service", "process", "status"), ORIGIN, strict=True))
    fields.update(origin)
    return Half(
        key=(trace or name, name),
        start_ns=T0 + start * 1_000_000,
        end_ns=T0 + end * 1_000_000,
        layer=SELF_TRACED if sdk else FRAMEWORK if framework else INSTRUMENTATION,
        origin=tuple(fields.values()),
        operation=operation,
        usage=usage,
        prompt_hash=prompt,
        root=root,
    )


def ok(name: str, start: int, end: int, **kw: object) -> Half:
    """A successful call's half (Mistral's shape: the SDK's span names no operation)."""
    return fail(name, start, end, status="ok", provider="mistral_ai", model="mistral-large-latest", **kw)  # type: ignore[arg-type]


# The captured shape (openllmetry-anthropic-with-sdk-tracing/chat-error): OpenLLMetry's span
# around the SDK's, 5 ms in and 2 ms before its end, in two traces.
CALLER, CLIENT = fail("ol", 0, 27), fail("sdk", 5, 25, sdk=True)


@pytest.mark.parametrize(
    ("a", "b", "linked"),
    [
        pytest.param(CALLER, CLIENT, True, id="the captured pair"),
        pytest.param(CLIENT, CALLER, True, id="either order"),
        pytest.param(CALLER, fail("sdk", 0, 27, sdk=True), True, id="same start and end: inside counts"),
        pytest.param(
            fail("ol", 0, 27, prompt="h1"), fail("sdk", 5, 25, sdk=True, prompt="h1"), True, id="same prompt hash"
        ),
        pytest.param(CALLER, fail("sdk", 5, 25, sdk=True, prompt="h1"), True, id="a prompt hash on one side only"),
        pytest.param(
            fail("ol", 0, 27, prompt="h1"),
            fail("sdk", 5, 25, sdk=True, prompt="h2"),
            False,
            id="different prompts",
        ),
        pytest.param(CALLER, fail("sdk", 5, 25, sdk=True, trace="ol"), False, id="one trace: merge.py's business"),
        pytest.param(CALLER, fail("ol2", 5, 25), False, id="two instrumentation spans: no client span"),
        pytest.param(fail("sdk1", 0, 27, sdk=True), CLIENT, False, id="two client spans"),
        pytest.param(CALLER, fail("sdk", 5, 25, sdk=True, model="claude-opus-4"), False, id="nested, other model"),
        pytest.param(CALLER, fail("sdk", 5, 25, sdk=True, provider="openai"), False, id="nested, other provider"),
        pytest.param(CALLER, fail("sdk", 5, 25, sdk=True, operation="embeddings"), False, id="other operation"),
        pytest.param(CALLER, fail("sdk", 5, 25, sdk=True, service="billing"), False, id="nested, other service"),
        pytest.param(
            CALLER, fail("sdk", 5, 25, sdk=True, process="instance-2"), False, id="nested, other process (replica)"
        ),
        pytest.param(CALLER, fail("sdk", 5, 25, sdk=True, process=None), False, id="one process known, one not"),
        pytest.param(
            fail("ol", 0, 27, process=None), fail("sdk", 5, 25, sdk=True, process=None), True, id="no process on both"
        ),
        pytest.param(CALLER, fail("sdk", 20, 50, sdk=True), False, id="concurrent, overlapping, not nested"),
        pytest.param(CALLER, fail("sdk", 40, 60, sdk=True), False, id="one after the other"),
        pytest.param(CALLER, fail("sdk", 5, 28, sdk=True), False, id="client ends 1 ms after: one clock, no skew"),
        pytest.param(fail("ol", 5, 25), fail("sdk", 0, 27, sdk=True), False, id="client around the caller"),
        pytest.param(CALLER, fail("sdk", 5, 25, sdk=True, status="ok"), False, id="one failed, one did not"),
        # Successful halves (openllmetry-mistral/chat: the SDK span names no operation, and
        # the same token counts as OpenLLMetry's).
        pytest.param(
            ok("ol", 0, 27, usage=(61, 27)),
            ok("sdk", 5, 25, sdk=True, operation=None, usage=(61, 27)),
            True,
            id="the captured Mistral pair",
        ),
        pytest.param(
            ok("ol", 0, 27, operation="embeddings"),
            ok("sdk", 5, 25, sdk=True, operation=None, usage=(42, 0)),
            True,
            id="usage on the client's span only (Mistral embeddings)",
        ),
        pytest.param(
            ok("ol", 0, 27, usage=(61, 27)),
            ok("sdk", 5, 25, sdk=True, operation=None, usage=(61, 28)),
            False,
            id="other token counts: another call",
        ),
        pytest.param(
            ok("ol", 0, 27, operation="embeddings"),
            ok("sdk", 5, 25, sdk=True, operation="chat"),
            False,
            id="two operations named: they differ",
        ),
        # A framework's span and the client instrumentation's in a trace of its own
        # (openinference-langchain-openai/chat-stream and chat-error-400).
        pytest.param(
            ok("lc", 0, 27, framework=True, usage=(40, 12)),
            ok("oi", 5, 25, usage=(40, 12)),
            True,
            id="LangChain's span around the client's root span",
        ),
        pytest.param(fail("lc", 0, 27, framework=True), fail("oi", 5, 25), True, id="a failed LangChain call"),
        pytest.param(
            ok("lc", 0, 27, framework=True), ok("oi", 5, 25, root=False), False, id="the inner span is no root"
        ),
        pytest.param(
            ok("lc", 5, 25, framework=True), ok("oi", 0, 27), False, id="the client's span around LangChain's"
        ),
        pytest.param(
            ok("lc", 0, 27, framework=True, usage=(40, 12)),
            ok("oi", 5, 25, usage=(40, 13)),
            False,
            id="LangChain's, other token counts",
        ),
        pytest.param(
            ok("lc", 0, 27, framework=True), ok("lc2", 5, 25, framework=True), False, id="two framework spans"
        ),
    ],
)
def test_halves_of_one_call(a: Half, b: Half, linked: bool) -> None:
    assert halves_of_one_call(a, b) is linked
    assert halves_of_one_call(b, a) is linked


def _call(**fields: object) -> Call:
    base: dict[str, object] = dict(
        trace_id="t" * 32,
        span_id="s" * 16,
        parent_span_id=None,
        start_ns=T0,
        end_ns=T0 + 27_000_000,
        ttft_ms=None,
        service="checkout",
        environment=None,
        team=None,
        feature=None,
        operation="chat",
        provider="anthropic",
        backend=None,
        backend_class="frontier",
        server_address=None,
        request_model="claude-sonnet-4-5",
        response_model=None,
        quantization=None,
        prompt_hash=None,
        input_tokens=0,
        cache_read_tokens=0,
        cache_write_tokens=0,
        output_tokens=0,
        reasoning_tokens=0,
        usage_reported=False,
        streaming=False,
        status="error",
        error_type="InternalServerError",
        emitter=OPENLLMETRY,
        conventions="otel_genai",
        member_span_ids=("s" * 16,),
    )
    base.update(fields)
    return Call(**base)  # type: ignore[arg-type]


OK = {"status": "ok", "error_type": None}


@pytest.mark.parametrize(
    ("call", "watched", "applies"),
    [
        pytest.param(_call(), set(), True, id="a failed call"),
        pytest.param(_call(**OK), set(), False, id="a call that succeeded"),
        pytest.param(_call(response_id="msg_1"), set(), False, id="a response id: the response-id rule's"),
        pytest.param(_call(provider=None), set(), False, id="no provider"),
        pytest.param(_call(request_model=None), set(), False, id="no request model (openlit's bare error span)"),
        pytest.param(_call(**OK, emitter=MISTRAL_SDK), set(), True, id="a self-tracing client's success, no id"),
        pytest.param(
            _call(**OK, emitter=SDK, response_id="msg_1"), set(), False, id="a self-tracing client's, with an id"
        ),
        pytest.param(_call(**OK, response_id="msg_1"), {"anthropic"}, True, id="a success of a watched provider"),
        pytest.param(_call(**OK), {"openai"}, False, id="a success of a provider not watched"),
        pytest.param(
            _call(**OK, emitter="openinference.instrumentation.langchain@0.1.80"),
            set(),
            True,
            id="a framework's success, no id",
        ),
    ],
)
def test_which_calls_the_rule_is_for(call: Call, watched: set[str], applies: bool) -> None:
    assert (half_of(call, "instance-1", watched) is not None) is applies


def test_half_of_names_its_origin_side_and_usage() -> None:
    half = half_of(_call(emitter=SDK), "instance-1")
    assert half is not None
    assert half.layer == SELF_TRACED
    assert half.failed
    assert half.origin == ORIGIN
    assert half.usage is None
    counted = half_of(
        _call(
            **OK,
            emitter=MISTRAL_SDK,
            usage_reported=True,
            input_tokens=50,
            cache_read_tokens=11,
            output_tokens=27,
            reasoning_tokens=7,
        ),
        "instance-1",
    )
    assert counted is not None
    assert not counted.failed
    assert counted.usage == (61, 27)
    assert layer_of("openinference.instrumentation.langchain@0.1.80") == FRAMEWORK
    assert layer_of(OPENLLMETRY) == INSTRUMENTATION
    assert layer_of(MISTRAL_SDK) == SELF_TRACED
    assert layer_of(SDK) == SELF_TRACED
    assert layer_of("com.anthropic.sdk.python") == SELF_TRACED
    assert layer_of("com.anthropic.sdk.python.other@1") == INSTRUMENTATION


# Batches in arrival order; the pairs linked (kept, merged in) and how many failures were
# left alone for want of a unique match.
def _x(offset: int = 0, **kw: str | None) -> tuple[Half, Half]:
    """One failed call's two halves, `offset` ms later."""
    return fail(f"x{offset}-ol", offset, offset + 27, **kw), fail(
        f"x{offset}-sdk", offset + 5, offset + 25, sdk=True, **kw
    )


X_OL, X_SDK = _x()
Y_OL, Y_SDK = _x(40)
# Y started 2 ms after X and overlaps it: each caller holds both clients.
Z_OL, Z_SDK = fail("z-ol", 2, 29), fail("z-sdk", 6, 26, sdk=True)


@pytest.mark.parametrize(
    ("batches", "pairs", "ambiguous"),
    [
        pytest.param([[X_SDK, X_OL]], [("x0-ol", "x0-sdk")], 0, id="one batch: the caller kept"),
        pytest.param([[X_SDK], [X_OL]], [("x0-sdk", "x0-ol")], 0, id="client first: the stored one kept"),
        pytest.param([[X_OL], [X_SDK]], [("x0-ol", "x0-sdk")], 0, id="caller first"),
        pytest.param(
            [[X_OL, X_SDK, Y_OL, Y_SDK]],
            [("x0-ol", "x0-sdk"), ("x40-ol", "x40-sdk")],
            0,
            id="two failures one after the other: each with its own",
        ),
        pytest.param(
            [[X_OL, fail("other-sdk", 20, 50, sdk=True)]],
            [],
            0,
            id="two concurrent failures, same model and service, not nested: two calls",
        ),
        pytest.param(
            [[X_OL, fail("other-sdk", 5, 25, sdk=True, model="claude-opus-4")]],
            [],
            0,
            id="nested, other model: two calls",
        ),
        pytest.param([[X_OL, X_SDK, Z_OL, Z_SDK]], [], 4, id="a burst: two callers around two clients, nothing merged"),
        pytest.param([[X_OL, X_SDK, Z_SDK]], [], 3, id="a burst: one caller around two clients"),
        pytest.param(
            [[X_SDK, Z_SDK], [X_OL, Z_OL]], [], 2, id="a burst split across batches: still ambiguous, nothing merged"
        ),
        pytest.param(
            [[X_SDK], [X_OL, Z_SDK], [Z_OL]],
            [],
            3,
            id="a witness: X's caller had two clients, so neither pairs later",
        ),
        pytest.param(
            [
                [fail("w-ol", 0, 100), fail("c1-sdk", 5, 10, sdk=True), fail("c2-sdk", 80, 90, sdk=True)],
                [fail("n-sdk", 40, 50, sdk=True)],
            ],
            [],
            4,
            id="a witness whose other candidates lie outside the later batch's time",
        ),
        pytest.param(
            [[X_OL, X_SDK], [Z_SDK]],
            [("x0-ol", "x0-sdk")],
            0,
            id="a linked caller takes no second client",
        ),
        pytest.param(
            [[*_x(0, process="replica-1"), *_x(1, process="replica-2")]],
            [("x0-ol", "x0-sdk"), ("x1-ol", "x1-sdk")],
            0,
            id="two replicas failing at once: their process tells them apart",
        ),
    ],
)
def test_failure_memory_pairs_only_unique_matches(
    batches: list[list[Half]], pairs: list[tuple[str, str]], ambiguous: int
) -> None:
    memory = HalfMemory()
    linked, left = [], 0
    for batch in batches:
        decided = memory.pair(batch)
        linked += [(kept.key[1], merged.key[1]) for kept, merged in decided.pairs]
        left += len(decided.ambiguous)
    assert sorted(linked) == sorted(pairs)
    assert left == ambiguous


def test_a_linked_call_that_comes_back_stays_linked() -> None:
    memory = HalfMemory()
    assert [(k.key, m.key) for k, m in memory.pair([X_SDK]).pairs] == []
    assert [(k.key, m.key) for k, m in memory.pair([X_OL]).pairs] == [(X_SDK.key, X_OL.key)]
    # X_OL's trace gets a prompt hash from a log record later: its call is recomputed
    again = memory.pair([dataclasses.replace(X_OL, prompt_hash="h")])
    assert again.again == {X_OL.key: X_SDK.key}
    assert again.pairs == []
    assert memory.pair([X_SDK]).again == {}  # the kept one stays as it is


def test_memory_is_bounded() -> None:
    memory = HalfMemory(limit=3)
    for i in range(10):
        memory.pair([fail(f"lone{i}", i * 100, i * 100 + 27)])
    assert len(memory) == 3


_DRAFTS = st.lists(
    st.tuples(
        st.integers(0, 60),  # start, ms
        st.sampled_from([0, 5, 20, 40]),  # duration, ms
        st.booleans(),  # the client's own span
        st.sampled_from(["claude-sonnet-4-5", "claude-opus-4"]),
        st.integers(0, 2),  # trace
    ),
    min_size=1,
    max_size=10,
)


@settings(max_examples=300, deadline=None)
@given(drafts=_DRAFTS, cuts=st.lists(st.integers(0, 10), max_size=3))
def test_pairs_only_failures_that_are_each_others_only_candidate(drafts: list, cuts: list[int]) -> None:
    failures = [
        fail(f"f{i}", start, start + length, sdk=sdk, model=model, trace=f"t{trace}")
        for i, (start, length, sdk, model, trace) in enumerate(drafts)
    ]
    # The sweep finds what comparing every pair finds.
    everything = {f.key: {g.key for g in failures if halves_of_one_call(f, g)} for f in failures}
    assert {k: {g.key for g in v} for k, v in candidates(failures).items()} == everything
    # However the failures are cut into batches, a pair is each other's only candidate among
    # the failures seen so far that were not linked before.
    memory, bounds = HalfMemory(), sorted({0, len(failures), *(c for c in cuts if c < len(failures))})
    seen: set[tuple[str, str]] = set()
    linked: set[tuple[str, str]] = set()
    for lo, hi in itertools.pairwise(bounds):
        seen |= {f.key for f in failures[lo:hi]}
        open_ = seen - linked
        for kept, merged in memory.pair(failures[lo:hi]).pairs:
            assert everything[kept.key] & open_ == {merged.key}
            assert everything[merged.key] & open_ == {kept.key}
            assert not {kept.key, merged.key} & linked
            linked |= {kept.key, merged.key}
