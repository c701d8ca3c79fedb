"""Replay every captured emitter payload; every field must match what the provider returned.

The captures (tests/fixtures/emitters/) were made by scripts/capture_emitters.py: the real
openai/anthropic clients, instrumented by each real instrumentation package in its own
virtualenv, calling tests/fakeprovider.py and exporting with the real OTel SDK. The
expectations and each emitter's habits live in tests/emitters.py, shared with the live run
of the emitters that install beside the test dependencies (tests/api/test_live_emitters.py).
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
from tests.emitters import KNOWN_OPEN, check_call

FIXTURES = sorted((Path(__file__).parents[1] / "fixtures" / "emitters").glob("*/*.json"))
PROTOBUF = {"Content-Type": "application/x-protobuf"}


def _params() -> list:
    return [
        pytest.param(path, id=f"{path.parent.name}/{path.stem}", marks=_known_open(path.parent.name, path.stem))
        for path in FIXTURES
    ]


def _known_open(emitter: str, scenario: str) -> list[pytest.MarkDecorator]:
    reason = KNOWN_OPEN.get((emitter, scenario))
    return [] if reason is None else [pytest.mark.xfail(strict=True, reason=reason)]


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
    # a scenario that made several provider requests (an agent's tool round) lists one record each
    wanted = capture.get("expected_calls") or [expected]
    calls = _replay(shared_collector, capture)
    assert len(calls) == len(wanted), [(c["span_id"], c["member_span_ids"]) for c in calls]
    content_sent = bool(
        capture.get("logs") or any("SECRET-PROMPT" in json.dumps(t) for t in capture.get("traces_json", []))
    )
    for call, want in zip(sorted(calls, key=lambda c: c["start_time"]), wanted, strict=True):
        check_call(call, want, path.parent.name, path.stem, content_sent)
