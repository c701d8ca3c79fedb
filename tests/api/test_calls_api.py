"""GET /api/v1/calls: newest first, filters, cursor pages; bad parameters get a 400 with a reason."""

from __future__ import annotations

import uuid

import httpx
import pytest

from tests.conftest import RunningCollector
from tests.otel import chat_attributes, tracer

REQUIRED_FIELDS = {
    "trace_id", "span_id", "start_time", "end_time", "duration_ms", "ttft_ms", "service", "environment", "team",
    "feature", "operation", "provider", "backend", "backend_class", "request_model", "response_model", "quantization",
    "prompt_hash", "input_tokens", "cache_read_tokens", "cache_write_tokens", "output_tokens", "reasoning_tokens",
    "streaming", "status", "error_type",
}  # fmt: skip


@pytest.fixture(scope="module")
def seeded(shared_collector: RunningCollector) -> tuple[RunningCollector, str]:
    service = f"pager-{uuid.uuid4().hex[:6]}"
    start = 1_790_000_000_000_000_000
    with tracer(shared_collector.otlp_http, service) as t:
        for i in range(25):
            model = "gpt-4o" if i % 2 else "claude-sonnet-4-5"
            provider = "openai" if i % 2 else "anthropic"
            span = t.start_span(
                "chat",
                start_time=start + i * 1_000_000_000,
                attributes=chat_attributes(
                    **{
                        "gen_ai.request.model": model,
                        "gen_ai.response.model": None,
                        "gen_ai.provider.name": provider,
                        "server.address": None,
                        "breakeven.prompt_hash": f"h{i % 5}",
                    }
                ),
            )
            span.end(end_time=start + i * 1_000_000_000 + 500_000_000)
    return shared_collector, service


def test_every_field_is_there_with_the_right_type(seeded: tuple[RunningCollector, str]) -> None:
    running, service = seeded
    call = running.calls(service=service)[0]
    assert set(call) >= REQUIRED_FIELDS
    for name in ("input_tokens", "cache_read_tokens", "cache_write_tokens", "output_tokens", "reasoning_tokens"):
        assert isinstance(call[name], int)
    assert call["duration_ms"] == pytest.approx(500.0)


def test_pages_follow_the_cursor_newest_first(seeded: tuple[RunningCollector, str]) -> None:
    running, service = seeded
    seen: list[str] = []
    cursor = None
    pages = 0
    while True:
        params = {"service": service, "limit": 10, **({"cursor": cursor} if cursor else {})}
        page = httpx.get(f"{running.api}/api/v1/calls", params=params).json()
        seen.extend(c["start_time"] for c in page["calls"])
        pages += 1
        cursor = page["next"]
        if cursor is None:
            break
    assert pages == 3
    assert len(seen) == 25
    assert len(set(seen)) == 25
    assert seen == sorted(seen, reverse=True)


@pytest.mark.parametrize(
    ("params", "count"),
    [
        pytest.param({"provider": "openai"}, 12, id="provider"),
        pytest.param({"model": "claude-sonnet-4-5"}, 13, id="model"),
        pytest.param({"prompt_hash": "h0"}, 5, id="prompt hash"),
        pytest.param({"since": "2026-09-21T14:13:40Z"}, 5, id="since"),
        pytest.param({"until": "2026-09-21T14:13:25Z"}, 5, id="until"),
        pytest.param({"backend": "nowhere"}, 0, id="backend"),
    ],
)
def test_filters(seeded: tuple[RunningCollector, str], params: dict, count: int) -> None:
    running, service = seeded
    assert len(running.calls(service=service, **params)) == count


@pytest.mark.parametrize(
    ("params", "status"),
    [
        pytest.param({"since": "yesterday"}, 400, id="bad since"),
        pytest.param({"cursor": "garbage!"}, 400, id="bad cursor"),
        pytest.param({"limit": 0}, 422, id="limit too small"),
        pytest.param({"limit": 100000}, 422, id="limit too large"),
    ],
)
def test_bad_parameters(shared_collector: RunningCollector, params: dict, status: int) -> None:
    reply = httpx.get(f"{shared_collector.api}/api/v1/calls", params=params)
    assert reply.status_code == status
    assert reply.json()["detail"]


def test_health_and_readiness_and_home(shared_collector: RunningCollector) -> None:
    assert httpx.get(f"{shared_collector.api}/healthz").json() == {"status": "ok"}
    assert httpx.get(f"{shared_collector.api}/readyz").json() == {"status": "ready"}
    home = httpx.get(f"{shared_collector.api}/")
    assert home.status_code == 200
    assert "breakeven" in home.text
