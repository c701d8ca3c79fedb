"""Alert rules, pure: aggregates and config in, alert states and notifications out.

evaluate(rules, inputs, previous, now) does two things:

1. each rule turns its inputs into conditions, one per alert instance that holds now
   (a pool under break-even, a service gone silent ...). A rule whose inputs are missing
   (the database did not answer) is skipped: its alerts keep their state, never resolve
   for lack of data;
2. a state machine per instance (Prometheus' own): a condition that starts holding is
   `pending`; once it has held for the rule's `for` it is `firing` and notified; while it
   keeps firing it is notified again every `repeat_interval`; when it stops holding it is
   `resolved` and notified (a pending one that stops holding is dropped, unnotified).
   Alerts of a rule that is no longer configured resolve.

Nothing here reads a clock or a database: `now` and the inputs are arguments, so the
same call gives the same answer (tests/alerts/test_rules.py is table-driven over it).
A Rule and the kinds of rule are the config's (collector/config/alerts.py); a Condition and
the text helpers are conditions.py's, the ledger_drift kind is drift.py's.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from decimal import Decimal

from breakeven.collector.alerts.conditions import Condition, duration_text, money, percent, ratio, usd
from breakeven.collector.alerts.drift import BillFigures, ledger_drifting
from breakeven.collector.config.alerts import (
    CLASS_PAST_BREAKEVEN,
    INGEST_UNHEALTHY,
    LEDGER_DRIFT,
    POOL_BELOW_BREAKEVEN,
    SPEND_DRIFT,
    UNPRICED_TRAFFIC,
    Rule,
)
from breakeven.collector.price.money import HUNDRED, ZERO

PENDING = "pending"
FIRING = "firing"
RESOLVED = "resolved"
# Notification events; history also records PENDING and CLEARED (pending that stopped holding).
REPEAT = "repeat"
CLEARED = "cleared"


# ----------------------------------------------------------------------------- inputs


@dataclass(frozen=True, slots=True)
class PoolFigures:
    """A pool over a trailing window: what it cost, what buying would have cost, and break-even."""

    pool: str
    alternative: str  # "provider/model"
    calls: int
    tokens: int
    utilization: Decimal
    break_even_utilization: Decimal | None  # None: no traffic, alternative unpriced, or it never breaks even
    cost_usd: Decimal  # fixed + variable over the window
    alternative_usd: Decimal | None  # None: the alternative could not price the traffic
    idle_usd: Decimal
    cost_per_million_usd: Decimal | None
    reason: str | None = None  # why break_even_utilization is None


@dataclass(frozen=True, slots=True)
class ClassFigures:
    """A traffic class (service x provider x model) bought per token, projected to a month."""

    service: str | None
    provider: str | None
    model: str | None
    backend_class: str
    spend_usd: Decimal  # over the window
    projected_monthly_usd: Decimal  # window run rate x the month's length
    self_hosted_monthly_usd: Decimal | None  # the cheapest pool that could serve it; None: no candidate fits
    self_hosted_option: str | None = None  # "3 x h100-rented"


@dataclass(frozen=True, slots=True)
class SpendGroup:
    """One service, team or provider: spend in the window, and its baseline for a window as long."""

    value: str | None
    current_usd: Decimal
    baseline_usd: Decimal  # average spend per window-length over the baseline period


@dataclass(frozen=True, slots=True)
class UnpricedFigures:
    """Calls stored unpriced in the window, by reason and by provider/model."""

    calls: int
    by_reason: tuple[tuple[str, int], ...] = ()
    by_model: tuple[tuple[str, int], ...] = ()  # "provider/model", most first


@dataclass(frozen=True, slots=True)
class IngestFigures:
    """Ingest over the window (as much of it as was observed), and services gone silent."""

    seconds: Decimal  # how much of the window the counters cover (0: no rate yet)
    rejected: int  # spans rejected as unusable
    refused: int  # exports refused because the commit failed (503)
    silent_services: tuple[tuple[str, datetime], ...] = ()  # (service, last call) for services silent in the window


@dataclass(frozen=True)
class Inputs:
    """Each rule's inputs by rule name; a rule missing from its kind's map is not evaluated."""

    pools: Mapping[str, Sequence[PoolFigures]] = field(default_factory=dict)
    classes: Mapping[str, Sequence[ClassFigures]] = field(default_factory=dict)
    spend: Mapping[str, Sequence[SpendGroup]] = field(default_factory=dict)
    unpriced: Mapping[str, UnpricedFigures] = field(default_factory=dict)
    ingest: Mapping[str, IngestFigures] = field(default_factory=dict)
    bills: Mapping[str, BillFigures] = field(default_factory=dict)


# ----------------------------------------------------------------------------- outputs


@dataclass(frozen=True, slots=True)
class AlertState:
    """One alert instance's state; persisted, so a restart neither re-pages nor forgets."""

    fingerprint: str
    rule: str
    state: str  # PENDING, FIRING or RESOLVED
    severity: str
    labels: Mapping[str, str]
    annotations: Mapping[str, str]
    active_since: datetime  # when the condition started holding (this episode)
    updated_at: datetime  # last evaluation that saw it
    fired_at: datetime | None = None
    resolved_at: datetime | None = None
    last_notified_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class Notification:
    """Tell people: an alert started firing, fires still (repeat), or resolved."""

    event: str  # FIRING, REPEAT or RESOLVED
    alert: AlertState


@dataclass(frozen=True, slots=True)
class HistoryEvent:
    """A transition, for the history: pending, firing, resolved or cleared."""

    at: datetime
    event: str
    alert: AlertState


@dataclass(frozen=True)
class Evaluation:
    """What one evaluation decided."""

    states: dict[str, AlertState]
    notifications: list[Notification]
    history: list[HistoryEvent]

    def changed(self, previous: Mapping[str, AlertState]) -> list[AlertState]:
        """States that differ from before (to persist)."""
        return [s for f, s in self.states.items() if previous.get(f) != s]


# ----------------------------------------------------------------------------- evaluation


def evaluate(rules: Sequence[Rule], inputs: Inputs, previous: Mapping[str, AlertState], now: datetime) -> Evaluation:
    """New alert states, notifications and history events for `now`."""
    states: dict[str, AlertState] = dict(previous)
    notes: list[Notification] = []
    history: list[HistoryEvent] = []
    by_rule: dict[str, list[AlertState]] = {}
    for state in previous.values():
        by_rule.setdefault(state.rule, []).append(state)
    for rule in rules:
        conditions = conditions_of(rule, inputs)
        if conditions is None:
            continue  # no data: keep what we had
        holding = {fingerprint(rule.name, c.labels): c for c in conditions}
        for fp, condition in holding.items():
            new = _holding(rule, fp, condition, previous.get(fp), now, notes, history)
            states[fp] = new
        for old in by_rule.get(rule.name, ()):
            if old.fingerprint not in holding:
                _stopped(old, now, states, notes, history, "")
    configured = {rule.name for rule in rules}
    for name, olds in by_rule.items():
        if name not in configured:
            for old in olds:
                _stopped(old, now, states, notes, history, "the rule is no longer configured")
    return Evaluation(states, notes, history)


def _holding(
    rule: Rule,
    fp: str,
    condition: Condition,
    old: AlertState | None,
    now: datetime,
    notes: list[Notification],
    history: list[HistoryEvent],
) -> AlertState:
    labels = {"alertname": rule.name, "severity": rule.severity, **dict(rule.labels), **dict(condition.labels)}
    annotations = {"summary": condition.summary, **dict(condition.details)}
    if old is None or old.state == RESOLVED:
        state = AlertState(fp, rule.name, PENDING, rule.severity, labels, annotations, now, now)
        if rule.for_ > timedelta(0):
            history.append(HistoryEvent(now, PENDING, state))
            return state
    else:
        state = replace(old, severity=rule.severity, labels=labels, annotations=annotations, updated_at=now)
    if state.state == PENDING and now - state.active_since >= rule.for_:
        state = replace(state, state=FIRING, fired_at=now, resolved_at=None, last_notified_at=now)
        notes.append(Notification(FIRING, state))
        history.append(HistoryEvent(now, FIRING, state))
    elif state.state == FIRING and (
        state.last_notified_at is None or now - state.last_notified_at >= rule.repeat_interval
    ):
        state = replace(state, last_notified_at=now)
        notes.append(Notification(REPEAT, state))
    return state


def _stopped(
    old: AlertState,
    now: datetime,
    states: dict[str, AlertState],
    notes: list[Notification],
    history: list[HistoryEvent],
    why: str,
) -> None:
    if old.state == PENDING:
        del states[old.fingerprint]
        history.append(HistoryEvent(now, CLEARED, replace(old, updated_at=now)))
    elif old.state == FIRING:
        annotations = dict(old.annotations)
        if why:
            annotations["resolved_because"] = why
        state = replace(old, state=RESOLVED, resolved_at=now, updated_at=now, annotations=annotations)
        states[old.fingerprint] = state
        notes.append(Notification(RESOLVED, state))
        history.append(HistoryEvent(now, RESOLVED, state))


def fingerprint(rule: str, labels: Iterable[tuple[str, str]]) -> str:
    """A stable identity for an alert instance: the rule and its instance labels, Prometheus-style."""
    inner = ",".join(f'{k}="{v}"' for k, v in sorted(labels))
    return f"{rule}{{{inner}}}"


def conditions_of(rule: Rule, inputs: Inputs) -> list[Condition] | None:
    """The instances of a rule that hold, or None when its inputs are missing."""
    if rule.kind == POOL_BELOW_BREAKEVEN:
        pools = inputs.pools.get(rule.name)
        return None if pools is None else pools_below_breakeven(rule, pools)
    if rule.kind == CLASS_PAST_BREAKEVEN:
        classes = inputs.classes.get(rule.name)
        return None if classes is None else classes_past_breakeven(rule, classes)
    if rule.kind == SPEND_DRIFT:
        groups = inputs.spend.get(rule.name)
        return None if groups is None else spend_drifting(rule, groups)
    if rule.kind == UNPRICED_TRAFFIC:
        unpriced = inputs.unpriced.get(rule.name)
        return None if unpriced is None else unpriced_traffic(rule, unpriced)
    if rule.kind == INGEST_UNHEALTHY:
        ingest = inputs.ingest.get(rule.name)
        return None if ingest is None else ingest_unhealthy(rule, ingest)
    if rule.kind == LEDGER_DRIFT:
        bills = inputs.bills.get(rule.name)
        return None if bills is None else ledger_drifting(rule, bills)
    raise ValueError(f"unknown rule kind {rule.kind!r}")


# ----------------------------------------------------------------------------- the six kinds


def pools_below_breakeven(rule: Rule, pools: Sequence[PoolFigures]) -> list[Condition]:
    """Pools whose utilization is under break-even by more than the margin.

    A pool that served nothing in the window is under any break-even (its fixed cost was all
    idle); one whose alternative is never dearer than its variable cost never breaks even.
    A pool whose alternative could not price the traffic cannot be judged and is skipped.
    """
    out = []
    for f in pools:
        if rule.pools and f.pool not in rule.pools:
            continue
        if f.tokens == 0:
            if f.cost_usd <= ZERO:
                continue
            why = f"served no traffic in the last {duration_text(rule.window)}"
        elif f.alternative_usd is None:
            continue
        elif f.break_even_utilization is None:
            why = f"never breaks even: {f.reason or 'buying is always cheaper'}"
        elif f.utilization + rule.margin < f.break_even_utilization:
            why = (
                f"ran at {percent(f.utilization)} utilization over the last {duration_text(rule.window)}, "
                f"under its break-even of {percent(f.break_even_utilization)}"
            )
        else:
            continue
        bought = "unknown" if f.alternative_usd is None else usd(f.alternative_usd)
        summary = (
            f"Pool {f.pool} {why}: buying the same traffic from {f.alternative} would have cost {bought} "
            f"against {usd(f.cost_usd)}; idle spend {usd(f.idle_usd)}."
        )
        details = (
            ("utilization", ratio(f.utilization)),
            ("break_even_utilization", "" if f.break_even_utilization is None else ratio(f.break_even_utilization)),
            ("pool_cost_usd", money(f.cost_usd)),
            ("alternative_cost_usd", "" if f.alternative_usd is None else money(f.alternative_usd)),
            ("idle_usd", money(f.idle_usd)),
            ("alternative", f.alternative),
            ("window", duration_text(rule.window)),
        )
        out.append(Condition((("pool", f.pool),), summary, details))
    return out


def classes_past_breakeven(rule: Rule, classes: Sequence[ClassFigures]) -> list[Condition]:
    """Per-token traffic classes whose projected month passes the cost of a pool (or the budget), by the margin."""
    out = []
    factor = 1 + rule.margin / HUNDRED
    for c in classes:
        if c.backend_class not in rule.backend_classes:
            continue
        threshold = rule.budget_usd if rule.budget_usd is not None else c.self_hosted_monthly_usd
        if threshold is None or c.projected_monthly_usd <= threshold * factor:
            continue
        name = f"{c.service or 'unknown service'} x {c.provider or '?'}/{c.model or '?'}"
        versus = (
            f"its budget of {usd(threshold)}"
            if rule.budget_usd is not None
            else f"{usd(threshold)} self-hosted ({c.self_hosted_option})"
        )
        summary = (
            f"Traffic class {name} is on course to spend {usd(c.projected_monthly_usd)} this month "
            f"(run rate of the last {duration_text(rule.window)}), past {versus}."
        )
        details = (
            ("projected_monthly_usd", money(c.projected_monthly_usd)),
            ("window_spend_usd", money(c.spend_usd)),
            ("threshold_usd", money(threshold)),
            ("self_hosted_option", c.self_hosted_option or ""),
            ("window", duration_text(rule.window)),
        )
        labels = (("service", c.service or ""), ("provider", c.provider or ""), ("model", c.model or ""))
        out.append(Condition(labels, summary, details))
    return out


def spend_drifting(rule: Rule, groups: Sequence[SpendGroup]) -> list[Condition]:
    """Groups whose spend in the window grew more than margin percent over their baseline."""
    out = []
    for g in groups:
        if g.baseline_usd <= ZERO or g.current_usd < rule.min_spend_usd:
            continue  # no baseline to drift from, or too little to matter
        growth = (g.current_usd - g.baseline_usd) * HUNDRED / g.baseline_usd
        if growth <= rule.margin:
            continue
        value = g.value or ""
        summary = (
            f"Spend of {rule.group_by} {value or '(none)'} is up {growth:.0f}%: {usd(g.current_usd)} in the last "
            f"{duration_text(rule.window)} against {usd(g.baseline_usd)} on average over the "
            f"{duration_text(rule.baseline)} before."
        )
        details = (
            ("current_usd", money(g.current_usd)),
            ("baseline_usd", money(g.baseline_usd)),
            ("growth_percent", f"{growth:.1f}"),
            ("window", duration_text(rule.window)),
        )
        out.append(Condition(((rule.group_by, value),), summary, details))
    return out


def unpriced_traffic(rule: Rule, figures: UnpricedFigures) -> list[Condition]:
    """One instance when more calls than the margin arrived without a price."""
    if figures.calls <= rule.margin:
        return []
    models = ", ".join(f"{name} ({n})" for name, n in figures.by_model[:5])
    reasons = ", ".join(f"{reason} {n}" for reason, n in figures.by_reason)
    summary = (
        f"{figures.calls} call(s) in the last {duration_text(rule.window)} could not be priced ({reasons}): {models}."
    )
    return [Condition((), summary, (("unpriced_calls", str(figures.calls)), ("window", duration_text(rule.window))))]


def ingest_unhealthy(rule: Rule, figures: IngestFigures) -> list[Condition]:
    """Rejected or refused spans above margin per minute; services that usually send and went silent."""
    out = []
    if figures.seconds > ZERO:
        per_minute = Decimal(figures.rejected + figures.refused) * 60 / figures.seconds
        if per_minute > rule.margin:
            summary = (
                f"Ingest is failing: {figures.rejected} span(s) rejected and {figures.refused} export(s) refused "
                f"in the last {duration_text(timedelta(seconds=float(figures.seconds)))} ({per_minute:.1f}/min)."
            )
            details = (
                ("rejected", str(figures.rejected)),
                ("refused", str(figures.refused)),
                ("per_minute", f"{per_minute:.2f}"),
            )
            out.append(Condition((("reason", "rejects"),), summary, details))
    for service, last in figures.silent_services:
        summary = (
            f"Service {service} sent no LLM calls in the last {duration_text(rule.window)} "
            f"(last one at {last.isoformat()}), after calling within the {duration_text(rule.baseline)} before."
        )
        out.append(Condition((("reason", "silent"), ("service", service)), summary, (("last_call", last.isoformat()),)))
    return out
