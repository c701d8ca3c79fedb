"""The native decoder (collector/ingest/_otlp.c) gives the upb walk's DecodedTraces, or declines.

Over every captured emitter payload, the benchmark's bodies and the hand-built requests
of test_decode.py, with the settings' limits and with small ones; then every truncation
and many byte flips of a few bodies (tests/fuzz/test_native_decode_fuzz.py adds
hypothesis). A decline is always safe: the body then takes the upb path whole.
"""

from __future__ import annotations

import base64
import gc
import json
import sys
from pathlib import Path
from typing import Any

import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, ArrayValue, KeyValue, KeyValueList
from opentelemetry.proto.trace.v1.trace_pb2 import Span, Status

from breakeven.collector.config.settings import load_settings
from breakeven.collector.ingest import decode, parse
from breakeven.collector.ingest.decode import (
    DEFAULT_LIMITS,
    PROTOBUF,
    Limits,
    decode_trace_body,
    native_available,
    native_traces,
)
from breakeven.collector.ingest.exports import body_traces_outcome, limits_of, traces_outcome
from tests.native import assert_same_traces, check_body, compiler_present, requires_native
from tests.scripts import bench_ingest
from tests.unit.test_decode import (
    AUDIT_ONLY,
    LIMITS,
    MANY_EVENTS,
    PAST_A_LIMIT,
    SPAN_JSON,
    WITHIN_THE_LIMITS,
    _export,
    _strings,
)

ROOT = Path(__file__).parents[2]
SETTINGS = load_settings({}, environ={})
SETTINGS_LIMITS = limits_of(SETTINGS)
CAPTURES = sorted((ROOT / "tests" / "fixtures" / "emitters").glob("*/*.json"))
ALL_LIMITS = [
    pytest.param(SETTINGS_LIMITS, id="settings' limits"),
    pytest.param(LIMITS, id="small limits"),
    pytest.param(Limits(attributes=2, value_bytes=8, events=0, array_items=1), id="tiny limits"),
]


def _capture_bodies(path: Path) -> list[bytes]:
    return [base64.b64decode(b) for b in json.loads(path.read_text())["traces"]]


def _bench_templates(seeds: range, batch: int = 64) -> list[bytes]:
    return [bench_ingest().build_template(batch, seed).body() for seed in seeds]


def test_the_decoder_is_built_wherever_a_compiler_is() -> None:
    if not compiler_present():
        pytest.skip("no C compiler: the install goes on without the native decoder")
    assert native_available(), "pip install -e . should have built collector/ingest/_otlp.c"


# ---------------------------------------------------------------- real bodies


@requires_native
@pytest.mark.parametrize("path", CAPTURES, ids=[f"{p.parent.name}/{p.stem}" for p in CAPTURES])
def test_every_emitter_capture_decodes_natively_to_the_same_spans(path: Path) -> None:
    for body in _capture_bodies(path):
        assert check_body(body, SETTINGS_LIMITS), "a real emitter's export was declined"
        check_body(body, LIMITS)  # its prompts are past these: content kept whole, the rest declined


@requires_native
def test_the_benchmark_bodies_decode_natively_to_the_same_spans() -> None:
    for body in _bench_templates(range(4)):
        assert check_body(body, SETTINGS_LIMITS)
        assert check_body(body, DEFAULT_LIMITS)


# ---------------------------------------------------------------- hand-built requests


def _span(**fields: Any) -> ExportTraceServiceRequest:
    request = _export({"k": "v"})
    request.resource_spans[0].scope_spans[0].spans[0].MergeFrom(Span(**fields))
    return request


def _kvlist(**values: AnyValue) -> AnyValue:
    return AnyValue(kvlist_value=KeyValueList(values=[KeyValue(key=k, value=v) for k, v in values.items()]))


# (request, limits, whether the native decoder answers it)
HAND_BUILT = [
    *[pytest.param(p.values[0], LIMITS, p.values[1] == "too_many_attributes", id=p.id) for p in PAST_A_LIMIT],
    pytest.param(AUDIT_ONLY, LIMITS, False, id="audit-only values past the limits are cut: declined"),
    pytest.param(MANY_EVENTS, LIMITS, True, id="events past the limit dropped"),
    pytest.param(WITHIN_THE_LIMITS, LIMITS, True, id="within the limits"),
    pytest.param(_export({"gen_ai.input.messages": "p" * 1000}), LIMITS, True, id="content past the limit kept whole"),
    pytest.param(
        _export({"gen_ai.input.messages": _strings(*["p" * 100] * 9)}), LIMITS, True, id="content array kept whole"
    ),
    pytest.param(_export({"x": _strings(*"abcd")}), LIMITS, True, id="array at max_array_items"),
    pytest.param(_export({"x": "é" * 32}), LIMITS, True, id="string at max_attribute_value_bytes in UTF-8"),
    pytest.param(_export({"x": "é" * 32 + "e"}), LIMITS, False, id="a byte past it"),
    pytest.param(
        _export({"x": AnyValue(bytes_value=b"\xab" * 32)}), LIMITS, True, id="bytes whose hex is at the limit"
    ),
    pytest.param(_export({"x": AnyValue(bytes_value=b"\xab" * 33)}), LIMITS, False, id="bytes whose hex is past it"),
    pytest.param(
        _export({"x": _kvlist(**{"k" * 65: AnyValue(int_value=1)})}), LIMITS, False, id="kvlist key past the limit"
    ),
    pytest.param(
        _export({"x": _kvlist(a=_strings("1"), b=_kvlist(c=AnyValue(double_value=-0.0)), d=AnyValue())}),
        LIMITS,
        True,
        id="nested kvlist, -0.0, an empty AnyValue",
    ),
    pytest.param(
        _export(
            {
                "b": AnyValue(bool_value=True),
                "i": AnyValue(int_value=-(2**63)),
                "f": AnyValue(double_value=float("nan")),
                "u": "ü中😀",
                "e": AnyValue(array_value=ArrayValue()),
            }
        ),
        DEFAULT_LIMITS,
        True,
        id="every scalar kind",
    ),
    pytest.param(_span(kind=-7), DEFAULT_LIMITS, True, id="a negative kind"),
    pytest.param(_span(parent_span_id=b"\0" * 8), DEFAULT_LIMITS, True, id="an all-zero parent is none"),
    pytest.param(_span(parent_span_id=b"\1" * 7), DEFAULT_LIMITS, True, id="a short parent is none"),
    pytest.param(_span(status=Status(code=2, message="boom")), DEFAULT_LIMITS, True, id="status"),
    pytest.param(_span(trace_state="k=v", flags=257, dropped_attributes_count=3), DEFAULT_LIMITS, True, id="unread"),
    pytest.param(
        _span(links=[Span.Link(trace_id=b"\1" * 16, attributes=[KeyValue(key="a", value=_strings("b"))])]),
        DEFAULT_LIMITS,
        True,
        id="links are checked, not kept",
    ),
    pytest.param(_span(span_id=b"\0" * 8), DEFAULT_LIMITS, True, id="an all-zero span id is rejected"),
    pytest.param(_span(end_time_unix_nano=0, start_time_unix_nano=5), DEFAULT_LIMITS, True, id="end before start"),
    pytest.param(_span(name="n" * 100), Limits(value_bytes=64), False, id="a span name past the limit"),
    pytest.param(ExportTraceServiceRequest(), DEFAULT_LIMITS, True, id="an empty export"),
    pytest.param(AUDIT_ONLY, Limits(*[10**30] * 4), True, id="limits past machine integers"),
]


@requires_native
@pytest.mark.parametrize(("request_", "limits", "answers"), HAND_BUILT)
def test_hand_built_requests_decode_the_same_or_are_declined(
    request_: ExportTraceServiceRequest, limits: Limits, answers: bool
) -> None:
    assert check_body(request_.SerializeToString(), limits) is answers


@requires_native
def test_otlp_json_takes_the_upb_path_and_gives_the_same_spans_as_its_protobuf() -> None:
    body = json.dumps(SPAN_JSON).encode()
    from_json = decode_trace_body(body, "application/json")
    protobuf = parse.parse_traces(body, "application/json").SerializeToString()
    assert_same_traces(decode_trace_body(protobuf, PROTOBUF), from_json)


# ---------------------------------------------------------------- the wire format, bent


def _wire(*parts: bytes) -> bytes:
    return b"".join(parts)


def _ld(field: int, payload: bytes) -> bytes:
    return _varint(field << 3 | 2) + _varint(len(payload)) + payload


def _varint(n: int) -> bytes:
    out = bytearray()
    while True:
        out.append(n & 0x7F | (0x80 if n > 0x7F else 0))
        n >>= 7
        if not n:
            return bytes(out)


GOOD_SPAN = Span(
    trace_id=b"\1" * 16, span_id=b"\2" * 8, start_time_unix_nano=1, end_time_unix_nano=2
).SerializeToString()


def _in_span(span: bytes) -> bytes:
    return _ld(1, _ld(2, _ld(2, span)))


BENT = [
    pytest.param(_in_span(GOOD_SPAN + _ld(5, b"\xed\xa0\x80")), id="a surrogate in the name: upb refuses"),
    pytest.param(_in_span(GOOD_SPAN + _ld(3, b"\xc0\x80")), id="an overlong in trace_state, never read"),
    pytest.param(_in_span(GOOD_SPAN + _ld(5, b"a") + _ld(5, b"b")), id="a string field twice: upb keeps the last"),
    pytest.param(_in_span(GOOD_SPAN + _ld(15, b"\x18\x01") + _ld(15, b"\x12\x01m")), id="status twice: merged"),
    pytest.param(_in_span(GOOD_SPAN + _ld(9, _ld(2, b"\x0a\x01a\x18\x05"))), id="two members of the oneof"),
    pytest.param(_in_span(GOOD_SPAN + b"\x2d\x01\x02\x03\x04"), id="name as fixed32: upb keeps it as unknown"),
    pytest.param(_in_span(GOOD_SPAN + _ld(17, b"x")), id="a field it does not know"),
    pytest.param(_in_span(GOOD_SPAN + b"\x8b\x01\x8c\x01"), id="a group"),
    pytest.param(_in_span(GOOD_SPAN + _ld(9, _ld(2, b"\x18" + b"\xff" * 9 + b"\x7f"))), id="a varint past 64 bits"),
    pytest.param(_in_span(GOOD_SPAN + _ld(9, _ld(3, b"\x01"))), id="key_strindex (profiles)"),
    pytest.param(_in_span(GOOD_SPAN)[:-3], id="truncated"),
    pytest.param(_in_span(GOOD_SPAN) + b"\x0a\x05ab", id="a length past the end"),
    pytest.param(_in_span(GOOD_SPAN) + b"\x00", id="field number 0"),
    pytest.param(_ld(1, _ld(1, _ld(3, b"x"))), id="resource entity_refs"),
    pytest.param(_ld(1, _ld(1, b"") + _ld(1, b"")), id="resource twice"),
    pytest.param(_in_span(GOOD_SPAN), id="plain, for contrast"),
]


@requires_native
@pytest.mark.parametrize("body", BENT)
def test_unusual_wire_format_is_declined_or_refused_as_upb_refuses_it(body: bytes) -> None:
    answered = check_body(body, DEFAULT_LIMITS)
    assert answered is (body == _in_span(GOOD_SPAN))


def _deep(depth: int) -> bytes:
    """A span whose one attribute is an array in an array ... depth times (built as bytes: upb
    refuses to serialize past its own depth limit)."""
    value = _ld(1, b"leaf")
    for _ in range(depth):
        value = _ld(5, _ld(1, value))
    return _in_span(GOOD_SPAN + _ld(9, _ld(1, b"x") + _ld(2, value)))


@requires_native
def test_deep_values_are_declined_past_a_small_bound() -> None:
    assert check_body(_deep(16), DEFAULT_LIMITS)
    assert not check_body(_deep(17), DEFAULT_LIMITS)
    assert not check_body(_deep(200), DEFAULT_LIMITS)  # upb refuses this one: PayloadError


@requires_native
def test_past_max_spans_the_native_decoder_declines_and_upb_counts() -> None:
    body = _bench_templates(range(1), batch=16)[0]
    assert check_body(body, DEFAULT_LIMITS, max_spans=16)
    assert not check_body(body, DEFAULT_LIMITS, max_spans=15)


def _seeds() -> list[bytes]:
    request = _export(
        {"gen_ai.request.model": "gpt-4o", "n": 7, "x": _kvlist(a=_strings("p", "q"))},
        resource={"service.name": "svc"},
        events=2,
    )
    smallest = min((b for p in CAPTURES for b in _capture_bodies(p)), key=len)
    return [request.SerializeToString(), smallest, _bench_templates(range(1), batch=2)[0]]


@requires_native
@pytest.mark.parametrize("seed", _seeds(), ids=["hand-built", "smallest capture", "benchmark"])
def test_every_truncation_and_byte_flip_answers_as_upb_or_declines(seed: bytes) -> None:
    for limits in (DEFAULT_LIMITS, LIMITS):
        for end in range(len(seed)):
            check_body(seed[:end], limits)
        for at in range(len(seed)):
            for xor in (0x01, 0x80, 0xFF):
                body = bytearray(seed)
                body[at] ^= xor
                check_body(bytes(body), limits)


# ---------------------------------------------------------------- wiring and memory


@requires_native
def test_with_native_decode_off_the_native_decoder_is_never_called(monkeypatch: pytest.MonkeyPatch) -> None:
    body = _capture_bodies(CAPTURES[0])[0]
    on = body_traces_outcome(body, PROTOBUF, SETTINGS)

    def refuse(*args: Any) -> None:
        raise AssertionError("native decoder called with native_decode off")

    monkeypatch.setattr(decode, "_NATIVE", refuse)
    off_settings = load_settings({}, environ={"BREAKEVEN_NATIVE_DECODE": "0"})
    assert off_settings.native_decode is False
    off = body_traces_outcome(body, PROTOBUF, off_settings)
    assert repr(on) == repr(off)
    assert repr(off) == repr(traces_outcome(parse.parse_traces(body, PROTOBUF), SETTINGS))


@requires_native
def test_no_reference_is_leaked() -> None:
    bodies = [
        *_bench_templates(range(2), batch=8),
        *(b for p in CAPTURES[:4] for b in _capture_bodies(p)),
        *(p.values[0] for p in BENT),
        *(p.values[0].SerializeToString() for p in HAND_BUILT),
    ]
    limits = [DEFAULT_LIMITS, LIMITS]

    def decode_all() -> None:
        for body in bodies:
            for lim in limits:
                native_traces(body, lim)

    decode_all()
    decode_all()  # short strings enter the decoder's caches when seen twice
    gc.collect()
    before = sys.getallocatedblocks()
    for _ in range(20):
        decode_all()
    gc.collect()
    assert sys.getallocatedblocks() - before < 50
