"""A collector holding a day of real OTel traffic and both providers' bills of it, fetched from a
fake of their admin APIs (tests.fakeadmin): the reconciliation API's and dashboard's tests share it.

The bills differ from the traffic in three known ways (worked out by hand in
tests/api/test_reconciliation.py): an OpenAI project the ledger never sees, cached tokens the
emitter does not report, and an Anthropic discount the price book lacks.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from typing import Any

from breakeven.collector.reconcile.fetch import fetch_lines
from breakeven.collector.store.bills import replace_lines
from tests.conftest import RunningCollector, running_collector, wait_for
from tests.fakeadmin import ANTHROPIC_KEY, OPENAI_KEY, AdminApi
from tests.otel import chat_attributes, tracer

DAY = date(2026, 11, 3)
NS = 1_000_000_000
KEY_VARIABLES = ("TEST_RECONCILE_OPENAI_KEY", "TEST_RECONCILE_ANTHROPIC_KEY")

CONFIG = """
[pricing]
[[pricing.fx]]
currency = "GBP"
date = 2025-01-01
per_usd = 0.8

[[pricing.prices]]
provider = "openai"
model = "gpt-4o-2024-08-06"
effective_from = 2025-01-01
input = 2.50
cache_read = 1.25
output = 10.00

[[pricing.prices]]
provider = "openai"
model = "gpt-4o-mini-2024-07-18"
effective_from = 2025-01-01
input = 0.15
cache_read = 0.075
output = 0.60

[[pricing.prices]]
provider = "anthropic"
model = "claude-sonnet-4-5-20250929"
effective_from = 2025-01-01
input = 3.00
cache_read = 0.30
cache_write = 3.75
output = 15.00

[[reconcile.sources]]
name = "openai-org"
kind = "openai"
admin_key_env = "TEST_RECONCILE_OPENAI_KEY"
base_url = "{url}"
[reconcile.sources.map]
"proj_support" = {{ service = "support", team = "cx" }}
"proj_nightly" = {{ service = "nightly-batch", team = "data" }}

[[reconcile.sources]]
name = "anthropic"
kind = "anthropic"
admin_key_env = "TEST_RECONCILE_ANTHROPIC_KEY"
base_url = "{url}"
[reconcile.sources.map]
"wrk_writer" = {{ service = "writer", team = "content" }}
"""


def _usage(model: str, project: str, input_tokens: int, output: int, requests: int, cached: int = 0) -> dict[str, Any]:
    return {
        "object": "organization.usage.completions.result", "input_tokens": input_tokens,
        "input_cached_tokens": cached, "output_tokens": output, "num_model_requests": requests,
        "model": model, "project_id": project, "batch": False,
    }  # fmt: skip


def _cost(item: str, project: str, value: str) -> dict[str, Any]:
    amount = {"value": float(value), "currency": "usd"}  # a JSON number, as the API writes it
    return {"object": "organization.costs.result", "amount": amount, "line_item": item, "project_id": project}


def bills(day: date) -> dict[tuple[str, date], list[dict[str, Any]]]:
    """What the fake admin APIs bill for the day's traffic (send_traffic), report by report."""
    return {
        ("openai-usage", day): [
            _usage("gpt-4o-2024-08-06", "proj_support", 1_000_000, 200_000, 10),
            _usage("gpt-4o-2024-08-06", "proj_nightly", 4_000_000, 800_000, 40),
            _usage("gpt-4o-mini-2024-07-18", "proj_support", 2_000_000, 100_000, 10, cached=800_000),
        ],
        ("openai-cost", day): [
            _cost("gpt-4o-2024-08-06, input", "proj_support", "2.50"),  # 1M x $2.50/M
            _cost("gpt-4o-2024-08-06, output", "proj_support", "2.00"),  # 200k x $10/M
            _cost("gpt-4o-2024-08-06, input", "proj_nightly", "10.00"),  # 4M x $2.50/M
            _cost("gpt-4o-2024-08-06, output", "proj_nightly", "8.00"),  # 800k x $10/M
            _cost("gpt-4o-mini-2024-07-18, input", "proj_support", "0.18"),  # 1.2M uncached x $0.15/M
            _cost("gpt-4o-mini-2024-07-18, cached input", "proj_support", "0.06"),  # 800k x $0.075/M
            _cost("gpt-4o-mini-2024-07-18, output", "proj_support", "0.06"),  # 100k x $0.60/M
        ],
        ("anthropic-usage", day): [
            {
                "uncached_input_tokens": 3_000_000,
                "cache_creation": {"ephemeral_1h_input_tokens": 0, "ephemeral_5m_input_tokens": 0},
                "cache_read_input_tokens": 0,
                "output_tokens": 500_000,
                "model": "claude-sonnet-4-5-20250929",
                "workspace_id": "wrk_writer",
                "service_tier": "standard",
            }
        ],
        ("anthropic-cost", day): [  # cents as decimal strings, 10% off: $9.00 -> $8.10, $7.50 -> $6.75
            {
                "currency": "USD",
                "amount": "810.00",
                "workspace_id": "wrk_writer",
                "model": "claude-sonnet-4-5-20250929",
                "description": "Claude Sonnet 4.5 Usage - Input Tokens",
            },
            {
                "currency": "USD",
                "amount": "675.00",
                "workspace_id": "wrk_writer",
                "model": "claude-sonnet-4-5-20250929",
                "description": "Claude Sonnet 4.5 Usage - Output Tokens",
            },
        ],
    }


def send_traffic(running: RunningCollector, day: date = DAY, prompt: str | None = None) -> None:
    """30 calls at noon of the day: support's gpt-4o and gpt-4o-mini (no cached tokens reported),
    writer's Claude; each carrying `prompt` as its input message when given (redacted on ingest)."""
    noon = int(datetime.combine(day, time(12), UTC).timestamp()) * NS
    traffic = [
        ("support", "openai", "gpt-4o-2024-08-06", 100_000, 20_000),
        ("support", "openai", "gpt-4o-mini-2024-07-18", 200_000, 10_000),
        ("writer", "anthropic", "claude-sonnet-4-5-20250929", 300_000, 50_000),
    ]
    content = {"gen_ai.input.messages": f'[{{"role": "user", "content": "{prompt}"}}]'} if prompt else {}
    for service, provider, model, input_tokens, output in traffic:
        with tracer(running.otlp_http, service) as spans:
            for n in range(10):
                attrs = chat_attributes(
                    **{
                        "gen_ai.provider.name": provider, "gen_ai.request.model": model,
                        "gen_ai.response.model": None, "gen_ai.usage.input_tokens": input_tokens,
                        "gen_ai.usage.output_tokens": output, "server.address": f"api.{provider}.com",
                    },
                    **content,
                )  # fmt: skip
                span = spans.start_span("chat", start_time=noon + n * NS, attributes=attrs)
                span.end(end_time=noon + n * NS + NS // 2)


@contextmanager
def reconciled_collector(
    tmp: Path, dialect: str, admin: AdminApi, day: date = DAY, prompt: str | None = None
) -> Iterator[RunningCollector]:
    """A running collector holding the day's traffic and both providers' bills of it (admin bills
    bills(day)); the admin keys set in the environment while it runs."""
    (tmp / "breakeven.toml").write_text(CONFIG.format(url=admin.url))
    saved = {name: os.environ.get(name) for name in KEY_VARIABLES}
    os.environ.update(TEST_RECONCILE_OPENAI_KEY=OPENAI_KEY, TEST_RECONCILE_ANTHROPIC_KEY=ANTHROPIC_KEY)
    start, end = (datetime.combine(d, time(0), UTC).strftime("%Y-%m-%dT%H:%M:%SZ") for d in (day, day + timedelta(1)))
    try:
        with running_collector(tmp, dialect, config=str(tmp / "breakeven.toml")) as running:
            send_traffic(running, day, prompt)
            wait_for(lambda: len(running.calls(since=start, until=end)) == 30)
            for source in running.app.settings.reconcile.sources:
                for report, lines in fetch_lines(source, day, day + timedelta(days=1)).items():
                    replace_lines(running.app.engine, source.name, report, [day], lines)
            yield running
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
