"""A FOCUS export's AI lines against the ledger: Bedrock and Azure OpenAI token lines
(tests/fixtures/reconcile/focus/hand-ai-gpu-1.2.csv) imported, the same traffic sent as real
OTel SDK spans, GET /api/v1/reconciliation matching the bill's model spellings to the ledger's."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, date, datetime, time
from pathlib import Path
from typing import Any

import httpx
import pytest

from breakeven.collector.reconcile.files import read_bill_file
from breakeven.collector.store.bills import replace_lines
from tests.conftest import DIALECTS, RunningCollector, running_collector, wait_for
from tests.otel import chat_attributes, tracer

EXPORT = Path(__file__).parents[1] / "fixtures" / "reconcile" / "focus" / "hand-ai-gpu-1.2.csv"
DAY = date(2026, 11, 2)
NS = 1_000_000_000
BEDROCK_MODEL = "anthropic.claude-3-5-sonnet-20240620-v1:0"

CONFIG = f"""
[backend_classes]
"10.0.0.9" = "self_hosted"

[[pricing.prices]]
provider = "aws.bedrock"
model = "{BEDROCK_MODEL}"
effective_from = 2025-01-01
input = 3.00
cache_read = 0.30
cache_write = 3.75
output = 15.00

[[pricing.prices]]
provider = "azure.ai.openai"
model = "gpt-4o-2024-08-06"
effective_from = 2025-01-01
input = 2.50
cache_read = 1.25
output = 10.00

[[reconcile.sources]]
name = "cloud"
kind = "focus"
path = "/nowhere/*.csv"
"""


@pytest.fixture(scope="module", params=DIALECTS)
def billed(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningCollector]:
    tmp = tmp_path_factory.mktemp("focus")
    (tmp / "breakeven.toml").write_text(CONFIG)
    with running_collector(tmp, request.param, config=str(tmp / "breakeven.toml")) as running:
        noon = int(datetime.combine(DAY, time(12), UTC).timestamp()) * NS
        sent = [
            ("aws.bedrock", BEDROCK_MODEL, "bedrock-runtime.us-east-1.amazonaws.com", 1_250_000, 200_000),
            ("azure.ai.openai", "gpt-4o-2024-08-06", "acme.openai.azure.com", 1_500_000, 0),
            ("together", "meta-llama/Llama-3.3-70B-Instruct-Turbo", "api.together.xyz", 1000, 100),  # no bill read
            ("vllm", "llama-local", "10.0.0.9", 1000, 100),  # our own box: nobody bills it per token
        ]
        with tracer(running.otlp_http, "assistant") as spans:
            for n, (provider, model, host, input_tokens, output) in enumerate(sent):
                attrs = chat_attributes(
                    **{"gen_ai.provider.name": provider, "gen_ai.request.model": model, "gen_ai.response.model": None,
                       "gen_ai.usage.input_tokens": input_tokens, "gen_ai.usage.output_tokens": output,
                       "server.address": host}
                )  # fmt: skip
                span = spans.start_span("chat", start_time=noon + n * NS, attributes=attrs)
                span.end(end_time=noon + n * NS + NS // 2)
        wait_for(lambda: len(running.calls(since="2026-11-02T00:00:00Z", until="2026-11-03T00:00:00Z")) == 4)
        source = running.app.settings.reconcile.sources[0]
        replace_lines(running.app.engine, "cloud", "focus", [], read_bill_file(source, EXPORT))
        yield running


def _rows(running: RunningCollector) -> dict[str, dict[str, Any]]:
    query = {"since": "2026-11-02", "until": "2026-11-03", "group_by": "provider,model"}
    answer = httpx.get(f"{running.api}/api/v1/reconciliation", params=query, timeout=30)
    assert answer.status_code == 200, answer.text
    return {f"{r['provider']} {r['model']}": r for r in answer.json()["rows"]}


def test_bedrocks_usage_type_spelling_meets_the_ledgers_model_id(billed: RunningCollector) -> None:
    row = _rows(billed)[f"aws.bedrock {BEDROCK_MODEL}"]
    assert row["ledger"]["tokens"]["input"] == 1_250_000
    assert row["billed"]["tokens"]["input"] == 1_250_000  # USE1-Claude3.5Sonnet-input-tokens
    assert row["billed"]["tokens"]["cache_read"] == 500_000
    # The ledger's call reported no cached tokens; the bill has 600,000 of them: never seen.
    assert row["coverage"] == "0.7073170732"  # 1,450,000 of 2,050,000
    assert row["causes"][0]["kind"] == "never_seen"


def test_azures_meter_spelling_meets_the_dated_model(billed: RunningCollector) -> None:
    row = _rows(billed)["azure.ai.openai gpt-4o-2024-08-06"]  # the bill's gpt-4o-0806
    assert row["ledger"]["cost"] == "3.75"  # 1.5M x $2.50
    assert row["billed"]["tokens"]["input"] == 1_500_000
    assert row["billed"]["cost"] == "4.375"  # 3.75 input + 0.625 for 500,000 cached input the ledger never saw
    assert row["causes"][0]["kind"] == "never_seen"


def test_lines_without_tokens_are_charges_apart(billed: RunningCollector) -> None:
    rows = _rows(billed)
    other = rows["aws.bedrock None"]  # embeddings and images: no token count in the export
    assert other["status"] == "bill_only"
    assert other["billed"]["cost"] == "0.42"
    assert "gcp.vertex_ai gemini15pro" not in rows  # a day's line of Vertex AI: its own row
    assert rows["gcp.vertex_ai Gemini 1.5 Pro"]["status"] == "bill_only"


def test_traffic_no_source_bills_is_listed_apart_and_self_hosted_is_not(billed: RunningCollector) -> None:
    query = {"since": "2026-11-02", "until": "2026-11-03"}
    body = httpx.get(f"{billed.api}/api/v1/reconciliation", params=query, timeout=30).json()
    assert [u["provider"] for u in body["unbilled"]] == ["together"]
    assert body["unbilled"][0]["calls"] == 1
