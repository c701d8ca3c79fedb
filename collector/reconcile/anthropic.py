"""Anthropic's Admin API usage and cost reports -> BilledLine records (pure: no I/O).

Shapes as documented in Anthropic's API reference, "Get Messages Usage Report" and "Get Cost
Report" (docs.anthropic.com/en/api/admin-api/usage-cost/get-messages-usage-report,
platform.claude.com/docs/en/api/admin/cost_report/retrieve):

- `GET /v1/organizations/usage_report/messages` answers `{"data": [bucket...], "has_more",
  "next_page"}`; a bucket is `{"starting_at": RFC 3339, "ending_at", "results": [...]}` and a
  result `{"uncached_input_tokens", "cache_creation": {"ephemeral_1h_input_tokens",
  "ephemeral_5m_input_tokens"}, "cache_read_input_tokens", "output_tokens", "server_tool_use",
  "api_key_id", "workspace_id", "model", "service_tier", "context_window"}`. The three input
  counts are disjoint, as the ledger's are; cache writes are the sum of both TTLs. The report
  counts no requests, so `requests` stays 0. Group-by keys are null unless grouped by.
- `GET /v1/organizations/cost_report` results carry `amount`, "Cost amount in lowest currency
  units (e.g. cents) as a decimal string" in `currency` ("currently always USD"), with
  `workspace_id`, `description`, `cost_type`, `model`, `service_tier`, `token_type`. The
  amount is moved two places exactly (Decimal.scaleb): "123.45" is $1.2345 (the docs round
  their own example to "$1.23"). The docs say this report leaves out Priority Tier costs.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date, datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from breakeven.collector.reconcile.errors import BillError, count, mapping, results_by_day, text, utc_day
from breakeven.collector.records import BilledLine

PROVIDER = "anthropic"
CACHE_WRITE_FIELDS = ("ephemeral_1h_input_tokens", "ephemeral_5m_input_tokens")


def usage_lines(page: Any, source: str) -> list[BilledLine]:
    """One line per result of a messages usage report page."""
    return [_usage_line(result, where, day, source) for day, where, result in results_by_day(page, _bucket_day)]


def cost_lines(page: Any, source: str) -> list[BilledLine]:
    """One line per result of a cost report page, its cents amount turned into the currency's unit."""
    return [_cost_line(result, where, day, source) for day, where, result in results_by_day(page, _bucket_day)]


def _usage_line(result: Mapping[str, Any], where: str, day: date, source: str) -> BilledLine:
    cache_creation = mapping(result, "cache_creation", where)
    return BilledLine(
        source=source,
        day=day,
        provider=PROVIDER,
        model=text(result, "model", where),
        account=_account(result, where),
        tier=text(result, "service_tier", where),
        input_tokens=count(result, "uncached_input_tokens", where),
        cache_read_tokens=count(result, "cache_read_input_tokens", where),
        cache_write_tokens=sum(count(cache_creation, name, f"{where}.cache_creation") for name in CACHE_WRITE_FIELDS),
        output_tokens=count(result, "output_tokens", where),
    )


def _cost_line(result: Mapping[str, Any], where: str, day: date, source: str) -> BilledLine:
    currency = text(result, "currency", where)
    if not currency:
        raise BillError(f"{where}.currency is missing")
    return BilledLine(
        source=source,
        day=day,
        provider=PROVIDER,
        model=text(result, "model", where),
        account=text(result, "workspace_id", where),
        tier=text(result, "service_tier", where),
        line_item=text(result, "description", where),
        cost=_units_from_cents(result, where),
        currency=currency.upper(),
    )


def _account(result: Mapping[str, Any], where: str) -> str | None:
    """The workspace when grouped by workspace, else the API key when grouped by key."""
    return text(result, "workspace_id", where) or text(result, "api_key_id", where)


def _bucket_day(bucket: Mapping[str, Any], path: str) -> date:
    """The UTC date of the bucket's start (`starting_at`, RFC 3339)."""
    starting_at = text(bucket, "starting_at", path)
    if starting_at is None:
        raise BillError(f"{path}.starting_at is missing")
    try:
        moment = datetime.fromisoformat(starting_at)
    except ValueError as exc:
        raise BillError(f"{path}.starting_at is not an RFC 3339 time: {starting_at!r}") from exc
    return utc_day(moment, f"{path}.starting_at")


def _units_from_cents(result: Mapping[str, Any], where: str) -> Decimal:
    """`amount`, a decimal string in cents, as an exact Decimal in the currency's unit."""
    amount = text(result, "amount", where)
    if amount is None:
        raise BillError(f"{where}.amount is missing")
    try:
        cents = Decimal(amount)
    except InvalidOperation as exc:
        raise BillError(f"{where}.amount is not a decimal string: {amount!r}") from exc
    if not cents.is_finite():
        raise BillError(f"{where}.amount must be finite, not {amount!r}")
    return cents.scaleb(-2)
