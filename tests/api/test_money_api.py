"""The money API end to end: real OTel SDK spans in, priced spend, pools and break-even out.

Every expected figure is worked out by hand in the comments; money is a decimal string.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient

from breakeven.collector.api.routes import build_api
from breakeven.collector.config.pricing import parse_pricing
from breakeven.collector.price.config import PricingConfig
from breakeven.collector.price.ledger import ledger_pricer
from breakeven.collector.records import WriteBatch
from breakeven.collector.store.engine import make_engine, migrate
from breakeven.collector.store.writer import LedgerWriter
from tests.conftest import RunningCollector, start_collector
from tests.otel import chat_attributes, tracer
from tests.pricecalls import call

CONFIG = """
[backend_classes]
"10.0.0.7" = "self_hosted"

[pricing]
currency = "GBP"
allocation_period = "day"

[[pricing.prices]]
provider = "openai"
model = "gpt-e2e"
effective_from = 2025-01-01
input = 2.00
output = 8.00

[[pricing.prices]]
provider = "anthropic"
model = "claude-e2e"
effective_from = 2025-01-01
input = 3.00
output = 15.00

[[pricing.prices]]
provider = "together"
model = "llama-8b-turbo"
effective_from = 2025-01-01
input = 0.20
output = 0.20

[[pricing.discounts]]
provider = "anthropic"
percent = 10
effective_from = 2025-01-01

[[pricing.fx]]
currency = "GBP"
date = 2025-01-01
per_usd = 0.80

[[pricing.pools]]
name = "llama-8b"
boxes = 1
rent_per_hour = 1
capacity = { input_tps = 1000, output_tps = 100 }
match = { server_address = "10.0.0.7" }
alternative = { provider = "together", model = "llama-8b-turbo" }

[[pricing.candidates]]
name = "box"
model = "llama-e2e"
quantization = "fp8"
rent_per_month = 3
capacity = { input_tps = 1000, output_tps = 100 }

[[pricing.substitutes]]           # the e2e evals: llama-e2e in FP8 may serve every e2e model's traffic
from = { model = "*-e2e" }
to = { model = "llama-e2e", quantization = "fp8" }
evidence = "passes the e2e eval"
"""

NS = 1_000_000_000
JUNE_10 = 1_749_513_600 * NS  # 2025-06-10T00:00:00Z
HOUR = 3600 * NS
POOL = {"server.address": "10.0.0.7", "gen_ai.request.model": "meta-llama/Llama-3.1-8B-Instruct"}
# (service, start, attributes). USD: gpt 4M in / 400k out = 8 + 3.2 = 11.20; claude 1M / 200k = (3 + 3) x 0.9
# = 5.40; gpt-unknown has no price. The pool costs 24 a day; 06-10 splits it by busy seconds 1,000 : 3,000
# (6 search, 18 chat), 06-11 is all search's (24); the other 13 days of 06-01..06-15 are idle: 312.
SPANS = [
    ("search", JUNE_10 + 10 * HOUR, {"gen_ai.request.model": "gpt-e2e", "gen_ai.usage.input_tokens": 4_000_000, "gen_ai.usage.output_tokens": 400_000}),
    ("chat", JUNE_10 + 11 * HOUR, {"gen_ai.provider.name": "anthropic", "server.address": "api.anthropic.com", "gen_ai.request.model": "claude-e2e", "gen_ai.usage.input_tokens": 1_000_000, "gen_ai.usage.output_tokens": 200_000}),
    ("search", JUNE_10 + 11 * HOUR, {"gen_ai.request.model": "gpt-unknown-e2e", "gen_ai.usage.input_tokens": 10, "gen_ai.usage.output_tokens": 10}),
    ("search", JUNE_10 + 12 * HOUR, {**POOL, "gen_ai.usage.input_tokens": 1_000_000, "gen_ai.usage.output_tokens": 0}),
    ("chat", JUNE_10 + 13 * HOUR, {**POOL, "gen_ai.usage.input_tokens": 2_000_000, "gen_ai.usage.output_tokens": 100_000}),
    ("search", JUNE_10 + 33 * HOUR, {**POOL, "gen_ai.usage.input_tokens": 500_000, "gen_ai.usage.output_tokens": 0}),
]  # fmt: skip
RANGE = {"since": "2025-06-01", "until": "2025-06-16"}


@pytest.fixture(scope="module")
def fleet(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningCollector]:
    tmp = tmp_path_factory.mktemp("fleet")
    (tmp / "fleet.toml").write_text(CONFIG)
    running = start_collector(tmp, config=str(tmp / "fleet.toml"))
    for service, start, attrs in SPANS:
        with tracer(running.otlp_http, service) as t:
            span = t.start_span(
                "chat", start_time=start, attributes=chat_attributes(**{"gen_ai.response.model": None, **attrs})
            )
            span.end(end_time=start + NS)
    yield running
    running.app.stop()


def _get(running: RunningCollector, path: str, **params: Any) -> dict[str, Any]:
    reply = httpx.get(f"{running.api}{path}", params=params, timeout=10)
    assert reply.status_code == 200, reply.text
    return reply.json()


def test_spend_by_service_in_pounds(fleet: RunningCollector) -> None:
    body = _get(fleet, "/api/v1/spend", group_by="service", **RANGE)
    assert [(r["service"], r["calls"], r["unpriced_calls"], r["cost"]) for r in body["rows"]] == [
        ("chat", 2, 0, "18.72"),  # (5.40 + 18) x 0.80
        ("search", 4, 1, "32.96"),  # (11.20 + 6 + 24) x 0.80
    ]
    assert body["rows"][0]["tokens"] == {
        "input": 3_000_000, "cache_read": 0, "cache_write": 0, "output": 300_000, "reasoning": 0, "total": 3_300_000,
    }  # fmt: skip
    assert body["unpriced"] == {"calls": 1, "by_reason": {"no_price": 1}}
    assert body["unallocated_pool_cost"] == {"llama-8b": "249.60"}  # 312 x 0.80
    assert body["total_cost"] == "301.28"  # (360 pool + 11.20 + 5.40) x 0.80
    assert (body["currency"], body["fx"]["rate"], body["fx"]["rate_date"]) == ("GBP", "0.8", "2025-01-01")
    assert (body["since"], body["until"]) == ("2025-06-01T00:00:00Z", "2025-06-16T00:00:00Z")


def test_spend_in_dollars_by_pool_and_day(fleet: RunningCollector) -> None:
    body = _get(fleet, "/api/v1/spend", group_by="pool,day", currency="usd", **RANGE)
    assert [(r["pool"], r["day"], r["calls"], r["cost"]) for r in body["rows"]] == [
        ("llama-8b", "2025-06-10", 2, "24.00"),
        ("llama-8b", "2025-06-11", 1, "24.00"),
        (None, "2025-06-10", 3, "16.60"),
    ]
    assert (body["currency"], body["fx"], body["unallocated_pool_cost"]) == ("USD", None, {"llama-8b": "312.00"})


def test_pools(fleet: RunningCollector) -> None:
    (pool,) = _get(fleet, "/api/v1/pools", **RANGE)["pools"]
    assert pool == {
        "name": "llama-8b",
        "boxes": 1,
        "calls": 3,
        "tokens": {"input": 3_500_000, "cache_read": 0, "cache_write": 0, "output": 100_000, "reasoning": 0, "total": 3_600_000},
        "cost": {"hardware": "288.00", "power": "0.00", "ops": "0.00", "variable": "0.00", "total": "288.00"},  # 360 h x 1 x 0.80
        "busy_seconds": "4500",  # 3.5M / 1,000 + 100k / 100
        "capacity_seconds": "1296000",  # 15 days
        "utilization": "0.0034722222",  # 4,500 / 1,296,000
        "cost_per_million_tokens": "80.00",  # 288 / 3.6
        "idle_cost": "287.00",  # 288 x (1 - 4,500 / 1,296,000)
        "unallocated_cost": "249.60",
        "alternative": {
            "provider": "together", "model": "llama-8b-turbo",
            "cost": "0.576",  # 3.6M x 0.20 = 0.72 USD
            "per_million_tokens": "0.16", "unpriced_calls": 0, "detail": None,
        },
        "break_even": {
            "tokens": "1800000000",  # 360 USD / 0.20 per million
            "utilization": "1.7361111111",  # 0.0034722 x 1.8e9 / 3.6e6
            "tokens_above": "-1796400000",
            "utilization_above": "-1.7326388889",
            "savings": "-287.424",  # 0.576 - 288
            "reason": None,
        },
        "allocation": {
            "service": [
                {"service": "chat", "calls": 1, "tokens": 2_100_000, "cost": "14.40"},  # 18 x 0.80
                {"service": "search", "calls": 2, "tokens": 1_500_000, "cost": "24.00"},  # (6 + 24) x 0.80
            ],
            "team": [{"team": None, "calls": 3, "tokens": 3_600_000, "cost": "38.40"}],
        },
        "gpu_metrics": None,  # no GPU metric collected: tests/api/test_gpu_metrics.py has them
        "gpu_scrape": [],
    }  # fmt: skip


def test_breakeven(fleet: RunningCollector) -> None:
    body = _get(fleet, "/api/v1/breakeven", until="2025-06-16")  # half of June: the run rate doubles
    assert body["month"] == "2025-06"
    assert body["since"] == "2025-06-01T00:00:00Z"
    got = [
        (c["service"], c["model"], c["month_to_date"], c["projected"], c["cheapest_pool"], c["savings"])
        for c in body["classes"]
    ]
    # One box ("box", 3 USD a month = 2.40) carries either class; sorted by savings.
    moved = {"model": "llama-e2e", "quantization": "fp8", "share": "1", "evidence": "passes the e2e eval"}
    assert got == [
        ("search", "gpt-e2e", "8.96", "17.92", {"candidate": "box", "boxes": 1, "cost": "2.40", "utilization": "0.0061728395", **moved}, "15.52"),
        ("chat", "claude-e2e", "4.32", "8.64", {"candidate": "box", "boxes": 1, "cost": "2.40", "utilization": "0.0023148148", **moved}, "6.24"),
        ("search", "gpt-unknown-e2e", None, None, {"candidate": "box", "boxes": 1, "cost": "2.40", "utilization": "0.0000000849", **moved}, None),
    ]  # fmt: skip
    assert (body["classes"][0]["projected_input_tokens"], body["classes"][0]["projected_output_tokens"]) == (
        "8000000",
        "800000",
    )
    (pool,) = body["pools"]
    assert (pool["name"], pool["utilization"], pool["break_even"]["utilization"], pool["above_break_even"]) == (
        "llama-8b",
        "0.0034722222",
        "1.7361111111",
        False,
    )


def test_breakeven_for_a_month_that_has_ended(fleet: RunningCollector) -> None:
    body = _get(fleet, "/api/v1/breakeven", until="2025-07-01", currency="USD")  # all of June: nothing to project
    first = body["classes"][0]
    assert (body["month"], first["model"], first["month_to_date"], first["projected"]) == (
        "2025-06",
        "gpt-e2e",
        "11.20",
        "11.20",
    )
    assert (first["projected_input_tokens"], first["cheapest_pool"]["cost"], first["savings"]) == (
        "4000000",
        "3.00",
        "8.20",
    )


def test_calls_carry_their_cost(fleet: RunningCollector) -> None:
    pounds = {(c["request_model"], c["input_tokens"]): c for c in fleet.calls(currency="GBP", **RANGE)}
    assert {k: (c["cost"], c["currency"], c["priced"]) for k, c in pounds.items()} == {
        ("gpt-e2e", 4_000_000): ("8.96", "GBP", True),
        ("claude-e2e", 1_000_000): ("4.32", "GBP", True),
        ("gpt-unknown-e2e", 10): (None, "GBP", False),
        ("meta-llama/Llama-3.1-8B-Instruct", 1_000_000): ("4.80", "GBP", True),  # 6 of 06-10's 24
        ("meta-llama/Llama-3.1-8B-Instruct", 2_000_000): ("14.40", "GBP", True),
        ("meta-llama/Llama-3.1-8B-Instruct", 500_000): ("19.20", "GBP", True),
    }
    dollars = fleet.calls(**RANGE)
    assert {c["currency"] for c in dollars} == {"USD"}
    assert sorted(c["cost"] for c in dollars if c["cost"]) == ["11.20", "18.00", "24.00", "5.40", "6.00"]
    gpt = pounds[("gpt-e2e", 4_000_000)]
    assert (gpt["price_source"], gpt["price_status"]) == (f"price book {fleet.app.settings.config}", "priced")
    assert "cost_usd" not in gpt
    assert "list_cost_usd" not in gpt


@pytest.mark.parametrize(
    ("path", "params", "reason"),
    [
        pytest.param("/api/v1/spend", {"group_by": "service,colour"}, "cannot group by 'colour'", id="bad group_by"),
        pytest.param("/api/v1/spend", {"currency": "EUR"}, "no [[pricing.fx]] rate converts USD to 'EUR'", id="unknown currency"),
        pytest.param("/api/v1/pools", {"since": "last week"}, "since: not an ISO 8601", id="bad since"),
        pytest.param("/api/v1/breakeven", {"since": "2025-06-10", "until": "2025-06-01"}, "must be before until", id="empty range"),
        pytest.param("/api/v1/spend", {"since": "2024-12-01", "until": "2025-06-16"}, "no GBP rate on or before 2024-12-01", id="before the first rate"),
        pytest.param("/api/v1/calls", {"currency": "EUR"}, "no [[pricing.fx]] rate converts USD to 'EUR'", id="calls: unknown currency"),
    ],
)  # fmt: skip
def test_bad_parameters_are_400_with_a_reason(fleet: RunningCollector, path: str, params: dict, reason: str) -> None:
    reply = httpx.get(f"{fleet.api}{path}", params=params, timeout=10)
    assert reply.status_code == 400
    assert reason in reply.json()["detail"]


# In process: a pool bought with power, an alternative with a context tier, an idle pool (USD, June 2025).
OWNED = {
    "prices": [
        {"provider": "together", "model": "llama-tier", "effective_from": "2025-01-01", "input": "1", "output": "1",
         "tiers": [{"above": 1000, "input": "2", "output": "2"}]},
    ],
    "pools": [
        {"name": "owned", "boxes": 1, "purchase_price": "3600", "amortization_months": 36, "purchased_on": "2025-01-15",
         "power": {"kw": "0.5", "price_per_kwh": "0.20", "pue": "1.5"}, "ops_per_month": "50",
         "capacity": {"input_tps": "1000", "output_tps": "100"}, "match": {"backend": "vllm-o"},
         "alternative": {"provider": "together", "model": "llama-tier"}},
        {"name": "idle", "boxes": 1, "rent_per_month": "300", "capacity": {"input_tps": "1000", "output_tps": "100"},
         "match": {"backend": "nothing"}, "alternative": {"provider": "together", "model": "llama-tier"}},
    ],
}  # fmt: skip


@pytest.fixture
def owned(tmp_path: Path) -> Iterator[TestClient]:
    engine = make_engine(f"duckdb:///{tmp_path / 'owned.duckdb'}")
    migrate(engine)
    pricing = parse_pricing(OWNED)
    served = [
        call(provider="vllm", model="llama-o", backend="vllm-o", backend_class="self_hosted", start=f"2025-06-10T0{h}:00:00", input=n)
        for h, n in ((1, 1000), (2, 1500))
    ]  # fmt: skip
    LedgerWriter(engine).write(WriteBatch(calls=served, prices=[ledger_pricer(pricing)(c) for c in served]), 0)
    yield _client(engine, pricing)
    engine.dispose()


def _client(engine: sa.Engine, pricing: PricingConfig) -> TestClient:
    return TestClient(build_api(engine, None, pricing))


def test_owned_pool_with_power_and_a_tiered_alternative(owned: TestClient) -> None:
    pools = {
        p["name"]: p
        for p in owned.get("/api/v1/pools", params={"since": "2025-06-01", "until": "2025-07-01"}).json()["pools"]
    }
    p = pools["owned"]
    # 3,600 / 36 months = 100; 0.5 kW x 720 h x 0.20 x 1.5 = 108; ops 50: 258 for June.
    assert p["cost"] == {"hardware": "100.00", "power": "108.00", "ops": "50.00", "variable": "0.00", "total": "258.00"}
    assert (p["busy_seconds"], p["utilization"], p["cost_per_million_tokens"]) == ("2.5", "0.0000009645", "103200.00")
    assert p["idle_cost"] == "257.9997511574"  # 258 x (1 - 2.5 / 2,592,000)
    # Priced call by call: 1,000 in at the base 1.00 + 1,500 in past the tier at 2.00 = 0.004 (not 2,500 x 2.00).
    assert (p["alternative"]["cost"], p["alternative"]["per_million_tokens"]) == ("0.004", "1.60")
    assert p["break_even"] == {
        "tokens": "161250000",  # 258 / 1.60 per million
        "utilization": "0.0622106481",  # 161,250,000 / 1,000 s per box / 2,592,000 s
        "tokens_above": "-161247500",
        "utilization_above": "-0.0622096836",
        "savings": "-257.996",
        "reason": None,
    }
    # Both calls fall on 06-10, whose 8.60 (258 / 30) they share; the other 29 days are idle.
    assert p["allocation"]["service"] == [{"service": "svc", "calls": 2, "tokens": 2500, "cost": "8.60"}]
    assert p["unallocated_cost"] == "249.40"
    idle = pools["idle"]
    assert (idle["calls"], idle["utilization"], idle["idle_cost"], idle["unallocated_cost"], idle["cost_per_million_tokens"]) == (
        0, "0", "300.00", "300.00", None,
    )  # fmt: skip
    assert idle["break_even"]["reason"].startswith("no traffic")


def test_each_day_is_converted_at_its_own_rate(tmp_path: Path) -> None:
    engine = make_engine(f"duckdb:///{tmp_path / 'fx.duckdb'}")
    migrate(engine)
    fx = [
        {"currency": "GBP", "date": "2025-01-01", "per_usd": "0.80"},
        {"currency": "GBP", "date": "2025-06-15", "per_usd": "0.50"},
    ]
    pricing = parse_pricing({**OWNED, "fx": fx})
    served = [
        call(
            provider="vllm",
            model="llama-o",
            backend="vllm-o",
            backend_class="self_hosted",
            start="2025-06-10T01:00:00",
            input=1000,
        )
    ]
    LedgerWriter(engine).write(WriteBatch(calls=served, prices=[ledger_pricer(pricing)(c) for c in served]), 0)
    client = _client(engine, pricing)
    june = {"since": "2025-06-01", "until": "2025-07-01", "currency": "GBP"}
    body = client.get("/api/v1/spend", params={**june, "group_by": "pool,day"}).json()
    # The call's day (06-10) at 0.80: 258 / 30 = 8.60 -> 6.88.
    assert [(r["pool"], r["day"], r["cost"]) for r in body["rows"]] == [("owned", "2025-06-10", "6.88")]
    # Idle stretches at their own rates: owned 06-01..06-14 less 06-10 = 13 x 8.60 x 0.80 = 89.44, then
    # 16 x 8.60 x 0.50 = 68.80; the idle pool's 300 for June is 140 x 0.80 + 160 x 0.50 = 192.
    assert body["unallocated_pool_cost"] == {"owned": "158.24", "idle": "192.00"}
    assert body["total_cost"] == "357.12"
    assert body["fx"]["rates"] == [
        {"rate": "0.8", "rate_date": "2025-01-01"},
        {"rate": "0.5", "rate_date": "2025-06-15"},
    ]
    assert (body["fx"]["rate"], body["fx"]["rate_date"]) == ("0.5", "2025-06-15")
    pools = {p["name"]: p for p in client.get("/api/v1/pools", params=june).json()["pools"]}
    assert pools["owned"]["cost"]["total"] == "165.12"  # 14 x 8.60 x 0.80 + 16 x 8.60 x 0.50
    engine.dispose()
