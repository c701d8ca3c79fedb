"""collector/reconcile/compare.py and pools.py: ledger against bill, table-driven, hand-computed."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import pytest

from breakeven.collector.config.reconcile import Owner, ReconcileSource, parse_reconcile
from breakeven.collector.config.settings import SettingsError
from breakeven.collector.price.pools import InvoiceMatch
from breakeven.collector.price.usage import TokenUsage
from breakeven.collector.reconcile.compare import GroupError, group_keys, reconcile_rows
from breakeven.collector.reconcile.pools import matches, pool_months
from breakeven.collector.reconcile.rows import LedgerCell, bill_model, model_key
from breakeven.collector.records import BilledLine

D = date(2026, 11, 3)
OA = ReconcileSource("oa", "openai", "K", "http://x", owners={"proj_a": Owner("a", "t")})
AWS = ReconcileSource("aws", "focus", path="/x/*.csv")
TOL = Decimal("0.01")


def cell(
    usage: TokenUsage, cost: str | None, *, calls: int = 1, unpriced: int = 0, model: str = "gpt-4o"
) -> LedgerCell:
    return LedgerCell(D, "openai", model, "a", "t", calls, unpriced, usage, None if cost is None else Decimal(cost))


def usage_line(usage: TokenUsage, *, tier: str | None = None, model: str = "gpt-4o-2024-08-06") -> BilledLine:
    return BilledLine("oa", D, "openai", model=model, account="proj_a", tier=tier, input_tokens=usage.input,
                      cache_read_tokens=usage.cache_read, cache_write_tokens=usage.cache_write,
                      output_tokens=usage.output, requests=1)  # fmt: skip


def cost_line(amount: str, item: str = "gpt-4o-2024-08-06, input") -> BilledLine:
    return BilledLine("oa", D, "openai", account="proj_a", line_item=item, cost=Decimal(amount), report="cost")


@pytest.mark.parametrize(
    ("name", "key"),
    [
        ("gpt-4o-2024-08-06", "gpt4o"),
        ("gpt-4o", "gpt4o"),
        ("GPT-4o-mini-2024-07-18", "gpt4omini"),
        ("anthropic.claude-3-5-sonnet-20240620-v1:0", "claude35sonnet"),
        ("us.anthropic.claude-3-5-sonnet-20240620-v1:0", "claude35sonnet"),
        ("Claude3.5Sonnet", "claude35sonnet"),
        ("claude-sonnet-4-5-20250929", "claudesonnet45"),
        ("publishers/google/models/gemini-1.5-pro@001", "gemini15pro001"),
        ("gemini-2.0-flash-latest", "gemini20flash"),
        ("gpt-4.1", "gpt41"),
        ("", None),
        (None, None),
    ],
)
def test_model_key_keeps_only_what_names_the_model(name: str | None, key: str | None) -> None:
    assert model_key(name) == key


def test_an_openai_cost_line_names_its_model_in_its_line_item() -> None:
    assert bill_model(cost_line("1")) == "gpt-4o-2024-08-06"
    assert bill_model(cost_line("1", item="web search tool calls")) is None


@pytest.mark.parametrize(
    ("text", "keys"),
    [
        (None, ("provider", "day")),
        ("", ("provider", "day")),
        ("model, day,model", ("model", "day")),
        ("pool", ("pool",)),
    ],
)
def test_group_keys(text: str | None, keys: tuple[str, ...]) -> None:
    assert group_keys(text) == keys


@pytest.mark.parametrize("text", ["colour", "pool,day", "provider,pool"])
def test_group_keys_refused(text: str) -> None:
    with pytest.raises(GroupError):
        group_keys(text)


T = TokenUsage
# (case, ledger cells, bill lines, expected cause kinds, expected status)
CASES = [
    ("agrees", [cell(T(1000, 0, 0, 100), "10.00")], [usage_line(T(1000, 0, 0, 100)), cost_line("10.00")], [], "agrees"),
    ("within a cent and 1%", [cell(T(1000, 0, 0, 100), "10.00")],
     [usage_line(T(1005, 0, 0, 100)), cost_line("10.05")], [], "agrees"),
    ("nothing billed", [cell(T(1000, 0, 0, 100), "10.00")], [], ["not_billed"], "ledger_only"),
    ("never seen", [cell(T(1000, 0, 0, 100), "10.00")],
     [usage_line(T(2000, 0, 0, 200)), cost_line("20.00")], ["never_seen"], "differs"),
    ("output short: reasoning", [cell(T(1000, 0, 0, 100), "10.00")],
     [usage_line(T(1000, 0, 0, 400)), cost_line("13.00")], ["output_counted_differently"], "differs"),
    ("more input, less output: not called reasoning", [cell(T(2000, 0, 0, 100), "20.00")],
     [usage_line(T(1000, 0, 0, 400)), cost_line("13.00")], ["ledger_over"], "differs"),
    ("ledger over", [cell(T(3000, 0, 0, 100), "30.00")],
     [usage_line(T(1000, 0, 0, 100)), cost_line("10.00")], ["ledger_over"], "differs"),
    ("cached", [cell(T(1000, 0, 0, 100), "10.00")],
     [usage_line(T(600, 400, 0, 100)), cost_line("8.00")], ["cache_counted_differently"], "differs"),
    ("batch tier", [cell(T(1000, 0, 0, 100), "10.00")],
     [usage_line(T(1000, 0, 0, 100), tier="batch"), cost_line("5.00")], ["tier"], "differs"),
    ("unpriced", [cell(T(1000, 0, 0, 100), None, unpriced=1)],
     [usage_line(T(1000, 0, 0, 100)), cost_line("10.00")], ["unpriced_calls"], "differs"),
    ("price", [cell(T(1000, 0, 0, 100), "10.00")],
     [usage_line(T(1000, 0, 0, 100)), cost_line("9.00")], ["price"], "differs"),
    ("other charges", [cell(T(1000, 0, 0, 100), "10.00")],
     [usage_line(T(1000, 0, 0, 100)), cost_line("10.00"), cost_line("3.00", item="web search tool calls")],
     ["other_charges"], "differs"),
    ("bill only", [], [usage_line(T(1000, 0, 0, 100)), cost_line("10.00")], ["never_seen"], "bill_only"),
]  # fmt: skip


@pytest.mark.parametrize(("case", "ledger", "bills", "kinds", "status"), CASES, ids=[c[0] for c in CASES])
def test_causes(case: str, ledger: list[LedgerCell], bills: list[BilledLine], kinds: list[str], status: str) -> None:
    rows = reconcile_rows(ledger, bills, [OA], ("provider",), TOL)
    assert len(rows) == 1
    assert [c.kind for c in rows[0].causes] == kinds
    assert rows[0].status == status


def test_a_price_gap_names_the_whole_discount_with_the_ledgers_own() -> None:
    # The ledger already takes 10% off; the bill is 10% below the ledger: 1 - 0.9 x 0.9 = 19% in all.
    rows = reconcile_rows(
        [cell(T(1000, 0, 0, 100), "9.00")],
        [usage_line(T(1000, 0, 0, 100)), cost_line("8.10")],
        [OA],
        ("provider",),
        TOL,
        {"openai": Decimal(10)},
    )
    price = rows[0].causes[0]
    assert price.amount == Decimal("-0.90")
    assert price.suggestion == '[[pricing.discounts]]\nprovider = "openai"\npercent = 19\neffective_from = 2026-11-03\n'


def test_never_seen_names_the_unmapped_account_and_its_share() -> None:
    rows = reconcile_rows(
        [cell(T(1000, 0, 0, 0), "1.00")],
        [usage_line(T(1000, 0, 0, 0)), BilledLine("oa", D, "openai", model="gpt-4o", account="proj_x",
                                                  input_tokens=3000)],
        [OA], ("model",), TOL,
    )  # fmt: skip
    (unseen,) = rows[0].causes[0].evidence
    assert unseen["account"] == "proj_x"
    assert unseen["service"] is None
    assert unseen["unseen_tokens"] == 3000  # service a is proj_a's by the map: none of its tokens are proj_x's
    assert rows[0].key == ("gpt-4o",)  # the ledger's name shown


def test_providers_no_source_bills_and_non_ai_focus_lines_stay_out() -> None:
    ledger = [LedgerCell(D, "groq", "llama", None, None, 1, 0, T(10, 0, 0, 1), Decimal(1))]
    ec2 = BilledLine("aws", D, "AWS", account="1", resource_id="i-1", cost=Decimal(5), currency="USD", report="focus")
    bedrock = BilledLine("aws", D, "aws.bedrock", model="Claude3.5Sonnet", input_tokens=10, cost=Decimal(1),
                         report="focus")  # fmt: skip
    rows = reconcile_rows(ledger, [ec2, bedrock], [OA, AWS], ("provider",), TOL)
    assert [r.key for r in rows] == [("aws.bedrock",)]


@pytest.mark.parametrize(
    ("match", "resource", "tags", "hit"),
    [
        (InvoiceMatch("i-0abc*"), "i-0abc123", None, True),
        (InvoiceMatch("i-0abc*"), "i-0ABC123", None, False),
        (InvoiceMatch("i-0abc*"), None, None, False),
        (InvoiceMatch(None, (("pool", "llama-*"),)), "i-1", '{"pool":"llama-70b"}', True),
        (InvoiceMatch(None, (("pool", "llama-*"),)), "i-1", '{"team":"llama-70b"}', False),
        (InvoiceMatch("i-1", (("pool", "x"),)), "i-1", '{"pool":"y"}', False),
    ],
)
def test_invoice_match(match: InvoiceMatch, resource: str | None, tags: str | None, hit: bool) -> None:
    line = BilledLine("aws", D, "AWS", resource_id=resource, tags=tags, cost=Decimal(1), report="focus")
    assert matches(match, line) is hit


def test_pool_months_sum_matched_lines_per_month() -> None:
    lines = [
        BilledLine("aws", date(2026, 10, 31), "AWS", resource_id="i-1", cost=Decimal("3"), report="focus"),
        BilledLine("aws", date(2026, 11, 1), "AWS", resource_id="i-1", cost=Decimal("4"), report="focus"),
        BilledLine("aws", date(2026, 11, 2), "AWS", resource_id="i-2", cost=Decimal("5"), report="focus"),
    ]
    months = {("p", date(2026, 10, 1)): Decimal(3), ("p", date(2026, 11, 1)): Decimal(10)}
    oct_, nov = pool_months([("p", InvoiceMatch("i-*"))], months, lines)
    assert (oct_.invoiced, oct_.delta) == (Decimal(3), Decimal(0))
    assert (nov.invoiced, nov.lines, nov.delta) == (Decimal(9), 2, Decimal(-1))
    assert oct_.cause(TOL, 1) is None
    assert nov.cause(TOL, 1).startswith("the configured rent is 1.00 above what the cloud billed")  # type: ignore[union-attr]


@pytest.mark.parametrize(
    ("raw", "error"),
    [
        ({"tolerance_percent": -1}, "reconcile.tolerance_percent"),
        ({"tolerance_percent": 101}, "a percentage from 0 to 100"),
        ({"tolerance_percent": "x"}, "not a number"),
    ],
)
def test_tolerance_config_refused(raw: dict[str, object], error: str) -> None:
    with pytest.raises(SettingsError, match=error):
        parse_reconcile(raw)


def test_tolerance_config_default_and_set() -> None:
    assert parse_reconcile({}).tolerance_percent == Decimal(1)
    assert parse_reconcile({"tolerance_percent": 2.5}).tolerance_percent == Decimal("2.5")
