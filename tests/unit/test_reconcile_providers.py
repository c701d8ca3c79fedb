"""Providers' usage and cost report pages -> BilledLine records: OpenAI's organization Usage and
Costs APIs, Anthropic's Admin API usage and cost reports (collector/reconcile/). The fixtures are
pages written as the providers document them."""

from __future__ import annotations

import copy
from collections.abc import Callable
from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from breakeven.collector.reconcile import anthropic, openai
from breakeven.collector.reconcile.errors import BillError, page_from_json
from breakeven.collector.records import BilledLine

FIXTURES = Path(__file__).parents[1] / "fixtures" / "reconcile"
SOURCE = "billing"
NOV_1 = date(2024, 11, 1)  # start_time 1730419200
NOV_2 = date(2024, 11, 2)
AUG_1 = date(2025, 8, 1)
AUG_2 = date(2025, 8, 2)
SONNET = "claude-sonnet-4-20250514"
WORKSPACE = "wrkspc_01JwQvzr7rXLA5AGx3HKfFUJ"

Parser = Callable[[Any, str], list[BilledLine]]


def page(name: str) -> Any:
    """A fixture page read as the collector reads a provider's answer."""
    return page_from_json((FIXTURES / name).read_bytes())


def openai_line(day: date, **fields: Any) -> BilledLine:
    return BilledLine(source=SOURCE, day=day, provider="openai", **fields)


def anthropic_line(day: date, **fields: Any) -> BilledLine:
    return BilledLine(source=SOURCE, day=day, provider="anthropic", **fields)


@pytest.mark.parametrize(
    ("parse", "fixture", "expected"),
    [
        pytest.param(
            openai.usage_lines,
            "openai/usage_completions.json",
            [
                openai_line(
                    NOV_1,
                    model="gpt-4o-mini-2024-07-18",
                    account="proj_abc",
                    input_tokens=200,
                    cache_read_tokens=800,
                    output_tokens=500,
                    requests=5,
                ),
                openai_line(
                    NOV_1,
                    model="gpt-4o-2024-08-06",
                    account="proj_abc",
                    tier="batch",
                    input_tokens=20000,
                    output_tokens=3000,
                    requests=40,
                ),
                openai_line(
                    NOV_2,
                    model="gpt-4o-2024-08-06",
                    account="proj_xyz",
                    input_tokens=600,
                    cache_read_tokens=6400,
                    output_tokens=1200,
                    requests=12,
                ),
            ],
            id="openai completions: cached tokens leave input, batch is a tier, two buckets are two days",
        ),
        pytest.param(
            openai.usage_lines,
            "openai/usage_embeddings.json",
            [openai_line(NOV_1, model="text-embedding-3-small", account="proj_abc", input_tokens=16, requests=2)],
            id="openai embeddings: input only; a bucket with no results yields nothing",
        ),
        pytest.param(
            openai.cost_lines,
            "openai/costs.json",
            [
                openai_line(
                    NOV_1,
                    account="proj_abc",
                    line_item="gpt-4o-mini-2024-07-18, input",
                    cost=Decimal("0.06"),
                    currency="USD",
                ),
                openai_line(
                    NOV_1,
                    account="proj_abc",
                    line_item="gpt-4o-2024-08-06, output",
                    cost=Decimal("0.1"),
                    currency="USD",
                ),
                openai_line(
                    NOV_2,
                    account="proj_xyz",
                    line_item="gpt-4o-2024-08-06, cached input",
                    cost=Decimal("0.2"),
                    currency="USD",
                ),
            ],
            id="openai costs: amounts as written, currency upper-cased, grouped by line item and project",
        ),
        pytest.param(
            anthropic.usage_lines,
            "anthropic/usage_report_messages.json",
            [
                anthropic_line(
                    AUG_1,
                    model=SONNET,
                    account=WORKSPACE,
                    tier="standard",
                    input_tokens=1500,
                    cache_read_tokens=200,
                    cache_write_tokens=1500,
                    output_tokens=500,
                ),
                anthropic_line(
                    AUG_1,
                    model="claude-3-5-haiku-20241022",
                    account=WORKSPACE,
                    tier="batch",
                    input_tokens=4000,
                    output_tokens=900,
                ),
                anthropic_line(
                    AUG_2,
                    model=SONNET,
                    account="wrkspc_02Other",
                    tier="standard",
                    input_tokens=300,
                    cache_read_tokens=10240,
                    cache_write_tokens=2048,
                    output_tokens=120,
                ),
            ],
            id="anthropic usage: cache writes are both TTLs summed, service tier kept, grouped by model and workspace",
        ),
        pytest.param(
            anthropic.cost_lines,
            "anthropic/cost_report.json",
            [
                anthropic_line(
                    AUG_1,
                    model=SONNET,
                    account=WORKSPACE,
                    tier="standard",
                    line_item="Claude Sonnet 4 Usage - Input Tokens",
                    cost=Decimal("1.2345"),
                    currency="USD",
                ),
                anthropic_line(
                    AUG_1,
                    model=SONNET,
                    account=WORKSPACE,
                    tier="batch",
                    line_item="Claude Sonnet 4 Usage - Output Tokens",
                    cost=Decimal("1.2378912"),
                    currency="USD",
                ),
                anthropic_line(AUG_2, line_item="Web Search", cost=Decimal("10.00"), currency="USD"),
            ],
            id="anthropic costs: cents strings become dollars exactly; an empty bucket yields nothing",
        ),
    ],
)
def test_a_documented_page_reads_as_billed_lines(parse: Parser, fixture: str, expected: list[BilledLine]) -> None:
    assert parse(page(fixture), SOURCE) == expected


@pytest.mark.parametrize(
    ("parse", "fixture", "total"),
    [
        pytest.param(
            openai.cost_lines,
            "openai/costs.json",
            Decimal("0.36"),
            id="openai: 0.06 + 0.1 + 0.2 is 0.36, not a float's 0.36000000000000004",
        ),
        pytest.param(
            anthropic.cost_lines,
            "anthropic/cost_report.json",
            Decimal("12.4723912"),
            id="anthropic: 123.45 + 123.78912 + 1000 cents",
        ),
    ],
)
def test_costs_add_up_exactly(parse: Parser, fixture: str, total: Decimal) -> None:
    costs = [line.cost for line in parse(page(fixture), SOURCE)]
    assert all(isinstance(cost, Decimal) for cost in costs)
    assert sum(cost for cost in costs if cost is not None) == total


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        pytest.param(
            Decimal("0.060000000000000001"),
            Decimal("0.060000000000000001"),
            id="a Decimal from page_from_json keeps every digit",
        ),
        pytest.param(
            0.06, Decimal("0.06"), id="a float that slipped through becomes its shortest repr, not its binary value"
        ),
        pytest.param(3, Decimal(3), id="a whole-number amount"),
    ],
)
def test_an_openai_amount_is_the_decimal_written(value: Any, expected: Decimal) -> None:
    costs = page("openai/costs.json")
    costs["data"][0]["results"][0]["amount"]["value"] = value
    assert openai.cost_lines(costs, SOURCE)[0].cost == expected


def test_page_from_json_reads_fractions_as_decimals() -> None:
    assert page_from_json('{"value": 0.1, "n": 3}') == {"value": Decimal("0.1"), "n": 3}


def test_unknown_fields_are_ignored() -> None:
    usage = page("anthropic/usage_report_messages.json")
    usage["data"][0]["results"][0]["a_field_added_later"] = {"anything": 1}
    usage["data"][0]["a_bucket_field_added_later"] = True
    assert anthropic.usage_lines(usage, SOURCE) == anthropic.usage_lines(
        page("anthropic/usage_report_messages.json"), SOURCE
    )


def test_a_day_is_the_utc_date_of_the_bucket_start() -> None:
    usage = page("anthropic/usage_report_messages.json")
    usage["data"][0]["starting_at"] = "2025-08-01T20:00:00-05:00"  # 01:00 on 2 August in UTC
    assert anthropic.usage_lines(usage, SOURCE)[0].day == AUG_2


def test_a_key_group_is_the_account_when_there_is_no_project() -> None:
    usage = page("openai/usage_completions.json")
    result = usage["data"][0]["results"][0]
    result["project_id"], result["api_key_id"] = None, "key_abc"
    assert openai.usage_lines(usage, SOURCE)[0].account == "key_abc"


def broken(fixture: str, change: Callable[[Any], None]) -> Any:
    """A fixture page with one thing wrong."""
    document = copy.deepcopy(page(fixture))
    change(document)
    return document


def first_result(document: Any) -> Any:
    return document["data"][0]["results"][0]


@pytest.mark.parametrize(
    ("parse", "document", "field"),
    [
        pytest.param(openai.usage_lines, [], "the page must be a JSON object", id="a page that is not an object"),
        pytest.param(openai.usage_lines, {"object": "page"}, "data is missing", id="no data"),
        pytest.param(anthropic.usage_lines, {"data": {}}, "data must be an array", id="data not an array"),
        pytest.param(
            openai.usage_lines,
            broken("openai/usage_completions.json", lambda d: d["data"][1].pop("results")),
            "data[1].results is missing",
            id="a bucket without results",
        ),
        pytest.param(
            openai.usage_lines,
            broken("openai/usage_completions.json", lambda d: first_result(d).pop("input_tokens")),
            "data[0].results[0].input_tokens is missing",
            id="openai: no input_tokens",
        ),
        pytest.param(
            openai.usage_lines,
            broken("openai/usage_completions.json", lambda d: first_result(d).update(output_tokens="500")),
            "data[0].results[0].output_tokens must be a non-negative integer",
            id="openai: a count as a string",
        ),
        pytest.param(
            openai.usage_lines,
            broken("openai/usage_completions.json", lambda d: first_result(d).update(input_cached_tokens=1001)),
            "data[0].results[0].input_cached_tokens (1001) exceeds input_tokens",
            id="openai: more cached than input",
        ),
        pytest.param(
            openai.usage_lines,
            broken(
                "openai/usage_completions.json",
                lambda d: first_result(d).update(object="organization.usage.images.result"),
            ),
            "data[0].results[0].object must be",
            id="openai: a usage kind not read here",
        ),
        pytest.param(
            openai.usage_lines,
            broken("openai/usage_completions.json", lambda d: first_result(d).update(batch="yes")),
            "data[0].results[0].batch must be true, false or null",
            id="openai: batch not a boolean",
        ),
        pytest.param(
            openai.usage_lines,
            broken("openai/usage_completions.json", lambda d: d["data"][0].update(start_time="2024-11-01")),
            "data[0].start_time must be a non-negative integer",
            id="openai: start_time not Unix seconds",
        ),
        pytest.param(
            openai.cost_lines,
            broken("openai/costs.json", lambda d: first_result(d).pop("amount")),
            "data[0].results[0].amount is missing",
            id="openai: no amount",
        ),
        pytest.param(
            openai.cost_lines,
            broken("openai/costs.json", lambda d: first_result(d)["amount"].update(value="0.06")),
            "data[0].results[0].amount.value must be a number",
            id="openai: amount a string",
        ),
        pytest.param(
            openai.cost_lines,
            broken("openai/costs.json", lambda d: first_result(d)["amount"].pop("currency")),
            "data[0].results[0].amount.currency is missing",
            id="openai: no currency",
        ),
        pytest.param(
            anthropic.usage_lines,
            broken("anthropic/usage_report_messages.json", lambda d: first_result(d).pop("cache_creation")),
            "data[0].results[0].cache_creation is missing",
            id="anthropic: no cache_creation",
        ),
        pytest.param(
            anthropic.usage_lines,
            broken(
                "anthropic/usage_report_messages.json",
                lambda d: first_result(d)["cache_creation"].update(ephemeral_5m_input_tokens=-1),
            ),
            "data[0].results[0].cache_creation.ephemeral_5m_input_tokens must be a non-negative integer",
            id="anthropic: a negative count",
        ),
        pytest.param(
            anthropic.usage_lines,
            broken(
                "anthropic/usage_report_messages.json", lambda d: d["data"][1].update(starting_at="2025-08-02T00:00:00")
            ),
            "data[1].starting_at carries no UTC offset",
            id="anthropic: a naive start",
        ),
        pytest.param(
            anthropic.usage_lines,
            broken("anthropic/usage_report_messages.json", lambda d: d["data"][1].update(starting_at="yesterday")),
            "data[1].starting_at is not an RFC 3339 time",
            id="anthropic: a start that is not a time",
        ),
        pytest.param(
            anthropic.cost_lines,
            broken("anthropic/cost_report.json", lambda d: first_result(d).update(amount=123.45)),
            "data[0].results[0].amount must be a string",
            id="anthropic: amount a number, not the documented string",
        ),
        pytest.param(
            anthropic.cost_lines,
            broken("anthropic/cost_report.json", lambda d: first_result(d).update(amount="12,3")),
            "data[0].results[0].amount is not a decimal string",
            id="anthropic: amount not a decimal",
        ),
        pytest.param(
            anthropic.cost_lines,
            broken("anthropic/cost_report.json", lambda d: first_result(d).update(amount="NaN")),
            "data[0].results[0].amount must be finite",
            id="anthropic: amount NaN",
        ),
        pytest.param(
            anthropic.cost_lines,
            broken("anthropic/cost_report.json", lambda d: first_result(d).pop("currency")),
            "data[0].results[0].currency is missing",
            id="anthropic: no currency",
        ),
    ],
)
def test_a_page_not_as_documented_raises_bill_error_naming_the_field(parse: Parser, document: Any, field: str) -> None:
    with pytest.raises(BillError) as raised:
        parse(document, SOURCE)
    assert field in str(raised.value)
    assert isinstance(raised.value, ValueError)


def test_a_page_that_is_not_json_raises_bill_error() -> None:
    with pytest.raises(BillError, match="not JSON"):
        page_from_json('{"data": [')
