"""The Reconciliation page and the Overview's bill figure.

Over a running collector fed real OTel spans and the bills of a fake of both providers' admin
APIs (tests/reconcilefixture.py, November 2026): the page shows what GET
/api/v1/reconciliation answers, its causes and the TOML that closes a price gap, and never
the calls' content. In process over a DuckDB ledger (this month): the Overview's figure, a
failed fetch's error, hostile values escaped, the empty state, bad groupings.
"""

from __future__ import annotations

import html
import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient

from breakeven.collector.api.routes import build_api
from breakeven.collector.config.pricing import parse_pricing
from breakeven.collector.config.reconcile import Owner, ReconcileConfig, ReconcileSource
from breakeven.collector.price.ledger import ledger_pricer
from breakeven.collector.price.periods import month_start
from breakeven.collector.records import BilledLine, WriteBatch
from breakeven.collector.store.bills import record_fetch, replace_lines
from breakeven.collector.store.engine import make_engine, migrate
from breakeven.collector.store.writer import LedgerWriter
from breakeven.dashboard import fmt
from breakeven.dashboard.pages import overview
from breakeven.dashboard.routes import add_dashboard
from breakeven.dashboard.view import resolve
from tests.conftest import RunningCollector
from tests.fakeadmin import running_admin_api
from tests.pricecalls import call
from tests.reconcilefixture import DAY, bills, reconciled_collector

PROMPT = "canary-prompt-7c1e: what is our refund policy?"
NOVEMBER = {"range": "custom", "since": "2026-11-01", "until": "2026-11-30", "currency": "USD"}
API_NOVEMBER = {"since": "2026-11-01T00:00:00Z", "until": "2026-12-01T00:00:00Z", "currency": "USD"}
HOSTILE = "<script>alert(1)</script>"
SUGGESTION = '[[pricing.discounts]]\nprovider = "anthropic"\npercent = 10\neffective_from = 2026-11-03\n'


@pytest.fixture(scope="module")
def reconciled(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningCollector]:
    """A collector holding 2026-11-03's traffic (with a prompt in every call) and both bills of it."""
    with running_admin_api() as admin:
        admin.results = dict(bills(DAY))
        with reconciled_collector(tmp_path_factory.mktemp("page"), "duckdb", admin, prompt=PROMPT) as running:
            yield running


def _get(running: RunningCollector, path: str, **params: Any) -> httpx.Response:
    reply = httpx.get(f"{running.api}{path}", params=params, timeout=30)
    assert reply.status_code == 200, reply.text[:500]
    return reply


def _key(row: dict[str, Any], names: list[str]) -> tuple[Any, ...]:
    return tuple(row[name] for name in names)


def _without_fetches(sources: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Sources without their last fetch: serve's own schedule may note one between two reads."""
    return [{k: v for k, v in s.items() if k != "last_fetch"} for s in sources]


def test_the_json_twin_is_the_api_report(reconciled: RunningCollector) -> None:
    for group_by in (None, "service", "provider,day"):
        asked = {"group_by": group_by} if group_by else {}
        page = _get(reconciled, "/reconciliation.json", **NOVEMBER, **asked).json()
        api = _get(reconciled, "/api/v1/reconciliation", **API_NOVEMBER, group_by=group_by or "provider,model").json()
        assert page["configured"] is True
        assert (page["since"], page["until"]) == (api["since"], api["until"])
        assert page["group_by"] == api["group_by"]
        assert page["summary"] == api["summary"]
        assert _without_fetches(page["sources"]) == _without_fetches(api["sources"])
        assert page["pools"] == api["pools"]
        assert page["unbilled"] == api["unbilled"]
        names = api["group_by"]
        assert {_key(r, names): r for r in page["rows"]} == {_key(r, names): r for r in api["rows"]}
        deltas = [abs(Decimal(r["delta"]["amount"])) for r in page["rows"] if r["delta"]["amount"] is not None]
        assert deltas == sorted(deltas, reverse=True)  # largest delta first


def test_the_chart_series_are_the_report_by_provider_and_day(reconciled: RunningCollector) -> None:
    page = _get(reconciled, "/reconciliation.json", **NOVEMBER).json()
    api = _get(reconciled, "/api/v1/reconciliation", **API_NOVEMBER, group_by="provider,day").json()
    daily = page["daily"]
    assert len(daily["days"]) == 30
    at = daily["days"].index("2026-11-03")
    by_provider = {p["provider"]: p for p in daily["providers"]}
    assert sorted(by_provider) == ["anthropic", "openai"]
    for row in api["rows"]:
        shown = by_provider[row["provider"]]
        i = daily["days"].index(row["day"])
        assert (shown["ledger_cost"][i], shown["billed_cost"][i]) == (row["ledger"]["cost"], row["billed"]["cost"])
    openai = by_provider["openai"]
    assert openai["ledger_cost"][at] == "4.86"  # gpt-4o $4.50 + gpt-4o-mini $0.36
    assert openai["billed_cost"][at] == "22.80"  # $22.50 + $0.30
    assert openai["ledger_cost"][at + 1] == "0.00"  # no call that day: nothing spent
    assert openai["billed_cost"][at + 1] is None  # no bill line that day: no point
    assert openai["total"]["coverage"] == "0.4074074074"  # 3.3M of 8.1M billed tokens
    assert Decimal(by_provider["anthropic"]["total"]["billed_cost"]) + Decimal(openai["total"]["billed_cost"]) == (
        Decimal(page["summary"]["billed_cost"])
    )


def test_the_page_shows_how_much_the_ledger_explains_the_causes_and_the_toml(reconciled: RunningCollector) -> None:
    text = _get(reconciled, "/reconciliation", **NOVEMBER).text
    explained = re.sub(r"\s+", " ", re.sub(r"<[^>]+>", "", _between(text, 'id="explained"', "</p>")))
    assert "The ledger explains 56.7% of the bill: $21.36 in the ledger of $37.65 billed" in explained
    assert text.count('class="chart chart-lines"') == 2  # a chart per provider: ledger against bill by day
    assert "openai: ledger against bill by day" in text
    sources = _between(text, 'id="sources"', "</table>")
    assert "openai-org" in sources
    assert "anthropic" in sources
    rows = _between(text, 'id="rows"', "</table>")
    assert rows.index("gpt-4o-2024-08-06") < rows.index("claude-sonnet-4-5-20250929")  # $18.00 before -$1.65
    causes = html.unescape(_between(text, 'id="causes"', "<h2>Pools"))
    assert "the bill counts 4,800,000 tokens the ledger never saw" in causes
    assert "account proj_nightly" in causes  # the evidence: which project, whose service
    assert "service nightly-batch" in causes
    assert "10% below the ledger's price" in causes
    pre = re.findall(r'<pre class="suggestion"><code>(.*?)</code></pre>', text, re.S)
    assert [html.unescape(p) for p in pre] == [SUGGESTION]  # what a user copies into the config
    assert '"anthropic"' not in _between(text, '<pre class="suggestion">', "</pre>")  # quotes escaped in the HTML
    assert "Every provider with per-token calls in this range is billed" in _between(text, 'id="unbilled"', "</table>")


def test_the_calls_content_is_on_no_page(reconciled: RunningCollector) -> None:
    for path in ("/reconciliation", "/reconciliation.json", "/overview", "/overview.json"):
        assert "canary-prompt" not in _get(reconciled, path, **NOVEMBER).text, path
    for group_by in ("service", "team", "source", "provider,day"):
        assert "canary-prompt" not in _get(reconciled, "/reconciliation", group_by=group_by, **NOVEMBER).text


def test_the_overview_figure_is_the_month_reconciled(reconciled: RunningCollector) -> None:
    settings = reconciled.app.settings
    now = datetime(2026, 11, 20, 9, tzinfo=UTC)
    view = resolve({"currency": "USD"}, None, settings.pricing, now)
    with reconciled.app.engine.connect() as conn:
        bill = overview.context(conn, settings.pricing, view, now, settings.reconcile)["bill"]
        october = overview.context(conn, settings.pricing, view, datetime(2026, 10, 20, tzinfo=UTC), settings.reconcile)
    assert bill["month"] == "2026-11"
    assert bill["billed"] is True
    assert (bill["ledger_cost"], bill["billed_cost"]) == ("21.36", "37.65")
    assert bill["explained_percent"].startswith("56.73")
    assert october["bill"]["billed"] is False  # sources, but no bill that month
    assert october["bill"]["billed_cost"] is None


def _between(text: str, start: str, end: str) -> str:
    """The text from `start` to the next `end`."""
    at = text.index(start)
    return text[at : text.index(end, at)]


# In process: this month's calls and bill lines written directly, a failed fetch noted.

PRICING = {
    "currency": "USD",
    "prices": [{"provider": "openai", "model": "gpt-e2e", "effective_from": "2025-01-01", "input": "2.00", "output": "8.00"}],
    "fx": [{"currency": "GBP", "date": "2025-01-01", "per_usd": "0.80"}],
}  # fmt: skip
RECONCILE = ReconcileConfig(
    sources=(
        ReconcileSource("openai-org", "openai", admin_key_env="OPENAI_ADMIN_KEY", owners={"proj_x": Owner(HOSTILE)}),
        ReconcileSource("aws", "focus", path="/nowhere/*.parquet"),
    )
)


def _this_month() -> datetime:
    """A second of this UTC month before now, whole seconds (calls and bills fall in the month to date)."""
    now = datetime.now(UTC).replace(microsecond=0)
    return max(month_start(now), now - timedelta(minutes=5))


def _app(tmp: Path, reconcile: ReconcileConfig | None) -> Iterator[TestClient]:
    engine = make_engine(f"duckdb:///{tmp / 'ledger.duckdb'}")
    migrate(engine)
    pricing = parse_pricing(PRICING)
    at = _this_month()
    made = [
        call(model="gpt-e2e", service=HOSTILE, start=at.strftime("%Y-%m-%dT%H:%M:%S"), input=1_000_000, output=100_000)
    ]
    LedgerWriter(engine).write(WriteBatch(calls=made, prices=[ledger_pricer(pricing)(c) for c in made]), 0)
    day = at.date()
    usage = BilledLine("openai-org", day, "openai", "gpt-e2e", "proj_x", input_tokens=2_000_000, output_tokens=200_000)
    cost = BilledLine("openai-org", day, "openai", "gpt-e2e", "proj_x", cost=Decimal("5.60"), report="cost")
    replace_lines(engine, "openai-org", "usage", [day], [usage])
    replace_lines(engine, "openai-org", "cost", [day], [cost])
    record_fetch(engine, "openai-org", at, f"HTTP 401 from the admin API {HOSTILE}")
    app = build_api(engine, None, pricing, reconcile=reconcile)
    add_dashboard(app, engine, pricing, reconcile=reconcile)
    with TestClient(app) as client:
        yield client
    engine.dispose()


@pytest.fixture(scope="module")
def client(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestClient]:
    yield from _app(tmp_path_factory.mktemp("month"), RECONCILE)


@pytest.fixture(scope="module")
def unconfigured(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestClient]:
    yield from _app(tmp_path_factory.mktemp("none"), None)


def test_the_overview_says_how_much_of_this_months_bill_the_ledger_explains(client: TestClient) -> None:
    body = client.get("/overview.json", params={"range": "mtd"}).json()
    assert body["bill"]["billed"] is True
    assert (body["bill"]["ledger_cost"], body["bill"]["billed_cost"]) == ("2.80", "5.60")  # $2.00 + $0.80 of $5.60
    text = client.get("/overview", params={"range": "mtd"}).text
    card = re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", _between(text, 'id="bill-explained"', "</a>")))
    assert "50%" in card
    assert "ledger $2.80 of $5.60 billed" in card
    assert 'href="/reconciliation?currency=USD&amp;range=mtd"' in text
    pounds = client.get("/overview.json", params={"range": "mtd", "currency": "GBP"}).json()["bill"]
    assert (pounds["ledger_cost"], pounds["billed_cost"]) == ("2.24", "4.48")


def test_a_failed_fetch_is_shown_with_its_error_and_hostile_values_escaped(client: TestClient) -> None:
    reply = client.get("/reconciliation", params={"range": "mtd", "group_by": "service"})
    assert reply.status_code == 200, reply.text[:500]
    text = reply.text
    assert "<script>alert" not in text
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in _between(text, 'id="rows"', "</table>")  # the map's service
    failed = html.unescape(_between(text, 'class="warning fetch-error"', "</div>"))
    assert f"last fetch failed: HTTP 401 from the admin API {HOSTILE}" in failed
    assert "never fetched" in _between(text, 'data-source="aws"', "</tr>")
    body = client.get("/reconciliation.json", params={"range": "mtd"}).json()
    fetched = {s["name"]: s["last_fetch"] for s in body["sources"]}
    assert fetched["aws"] is None
    assert fetched["openai-org"]["error"] == f"HTTP 401 from the admin API {HOSTILE}"
    assert fetched["openai-org"]["succeeded_at"] is None


def test_without_sources_the_page_says_how_to_configure_one(unconfigured: TestClient) -> None:
    reply = unconfigured.get("/reconciliation")
    assert reply.status_code == 200
    assert 'id="no-sources"' in reply.text
    assert "[[reconcile.sources]]" in reply.text
    assert "docs/reconciliation.md" in reply.text
    assert re.search(r'<a href="/reconciliation\?[^"]*" class="active">Reconciliation</a>', reply.text)
    body = unconfigured.get("/reconciliation.json").json()
    assert body["configured"] is False
    assert (body["summary"], body["rows"], body["sources"]) == (None, [], [])
    overview_page = unconfigured.get("/overview")
    assert 'id="bill-explained"' not in overview_page.text
    assert 'id="bill-hint"' not in overview_page.text
    assert unconfigured.get("/overview.json").json()["bill"] is None


def test_a_bad_grouping_is_a_page_with_the_reason(client: TestClient) -> None:
    for group_by, reason in (("colour", "cannot group by"), ("pool", "its own table")):
        page = client.get("/reconciliation", params={"group_by": group_by})
        assert page.status_code == 400
        assert reason in html.unescape(page.text)
        assert client.get("/reconciliation.json", params={"group_by": group_by}).status_code == 400


@pytest.mark.parametrize(
    ("value", "places", "shown"),
    [
        pytest.param("56.7330677291", 1, "56.7%", id="explained_percent is already in percent"),
        pytest.param("56.7330677291", 0, "57%", id="the Overview's whole percent"),
        pytest.param("-11.1111111111", 1, "-11.1%", id="a delta below the ledger"),
        pytest.param(None, 1, "—", id="no bill: no percent, never 0%"),
    ],
)
def test_a_figure_in_percent_reads_as_one(value: str | None, places: int, shown: str) -> None:
    assert fmt.points(value, places) == shown
