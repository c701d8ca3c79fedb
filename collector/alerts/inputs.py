"""The one adapter from the ledger to the rules' inputs (and to /metrics' figures).

Rules are pure (collector/alerts/rules.py); this module reads what they need, through the
same code the money API uses where it exists, so an alert and the dashboard agree:

- pools: breakeven.collector.reports.pools.pool_figures (pool period, alternative cost, break-even);
- traffic classes, spend by group, all-time totals: breakeven.collector.store.spend.spend (per-token
  cost plus allocated pool cost), sized against candidates with breakeven.collector.price.breakeven;
- unpriced calls, services' last calls: small GROUP BYs over the calls table here;
- ingest rejects and refusals: cumulative counters, sampled on every evaluation, so a rate
  over the rule's window is the difference between two samples;
- bills beside the ledger: breakeven.collector.reports.reconciliation.reconcile (what
  /api/v1/reconciliation shows), by source and UTC day, with each source's last fetch.

Every figure is USD over [now - window, now); bills over the window's whole UTC days before today.
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta
from decimal import Decimal
from typing import Any

import sqlalchemy as sa

from breakeven.collector.alerts.drift import BillDay, BillFigures
from breakeven.collector.alerts.rules import (
    ClassFigures,
    IngestFigures,
    Inputs,
    PoolFigures,
    SpendGroup,
    UnpricedFigures,
)
from breakeven.collector.config.alerts import (
    CLASS_PAST_BREAKEVEN,
    INGEST_UNHEALTHY,
    KINDS,
    LEDGER_DRIFT,
    POOL_BELOW_BREAKEVEN,
    SPEND_DRIFT,
    UNPRICED_TRAFFIC,
    Rule,
)
from breakeven.collector.config.reconcile import ReconcileConfig
from breakeven.collector.price.breakeven import pool_candidates, size_pool
from breakeven.collector.price.config import PricingConfig
from breakeven.collector.price.fx import USD
from breakeven.collector.price.money import ZERO
from breakeven.collector.price.periods import month_start, next_month, seconds_between, utc
from breakeven.collector.records import POOL, UNPRICED
from breakeven.collector.reports.currency import Converter
from breakeven.collector.reports.pools import pool_figures as money_pool_figures  # the figures /api/v1/pools shows
from breakeven.collector.reports.reconciliation import reconcile
from breakeven.collector.store import queries
from breakeven.collector.store import spend as ledger
from breakeven.collector.store.bills import fetch_statuses
from breakeven.collector.store.schema import calls

log = logging.getLogger("breakeven.alerts")
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
UNKNOWN_POOL = "unknown_pool"


# ----------------------------------------------------------------------------- figures


def pool_figures(conn: sa.Connection, pricing: PricingConfig, since: datetime, until: datetime) -> list[PoolFigures]:
    """Every configured pool over [since, until): cost, utilization, break-even, what buying would have cost."""
    if not pricing.pools:
        return []
    out = []
    for f in money_pool_figures(conn, pricing, since, until, ()):
        period, be, pool = f.period, f.break_even, f.pool
        out.append(
            PoolFigures(
                pool=pool.name,
                alternative=f"{pool.alternative.provider}/{pool.alternative.model}",
                calls=period.calls,
                tokens=period.usage.total,
                utilization=period.utilization,
                break_even_utilization=be.break_even_utilization,
                cost_usd=period.cost_usd,
                alternative_usd=be.alternative_usd,
                idle_usd=period.idle_usd,
                cost_per_million_usd=period.cost_per_million_usd,
                reason=be.reason,
            )
        )
    return out


def class_figures(
    conn: sa.Connection,
    pricing: PricingConfig,
    since: datetime,
    until: datetime,
    backend_classes: Sequence[str] = ("frontier", "managed"),
) -> list[ClassFigures]:
    """Per-token traffic classes (service x provider x model) over the window, projected to `until`'s month.

    The projection is the window's run rate times the month's length; the self-hosted cost is
    the cheapest candidate (or configured pool's box) sized for the projected tokens.
    """
    result = ledger.spend(
        conn,
        pricing,
        since,
        until,
        ("backend_class", "service", "provider", "model"),
        where=[calls.c.backend_class.in_(list(backend_classes))],
    )
    window = seconds_between(since, until)
    month = month_start(until)
    scale = seconds_between(month, next_month(month)) / window if window else ZERO
    candidates = (*pricing.candidates, *pool_candidates(pricing.pools))
    out = []
    for row in result.rows:
        backend_class, service, provider, model = row.key
        if not row.cost_usd:
            continue  # nothing of it could be priced: nothing to project
        spend_usd = ledger.days_of(row.cost_usd)
        projected_in = row.usage.total_input * scale
        projected_out = row.usage.output * scale
        wanted = (model or "").lower()
        fitting = [c for c in candidates if not c.models or wanted in {m.lower() for m in c.models}]
        sized = [size_pool(c, projected_in, projected_out, until) for c in fitting] if scale else []
        cheapest = min(sized, key=lambda s: s.cost_usd, default=None)
        out.append(
            ClassFigures(
                service=service,
                provider=provider,
                model=model,
                backend_class=backend_class,
                spend_usd=spend_usd,
                projected_monthly_usd=spend_usd * scale,
                self_hosted_monthly_usd=None if cheapest is None else cheapest.cost_usd,
                self_hosted_option=None if cheapest is None else f"{cheapest.boxes} x {cheapest.candidate}",
            )
        )
    return out


def spend_by(
    conn: sa.Connection, pricing: PricingConfig, dimension: str, since: datetime, until: datetime
) -> dict[str | None, Decimal]:
    """Spend (per-token plus allocated pool cost) per service, team or provider over [since, until)."""
    result = ledger.spend(conn, pricing, since, until, (dimension,))
    return {row.key[0]: ledger.days_of(row.cost_usd) for row in result.rows if row.cost_usd}


def spend_groups(
    conn: sa.Connection, pricing: PricingConfig, dimension: str, now: datetime, window: timedelta, baseline: timedelta
) -> list[SpendGroup]:
    """Each group's spend in the window and its average per window-length over the baseline before it."""
    current = spend_by(conn, pricing, dimension, now - window, now)
    before = spend_by(conn, pricing, dimension, now - window - baseline, now - window)
    per_window = Decimal(window.total_seconds()) / Decimal(baseline.total_seconds())
    return [
        SpendGroup(value, current.get(value, ZERO), before.get(value, ZERO) * per_window)
        for value in sorted(current.keys() | before.keys(), key=lambda v: (v is None, v or ""))
    ]


def unpriced_figures(conn: sa.Connection, pricing: PricingConfig, since: datetime, until: datetime) -> UnpricedFigures:
    """Calls stored unpriced over [since, until) (and pool calls whose pool is gone), by reason and model."""
    model = sa.func.coalesce(calls.c.response_model, calls.c.request_model)
    query = (
        sa.select(calls.c.price_status, calls.c.pool, calls.c.unpriced_reason, calls.c.provider, model, sa.func.count())
        .where(
            calls.c.start_time >= since,
            calls.c.start_time < until,
            calls.c.price_status.in_([UNPRICED, POOL]),
        )
        .group_by(calls.c.price_status, calls.c.pool, calls.c.unpriced_reason, calls.c.provider, model)
    )
    pools = {p.name for p in pricing.pools}
    reasons: dict[str, int] = {}
    models: dict[str, int] = {}
    for status, pool, reason, provider, model_name, n in conn.execute(query):
        if status == POOL:
            if pool in pools:
                continue
            reason = UNKNOWN_POOL
        reasons[reason or "unknown"] = reasons.get(reason or "unknown", 0) + n
        name = f"{provider or '?'}/{model_name or '?'}"
        models[name] = models.get(name, 0) + n
    return UnpricedFigures(
        calls=sum(reasons.values()),
        by_reason=tuple(sorted(reasons.items())),
        by_model=tuple(sorted(models.items(), key=lambda kv: (-kv[1], kv[0]))),
    )


def last_calls(conn: sa.Connection, since: datetime, limit: int = 1000) -> dict[str, datetime]:
    """Each service's latest call start among the calls since `since` (the busiest `limit` services)."""
    last = sa.func.max(calls.c.start_time)
    query = (
        sa.select(calls.c.service, last)
        .where(calls.c.start_time >= since, calls.c.service.is_not(None))
        .group_by(calls.c.service)
        .order_by(sa.func.count().desc())
        .limit(limit)
    )
    return {service: utc(at) for service, at in conn.execute(query)}


def silent_services(
    conn: sa.Connection, now: datetime, window: timedelta, baseline: timedelta
) -> tuple[tuple[str, datetime], ...]:
    """Services that called in the baseline before the window and not since."""
    found = last_calls(conn, now - window - baseline)
    return tuple(sorted((s, at) for s, at in found.items() if at < now - window))


def bill_days(
    conn: sa.Connection, pricing: PricingConfig, config: ReconcileConfig, now: datetime, window: timedelta
) -> BillFigures:
    """Each source's bill per UTC day beside the ledger, in USD, over the whole days from
    `now - window`'s up to today (today's bill is never final), with each source's last success."""
    first, last = (now - window).astimezone(UTC).date(), now.astimezone(UTC).date()
    if not config.sources or first >= last:
        return BillFigures(now)
    since, until = (datetime.combine(d, time(0), UTC) for d in (first, last))
    found = reconcile(conn, pricing, config, Converter(pricing.fx, USD), since, until, ("source", "day"))
    fetched = {name: status.succeeded_at for name, status in fetch_statuses(conn).items()}
    days = []
    for row in found.rows:
        source, day = row.key
        at = fetched.get(source)
        days.append(
            BillDay(
                source=source,
                day=day,
                ledger_usd=row.ledger.cost,
                billed_usd=row.billed.cost,
                ledger_tokens=row.ledger.usage.total,
                billed_tokens=row.billed.usage.total,
                coverage=row.coverage,
                delta_usd=row.delta,
                delta_percent=row.delta_percent,
                cause=row.causes[0].words if row.causes else None,
                fetched_at=None if at is None else utc(at),
            )
        )
    return BillFigures(now, tuple(days))


@dataclass(frozen=True, slots=True)
class SpendTotal:
    """All-time calls and spend of one backend class x provider (USD; pool calls at their allocated share)."""

    backend_class: str
    provider: str | None
    calls: int
    unpriced_calls: int
    cost_usd: Decimal


def spend_totals(conn: sa.Connection, pricing: PricingConfig, now: datetime) -> list[SpendTotal]:
    """Calls and spend since the first call, by backend class and provider."""
    first = conn.execute(sa.select(sa.func.min(calls.c.start_time))).scalar()
    if first is None:
        return []
    since = utc(first).replace(hour=0, minute=0, second=0, microsecond=0)
    result = ledger.spend(conn, pricing, since, now, ("backend_class", "provider"))
    return [
        SpendTotal(row.key[0], row.key[1], row.calls, row.unpriced_calls, ledger.days_of(row.cost_usd))
        for row in result.rows
    ]


def unpriced_totals(conn: sa.Connection) -> dict[str, int]:
    """All-time unpriced calls by reason."""
    query = (
        sa.select(calls.c.unpriced_reason, sa.func.count())
        .where(calls.c.price_status == UNPRICED)
        .group_by(calls.c.unpriced_reason)
    )
    return {reason or "unknown": n for reason, n in conn.execute(query)}


# ----------------------------------------------------------------------------- ingest rates


class IngestSamples:
    """Cumulative reject and refusal counts sampled over time: rates over any recent window.

    Rejects live in the database (every replica's); refusals (exports answered 503 because
    the commit failed) in this process. After a restart the rate needs a window's worth of
    samples again: until then it covers what was seen (and nothing at the first sample).
    """

    def __init__(self, refused: Callable[[], int], keep: timedelta = timedelta(days=1)) -> None:
        self._refused = refused
        self._keep = keep
        self._samples: deque[tuple[datetime, int, int]] = deque(maxlen=100_000)

    def sample(self, conn: sa.Connection, now: datetime) -> None:
        """Record the counters as they are now."""
        rejected = int(queries.ingest_totals(conn)["rejected_total"])
        self._samples.append((now, rejected, self._refused()))
        while self._samples and self._samples[0][0] < now - self._keep:
            self._samples.popleft()

    def over(self, window: timedelta, now: datetime) -> tuple[Decimal, int, int]:
        """(seconds covered, rejected, refused) over the window ending at the latest sample."""
        if not self._samples:
            return ZERO, 0, 0
        latest = self._samples[-1]
        first = next((s for s in self._samples if s[0] >= now - window), latest)
        seconds = Decimal((latest[0] - first[0]).total_seconds())
        return seconds, max(0, latest[1] - first[1]), max(0, latest[2] - first[2])


# ----------------------------------------------------------------------------- per rule


def _shared_key(rule: Rule) -> tuple[Any, ...]:
    """Rules with equal keys read the same figures."""
    if rule.kind == CLASS_PAST_BREAKEVEN:
        return (rule.kind, rule.window, rule.backend_classes)
    if rule.kind in (SPEND_DRIFT, INGEST_UNHEALTHY):
        return (rule.kind, rule.group_by if rule.kind == SPEND_DRIFT else "", rule.window, rule.baseline)
    return (rule.kind, rule.window)


def _figures(
    conn: sa.Connection, pricing: PricingConfig, rule: Rule, now: datetime, reconcile_config: ReconcileConfig
) -> Any:
    since = now - rule.window
    if rule.kind == POOL_BELOW_BREAKEVEN:
        return pool_figures(conn, pricing, since, now)
    if rule.kind == CLASS_PAST_BREAKEVEN:
        return class_figures(conn, pricing, since, now, rule.backend_classes)
    if rule.kind == SPEND_DRIFT:
        return spend_groups(conn, pricing, rule.group_by, now, rule.window, rule.baseline)
    if rule.kind == UNPRICED_TRAFFIC:
        return unpriced_figures(conn, pricing, since, now)
    if rule.kind == INGEST_UNHEALTHY:
        return silent_services(conn, now, rule.window, rule.baseline)
    if rule.kind == LEDGER_DRIFT:
        return bill_days(conn, pricing, reconcile_config, now, rule.window)
    raise ValueError(f"unknown rule kind {rule.kind!r}")


def rule_inputs(
    engine: sa.Engine,
    pricing: PricingConfig,
    rules: Iterable[Rule],
    now: datetime,
    samples: IngestSamples | None = None,
    reconcile_config: ReconcileConfig | None = None,
) -> tuple[Inputs, list[str]]:
    """Each rule's inputs at `now`, and the names of rules whose inputs could not be read.

    Rules with the same kind and window share one computation. A failure leaves that rule
    out of Inputs (it keeps its alerts as they are) and is logged, never raised.
    """
    memo: dict[tuple[Any, ...], Any] = {}
    by_kind: dict[str, dict[str, Any]] = {kind: {} for kind in KINDS}
    failed: list[str] = []
    for rule in rules:
        key = _shared_key(rule)
        try:
            if key not in memo:
                with engine.connect() as conn:
                    memo[key] = _figures(conn, pricing, rule, now, reconcile_config or ReconcileConfig())
        except Exception as exc:
            log.warning("alert rule %s: cannot read its inputs: %s: %s", rule.name, exc.__class__.__name__, exc)
            failed.append(rule.name)
            continue
        figures = memo[key]
        if rule.kind == INGEST_UNHEALTHY:
            seconds, rejected, refused = samples.over(rule.window, now) if samples else (ZERO, 0, 0)
            figures = IngestFigures(seconds, rejected, refused, figures)
        by_kind[rule.kind][rule.name] = figures
    inputs = Inputs(
        pools=by_kind[POOL_BELOW_BREAKEVEN],
        classes=by_kind[CLASS_PAST_BREAKEVEN],
        spend=by_kind[SPEND_DRIFT],
        unpriced=by_kind[UNPRICED_TRAFFIC],
        ingest=by_kind[INGEST_UNHEALTHY],
        bills=by_kind[LEDGER_DRIFT],
    )
    return inputs, failed
