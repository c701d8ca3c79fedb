"""OpenAI's organization Usage and Costs API pages -> BilledLine records (pure: no I/O).

Shapes as documented in OpenAI's API reference (platform.openai.com/docs/api-reference/usage,
.../usage/costs_object) and its OpenAPI spec, read through the generated clients that carry it
(docs.rs openai-client-base UsageCompletionsResult, CostsResult; hexdocs ex_openai):

- `GET /v1/organization/usage/completions` and `/usage/embeddings` answer
  `{"object": "page", "data": [bucket...], "has_more", "next_page"}`; a bucket is
  `{"object": "bucket", "start_time": <unix s>, "end_time", "results": [...]}`.
  A completions result's `input_tokens` *includes* `input_cached_tokens` (the spec: "including
  cached tokens"), so the ledger's input_tokens is the difference and cache_read_tokens the
  cached part. `output_tokens` includes reasoning tokens, as the ledger's does. Group-by keys
  (`model`, `project_id`, `api_key_id`, `batch`, `service_tier`) are null unless grouped by.
  `input_audio_tokens` / `output_audio_tokens` are a breakdown, not additions (the newest spec
  says `input_tokens` "includes text, audio, and image tokens").
- `GET /v1/organization/costs` results are `{"amount": {"value": <number>, "currency": "usd"},
  "line_item", "project_id"}`; `value` is a JSON number. Read the page with
  `page_from_json` (json.loads with parse_float=Decimal) so the Decimal is the one written in
  the JSON; a float that reached us anyway becomes Decimal(str(value)), its shortest repr.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

from breakeven.collector.reconcile.errors import BillError, count, mapping, results_by_day, text, utc_day
from breakeven.collector.records import BilledLine

PROVIDER = "openai"
COMPLETIONS = "organization.usage.completions.result"
EMBEDDINGS = "organization.usage.embeddings.result"


def usage_lines(page: Any, source: str) -> list[BilledLine]:
    """One line per result of a completions or embeddings usage page (each result names its kind)."""
    return [_usage_line(result, where, day, source) for day, where, result in results_by_day(page, _bucket_day)]


def cost_lines(page: Any, source: str) -> list[BilledLine]:
    """One line per result of a costs page: the amount billed for a day, line item and project."""
    return [_cost_line(result, where, day, source) for day, where, result in results_by_day(page, _bucket_day)]


def _usage_line(result: Mapping[str, Any], where: str, day: date, source: str) -> BilledLine:
    kind = result.get("object")
    if kind == COMPLETIONS:
        return _completions_line(result, where, day, source)
    if kind == EMBEDDINGS:
        return _embeddings_line(result, where, day, source)
    raise BillError(f"{where}.object must be {COMPLETIONS!r} or {EMBEDDINGS!r}, not {kind!r}")


def _cost_line(result: Mapping[str, Any], where: str, day: date, source: str) -> BilledLine:
    amount = mapping(result, "amount", where)
    currency = text(amount, "currency", f"{where}.amount")
    if not currency:
        raise BillError(f"{where}.amount.currency is missing")
    return BilledLine(
        source=source,
        day=day,
        provider=PROVIDER,
        account=text(result, "project_id", where),
        line_item=text(result, "line_item", where),
        cost=_money(amount, f"{where}.amount"),
        currency=currency.upper(),
    )


def _completions_line(result: Mapping[str, Any], where: str, day: date, source: str) -> BilledLine:
    """A completions result; input less its cached part is the ledger's uncached input."""
    input_tokens = count(result, "input_tokens", where)
    cached = count(result, "input_cached_tokens", where, required=False)
    if cached > input_tokens:
        raise BillError(f"{where}.input_cached_tokens ({cached}) exceeds input_tokens ({input_tokens})")
    return BilledLine(
        source=source,
        day=day,
        provider=PROVIDER,
        model=text(result, "model", where),
        account=_account(result, where),
        tier=_tier(result, where),
        input_tokens=input_tokens - cached,
        cache_read_tokens=cached,
        output_tokens=count(result, "output_tokens", where),
        requests=count(result, "num_model_requests", where),
    )


def _embeddings_line(result: Mapping[str, Any], where: str, day: date, source: str) -> BilledLine:
    """An embeddings result: input tokens only, never cached."""
    return BilledLine(
        source=source,
        day=day,
        provider=PROVIDER,
        model=text(result, "model", where),
        account=_account(result, where),
        input_tokens=count(result, "input_tokens", where),
        requests=count(result, "num_model_requests", where),
    )


def _account(result: Mapping[str, Any], where: str) -> str | None:
    """The project when grouped by project, else the API key when grouped by key."""
    return text(result, "project_id", where) or text(result, "api_key_id", where)


def _tier(result: Mapping[str, Any], where: str) -> str | None:
    """ "batch" when the result is the Batch API's; else the service tier when grouped by it."""
    batch = result.get("batch")
    if batch is not None and not isinstance(batch, bool):
        raise BillError(f"{where}.batch must be true, false or null, not {batch!r}")
    if batch:
        return "batch"
    return text(result, "service_tier", where)


def _bucket_day(bucket: Mapping[str, Any], path: str) -> date:
    """The UTC date of the bucket's start (`start_time`, Unix seconds)."""
    start = count(bucket, "start_time", path)
    return utc_day(datetime.fromtimestamp(start, UTC), f"{path}.start_time")


def _money(amount: Mapping[str, Any], path: str) -> Decimal:
    """`value` as the Decimal the JSON wrote; finite, as a bill's amount is."""
    if "value" not in amount:
        raise BillError(f"{path}.value is missing")
    value = amount["value"]
    if isinstance(value, bool) or not isinstance(value, int | float | Decimal):
        raise BillError(f"{path}.value must be a number, not {value!r}")
    money = Decimal(str(value)) if isinstance(value, float) else Decimal(value)
    if not money.is_finite():
        raise BillError(f"{path}.value must be finite, not {value!r}")
    return money
