"""The ledger_drift kind (pure): a source's closed day whose bill parts from the ledger.

Its inputs are the reconciliation report's rows grouped by source and day (alerts/inputs.py
reads them); /metrics shows the same closed days' figures (api/metrics.py).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal

from breakeven.collector.alerts.conditions import Condition, Labels, money, percent, ratio, usd
from breakeven.collector.config.alerts import Rule
from breakeven.collector.price.money import ZERO

# A day's bill is closed once fetched this long after the day ended: providers settle a day's
# usage and cost reports within hours, and restate it later (a later fetch resolves the alert).
CLOSED_AFTER = timedelta(days=1)


@dataclass(frozen=True, slots=True)
class BillDay:
    """One source's bill for one UTC day beside the ledger's calls it bills, in USD
    (a row of the reconciliation report grouped by source and day)."""

    source: str
    day: date
    ledger_usd: Decimal | None  # None: no call of it was priced
    billed_usd: Decimal | None  # None: the bill has no cost that day
    ledger_tokens: int
    billed_tokens: int
    coverage: Decimal | None  # ledger tokens / billed tokens; None: the bill counts no tokens
    delta_usd: Decimal | None  # billed - ledger; None: the bill has no cost
    delta_percent: Decimal | None  # of the billed cost
    cause: str | None  # the report's first cause, in words
    fetched_at: datetime | None  # the source's last successful fetch; None: never fetched (imported)


@dataclass(frozen=True, slots=True)
class BillFigures:
    """Each source's days over a window, as read at `as_of`."""

    as_of: datetime
    days: tuple[BillDay, ...] = ()


def closed_days(figures: BillFigures) -> list[BillDay]:
    """The days a bill can be judged on: closed, and billed.

    Closed: the day ended at least CLOSED_AFTER before its source's last successful fetch
    (before as_of, for a source never fetched: its bills were imported), so the bill read is
    the settled one. Billed: the source has lines that day; a day without any is a fetch that
    failed or has not run, which the fetch's own status reports, not drift.
    """
    out = []
    for d in figures.days:
        if d.billed_usd is None and not d.billed_tokens:
            continue
        settled = figures.as_of if d.fetched_at is None else min(d.fetched_at, figures.as_of)
        if datetime.combine(d.day, time(0), UTC) + timedelta(days=1) + CLOSED_AFTER <= settled:
            out.append(d)
    return out


def ledger_drifting(rule: Rule, figures: BillFigures) -> list[Condition]:
    """Closed days (per source) of the window whose bill is more than margin percent away from the
    ledger, or whose ledger saw fewer than min_coverage of the billed tokens; never a day whose
    bill and ledger differ by less than min_delta USD."""
    out = []
    first = (figures.as_of - rule.window).astimezone(UTC).date()
    for d in closed_days(figures):
        if d.day < first or (rule.sources and d.source not in rule.sources):
            continue
        if d.delta_usd is not None and abs(d.delta_usd) < rule.min_delta_usd:
            continue
        drifted = d.delta_percent is not None and abs(d.delta_percent) > rule.margin
        uncovered = d.coverage is not None and d.coverage < rule.min_coverage
        if not (drifted or uncovered):
            continue
        out.append(Condition((("day", d.day.isoformat()), ("source", d.source)), _drift_summary(d), _drift_details(d)))
    return out


def _drift_summary(d: BillDay) -> str:
    billed = "no cost" if d.billed_usd is None else usd(d.billed_usd)
    text = f"{d.source} billed {billed} for {d.day.isoformat()} against {usd(d.ledger_usd or ZERO)} in the ledger"
    if d.delta_usd is not None and d.delta_percent is not None:
        text += f" ({'+' if d.delta_usd >= 0 else ''}{d.delta_percent:.1f}% of the bill)"
    if d.coverage is not None:
        text += f"; the ledger saw {percent(d.coverage)} of the {d.billed_tokens:,} billed tokens"
    return f"{text}. {d.cause[:1].upper() + d.cause[1:]}." if d.cause else f"{text}."


def _drift_details(d: BillDay) -> Labels:
    end = d.day + timedelta(days=1)

    def optional(value: Decimal | None, shown: str) -> str:
        return "" if value is None else shown

    return (
        ("day", d.day.isoformat()),
        ("ledger_cost_usd", money(d.ledger_usd or ZERO)),
        ("billed_cost_usd", optional(d.billed_usd, money(d.billed_usd or ZERO))),
        ("delta_usd", optional(d.delta_usd, money(d.delta_usd or ZERO))),
        ("delta_percent", optional(d.delta_percent, f"{d.delta_percent or ZERO:.1f}")),
        ("coverage", optional(d.coverage, ratio(d.coverage or ZERO))),
        ("ledger_tokens", str(d.ledger_tokens)),
        ("billed_tokens", str(d.billed_tokens)),
        ("cause", d.cause or ""),
        (
            "report",
            f"/api/v1/reconciliation?since={d.day}T00:00:00Z&until={end}T00:00:00Z&group_by=source,provider,model",
        ),
    )
