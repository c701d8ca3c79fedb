"""Replay every captured emitter payload; every field must match what the provider returned.

The captures (tests/fixtures/emitters/) were made by scripts/capture_emitters.py: the real
openai/anthropic clients, instrumented by each real instrumentation package in its own
virtualenv, calling tests/fakeprovider.py and exporting with the real OTel SDK.
"""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

import httpx
import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from tests.conftest import RunningCollector

FIXTURES = sorted((Path(__file__).parents[1] / "fixtures" / "emitters").glob("*/*.json"))
TOKEN_FIELDS = ("input_tokens", "cache_read_tokens", "cache_write_tokens", "output_tokens", "reasoning_tokens")
PROTOBUF = {"Content-Type": "application/x-protobuf"}
SPLIT = frozenset({"cache_read_tokens", "cache_write_tokens", "reasoning_tokens"})

# What an emitter does not carry cannot be stored. For these captures the provider's
# split is not in the spans at all; the test then checks what must still hold: total
# input (input + cache read + cache write) and output, with the missing kinds at 0.
# Evidence for each: tests/fixtures/emitters/README.md, "Observed habits".
NOT_REPORTED: dict[tuple[str, str], frozenset[str]] = {
    **{("otel-openai-v2", s): SPLIT for s in ("chat-cached", "chat-cache-write", "chat-reasoning", "chat-stream")},
    **{
        ("otel-openai-v2-latest", s): SPLIT
        for s in ("chat-cached", "chat-cache-write", "chat-reasoning", "chat-stream")
    },
    ("openllmetry-openai", "chat-cache-write"): frozenset({"cache_write_tokens"}),
    ("openllmetry-openai", "chat-stream"): frozenset({"reasoning_tokens"}),
    ("openlit-openai", "chat-reasoning"): frozenset({"reasoning_tokens"}),
    ("openlit-openai", "chat-stream"): frozenset({"reasoning_tokens"}),
    # Anthropic's thinking count (the fake server's output_tokens_details) reaches no span.
    ("openlit-anthropic", "chat-reasoning"): frozenset({"reasoning_tokens"}),
    ("openllmetry-anthropic", "chat-reasoning"): frozenset({"reasoning_tokens"}),
    ("openllmetry-anthropic-with-sdk-tracing", "chat-reasoning"): frozenset({"reasoning_tokens"}),
}
# On Anthropic's older stream format (usage only in message_start) OpenLIT keeps the
# uncached input and drops both cache counts: the cached part of the prompt is lost.
DROPS_CACHE = {("openlit-anthropic", "chat-stream-legacy")}
# OpenLLMetry adds message_start's output count (1) to message_delta's cumulative count
# on Anthropic streams, so its output is one too many; we store what it says.
OVERCOUNTS_OUTPUT_BY = {
    ("openllmetry-anthropic", s): 1 for s in ("chat-stream", "chat-stream-helper", "chat-stream-legacy")
}
# The anthropic SDK's own tracing starts a new trace instead of joining the
# instrumentation's: the two spans of one call arrive in two traces, and merging is
# per trace (see README, "One call, one record"). Known gap, kept visible.
TWO_TRACES = "openllmetry-anthropic-with-sdk-tracing"


def _params() -> list:
    out = []
    for path in FIXTURES:
        marks = []
        if path.parent.name == TWO_TRACES:
            marks.append(pytest.mark.xfail(strict=True, reason="SDK span and instrumentation span in two traces"))
        out.append(pytest.param(path, id=f"{path.parent.name}/{path.stem}", marks=marks))
    return out


def _trace_ids(bodies: list[bytes]) -> set[str]:
    ids = set()
    for body in bodies:
        request = ExportTraceServiceRequest.FromString(body)
        for rs in request.resource_spans:
            for ss in rs.scope_spans:
                ids.update(span.trace_id.hex() for span in ss.spans)
    return ids


def _replay(running: RunningCollector, capture: dict[str, Any]) -> list[dict[str, Any]]:
    traces = [base64.b64decode(b) for b in capture["traces"]]
    for body in [base64.b64decode(b) for b in capture.get("logs", [])]:
        assert httpx.post(f"{running.otlp_http}/v1/logs", content=body, headers=PROTOBUF).status_code == 200
    for body in traces:
        reply = httpx.post(f"{running.otlp_http}/v1/traces", content=body, headers=PROTOBUF)
        assert reply.status_code == 200, reply.content
    calls = []
    for trace_id in sorted(_trace_ids(traces)):
        calls.extend(running.calls(trace_id=trace_id))
    return calls


@pytest.mark.parametrize("path", _params())
def test_capture_gives_one_call_matching_the_provider(shared_collector: RunningCollector, path: Path) -> None:
    capture = json.loads(path.read_text())
    expected = capture["expected"]
    calls = _replay(shared_collector, capture)
    assert len(calls) == 1, [(c["span_id"], c["member_span_ids"]) for c in calls]
    (call,) = calls
    assert call["provider"] == expected["provider"]
    assert call["operation"] == expected["operation"]
    assert call["request_model"] == expected["request_model"]
    assert call["status"] == expected["status"]
    if expected["status"] == "error":
        assert call["error_type"]
        return
    assert call["response_model"] == expected["response_model"]
    key = (path.parent.name, path.stem)
    missing = NOT_REPORTED.get(key, frozenset())
    want = {f: expected[f] for f in TOKEN_FIELDS}
    if missing:
        total = want["input_tokens"] + want["cache_read_tokens"] + want["cache_write_tokens"]
        assert call["input_tokens"] + call["cache_read_tokens"] + call["cache_write_tokens"] == total
        for name in missing:
            assert call[name] == 0, name
            want[name] = 0
        want["input_tokens"] = total - want["cache_read_tokens"] - want["cache_write_tokens"]
    if key in DROPS_CACHE:
        want["cache_read_tokens"] = want["cache_write_tokens"] = 0
    want["output_tokens"] += OVERCOUNTS_OUTPUT_BY.get(key, 0)
    assert {f: call[f] for f in TOKEN_FIELDS} == want
    if call["streaming"] is not None:
        assert call["streaming"] == expected["streaming"]
    text = json.dumps(call)
    assert "SECRET-PROMPT" not in text and "SECRET-COMPLETION" not in text
    if capture.get("logs") or any("SECRET-PROMPT" in json.dumps(t) for t in capture.get("traces_json", [])):
        assert call["prompt_hash"], "content was sent, so a prompt hash must be computed"
