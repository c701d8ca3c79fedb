"""A collector holding four hours of real OTel traffic for the plans: the API's and the Plans page's tests share it.

2025-06-10 00:00-04:00: chat's claude-e2e traffic ($3 / $15 per million), which a declared
substitute lets a box rented at $0.10 an hour (100 prompt tokens a second, 10 written) serve
whole, and one search call of gpt-e2e no box may take. The hours are worked out by hand in
tests/api/test_plans_api.py.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from tests.conftest import RunningCollector, start_collector, wait_for
from tests.otel import chat_attributes, tracer

CONFIG = """
[[pricing.prices]]
provider = "anthropic"
model = "claude-e2e"
effective_from = 2025-01-01
input = 3.00
output = 15.00

[[pricing.prices]]
provider = "openai"
model = "gpt-e2e"
effective_from = 2025-01-01
input = 1.00
output = 1.00

[[pricing.candidates]]
name = "box"
model = "llama-e2e"
rent_per_hour = 0.10
capacity = { input_tps = 100, output_tps = 10 }

[[pricing.substitutes]]
from = { provider = "anthropic", model = "claude-*" }
to = { model = "llama-e2e" }
evidence = "e2e eval"
"""

NS = 1_000_000_000
JUNE_10 = 1_749_513_600 * NS  # 2025-06-10T00:00:00Z
HOUR = 3600 * NS
RANGE = {"since": "2025-06-10T00:00:00Z", "until": "2025-06-10T04:00:00Z"}
# service, provider, model, start (ns), input tokens, output tokens
SENT = [
    ("chat", "anthropic", "claude-e2e", JUNE_10 + 60 * NS, 180_000, 0),
    ("chat", "anthropic", "claude-e2e", JUNE_10 + 120 * NS, 180_000, 0),
    ("chat", "anthropic", "claude-e2e", JUNE_10 + HOUR + 60 * NS, 720_000, 0),
    ("chat", "anthropic", "claude-e2e", JUNE_10 + 3 * HOUR + 60 * NS, 90_000, 900),
    ("search", "openai", "gpt-e2e", JUNE_10 + 60 * NS, 1000, 10),  # no box runs it, no substitute names it
]


@contextmanager
def plans_collector(tmp: Path) -> Iterator[RunningCollector]:
    """A started collector with CONFIG, holding SENT's calls; stopped after."""
    (tmp / "b.toml").write_text(CONFIG)
    running = start_collector(tmp, config=str(tmp / "b.toml"))
    try:
        for service, provider, model, start, tokens_in, tokens_out in SENT:
            with tracer(running.otlp_http, service) as spans:
                attrs = chat_attributes(
                    **{"gen_ai.provider.name": provider, "gen_ai.request.model": model, "gen_ai.response.model": None,
                       "gen_ai.usage.input_tokens": tokens_in, "gen_ai.usage.output_tokens": tokens_out,
                       "server.address": f"api.{provider}.com"}
                )  # fmt: skip
                spans.start_span("chat", start_time=start, attributes=attrs).end(end_time=start + NS)
        wait_for(lambda: len(running.calls(**RANGE)) == len(SENT))
        yield running
    finally:
        running.app.stop()
