"""Holding the native decoder (collector/ingest/_otlp.c) to the upb walk: same answer, or it declines.

Shared by tests/unit/test_native_decode.py and tests/fuzz/test_native_decode_fuzz.py.
"""

from __future__ import annotations

import dataclasses
import sysconfig
from pathlib import Path
from shutil import which

import pytest

from breakeven.collector.ingest.decode import (
    PROTOBUF,
    DecodedTraces,
    Limits,
    TooLarge,
    count_spans,
    decode_trace_body,
    decode_traces,
    native_available,
    native_traces,
)
from breakeven.collector.ingest.parse import PayloadError, parse_traces
from breakeven.collector.records import DecodedSpan, SpanEvent


def compiler_present() -> bool:
    """Whether this Python's C compiler and headers are installed (then `pip install -e .` builds the decoder)."""
    cc = (sysconfig.get_config_var("CC") or "").split()
    headers = Path(sysconfig.get_paths()["include"]) / "Python.h"
    return bool(cc) and which(cc[0]) is not None and headers.is_file()


requires_native = pytest.mark.skipif(not native_available(), reason="the native decoder was not built")


def reference(body: bytes, limits: Limits) -> DecodedTraces | PayloadError:
    """What the upb path makes of a protobuf body: its DecodedTraces, or the PayloadError it raises."""
    try:
        return decode_traces(parse_traces(body, PROTOBUF), limits)
    except PayloadError as exc:
        return exc


def assert_same_traces(native: DecodedTraces, expected: DecodedTraces) -> None:
    """Equal field by field; repr, so True is not 1, -0.0 is not 0.0, NaN equals NaN, order counts."""
    assert len(native.spans) == len(expected.spans)
    for got, want in zip(native.spans, expected.spans, strict=True):
        assert type(got) is DecodedSpan
        for f in dataclasses.fields(DecodedSpan):
            assert repr(getattr(got, f.name)) == repr(getattr(want, f.name)), (f.name, want.name)
        assert all(type(e) is SpanEvent for e in got.events)
        assert list(got.attributes) == list(want.attributes)  # insertion order, repeated keys: last wins
    assert repr(native.rejected) == repr(expected.rejected)
    assert repr(native) == repr(expected)


def check_body(body: bytes, limits: Limits, max_spans: int | None = None) -> bool:
    """Native answers as upb does, or declines; True when it answered.

    Past max_spans it must decline (the upb path raises TooLarge with the count). With a
    body upb refuses it must decline, and decode_trace_body raises the same PayloadError
    with the native decoder on as off.
    """
    expected = reference(body, limits)
    native = native_traces(body, limits) if max_spans is None else native_traces(body, limits, max_spans)
    if isinstance(expected, PayloadError):
        assert native is None, "the native decoder decoded a body upb refuses"
        _same_error(body, limits, max_spans)
        return False
    spans = count_spans(parse_traces(body, PROTOBUF))
    if max_spans is not None and spans > max_spans:
        assert native is None, "past max_spans the native decoder must decline"
        _same_error(body, limits, max_spans)
        return False
    if native is None:
        return False
    assert_same_traces(native, expected)
    assert len(native.spans) + len(native.rejected) == spans
    return True


def _same_error(body: bytes, limits: Limits, max_spans: int | None) -> None:
    raised = []
    spans_limit = () if max_spans is None else (max_spans,)
    for native in (True, False):
        with pytest.raises((PayloadError, TooLarge)) as caught:
            decode_trace_body(body, PROTOBUF, limits, *spans_limit, native=native)
        raised.append((type(caught.value), str(caught.value)))
    assert raised[0] == raised[1]
