"""The dashboard in a real headless Chromium (Debian's, driven by Playwright), over a week made by
`breakeven demo` through the real OTLP path: every page loads with data, charts render, filters,
group-by and exports work, the currency switch persists across pages, Plans recommend only the
moves the demo's config declares (and Break-even links to them), and nothing logs an error.
The demo bills nothing, so Reconciliation is also shown over a day of traffic and both
providers' bills of it (tests/reconcilefixture.py).

Screenshots of every page land in test-artifacts/dashboard/ (BREAKEVEN_TEST_ARTIFACTS overrides).
Playwright drives /usr/bin/chromium through executable_path: `playwright install` is never run.
"""

from __future__ import annotations

import contextlib
import csv
import io
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest

from breakeven.collector.price.substitutes import same_model
from tests.conftest import RunningCollector, require_program, start_collector
from tests.fakeadmin import running_admin_api
from tests.reconcilefixture import DAY, bills, reconciled_collector

pytestmark = pytest.mark.slow

ARTIFACTS = Path(os.environ.get("BREAKEVEN_TEST_ARTIFACTS", Path(__file__).parents[2] / "test-artifacts")) / "dashboard"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]
DEMO_DAYS = 7
LLAMA_70B = "meta-llama/Llama-3.3-70B-Instruct"  # the model the demo's substitute and candidates name
NEVER_MOVED = ("claude-sonnet-4-5", "gpt-4o", "o4-mini", "deepseek")  # no box runs them, no substitute names them
# Page -> what proves it drew real data: a selector that must match at least once.
PAGES = {
    "/": "svg.chart-stacked rect.bar",
    "/spend": "#spend-table tbody tr td.cost",
    "/pools": "svg.chart-lines polyline.line",
    "/breakeven": "#class-verdicts .verdict",
    "/plans": "section.plan svg.chart-lines polyline.line",
    "/reconciliation": "#no-sources pre",  # the demo configures no bill: how to configure one
    "/calls": "#calls-table a.detail",
    "/calls/repeated": "#repeated-table tbody tr td.mono a",
    "/quality": "#emitters tbody tr",
    "/alerts": "#alerts tbody tr",
}


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningCollector]:
    """`breakeven demo` for a week, then a collector serving its database with its config."""
    out = tmp_path_factory.mktemp("demo")
    done = subprocess.run(
        [sys.executable, "-m", "breakeven.collector.cli", "demo", "--out", str(out), "--days", str(DEMO_DAYS)],
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "breakeven serve --config" in done.stdout
    config = out / "breakeven.toml"
    running = start_collector(out, config=str(config), db=f"duckdb:///{out / 'breakeven-demo.duckdb'}")
    yield running
    running.app.stop()


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    chromium = require_program("chromium")
    os.environ.setdefault("PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD", "1")
    sync_api = pytest.importorskip("playwright.sync_api")
    with sync_api.sync_playwright() as p:
        launched = p.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS)
        yield launched
        launched.close()


@pytest.fixture(scope="module")
def reconciled(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningCollector]:
    """A collector holding 2026-11-03's traffic and both providers' bills of it, from a fake admin API."""
    with running_admin_api() as admin:
        admin.results = dict(bills(DAY))
        with reconciled_collector(tmp_path_factory.mktemp("reconciled"), "duckdb", admin) as running:
            yield running


@contextlib.contextmanager
def _tab(browser: Any, running: RunningCollector, name: str) -> Iterator[Any]:
    """A page in a fresh browser context (no cookies) on the collector; console errors fail the test."""
    context = browser.new_context(base_url=running.api, accept_downloads=True, viewport={"width": 1300, "height": 900})
    tab = context.new_page()
    errors: list[str] = []
    tab.on("console", lambda m: errors.append(f"console {m.type}: {m.text}") if m.type == "error" else None)
    tab.on("pageerror", lambda exc: errors.append(f"page error: {exc}"))
    tab.on("requestfailed", lambda r: errors.append(f"request failed: {r.url}"))
    tab.on("response", lambda r: errors.append(f"{r.status} {r.url}") if r.status >= 400 else None)
    yield tab
    context.close()
    assert errors == [], f"{name}: {errors}"


@pytest.fixture
def page(browser: Any, demo: RunningCollector, request: pytest.FixtureRequest) -> Iterator[Any]:
    """A fresh browser context (no cookies) on the demo whose console errors fail the test."""
    with _tab(browser, demo, request.node.name) as tab:
        yield tab


def _shot(tab: Any, name: str) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    tab.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)


def _amount(text: str) -> Decimal:
    return Decimal(re.sub(r"[^\d.\-]", "", text))


def test_every_page_loads_with_data(page: Any) -> None:
    for path, proof in PAGES.items():
        reply = page.goto(path)
        assert reply.status == 200, path
        assert page.locator(proof).count() > 0, f"{path}: nothing matches {proof}"
        assert page.locator("nav a.active").count() == 1, path
        _shot(page, path.strip("/").replace("/", "-") or "overview")


def test_charts_render_with_labels_units_and_currency(page: Any) -> None:
    page.goto("/overview?currency=GBP&range=7d")
    daily = page.locator("svg.chart-stacked").first
    assert daily.locator("rect.bar").count() >= DEMO_DAYS
    assert daily.locator("text.value").count() >= DEMO_DAYS  # every day's total is written on its bar
    texts = daily.locator("text").all_text_contents()
    assert "GBP per day" in texts
    assert any(t.startswith("£") for t in texts)
    box = daily.bounding_box()
    assert box is not None
    assert box["width"] > 600
    assert box["height"] > 200
    page.goto("/pools")
    for chart in page.locator("svg.chart-lines").all():
        assert chart.locator("polyline.line").count() == 2  # busy seconds, and the GPU metric the box reported
        assert any(t.startswith("GPU metric ") for t in chart.locator("text").all_text_contents())
        assert chart.locator("line.reference").count() == 1  # the break-even line
        assert any(t.startswith("break-even") for t in chart.locator("text").all_text_contents())
    for card in page.locator(".card.gpu").all():  # the demo's boxes push GPU utilization over OTLP
        assert re.match(r"GPU metric utilization\s+\d+\.\d%", card.inner_text()), card.inner_text()
    page.goto("/breakeven")
    assert page.locator("svg.chart-hbars rect.bar").count() >= 2
    # Which classes would save depends on how much of this month the week covers; each has a verdict in words.
    verdicts = page.locator("#class-verdicts .verdict").all_text_contents()
    assert verdicts
    assert all(v.startswith(("Moving ", "Keep buying ", "No verdict ")) for v in verdicts)
    assert any("a month" in v or "per month" in v for v in verdicts)
    assert "under break-even" in page.locator("#pool-verdicts").inner_text()


def test_plans_recommend_only_declared_moves(page: Any) -> None:
    page.goto("/plans?currency=USD&range=7d")
    body = page.request.get("/plans.json?currency=USD&range=7d").json()
    pools = {c["model"]: c["plan"]["runs"]["model"] for c in body["classes"] if c["kind"] == "pool" and c["plan"]}
    assert set(pools) == {"llama-70b-fp8", "llama-8b-owned"}
    allowed = {LLAMA_70B, *pools.values()}
    planned = [c for c in body["classes"] if c["plan"] is not None]
    for c in planned:
        plan = c["plan"]
        assert plan["runs"]["model"] in allowed, c
        if plan["candidate"].startswith("pool "):  # a pool's box runs the pool's own model
            assert plan["runs"]["model"] == pools[plan["candidate"].removeprefix("pool ")], c
        assert not any(name in (c["model"] or "").lower() for name in NEVER_MOVED), c
    without = [c["model"].lower() for c in body["classes"] if c["plan"] is None]
    assert all(any(name in model for model in without) for name in NEVER_MOVED), without
    haiku = next(c for c in planned if c["service"] == "support-bot" and "haiku" in c["model"])
    # a box running Llama 3.3 70B (a new H100, or one like the 70B pool's, whichever comes nearer)
    assert same_model(haiku["plan"]["runs"]["model"], LLAMA_70B)
    assert haiku["plan"]["share"] == "0.6"
    assert haiku["plan"]["evidence"].startswith("triage eval 2026-10")
    sections = page.locator("section.plan")
    assert sections.count() == len(planned)
    for section in sections.all():  # the page shows what its twin says: a model it may run, a curve, today's line
        assert section.locator("b.runs").inner_text() in allowed
        assert section.locator(".verdict").inner_text().startswith(("Run ", "Keep buying ", "Pool "))
        chart = section.locator("svg.chart-lines")
        assert chart.locator("polyline.line").count() == 1
        assert chart.locator("line.reference").count() == 1
        assert any(t.startswith("today $") for t in chart.locator("text").all_text_contents())
    for name in NEVER_MOVED:
        assert page.locator(f"section.plan[id*='{name}']").count() == 0, name
        assert page.locator(f"#no-plan tr[id*='{name}']").count() >= 1, name
    assert "no candidate box runs claude-sonnet-4-5" in page.locator("#no-plan").inner_text()
    _shot(page, "plans-usd")


def test_plans_what_ifs_round_trip_and_break_even_links_to_plans(page: Any) -> None:
    page.goto("/plans?currency=USD&range=7d")
    page.fill("#what-if-growth", "3")
    page.fill("#what-if-quantization", "bf16")
    page.click("#recompute")
    page.wait_for_url(re.compile(r"growth=3.*quantization=bf16"))
    assert page.input_value("#what-if-growth") == "3"
    assert "What if: growth 3; quantization bf16." in page.locator("#assuming").inner_text()
    for section in page.locator("section.plan[id^='class-']").all():  # only the BF16 box may take bought traffic
        assert "bf16" in section.locator(".card").nth(1).inner_text()
    page.click("#currency a[data-currency=GBP]")
    page.wait_for_url(re.compile(r"currency=GBP"))
    assert page.input_value("#what-if-quantization") == "bf16"  # the what-if survives the currency switch
    assert "quantization=bf16" in (page.locator("a:text-is('JSON')").get_attribute("href") or "")
    page.goto("/breakeven?currency=USD&range=7d")
    verdict = page.locator("#class-verdicts .verdict", has_text="support-bot's claude-haiku")
    verdict.locator("a.plan").click()
    page.wait_for_url(re.compile(r"/plans\?currency=USD&range=7d#class-support-bot--anthropic--claude-haiku-4-5"))
    assert page.locator("section.plan[id^='class-support-bot--anthropic--claude-haiku']").is_visible()
    page.goto("/breakeven?currency=USD&range=7d")
    page.locator("#pool-verdicts .verdict", has_text="Pool llama-70b-fp8").locator("a.plan").click()
    page.wait_for_url(re.compile(r"/plans\?currency=USD&range=7d#pool-llama-70b-fp8"))
    assert "Pool llama-70b-fp8 (1 box today)" in page.locator("#pool-llama-70b-fp8 .verdict").inner_text()


def test_group_by_and_filters(page: Any) -> None:
    page.goto("/spend?currency=USD&range=7d")
    page.select_option("#g1", "team")
    page.select_option("#g2", "pool")
    page.click("#apply")
    page.wait_for_url(re.compile(r"g1=team&g2=pool"))
    headers = page.locator("#spend-table thead th").all_text_contents()
    assert headers[:2] == ["team", "pool"]
    page.locator("#spend-table tbody a", has_text="platform").first.click()
    page.wait_for_url(re.compile(r"team=platform"))
    teams = page.locator("#spend-table tbody tr:not(.idle) td:first-child").all_text_contents()
    assert teams
    assert set(teams) == {"platform"}
    assert page.locator("#filters a[data-filter=team]").count() == 1
    assert "Idle pool cost is left out" in page.content()
    page.fill("#filter-pool", "llama-70b-fp8")
    page.click("#apply")
    page.wait_for_url(re.compile(r"pool=llama-70b-fp8"))
    pools = page.locator("#spend-table tbody tr:not(.idle) td:nth-child(2)").all_text_contents()
    assert set(pools) == {"llama-70b-fp8"}
    assert "llama-8b-owned" not in page.locator("#spend-table").inner_text()  # nor its idle line
    page.locator("#filters a[data-filter=team]").click()  # remove a filter
    page.wait_for_url(lambda url: "team=" not in url)
    _shot(page, "spend-filtered")


def test_csv_and_parquet_downloads_are_the_view(page: Any, tmp_path: Path) -> None:
    page.goto("/spend?currency=EUR&range=7d&g1=service&g2=model")
    shown = len(page.locator("#spend-table tbody tr").all())
    total = _amount(page.locator("#spend-total").inner_text())
    with page.expect_download() as csv_download:
        page.click("#download-csv")
    assert csv_download.value.suggested_filename.endswith("-EUR.csv")
    rows = list(csv.DictReader(io.StringIO(Path(csv_download.value.path()).read_text(encoding="utf-8-sig"))))
    assert len(rows) == shown
    assert {r["currency"] for r in rows} == {"EUR"}
    assert list(rows[0])[:2] == ["service", "model"]
    with page.expect_download() as parquet_download:
        page.click("#download-parquet")
    target = tmp_path / "view.parquet"
    parquet_download.value.save_as(str(target))
    table = pq.read_table(target).to_pylist()
    assert len(table) == shown
    assert abs(sum((r["cost"] or Decimal(0) for r in table), Decimal(0)) - total) < Decimal("0.01")


def test_currency_switch_changes_figures_and_persists_across_pages(page: Any) -> None:
    page.goto("/overview?currency=GBP&range=30d")
    pounds = page.locator("#range-total").inner_text()
    assert pounds.startswith("£")
    page.click("#currency a[data-currency=USD]")
    page.wait_for_url(re.compile(r"currency=USD"))
    dollars = page.locator("#range-total").inner_text()
    assert dollars.startswith("$")
    assert _amount(dollars) > _amount(pounds)
    page.click("#range a[data-range='7d']")
    page.wait_for_url(re.compile(r"range=7d"))
    for nav in ("Pools", "Break-even", "Spend", "Calls"):
        page.click(f"nav a:text-is('{nav}')")
        assert page.locator("#currency a.active").inner_text() == "USD", nav
        assert page.locator("#range a.active").inner_text() == "last 7 days", nav
    page.goto("/breakeven")  # no parameters at all: the cookie keeps the choice
    assert page.locator("body").get_attribute("data-currency") == "USD"
    assert "$" in page.locator("#classes").inner_text()
    assert "£" not in page.locator("#classes").inner_text()
    _shot(page, "breakeven-usd")


def test_search_and_call_detail(page: Any) -> None:
    page.goto("/calls?range=7d")
    page.fill("#q-service", "search-rerank")
    page.click("#search button")
    page.wait_for_url(re.compile(r"service=search-rerank"))
    services = page.locator("#calls-table tbody tr td:nth-child(2)").all_text_contents()
    assert services
    assert set(services) == {"search-rerank"}
    page.locator("#calls-table a.detail").first.click()
    page.wait_for_url(re.compile(r"/calls/[0-9a-f]{32}/[0-9a-f]{16}"))
    breakdown = page.locator("#price-breakdown").inner_text()
    assert "pool" in breakdown or "Priced by entry" in breakdown
    _shot(page, "call-detail")
    page.goto("/calls/repeated?range=7d")
    page.locator("#repeated-table tbody a").first.click()
    page.wait_for_url(re.compile(r"prompt_hash="))
    assert page.locator("#calls-table tbody tr").count() >= 2  # a repeated prompt: at least two calls


def test_reconciliation_sets_the_ledger_beside_the_bill(browser: Any, reconciled: RunningCollector) -> None:
    with _tab(browser, reconciled, "reconciliation") as tab:
        reply = tab.goto("/reconciliation?currency=USD&range=custom&since=2026-11-01&until=2026-11-30")
        assert reply.status == 200
        assert tab.locator("nav a.active").inner_text() == "Reconciliation"
        explained = tab.locator("#explained").inner_text()
        assert "The ledger explains 56.7% of the bill: $21.36 in the ledger of $37.65 billed" in explained
        charts = tab.locator("svg.chart-lines")
        assert charts.count() == 2  # openai and anthropic: ledger against bill by day
        for chart in charts.all():
            assert chart.locator("polyline.line").count() == 2
            assert chart.locator("circle.point").count() > 30  # the ledger every day, the bill on the 3rd
            assert "USD per day" in chart.locator("text").all_text_contents()
            box = chart.bounding_box()
            assert box is not None
            assert box["width"] > 600
        assert tab.locator("#sources tbody tr").count() == 2
        causes = tab.locator("#causes").inner_text()
        assert "the bill counts 4,800,000 tokens the ledger never saw" in causes
        suggestion = tab.locator("pre.suggestion").inner_text()  # what a user selects and copies
        assert suggestion.strip() == (
            '[[pricing.discounts]]\nprovider = "anthropic"\npercent = 10\neffective_from = 2026-11-03'
        )
        _shot(tab, "reconciliation")
        tab.click("#group-by a:text-is('service')")
        tab.wait_for_url(re.compile(r"group_by=service"))
        assert "nightly-batch" in tab.locator("#rows").inner_text()
        tab.click("#currency a[data-currency=GBP]")
        tab.wait_for_url(re.compile(r"currency=GBP"))
        assert "£17.09 in the ledger of £30.12 billed" in tab.locator("#explained").inner_text()  # x 0.8
        tab.click("nav a:text-is('Overview')")  # this month has no bill (it is of 2026-11-03): a quiet hint
        hint = tab.locator("#bill-hint")
        assert "No bill for" in hint.inner_text()
        assert tab.locator("#bill-explained").count() == 0
        hint.locator("a").click()
        tab.wait_for_url(re.compile(r"/reconciliation\?.*range=mtd"))
        assert tab.locator("#range a.active").inner_text() == "month to date"
