"""The captured content of the emitters with keys of their own never comes to rest; the
prompt hash is the prompt's.

The Vercel AI SDK puts the conversation in keys of its own (`ai.prompt`,
`ai.prompt.messages`, `ai.prompt.tools`, `ai.response.text`, `ai.response.toolCalls`,
`ai.response.object`, `ai.values`, `ai.embeddings`; its @ai-sdk/otel integration the OTel
GenAI ones). pydantic-ai too, beside the OTel GenAI ones: its agent run span's
`pydantic_ai.all_messages` (`all_messages_events` before 1.0) and `final_result`, a model
request's `events` before 1.0, a tool's `tool_arguments` / `tool_response` before 1.0. The
LiteLLM proxy's spans carry the request and answer in `gen_ai.input.messages`, in its
raw_gen_ai_request span's `llm.openai.messages` / `llm.openai.choices`, and the client's
headers in `metadata.requester_metadata`. Their captures hold marker text in every prompt,
system prompt and completion (tests/fixtures/emitters/README.md, "Fixture format").
Replayed into one collector, no marker may be anywhere: in any row of any table read back as
text, in the database's files, in the logs, in the calls API. And each call's prompt hash is
the hash of the prompt the scenario sent, the one every other emitter's call with that
prompt gets.
"""

from __future__ import annotations

import base64
import json
import logging
from pathlib import Path
from typing import Any

import httpx
import pytest

from breakeven.collector.normalize.redact import hash_messages
from tests.conftest import DIALECTS, RunningCollector, running_collector
from tests.emitters import sent_prompt

FIXTURES = Path(__file__).parents[1] / "fixtures" / "emitters"
# emitter -> the provider its scenarios' prompts are sent as (tests/emitters.py, sent_prompt)
EMITTERS = {
    "vercel-ai": "vercel-ai",
    "vercel-ai-legacy": "vercel-ai",
    "pydantic-ai": "openai",
    "pydantic-ai-v2": "openai",
    "pydantic-ai-0x": "openai",
    "pydantic-ai-openllmetry-openai": "openai",
    "litellm-proxy-openllmetry": "openai",
}
CAPTURES = sorted(path for emitter in EMITTERS for path in (FIXTURES / emitter).glob("*.json"))
MARKERS = ("SECRET-PROMPT", "SECRET-SYSTEM", "SECRET-COMPLETION", "SECRET-THINKING")
PROTOBUF = {"Content-Type": "application/x-protobuf"}


def _calls_wanted(capture: dict[str, Any]) -> int:
    """Calls a capture makes: one, or one per request of a tool loop (its expected_calls)."""
    return len(capture.get("expected_calls") or [capture["expected"]])


def _post(url: str, body: str) -> None:
    reply = httpx.post(url, content=base64.b64decode(body), headers=PROTOBUF, timeout=30)
    assert reply.status_code == 200, reply.content


@pytest.mark.parametrize("dialect", DIALECTS)
def test_no_captured_content_comes_to_rest(tmp_path: Path, caplog: pytest.LogCaptureFixture, dialect: str) -> None:
    caplog.set_level(logging.DEBUG)
    captures = [json.loads(path.read_text()) for path in CAPTURES]
    with running_collector(tmp_path, dialect, log_level="debug") as running:
        for capture in captures:
            for body in capture.get("logs", []):
                _post(f"{running.otlp_http}/v1/logs", body)
            for body in capture["traces"]:
                _post(f"{running.otlp_http}/v1/traces", body)
        rows = running.rows_as_text()
        calls = running.calls()
        answers = httpx.get(f"{running.api}/api/v1/calls", params={"limit": 1000}, timeout=30).text
    files = b"".join(p.read_bytes() for p in tmp_path.rglob("*") if p.is_file())
    assert len(calls) == sum(map(_calls_wanted, captures))  # the check looks where the data is
    assert "SECRET-PROMPT" in json.dumps([c["traces_json"] for c in captures])  # and the captures hold it
    for marker in MARKERS:
        assert marker not in rows, marker
        assert marker.encode() not in files, marker
        assert marker not in caplog.text, marker
        assert marker not in answers, marker


@pytest.mark.parametrize("path", [pytest.param(p, id=f"{p.parent.name}/{p.stem}") for p in CAPTURES])
def test_prompt_hash_is_the_prompt_sent(shared_collector: RunningCollector, path: Path) -> None:
    capture = json.loads(path.read_text())
    for body in capture["traces"]:
        _post(f"{shared_collector.otlp_http}/v1/traces", body)
    trace_ids = {
        base64.b64decode(span["traceId"]).hex()
        for request in capture["traces_json"]
        for rs in request["resourceSpans"]
        for ss in rs["scopeSpans"]
        for span in ss["spans"]
    }
    (trace_id,) = trace_ids  # a gateway's spans join the client's trace
    calls = sorted(shared_collector.calls(trace_id=trace_id), key=lambda c: c["start_time"])
    assert len(calls) == _calls_wanted(capture)
    sent = hash_messages(sent_prompt(EMITTERS[path.parent.name], capture["scenario"]))
    if capture["expected"]["status"] == "error":
        # pydantic-ai's failed request span records no messages; OpenLLMetry's client span does
        assert calls[0]["prompt_hash"] in (None, sent)
    elif "SECRET-PROMPT" in json.dumps(capture["traces_json"]):
        # a tool loop's first call sends the scenario's prompt (its second adds the tool round)
        assert calls[0]["prompt_hash"] == sent
        assert all(call["prompt_hash"] for call in calls)
    else:  # @ai-sdk/otel's OpenTelemetry integration records no embedding input
        assert calls[0]["prompt_hash"] is None
