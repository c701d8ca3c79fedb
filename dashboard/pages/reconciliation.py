"""Reconciliation: the ledger against what the providers and clouds billed, over the range.

Every figure is GET /api/v1/reconciliation's (breakeven.collector.reports.reconciliation), read
in process: the report grouped as the page is told (`group_by`, provider and model unless
said) gives the summary, the sources and their last fetch, the rows with their causes
(largest delta first), the pools' rent against their invoices and the unbilled providers; the
same report grouped by provider and day gives the chart. The report covers whole UTC days,
so the range's last day is read to its end. With no `[[reconcile.sources]]` the page says
how to configure one and reads nothing.

Where the issue is silent: a provider's coverage beside the chart is its days' ledger tokens
over their billed tokens (the report's own rule, summed over the range); on the chart a day
the ledger has no call of is 0, a day without a bill line has no point (not billed, or not
fetched yet), and a day whose calls were all unpriced has no ledger point (never zero).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from decimal import Decimal
from typing import Any

import sqlalchemy as sa

from breakeven.collector.config.reconcile import ReconcileConfig
from breakeven.collector.price.config import PricingConfig
from breakeven.collector.price.money import ZERO
from breakeven.collector.price.periods import iso_z, month_start
from breakeven.collector.reports.errors import ReportError
from breakeven.collector.reports.fields import money, number
from breakeven.collector.reports.reconciliation import reconciliation_report
from breakeven.dashboard.pages.common import converter
from breakeven.dashboard.view import View

DEFAULT_GROUP_BY = "provider,model"
# The groupings the page offers as links (the report takes any of compare.GROUP_KEYS; pool stands apart).
GROUPINGS = ("provider,model", "provider", "service", "team", "source", "provider,day")
SHOWN = 20  # rows the page lists; the JSON twin carries them all
CONFIG_EXAMPLE = """[[reconcile.sources]]
name = "openai-org"
kind = "openai"                      # openai | anthropic | focus
admin_key_env = "OPENAI_ADMIN_KEY"   # the variable holding an admin key, never the key
"""


def _largest_first(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Rows by the size of their delta, largest first; rows without a billed cost last."""
    return sorted(rows, key=lambda r: (r["delta"]["amount"] is None, -abs(Decimal(r["delta"]["amount"] or 0))))


def _daily(report: Mapping[str, Any], days: list[str]) -> dict[str, Any]:
    """Per provider: ledger and billed cost and coverage per day of the range, and over the range."""
    cells: dict[str, dict[str, dict[str, Any]]] = {}
    for row in report["rows"]:
        cells.setdefault(row["provider"], {})[row["day"]] = row
    providers = []
    for provider, by_day in sorted(cells.items()):
        ledger_tokens = sum(r["ledger"]["tokens"]["total"] for r in by_day.values())
        billed_tokens = sum(r["billed"]["tokens"]["total"] for r in by_day.values())
        billed = [r["billed"]["cost"] for r in by_day.values() if r["billed"]["cost"] is not None]
        ledger = sum((Decimal(r["ledger"]["cost"]) for r in by_day.values() if r["ledger"]["cost"]), ZERO)
        providers.append(
            {
                "provider": provider,
                "ledger_cost": [_ledger_cost(by_day.get(day)) for day in days],
                "billed_cost": [by_day[day]["billed"]["cost"] if day in by_day else None for day in days],
                "coverage": [by_day[day]["coverage"] if day in by_day else None for day in days],
                "total": {
                    "ledger_cost": money(ledger),
                    "billed_cost": money(sum((Decimal(b) for b in billed), ZERO)) if billed else None,
                    "ledger_tokens": ledger_tokens,
                    "billed_tokens": billed_tokens,
                    "coverage": number(Decimal(ledger_tokens) / billed_tokens) if billed_tokens else None,
                },
            }
        )
    return {"days": days, "providers": providers}


def _ledger_cost(row: Mapping[str, Any] | None) -> str | None:
    """A day's ledger cost: 0 without calls, None when its calls were all unpriced."""
    if row is None or not row["ledger"]["calls"]:
        return money(ZERO)
    cost: str | None = row["ledger"]["cost"]
    return cost


def _empty(view: View, fx: dict[str, Any] | None) -> dict[str, Any]:
    return {
        "page": "reconciliation",
        "view": view.as_json(),
        "configured": False,
        "config_example": CONFIG_EXAMPLE,
        "group_by": DEFAULT_GROUP_BY.split(","),
        "groupings": list(GROUPINGS),
        "summary": None,
        "sources": [],
        "daily": {"days": [d.isoformat() for d in view.days()], "providers": []},
        "rows": [],
        "shown": SHOWN,
        "pools": [],
        "unbilled": [],
        "fx": fx,
    }


def context(
    conn: sa.Connection, pricing: PricingConfig, reconcile: ReconcileConfig, view: View, query: Mapping[str, str]
) -> dict[str, Any]:
    """The Reconciliation page."""
    conv = converter(pricing, view)
    if not reconcile.sources:
        return _empty(view, conv.described(view.until))
    group_by = query.get("group_by") or DEFAULT_GROUP_BY
    if "pool" in group_by.split(","):
        raise ReportError("group_by: the pools' rent against their invoices is its own table on this page")
    report = reconciliation_report(conn, pricing, reconcile, conv, view.since, view.until, group_by)
    by_day = reconciliation_report(conn, pricing, reconcile, conv, view.since, view.until, "provider,day")
    return {
        "page": "reconciliation",
        "view": view.as_json(),
        "configured": True,
        "since": report["since"],
        "until": report["until"],
        "group_by": report["group_by"],
        "groupings": list(GROUPINGS),
        "tolerance_percent": report["tolerance_percent"],
        "summary": report["summary"],
        "sources": report["sources"],
        "daily": _daily(by_day, [d.isoformat() for d in view.days()]),
        "rows": _largest_first(report["rows"]),
        "shown": SHOWN,
        "pools": report["pools"],
        "unbilled": report["unbilled"],
        "fx": conv.described(view.until),
    }


def month_explained(
    conn: sa.Connection, pricing: PricingConfig, reconcile: ReconcileConfig, view: View, now: datetime
) -> dict[str, Any] | None:
    """How much of this UTC month's bill the ledger explains, for the Overview; None without sources.

    One reconciliation over the month (grouped by provider, the cheapest grouping); a report
    the page cannot make (a bill's currency without an FX rate) is its error in words, so the
    Overview never fails on it."""
    if not reconcile.sources:
        return None
    month = month_start(now)
    out: dict[str, Any] = {"month": month.strftime("%Y-%m"), "since": iso_z(month), "until": iso_z(now)}
    try:
        report = reconciliation_report(conn, pricing, reconcile, converter(pricing, view), month, now, "provider")
    except ReportError as exc:
        return {**out, "error": str(exc), "billed": False}
    summary = report["summary"]
    return {
        **out,
        "error": None,
        "billed": summary["billed_cost"] is not None,
        "explained_percent": summary["explained_percent"],
        "ledger_cost": summary["ledger_cost"],
        "billed_cost": summary["billed_cost"],
        "coverage": summary["coverage"],
    }
