"""Pools against their invoice: the FinOps Foundation's real FOCUS 1.0 sample (AWS g3/g5 GPU
instances, September 2024) imported, pools naming their lines by ResourceId or by tag, and
GET /api/v1/reconciliation?group_by=pool setting each pool's configured rent beside them."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from breakeven.collector.reconcile.files import read_bill_file
from breakeven.collector.store.bills import replace_lines
from tests.conftest import DIALECTS, RunningCollector, running_collector

SAMPLE = Path(__file__).parents[1] / "fixtures" / "reconcile" / "focus" / "focus-1.0-sample.csv"

POOL = """
[[pricing.pools]]
name = "{name}"
boxes = 2
rent_per_month = 1
capacity = {{ input_tps = 1000, output_tps = 100 }}
match = {{ backend = "{name}" }}
alternative = {{ provider = "together", model = "meta-llama/Llama-3.3-70B-Instruct-Turbo" }}
{invoice_match}
"""

CONFIG = (
    '[[reconcile.sources]]\nname = "aws"\nkind = "focus"\npath = "/nowhere/*.csv"\n'
    + POOL.format(name="one-g5", invoice_match='invoice_match = { ResourceId = "i-0l6bb5al993lfa983" }')
    + POOL.format(name="brightpath", invoice_match='invoice_match = { Tags = { application = "BrightPath*" } }')
    + POOL.format(
        name="both", invoice_match='invoice_match = { ResourceId = "i-0b3*", Tags = { environment = "dev" } }'
    )
    + POOL.format(name="unnamed", invoice_match="")
)


@pytest.fixture(scope="module", params=DIALECTS)
def invoiced(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningCollector]:
    tmp = tmp_path_factory.mktemp("pools")
    (tmp / "breakeven.toml").write_text(CONFIG)
    with running_collector(tmp, request.param, config=str(tmp / "breakeven.toml")) as running:
        source = running.app.settings.reconcile.sources[0]
        replace_lines(running.app.engine, "aws", "focus", [], read_bill_file(source, SAMPLE))
        yield running


def _pools(running: RunningCollector) -> dict[str, dict[str, Any]]:
    query = {"since": "2024-09-01T00:00:00Z", "until": "2024-10-01T00:00:00Z", "group_by": "pool"}
    answer = httpx.get(f"{running.api}/api/v1/reconciliation", params=query, timeout=30)
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["rows"] == body["pools"]
    return {row["pool"]: row for row in body["rows"]}


def test_a_pool_named_by_resource_id_gets_its_instance_lines(invoiced: RunningCollector) -> None:
    row = _pools(invoiced)["one-g5"]
    assert row["month"] == "2024-09"
    assert row["configured_cost"] == "2.00"  # 2 boxes x 1 a month, the whole month
    assert row["invoiced_cost"] == "1.624"  # the g5.4xlarge's one line: 1.62400000000
    assert row["invoiced_lines"] == 1
    assert row["resources"] == [{"resource_id": "i-0l6bb5al993lfa983", "cost": "1.624"}]
    assert row["delta"] == {"amount": "-0.376", "percent": "-23.1527093596"}  # 1.624 - 2, of 1.624
    assert row["cause"].startswith("the configured rent is 0.38 above what the cloud billed")


def test_a_pool_named_by_tag_gets_every_line_so_tagged(invoiced: RunningCollector) -> None:
    row = _pools(invoiced)["brightpath"]
    assert row["invoiced_lines"] == 18  # every line tagged application=BrightPathMatrix
    assert row["invoiced_cost"] == "15.6732394984"
    assert row["cause"].startswith("the cloud billed 13.67 more than the configured rent: 18 resources billed")


def test_resource_id_and_tags_must_both_match(invoiced: RunningCollector) -> None:
    row = _pools(invoiced)["both"]
    assert [r["resource_id"] for r in row["resources"]] == ["i-0b3b3095474a3772a"]  # g3.4xlarge, dev
    assert row["invoiced_cost"] == "1.14"


def test_a_pool_without_invoice_match_says_how_to_add_one(invoiced: RunningCollector) -> None:
    row = _pools(invoiced)["unnamed"]
    assert row["invoiced_cost"] is None
    assert row["delta"] == {"amount": None, "percent": None}
    assert "names no invoice_match" in row["cause"]


def test_instance_lines_are_not_per_token_rows(invoiced: RunningCollector) -> None:
    query = {"since": "2024-09-01T00:00:00Z", "until": "2024-10-01T00:00:00Z"}
    body = httpx.get(f"{invoiced.api}/api/v1/reconciliation", params=query, timeout=30).json()
    assert body["rows"] == []  # the sample bills EC2, S3 ...: no AI service, no tokens
    assert body["summary"]["billed_cost"] is None
