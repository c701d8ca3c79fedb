"""A source's usage and cost reports fetched from its provider's admin API (`breakeven reconcile fetch`).

Each report is read day by day (`bucket_width=1d`) over [since, until), page after page
(`has_more` / `next_page`, passed back as `page`), grouped the way reconciliation needs:

| kind | report | endpoint | grouped by |
| --- | --- | --- | --- |
| openai | usage | `GET /v1/organization/usage/completions`, `/usage/embeddings` | model, project_id, batch |
| openai | cost | `GET /v1/organization/costs` | project_id, line_item |
| anthropic | usage | `GET /v1/organizations/usage_report/messages` | model, workspace_id, service_tier |
| anthropic | cost | `GET /v1/organizations/cost_report` | workspace_id, description |

A 429 or 5xx answer is tried again after its Retry-After (or 1, 2, 4 ... s, at most
RETRIES times); any other failure raises FetchError naming the source, endpoint and status,
never the key. The key is read from the environment variable the source names, at fetch time,
and sent only in the request's header: OpenAI's `Authorization: Bearer`, Anthropic's
`x-api-key`.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime
from datetime import time as clock
from typing import Any

import httpx

from breakeven.collector.config.reconcile import ReconcileSource, admin_key
from breakeven.collector.reconcile.errors import BillError, page_from_json
from breakeven.collector.reconcile.files import PARSERS
from breakeven.collector.records import BilledLine

RETRIES = 5
PAGE_LIMIT = 31  # daily buckets per page: the APIs' maximum for 1d
ANTHROPIC_VERSION = "2023-06-01"


class FetchError(Exception):
    """A report could not be fetched; the message names the source and endpoint, never the key."""


@dataclass(frozen=True, slots=True)
class Report:
    """One report of a source's API: where it is and how it is grouped (files.PARSERS reads its pages)."""

    name: str  # usage or cost
    path: str
    group_by: tuple[str, ...]


REPORTS: Mapping[str, tuple[Report, ...]] = {
    "openai": (
        Report("usage", "/v1/organization/usage/completions", ("model", "project_id", "batch")),
        Report("usage", "/v1/organization/usage/embeddings", ("model", "project_id")),
        Report("cost", "/v1/organization/costs", ("project_id", "line_item")),
    ),
    "anthropic": (
        Report("usage", "/v1/organizations/usage_report/messages", ("model", "workspace_id", "service_tier")),
        Report("cost", "/v1/organizations/cost_report", ("workspace_id", "description")),
    ),
}


def fetch_lines(
    source: ReconcileSource,
    since: date,
    until: date,
    environ: Mapping[str, str] | None = None,
    client: httpx.Client | None = None,
    sleep: Callable[[float], None] = time.sleep,
) -> dict[str, list[BilledLine]]:
    """Every line of the source's reports over [since, until), by report (usage, cost)."""
    if source.kind not in REPORTS or source.base_url is None or source.admin_key_env is None:
        raise FetchError(f"{source.name}: only an API source (kind openai or anthropic) is fetched")
    key = admin_key(source, environ)
    if key is None:
        raise FetchError(f"{source.name}: the environment variable {source.admin_key_env} holds no admin key")
    headers = (
        {"Authorization": f"Bearer {key}"}
        if source.kind == "openai"
        else {"x-api-key": key, "anthropic-version": ANTHROPIC_VERSION}
    )
    own = client is None
    http = client or httpx.Client(timeout=60)
    try:
        lines: dict[str, list[BilledLine]] = {"usage": [], "cost": []}
        for report in REPORTS[source.kind]:
            parse = PARSERS[(source.kind, report.name)]
            for page in _pages(http, source, report, headers, since, until, sleep):
                try:
                    lines[report.name].extend(replace(line, report=report.name) for line in parse(page, source.name))
                except BillError as exc:
                    raise FetchError(f"{source.name}: {report.path}: {exc}") from None
        return lines
    finally:
        if own:
            http.close()


def _pages(
    http: httpx.Client,
    source: ReconcileSource,
    report: Report,
    headers: Mapping[str, str],
    since: date,
    until: date,
    sleep: Callable[[float], None],
) -> Iterator[Any]:
    """The report's pages over [since, until), following next_page."""
    params: dict[str, Any] = {"bucket_width": "1d", "limit": PAGE_LIMIT}
    start, end = (datetime.combine(day, clock(), UTC) for day in (since, until))
    if source.kind == "openai":
        params |= {"start_time": int(start.timestamp()), "end_time": int(end.timestamp()), "group_by": report.group_by}
    else:
        stamp = "%Y-%m-%dT%H:%M:%SZ"
        params |= {"starting_at": start.strftime(stamp), "ending_at": end.strftime(stamp)}
        params["group_by[]"] = report.group_by
    url = f"{source.base_url}{report.path}"
    while True:
        page = _get(http, source, url, params, headers, sleep)
        yield page
        next_page = page.get("next_page") if isinstance(page, Mapping) else None
        if not (isinstance(page, Mapping) and page.get("has_more")) or not next_page:
            return
        params["page"] = next_page


def _get(
    http: httpx.Client,
    source: ReconcileSource,
    url: str,
    params: Mapping[str, Any],
    headers: Mapping[str, str],
    sleep: Callable[[float], None],
) -> Any:
    """One page, tried again on 429 and 5xx; FetchError naming the endpoint and status otherwise."""
    for attempt in range(RETRIES + 1):
        try:
            answer = http.get(url, params=params, headers=headers)
        except httpx.HTTPError as exc:
            failure = f"{exc.__class__.__name__}"
        else:
            if answer.status_code == 200:
                try:
                    return page_from_json(answer.content)
                except BillError as exc:
                    raise FetchError(f"{source.name}: {url}: {exc}") from None
            failure = f"HTTP {answer.status_code}"
            if answer.status_code != 429 and answer.status_code < 500:
                raise FetchError(f"{source.name}: {url}: {failure} (is the admin key right, and an admin key?)")
            retry_after = answer.headers.get("retry-after", "")
            if attempt < RETRIES and retry_after.isdigit():
                sleep(min(float(retry_after), 60.0))
                continue
        if attempt < RETRIES:
            sleep(float(2**attempt))
    raise FetchError(f"{source.name}: {url}: {failure}, {RETRIES + 1} tries")
