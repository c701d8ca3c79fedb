"""The Plans page: each class's cost against the box count, its plan in a sentence, what-ifs.

Over the collector of tests/plansfixture.py (real OTel spans; chat's claude-e2e traffic, which
a declared substitute lets a $0.10-an-hour box serve, and a search call no box may take), the
page shows GET /api/v1/plans's figures for the view's whole day, its what-if fields round-trip,
a bad one is a 400 page, and the Break-even page links each verdict to its plan. In process
over a DuckDB ledger: a pool's own plan, hostile values escaped, nothing fetched from elsewhere.

The view is 2025-06-10, a whole UTC day: 24 hours of the box at $0.10, against the four hours
worked out in tests/api/test_plans_api.py (today $3.5235; one box serves hours 0 and 3 and
half of hour 1, so it buys $1.08 of overflow):

    0 boxes: $3.5235   1 box: $2.40 + $1.08 = $3.48   2 boxes: $4.80
"""

from __future__ import annotations

import html
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from fastapi.testclient import TestClient

from breakeven.collector.api.routes import build_api
from breakeven.collector.config.pricing import parse_pricing
from breakeven.collector.price.ledger import ledger_pricer
from breakeven.collector.records import WriteBatch
from breakeven.collector.store.engine import make_engine, migrate
from breakeven.collector.store.writer import LedgerWriter
from breakeven.dashboard.routes import add_dashboard
from tests.conftest import RunningCollector
from tests.plansfixture import plans_collector
from tests.pricecalls import call

VIEW = {"currency": "USD", "range": "custom", "since": "2025-06-10", "until": "2025-06-10"}
API_DAY = {"currency": "USD", "since": "2025-06-10T00:00:00Z", "until": "2025-06-11T00:00:00Z"}
CHAT = "class-chat--anthropic--claude-e2e"
HOSTILE = "<script>alert(1)</script>"


@pytest.fixture(scope="module")
def fleet(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningCollector]:
    with plans_collector(tmp_path_factory.mktemp("plans-page")) as running:
        yield running


def _get(running: RunningCollector, path: str, status: int = 200, **params: Any) -> httpx.Response:
    reply = httpx.get(f"{running.api}{path}", params=params, timeout=30)
    assert reply.status_code == status, reply.text[:500]
    return reply


def _text(page: str) -> str:
    """The page's text without tags, entities decoded."""
    return html.unescape(re.sub(r"<[^>]+>", " ", page))


def _href(page: str, pattern: str) -> str:
    """The first link matching pattern (its one group: the href), entities decoded."""
    found = re.search(pattern, page)
    assert found is not None, pattern
    return html.unescape(found.group(1))


def _section(page: str, anchor: str) -> str:
    """One plan's section of the page."""
    start = page.index(f'<section class="plan" id="{anchor}">')
    return page[start : page.index("</section>", start)]


def test_the_page_shows_the_curve_the_sentence_and_what_the_box_would_run(fleet: RunningCollector) -> None:
    page = _get(fleet, "/plans", **VIEW).text
    assert 'data-page="plans"' in page
    assert re.search(r'<a href="/plans\?[^"]*" class="active">Plans</a>', page)
    chat = _section(page, CHAT)
    words = " ".join(_text(chat).split())
    assert (
        "Run 1 x box serving llama-e2e for chat's claude-e2e traffic (anthropic) (e2e eval), sending 30.7% of its"
        " tokens to anthropic at peaks: 3.48 USD over the range instead of 3.52 USD (save 0.04 USD)." in words
    )
    assert "1 x box" in words
    assert "llama-e2e quantization not named" in words
    assert "100% e2e eval" in words  # the share that may move, and the evidence
    chart = re.search(r'<svg class="chart chart-lines".*?</svg>', chat, re.S)
    assert chart is not None
    assert chart.group().count('<circle class="point"') == 3  # 0, 1 and 2 boxes
    assert 'class="reference"' in chart.group()  # today's cost
    assert "today $3.52" in _text(chart.group())
    assert "boxes (0: everything bought)" in chart.group()
    rows = re.findall(r"<tr( class=\"selected\")?><td class=\"num\">(\d+)</td>.*?</tr>", chat, re.S)
    assert [(n, bool(selected)) for selected, n in rows] == [("0", False), ("1", True), ("2", False)]
    for total in ("$3.52", "$3.48", "$4.80"):
        assert total in _text(chat)
    no_plan = page[page.index('<table id="no-plan">') :]
    assert 'id="class-search--openai--gpt-e2e"' in no_plan
    assert "no candidate box runs gpt-e2e or a substitute declared for it" in no_plan
    assert not re.search(r'(src|href|action)="(https?:)?//', page)  # nothing is fetched from elsewhere


@pytest.mark.parametrize(
    "what_if",
    [
        pytest.param({}, id="today"),
        pytest.param({"growth": "1.5"}, id="growth"),
        pytest.param({"deferrable": "chat", "discount": "anthropic:50"}, id="batch price and a discount"),
        pytest.param({"price": "box:0.05", "max_utilization": "0.5"}, id="a cheaper box planned half full"),
        pytest.param({"quantization": "fp8"}, id="a quantization no box runs"),
    ],
)
def test_the_json_twin_is_the_api_report(fleet: RunningCollector, what_if: dict[str, str]) -> None:
    page = _get(fleet, "/plans.json", **VIEW, **what_if).json()
    api = _get(fleet, "/api/v1/plans", **API_DAY, **what_if).json()
    assert page["page"] == "plans"
    assert page["asked"] == what_if
    assert {k: page[k] for k in api if k != "classes"} == {k: v for k, v in api.items() if k != "classes"}
    assert [{k: v for k, v in c.items() if k != "anchor"} for c in page["classes"]] == api["classes"]
    assert [c["anchor"] for c in page["classes"]][-1] == "class-search--openai--gpt-e2e"


def test_growth_recomputes_the_page_by_hand(fleet: RunningCollector) -> None:
    # x1.5: bought $1.62 / $3.24 / $0.42525 = $5.28525; 1 box: $2.40 + 1/3 of $1.62 + 2/3 of $3.24 = $5.10;
    # 2 boxes: $4.80 + 1/3 of $3.24 = $5.88; 3 boxes: $7.20
    (chat, _) = _get(fleet, "/plans.json", **VIEW, growth="1.5").json()["classes"]
    plan = chat["plan"]
    assert [(p["boxes"], p["total"]) for p in plan["curve"]] == [(0, "5.28525"), (1, "5.10"), (2, "5.88"), (3, "7.20")]
    assert (plan["boxes"], plan["savings"]) == (1, "0.18525")


def test_what_if_fields_round_trip_through_the_page(fleet: RunningCollector) -> None:
    asked = {"growth": "1.5", "max_utilization": "0.8", "discount": "anthropic:10", "price": "box:0.2",
             "deferrable": "chat", "quantization": ""}  # fmt: skip
    page = _get(fleet, "/plans", **VIEW, **asked).text
    form = page[page.index('<form method="get" action="/plans" class="controls" id="what-if">') :]
    form = form[: form.index("</form>")]
    for name, value in asked.items():
        assert f'name="{name}" id="what-if-{name}" value="{value}"' in form
    for name, value in VIEW.items():  # the form keeps the view
        assert f'name="{name}" value="{value}"' in form
    given = {k: v for k, v in asked.items() if v}
    json_link = _href(page, r'<a href="(/plans\.json\?[^"]+)">JSON</a>')
    assert {k: v[0] for k, v in parse_qs(urlsplit(json_link).query).items()} == {**VIEW, **given}
    switch = _href(page, r'<a href="([^"]+)" data-currency="USD"')
    assert {k: parse_qs(urlsplit(switch).query)[k][0] for k in given} == given  # the currency switch keeps them
    custom = page[page.index('id="custom-range"') :]
    custom = custom[: custom.index("</form>")]
    assert all(f'name="{k}" value="{v}"' in custom for k, v in given.items())  # so does the range form
    reset = _href(page, r'<a href="([^"]+)" id="today">')
    assert set(parse_qs(urlsplit(reset).query)) == set(VIEW)  # "today's figures": the view, no what-if
    body = httpx.get(f"{fleet.api}{json_link}", timeout=30).json()
    assert body["what_if"] == {
        "growth": "1.5", "max_utilization": "0.8", "discounts": {"anthropic": "10"}, "prices": {"box": "0.20"},
        "deferrable": ["chat"], "quantization": None,
    }  # fmt: skip
    # A form sends every field: left empty, each is today's figure (not 0, not "")
    sent_empty = _get(fleet, "/plans.json", **VIEW, **{name: "" for name in asked}).json()
    today = _get(fleet, "/plans.json", **VIEW).json()
    assert (sent_empty["what_if"], sent_empty["classes"]) == (today["what_if"], today["classes"])
    assert today["what_if"]["max_utilization"] is None  # each box's own, not 1


@pytest.mark.parametrize(
    ("params", "reason"),
    [
        pytest.param({"growth": "0"}, "growth: expected a positive number", id="no growth"),
        pytest.param({"max_utilization": "1.5"}, "max_utilization: a share of capacity", id="over full"),
        pytest.param({"discount": "anthropic"}, "discount: expected name:value pairs", id="a discount without %"),
        pytest.param({"price": "box:cheap"}, "price box: not a number", id="a price in words"),
    ],
)
def test_a_bad_what_if_is_a_400_page_with_the_reason(
    fleet: RunningCollector, params: dict[str, str], reason: str
) -> None:
    page = _get(fleet, "/plans", 400, **VIEW, **params)
    assert page.headers["content-type"].startswith("text/html")
    assert 'id="error"' in page.text
    assert reason in html.unescape(page.text)
    assert reason in _get(fleet, "/plans.json", 400, **VIEW, **params).json()["detail"]


def _plan_links(page: str) -> list[tuple[str, dict[str, str], str]]:
    """The Break-even page's links to plans: path, query and anchor."""
    out = []
    for href in re.findall(r'<a class="plan" href="([^"]+)">', page):
        parts = urlsplit(html.unescape(href))
        out.append((parts.path, {k: v[0] for k, v in parse_qs(parts.query).items()}, parts.fragment))
    return out


def test_break_even_links_each_verdict_to_its_plan(fleet: RunningCollector) -> None:
    page = _get(fleet, "/breakeven", **VIEW).text
    links = _plan_links(page)
    assert [anchor for _, _, anchor in links] == [CHAT, "class-search--openai--gpt-e2e"]
    plans = _get(fleet, "/plans", **VIEW).text
    for path, query, anchor in links:
        assert (path, query) == ("/plans", VIEW)  # the same range and currency
        assert f'id="{anchor}"' in plans


# In process: a pool whose own traffic has a plan, a class its box may take, a hostile service.
PRICING = {
    "prices": [
        {"provider": "openai", "model": "gpt-e2e", "effective_from": "2025-01-01", "input": "2.00", "output": "8.00"},
        {"provider": "anthropic", "model": "claude-e2e", "effective_from": "2025-01-01", "input": "3.00", "output": "15.00"},
    ],
    "pools": [
        {"name": "claude-pool", "boxes": 1, "rent_per_hour": "1", "capacity": {"input_tps": "1000", "output_tps": "100"},
         "match": {"server_address": "10.0.0.7"}, "alternative": {"provider": "anthropic", "model": "claude-e2e"}},
    ],
}  # fmt: skip


@pytest.fixture(scope="module")
def client(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestClient]:
    path: Path = tmp_path_factory.mktemp("plans-pool") / "ledger.duckdb"
    engine = make_engine(f"duckdb:///{path}")
    migrate(engine)
    pricing = parse_pricing(PRICING)
    pooled = {"provider": "vllm", "model": "claude-e2e", "backend_class": "self_hosted", "server_address": "10.0.0.7"}
    made = [
        call(**pooled, service="chat", start="2025-06-10T10:00:00", input=1_000_000),
        call(provider="anthropic", model="claude-e2e", service="chat", start="2025-06-10T11:00:00", input=100_000),
        call(model="gpt-e2e", service=HOSTILE, start="2025-06-10T12:00:00", input=1000, output=10),
    ]
    LedgerWriter(engine).write(WriteBatch(calls=made, prices=[ledger_pricer(pricing)(c) for c in made]), 0)
    app = build_api(engine, None, pricing)
    add_dashboard(app, engine, pricing)
    with TestClient(app) as test_client:
        yield test_client
    engine.dispose()


def test_a_pool_has_its_own_plan_and_its_verdict_links_to_it(client: TestClient) -> None:
    body = client.get("/plans.json", params=VIEW).json()
    pool = next(c for c in body["classes"] if c["kind"] == "pool")
    assert pool["anchor"] == "pool-claude-pool"
    plan = pool["plan"]
    # 1,000,000 prompt tokens at $3 a million bought, against 24 hours of a $1 box
    assert [(p["boxes"], p["total"]) for p in plan["curve"]] == [(0, "3.00"), (1, "24.00")]
    assert (plan["boxes"], plan["current_boxes"], plan["runs"]["model"]) == (0, 1, "claude-e2e")
    chat = next(c for c in body["classes"] if c["service"] == "chat")
    assert (chat["anchor"], chat["plan"]["candidate"]) == (CHAT, "pool claude-pool")  # the same model, self-hosted
    page = client.get("/plans", params=VIEW)
    assert page.status_code == 200
    assert '<section class="plan" id="pool-claude-pool">' in page.text
    assert "Pool claude-pool (1 box today): buying all its traffic from anthropic" in html.unescape(page.text)
    assert "<script>alert" not in page.text
    assert 'id="class-script-alert-1-script--openai--gpt-e2e"' in page.text  # a slug: letters, digits, hyphens
    assert not re.search(r'(src|href|action)="(https?:)?//', page.text)
    verdicts = client.get("/breakeven", params=VIEW).text
    links = _plan_links(verdicts)
    assert ("/plans", VIEW, "pool-claude-pool") in links
    assert {anchor for _, _, anchor in links} <= set(re.findall(r'id="((?:class|pool)-[^"]+)"', page.text))
