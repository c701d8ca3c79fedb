"""Every page and its JSON twin, in process over a real DuckDB ledger: the figures are the money
API's, the view persists, hostile span values are escaped, errors are pages with a reason."""

from __future__ import annotations

import csv
import dataclasses
import io
import re
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest
from fastapi.testclient import TestClient

from breakeven.collector.api.routes import build_api
from breakeven.collector.config.pricing import parse_pricing
from breakeven.collector.price.ledger import ledger_pricer
from breakeven.collector.records import WriteBatch
from breakeven.collector.store.engine import make_engine, migrate
from breakeven.collector.store.writer import LedgerWriter
from breakeven.dashboard.routes import add_dashboard
from tests.pricecalls import call

HOSTILE = "<script>alert(1)</script>"
FORMULA = '=HYPERLINK("http://evil.example","x")'
PRICING = {
    "currency": "GBP",
    "prices": [
        {"provider": "openai", "model": "gpt-e2e", "effective_from": "2025-01-01", "input": "2.00", "output": "8.00"},
        {"provider": "anthropic", "model": "claude-e2e", "effective_from": "2025-01-01", "input": "3.00", "output": "15.00"},
    ],
    "discounts": [{"provider": "anthropic", "percent": "10", "effective_from": "2025-01-01"}],
    "fx": [{"currency": "GBP", "date": "2025-01-01", "per_usd": "0.80"}, {"currency": "EUR", "date": "2025-01-01", "per_usd": "0.90"}],
    "pools": [
        {"name": "llama-8b", "boxes": 1, "rent_per_hour": "1", "capacity": {"input_tps": "1000", "output_tps": "100"},
         "match": {"server_address": "10.0.0.7"}, "alternative": {"provider": "anthropic", "model": "claude-e2e"}},
    ],
    "candidates": [
        {"name": "box", "model": "llama-e2e", "rent_per_month": "3", "capacity": {"input_tps": "1000", "output_tps": "100"}}
    ],
    "substitutes": [{"from": {"model": "*-e2e"}, "to": {"model": "llama-e2e"}, "evidence": "passes the e2e eval"}],
}  # fmt: skip
VIEW = {"range": "custom", "since": "2025-06-01", "until": "2025-06-15"}
API_RANGE = {"since": "2025-06-01", "until": "2025-06-16"}
PAGES = [
    "/",
    "/overview",
    "/spend",
    "/pools",
    "/breakeven",
    "/plans",
    "/calls",
    "/calls/repeated",
    "/quality",
    "/alerts",
]


def _calls() -> list[Any]:
    pool = {"provider": "openai", "model": "llama-8b", "backend_class": "self_hosted", "server_address": "10.0.0.7"}
    made = [
        call(model="gpt-e2e", service=HOSTILE, team=FORMULA, start="2025-06-10T10:00:00", input=4_000_000, output=400_000),
        call(provider="anthropic", model="claude-e2e", service="chat", team="support", start="2025-06-10T11:00:00",
             input=1_000_000, output=200_000),
        call(model="gpt-unknown-e2e", service="search", start="2025-06-10T11:30:00", input=10, output=10),
        call(**pool, service="search", start="2025-06-10T12:00:00", input=1_000_000),
        call(**pool, service="chat", start="2025-06-10T13:00:00", input=2_000_000, output=100_000),
    ]  # fmt: skip
    repeated = dataclasses.replace(made[1], trace_id="f" * 32, span_id="e" * 16, prompt_hash="ab" * 32, feature="faq")
    made[1] = dataclasses.replace(made[1], prompt_hash="ab" * 32, feature="faq")
    return [*made, repeated]


@pytest.fixture(scope="module")
def client(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestClient]:
    path = tmp_path_factory.mktemp("pages") / "ledger.duckdb"
    engine = make_engine(f"duckdb:///{path}")
    migrate(engine)
    pricing = parse_pricing(PRICING)
    made = _calls()
    LedgerWriter(engine).write(WriteBatch(calls=made, prices=[ledger_pricer(pricing)(c) for c in made]), 0)
    app = build_api(engine, None, pricing)
    add_dashboard(app, engine, pricing)
    with TestClient(app) as test_client:
        yield test_client
    engine.dispose()


def _json(client: TestClient, path: str, **params: Any) -> dict[str, Any]:
    reply = client.get(path, params=params)
    assert reply.status_code == 200, reply.text[:500]
    return reply.json()


@pytest.mark.parametrize("path", PAGES)
def test_every_page_and_its_json_twin_answer_with_the_hostile_values_escaped(client: TestClient, path: str) -> None:
    page = client.get(path, params=VIEW)
    assert page.status_code == 200, page.text[:500]
    assert page.headers["content-type"].startswith("text/html")
    assert "<script>alert" not in page.text
    assert not re.search(r'(src|href)="(https?:)?//', page.text)  # nothing is fetched from elsewhere
    twin = "/overview.json" if path == "/" else f"{path}.json"
    body = _json(client, twin, **VIEW)
    assert body["view"]["currency"] == "GBP"
    assert body["view"]["range"] == "custom"


def test_spend_explorer_agrees_with_the_money_api(client: TestClient) -> None:
    page = _json(client, "/spend.json", g1="service", g2="none", **VIEW)
    api = _json(client, "/api/v1/spend", group_by="service", **API_RANGE)
    assert page["total_cost"] == api["total_cost"]
    assert {r["key"]["service"]: r["cost"] for r in page["rows"]} == {r["service"]: r["cost"] for r in api["rows"]}
    assert page["idle_pool_cost"] == {k: v for k, v in api["unallocated_pool_cost"].items() if Decimal(v)}
    assert page["unpriced"] == api["unpriced"]
    html = client.get("/spend", params={"g1": "service", "g2": "none", **VIEW}).text
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html


def test_spend_groups_by_model_version_and_quantization_and_filters(client: TestClient) -> None:
    body = _json(client, "/spend.json", g1="model_version", g2="team", team="support", **VIEW)
    assert body["group_by"] == ["model_version", "team"]
    assert body["filters"] == {"team": "support"}
    assert [(r["key"]["model_version"], r["calls"]) for r in body["rows"]] == [("claude-e2e", 2)]
    assert body["idle_pool_cost"] == {}
    assert body["idle_pool_cost_shown"] is False
    none = _json(client, "/spend.json", g1="quantization", team="(none)", **VIEW)
    assert [(r["key"]["quantization"], r["calls"]) for r in none["rows"]] == [(None, 3)]
    bad = client.get("/spend.json", params={"g1": "colour", **VIEW})
    assert bad.status_code == 400
    assert "colour" in bad.json()["detail"]


def test_exports_are_the_current_view(client: TestClient) -> None:
    params = {"g1": "team", "g2": "model", **VIEW}
    view = _json(client, "/spend.json", **params)
    reply = client.get("/spend.csv", params=params)
    assert reply.status_code == 200
    assert "attachment" in reply.headers["content-disposition"]
    rows = list(csv.DictReader(io.StringIO(reply.content.decode("utf-8-sig"))))
    assert len(rows) == len(view["rows"]) + len(view["idle_pool_cost"])
    assert any(r["team"] == "'" + FORMULA for r in rows)  # formula injection defused
    table = pq.read_table(io.BytesIO(client.get("/spend.parquet", params=params).content))
    total = sum((r["cost"] or Decimal(0) for r in table.to_pylist()), Decimal(0))
    assert total == Decimal(view["total_cost"])


def test_currency_and_range_persist_through_the_cookie(client: TestClient) -> None:
    client.cookies.clear()
    assert _json(client, "/pools.json")["view"]["range"] == "30d"  # defaults
    client.get("/pools", params={"currency": "EUR", **VIEW})
    follow = _json(client, "/breakeven.json")  # no parameters: the cookie's view
    assert (follow["view"]["currency"], follow["view"]["range"]) == ("EUR", "custom")
    usd = _json(client, "/overview.json", currency="USD")  # a currency switch keeps the saved range
    assert (usd["view"]["currency"], usd["view"]["range"]) == ("USD", "custom")
    html = client.get("/calls").text
    assert 'href="/spend?currency=USD&amp;range=custom&amp;since=2025-06-01&amp;until=2025-06-15"' in html
    client.cookies.clear()


def test_pools_and_breakeven_are_the_money_apis_figures(client: TestClient) -> None:
    (pool,) = _json(client, "/pools.json", currency="USD", **VIEW)["pools"]
    (api,) = _json(client, "/api/v1/pools", currency="USD", **API_RANGE)["pools"]
    assert {k: pool[k] for k in api} == api
    assert pool["daily"]["days"][0] == "2025-06-01"
    assert len(pool["daily"]["days"]) == 15
    assert Decimal(pool["daily"]["cost"][9]) == Decimal(24)  # 06-10: 24 hours at 1 USD
    assert "below break-even" in pool["verdict"]
    page = _json(client, "/breakeven.json", currency="USD", **VIEW)
    api_be = _json(client, "/api/v1/breakeven", currency="USD", **API_RANGE)
    assert [c["savings"] for c in page["classes"]] == [c["savings"] for c in api_be["classes"]]
    assert page["classes"][0]["verdict"].startswith("Moving ")
    assert "per month at today's volume" in page["classes"][0]["verdict"]


def test_overview_splits_pool_cost_into_busy_and_idle(client: TestClient) -> None:
    body = _json(client, "/overview.json", currency="USD", **VIEW)
    series = {s["name"]: s["values"] for s in body["daily"]["series"]}
    assert set(series) == {"frontier", "self_hosted", "self_hosted idle"}
    day = body["daily"]["days"].index("2025-06-10")
    busy, idle = Decimal(series["self_hosted"][day]), Decimal(series["self_hosted idle"][day])
    assert busy + idle == Decimal(24)  # the day's pool cost
    assert Decimal(series["self_hosted idle"][0]) == Decimal(24)  # a day without traffic is all idle
    assert body["unpriced"] == {"calls": 1, "by_reason": {"no_price": 1}}
    top = [(r["key"]["service"], r["cost"]) for r in body["top"]["service"]]
    assert top == [("chat", "28.80"), (HOSTILE, "11.20"), ("search", "6.00")]  # 2 x 5.40 + 18; 11.20; 6 (+ 1 unpriced)


def test_call_detail_recomputes_the_price_breakdown(client: TestClient) -> None:
    calls = _json(client, "/calls.json", service="chat", currency="USD", **VIEW)["calls"]
    per_token = next(c for c in calls if c["price_status"] == "priced")
    detail = _json(client, f"/calls/{per_token['trace_id']}/{per_token['span_id']}.json", currency="USD")
    price = detail["price"]
    assert (price["kind"], price["discount_percent"], price["matches_stored"]) == ("per_token", "10", True)
    assert sum(Decimal(line["amount"]) for line in price["lines"]) == Decimal(price["list_cost"]) == Decimal("6.00")
    assert Decimal(price["cost"]) == Decimal("5.40") == Decimal(per_token["cost"])
    pooled = next(c for c in calls if c["price_status"] == "pool")
    share = _json(client, f"/calls/{pooled['trace_id']}/{pooled['span_id']}.json", currency="USD")["price"]
    assert (share["kind"], share["pool"], share["window_calls"]) == ("pool", "llama-8b", 2)
    assert Decimal(share["cost"]) == Decimal(pooled["cost"]) == Decimal(18)  # 24 x 3,000 / 4,000 busy seconds
    assert client.get("/calls/" + "0" * 32 + "/" + "0" * 16).status_code == 404


def test_repeated_prompts_show_what_the_repeats_cost(client: TestClient) -> None:
    body = _json(client, "/calls/repeated.json", currency="USD", **VIEW)
    assert body["window"] == {"since": "2025-06-09T00:00:00Z", "until": "2025-06-16T00:00:00Z", "whole_range": False}
    (prompt,) = body["prompts"]
    assert (prompt["prompt_hash"], prompt["calls"]) == ("ab" * 32, 2)
    assert (Decimal(prompt["cost"]), Decimal(prompt["cost_of_repeats"])) == (Decimal("10.80"), Decimal("5.40"))
    month = Decimal("5.40") * Decimal("2629746") / Decimal(7 * 86_400)  # the week's pace, for an average month
    assert Decimal(prompt["cost_of_repeats_per_month"]) == month.quantize(Decimal("1e-10"))
    whole = _json(client, "/calls/repeated.json", window="range", **VIEW)
    assert whole["window"]["whole_range"] is True
    assert whole["window"]["since"] == "2025-06-01T00:00:00Z"


def test_data_quality_names_unpriced_models(client: TestClient) -> None:
    body = _json(client, "/quality.json", **VIEW)
    assert [(u["model"], u["reason"], u["calls"]) for u in body["unpriced_models"]] == [
        ("gpt-unknown-e2e", "no_price", 1)
    ]
    assert {s["service"] for s in body["services"]} == {HOSTILE, "chat", "search"}


@pytest.mark.parametrize(
    ("path", "params", "status", "reason"),
    [
        pytest.param("/overview", {"currency": "JPY"}, 400, "currency: no", id="a currency without a rate"),
        pytest.param(
            "/pools", {"since": "2025-06-10", "until": "2025-06-01"}, 400, "must be before", id="an empty range"
        ),
        pytest.param("/calls", {"cursor": "not-a-cursor"}, 400, "invalid cursor", id="a forged cursor"),
    ],
)
def test_bad_parameters_are_error_pages_with_the_reason(
    client: TestClient, path: str, params: dict[str, str], status: int, reason: str
) -> None:
    page = client.get(path, params=params)
    assert page.status_code == status
    assert reason in page.text
    assert 'id="error"' in page.text
    assert client.get(f"{path}.json", params=params).status_code == status


def test_static_assets_are_content_hashed_and_cached(client: TestClient, tmp_path: Path) -> None:
    html = client.get("/overview", params=VIEW).text
    href = html.split('rel="stylesheet" href="', 1)[1].split('"', 1)[0]
    assert href.startswith("/static/dashboard-")
    assert href.endswith(".css")
    reply = client.get(href)
    assert reply.status_code == 200
    assert "immutable" in reply.headers["cache-control"]
    assert client.get("/static/dashboard.css").status_code == 404


def test_calls_pages_in_order_whether_the_last_day_holds_a_page_or_not(
    client: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    from breakeven.dashboard.pages import calls as calls_page

    monkeypatch.setattr(calls_page, "PAGE_SIZE", 2)
    every = [(c["trace_id"], c["span_id"]) for c in _json(client, "/api/v1/calls", **API_RANGE)["calls"]]
    for until in ("2025-06-10", "2025-06-15"):  # the last day holds every call, then none of them
        seen: list[tuple[str, str]] = []
        cursor = None
        while True:
            body = _json(client, "/calls.json", range="custom", since="2025-06-01", until=until, cursor=cursor or "")
            seen += [(c["trace_id"], c["span_id"]) for c in body["calls"]]
            cursor = body["next"]
            if cursor is None:
                break
        assert seen == every, until


def test_pages_render_calls_that_name_almost_nothing(tmp_path: Path) -> None:
    engine = make_engine(f"duckdb:///{tmp_path / 'sparse.duckdb'}")
    migrate(engine)
    pricing = parse_pricing(PRICING)
    sparse = [
        call(provider=None, model=None, service=None, usage_reported=False, start="2025-06-10T09:00:00"),
        call(provider="openai", model="gpt-e2e", service="", team="+1", backend_class="unknown", start="2025-06-11T09:00:00"),
        call(provider="vllm", model=None, backend_class="self_hosted", server_address="10.0.0.7", start="2025-06-12T09:00:00"),
    ]  # fmt: skip
    LedgerWriter(engine).write(WriteBatch(calls=sparse, prices=[ledger_pricer(pricing)(c) for c in sparse]), 0)
    app = build_api(engine, None, pricing)
    add_dashboard(app, engine, pricing)
    with TestClient(app) as sparse_client:
        for path in [*PAGES, "/spend.csv", "/spend.parquet"]:
            reply = sparse_client.get(path, params={**VIEW, "g1": "provider", "g2": "quantization"})
            assert reply.status_code == 200, (path, reply.text[:300])
        for c in sparse_client.get("/calls.json", params=VIEW).json()["calls"]:
            assert sparse_client.get(f"/calls/{c['trace_id']}/{c['span_id']}", params=VIEW).status_code == 200
        body = sparse_client.get("/quality.json", params=VIEW).json()
        assert {u["reason"] for u in body["unpriced_models"]} == {"no_usage"}
        assert [u["calls"] for u in body["unknown_backends"]] == [1]
    engine.dispose()


def test_a_database_error_is_a_503_page_with_retry_after(tmp_path: Path) -> None:
    engine = make_engine(f"duckdb:///{tmp_path / 'never-migrated.duckdb'}")  # no tables: every read fails
    app = build_api(engine, None, parse_pricing(PRICING))
    add_dashboard(app, engine, parse_pricing(PRICING))
    with TestClient(app) as broken:
        page = broken.get("/pools", params=VIEW)
        assert page.status_code == 503
        assert page.headers["retry-after"] == "5"
        assert "database unavailable" in page.text
        assert page.headers["content-type"].startswith("text/html")
        assert broken.get("/pools.json", params=VIEW).status_code == 503
    engine.dispose()
