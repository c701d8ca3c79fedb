"""Reconciliation end to end: real OTel SDK spans into a running collector, the providers' bills
from a fake of both admin APIs on a real port, GET /api/v1/reconciliation out.

The bills differ from the traffic sent in three known ways, each worked out by hand below:
- OpenAI gpt-4o: a second project, `proj_nightly` (mapped to the service nightly-batch), sends
  4,000,000 input and 800,000 output tokens the ledger never sees (not instrumented);
- OpenAI gpt-4o-mini: the emitter reports no cached tokens, the bill says 800,000 of the
  2,000,000 prompt tokens were cache reads (billed at half the input price);
- Anthropic: the tokens agree; the bill is 10% below the ledger's list price (a discount the
  price book lacks).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.conftest import DIALECTS, RunningCollector
from tests.fakeadmin import ANTHROPIC_KEY, OPENAI_KEY, AdminApi, running_admin_api
from tests.reconcilefixture import DAY, bills, reconciled_collector

BILLS = bills(DAY)


@pytest.fixture(scope="module")
def admin() -> Iterator[AdminApi]:
    with running_admin_api() as api:
        api.results = dict(BILLS)
        yield api


@pytest.fixture(scope="module", params=DIALECTS)
def reconciled(
    request: pytest.FixtureRequest, admin: AdminApi, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[RunningCollector]:
    """A collector holding the day's traffic and both providers' bills of it."""
    with reconciled_collector(tmp_path_factory.mktemp("reconcile"), request.param, admin) as running:
        yield running


def _report(running: RunningCollector, **params: str) -> dict[str, Any]:
    query = {"since": "2026-11-03T00:00:00Z", "until": "2026-11-04T00:00:00Z", **params}
    answer = httpx.get(f"{running.api}/api/v1/reconciliation", params=query, timeout=30)
    assert answer.status_code == 200, answer.text
    return answer.json()


def _row(report: dict[str, Any], **key: str) -> dict[str, Any]:
    return next(r for r in report["rows"] if all(r[k] == v for k, v in key.items()))


def test_an_uninstrumented_service_is_found_with_its_cost_and_project(reconciled: RunningCollector) -> None:
    row = _row(_report(reconciled, group_by="provider,model"), provider="openai", model="gpt-4o-2024-08-06")
    # ledger: 10 calls x (100k in, 20k out) = 1.2M tokens, $2.50 + $2.00; bill: 6M tokens, $22.50
    assert row["ledger"]["tokens"]["total"] == 1_200_000
    assert row["ledger"]["cost"] == "4.50"
    assert row["billed"]["tokens"]["total"] == 6_000_000
    assert row["billed"]["cost"] == "22.50"
    assert row["coverage"] == "0.2"
    assert row["delta"] == {"amount": "18.00", "percent": "80"}
    cause = row["causes"][0]
    assert cause["kind"] == "never_seen"
    assert cause["amount"] == "18.00"
    assert row["cause"].startswith("the bill counts 4,800,000 tokens the ledger never saw (80% of the billed)")
    assert cause["evidence"][0] == {
        "day": "2026-11-03", "model": "gpt-4o-2024-08-06", "account": "proj_nightly", "service": "nightly-batch",
        "billed_tokens": 4_800_000, "ledger_tokens": 0, "unseen_tokens": 4_800_000,
    }  # fmt: skip
    assert len(cause["evidence"]) == 1  # proj_support's tokens are all in the ledger


def test_cached_tokens_counted_differently_are_named(reconciled: RunningCollector) -> None:
    row = _row(_report(reconciled, group_by="provider,model"), provider="openai", model="gpt-4o-mini-2024-07-18")
    # ledger prices 2M fresh input ($0.30) + 100k output ($0.06); the bill 1.2M fresh + 800k cached
    assert row["ledger"]["cost"] == "0.36"
    assert row["billed"]["cost"] == "0.30"
    assert row["coverage"] == "1"
    assert row["delta"]["amount"] == "-0.06"
    cause = row["causes"][0]
    assert cause["kind"] == "cache_counted_differently"
    assert cause["amount"] == "-0.06"
    assert {"kind": "cache_read", "ledger": 0, "billed": 800_000} in cause["evidence"]
    assert [c["kind"] for c in row["causes"]] == ["cache_counted_differently"]  # not also a price


def test_a_discount_the_price_book_lacks_is_measured_and_the_toml_that_closes_it_given(
    reconciled: RunningCollector,
) -> None:
    row = _row(_report(reconciled, group_by="provider"), provider="anthropic")
    assert row["ledger"]["cost"] == "16.50"
    assert row["billed"]["cost"] == "14.85"
    assert row["coverage"] == "1"
    assert row["delta"] == {"amount": "-1.65", "percent": "-11.1111111111"}
    cause = row["causes"][0]
    assert cause["kind"] == "price"
    assert cause["amount"] == "-1.65"
    assert cause["evidence"][0]["effective_discount_percent"] == "10"
    assert cause["suggestion"] == (
        '[[pricing.discounts]]\nprovider = "anthropic"\npercent = 10\neffective_from = 2026-11-03\n'
    )
    assert "10% below the ledger's price" in row["cause"]


def test_summary_sources_and_services_through_the_map(reconciled: RunningCollector) -> None:
    report = _report(reconciled, group_by="service")
    assert report["summary"]["ledger_cost"] == "21.36"  # 4.50 + 0.36 + 16.50
    assert report["summary"]["billed_cost"] == "37.65"  # 22.50 + 0.30 + 14.85
    nightly = _row(report, service="nightly-batch")
    assert nightly["status"] == "bill_only"
    assert nightly["billed"]["cost"] == "18.00"
    support = _row(report, service="support")
    assert support["ledger"]["calls"] == 20
    sources = {s["name"]: s for s in report["sources"]}
    assert sources["anthropic"]["billed_cost"] == "14.85"
    assert sources["openai-org"]["coverage"] == "0.4074074074"


def test_any_currency_of_the_fx_table(reconciled: RunningCollector) -> None:
    row = _row(_report(reconciled, group_by="provider", currency="GBP"), provider="anthropic")
    assert row["ledger"]["cost"] == "13.20"  # $16.50 x 0.8
    assert row["billed"]["cost"] == "11.88"  # $14.85 x 0.8
    assert row["causes"][0]["suggestion"].splitlines()[2] == "percent = 10"  # a ratio: the same in any currency


def test_currency_and_bad_requests(reconciled: RunningCollector) -> None:
    bad = httpx.get(f"{reconciled.api}/api/v1/reconciliation", params={"group_by": "colour"}, timeout=10)
    assert bad.status_code == 400
    assert "cannot group by 'colour'" in bad.json()["detail"]
    mixed = httpx.get(f"{reconciled.api}/api/v1/reconciliation", params={"group_by": "pool,day"}, timeout=10)
    assert mixed.status_code == 400
    assert "pool stands alone" in mixed.json()["detail"]
    unknown = httpx.get(f"{reconciled.api}/api/v1/reconciliation", params={"currency": "XYZ"}, timeout=10)
    assert unknown.status_code == 400


def test_the_admin_keys_are_nowhere_in_the_answer_or_the_ledger(reconciled: RunningCollector) -> None:
    answer = httpx.get(
        f"{reconciled.api}/api/v1/reconciliation", params={"since": "2026-11-01T00:00:00Z"}, timeout=30
    ).text
    stored = reconciled.rows_as_text()
    for key in (OPENAI_KEY, ANTHROPIC_KEY):
        assert key not in answer
        assert key not in stored
