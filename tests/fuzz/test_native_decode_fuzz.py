"""Hypothesis against the native decoder (collector/ingest/_otlp.c): never a crash, never another answer.

Whatever the body and the limits, the native decoder gives the upb walk's DecodedTraces or
declines; for a body upb refuses it declines and decode_trace_body raises the same
PayloadError with it on as off (tests/native.py check_body). Exports of plain values
within the limits must not be declined at all, or the fast path would quietly go unused.
"""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, ArrayValue, InstrumentationScope, KeyValue, KeyValueList
from opentelemetry.proto.resource.v1.resource_pb2 import Resource
from opentelemetry.proto.trace.v1.trace_pb2 import ResourceSpans, ScopeSpans, Span, Status

from breakeven.collector.ingest.decode import DEFAULT_LIMITS, PROTOBUF, Limits, decode_trace_body
from tests.fuzz.test_decoders_fuzz import (
    BODIES,
    DOUBLES,
    FUZZ,
    FUZZ_EXPORTS,
    INT64,
    OTHER_KEYS,
    SPAN_IDS,
    TRACE_IDS,
    TRACE_REQUESTS,
    WORDS,
    mutated,
)
from tests.native import check_body, requires_native

pytestmark = [pytest.mark.slow, requires_native]

LIMITS = st.builds(
    Limits,
    attributes=st.one_of(st.integers(0, 10), st.integers(250, 270)),
    value_bytes=st.one_of(st.integers(0, 80), st.integers(16_000, 20_000)),
    events=st.one_of(st.integers(0, 4), st.just(128)),
    array_items=st.one_of(st.integers(0, 5), st.integers(250, 700)),
    read=st.frozensets(st.sampled_from(OTHER_KEYS), max_size=5),
)


@FUZZ_EXPORTS
@given(request=TRACE_REQUESTS, limits=LIMITS)
def test_structured_exports_answer_as_upb_or_are_declined(request: ExportTraceServiceRequest, limits: Limits) -> None:
    check_body(request.SerializeToString(), limits)


@FUZZ_EXPORTS
@given(request=TRACE_REQUESTS, max_spans=st.integers(0, 6))
def test_past_max_spans_it_declines_and_upb_says_too_large(request: ExportTraceServiceRequest, max_spans: int) -> None:
    check_body(request.SerializeToString(), DEFAULT_LIMITS, max_spans)


@FUZZ
@given(body=st.one_of(BODIES, mutated()), limits=st.one_of(st.just(DEFAULT_LIMITS), LIMITS))
def test_garbage_and_mutated_bodies_answer_as_upb_or_are_declined(body: bytes, limits: Limits) -> None:
    check_body(body, limits)


# ---------------------------------------------------------------- plain exports: never declined

PLAIN_STRINGS = st.one_of(st.sampled_from(WORDS), st.text(max_size=40))
PLAIN_LEAVES = st.one_of(
    PLAIN_STRINGS.map(lambda s: AnyValue(string_value=s)),
    INT64.map(lambda i: AnyValue(int_value=i)),
    DOUBLES.map(lambda d: AnyValue(double_value=d)),
    st.booleans().map(lambda b: AnyValue(bool_value=b)),
    st.binary(max_size=24).map(lambda b: AnyValue(bytes_value=b)),
    st.just(AnyValue()),
)
PLAIN_VALUES = st.recursive(
    PLAIN_LEAVES,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4).map(lambda vs: AnyValue(array_value=ArrayValue(values=vs))),
        st.lists(st.tuples(PLAIN_STRINGS, inner), max_size=4).map(
            lambda kvs: AnyValue(kvlist_value=KeyValueList(values=[KeyValue(key=k, value=v) for k, v in kvs]))
        ),
    ),
    max_leaves=10,
)
PLAIN_ATTRIBUTES = st.lists(
    st.builds(
        lambda k, v: KeyValue(key=k, value=v), st.one_of(st.sampled_from(OTHER_KEYS), PLAIN_STRINGS), PLAIN_VALUES
    ),
    max_size=12,
)
PLAIN_SPANS = st.builds(
    lambda trace_id, span_id, parent, name, kind, start, duration, attrs, events, status: Span(
        trace_id=trace_id,
        span_id=span_id,
        parent_span_id=parent,
        name=name,
        kind=kind,
        start_time_unix_nano=start,
        end_time_unix_nano=start + duration,
        attributes=attrs,
        events=[Span.Event(name=n, time_unix_nano=t, attributes=a) for n, t, a in events],
        status=status,
    ),
    st.one_of(st.sampled_from(TRACE_IDS), st.binary(max_size=17)),
    st.one_of(st.sampled_from(SPAN_IDS), st.binary(max_size=9)),
    st.one_of(st.just(b""), st.sampled_from(SPAN_IDS), st.binary(max_size=9)),
    PLAIN_STRINGS,
    st.integers(-(2**31), 2**31 - 1),
    st.integers(0, 2**63),
    st.integers(0, 2**62),
    PLAIN_ATTRIBUTES,
    st.lists(st.tuples(PLAIN_STRINGS, st.integers(0, 2**64 - 1), PLAIN_ATTRIBUTES), max_size=3),
    st.builds(Status, code=st.integers(0, 2), message=PLAIN_STRINGS),
)
PLAIN_REQUESTS = st.lists(
    st.builds(
        lambda attrs, scopes: ResourceSpans(resource=Resource(attributes=attrs), scope_spans=scopes),
        PLAIN_ATTRIBUTES,
        st.lists(
            st.builds(
                lambda name, version, spans: ScopeSpans(
                    scope=InstrumentationScope(name=name, version=version), spans=spans
                ),
                PLAIN_STRINGS,
                PLAIN_STRINGS,
                st.lists(PLAIN_SPANS, max_size=3),
            ),
            max_size=2,
        ),
    ),
    max_size=2,
).map(lambda rs: ExportTraceServiceRequest(resource_spans=rs))


@FUZZ_EXPORTS
@given(request=PLAIN_REQUESTS)
def test_plain_exports_are_never_declined(request: ExportTraceServiceRequest) -> None:
    body = request.SerializeToString()
    assert check_body(body, DEFAULT_LIMITS), "declined a plain export"
    assert repr(decode_trace_body(body, PROTOBUF)) == repr(decode_trace_body(body, PROTOBUF, native=False))
