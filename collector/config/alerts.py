"""The `[alerts]` section of the config file: rules, schedule and where notifications go.

Every error names the exact key (`alerts.rules[1].window: ...`, indexes from 0); unknown
keys are errors, as everywhere in the config. Durations are strings such as "90s", "15m",
"1h30m", "7d" (also "500ms"), or a number of seconds.

The Rule record and the rule kinds' vocabulary live here too: the config owns the shape
of a configured rule, and the evaluator (collector/alerts/rules.py), which sits above
the config, reads rules of that shape.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import timedelta
from decimal import Decimal
from typing import Any

from breakeven.collector.config import checks
from breakeven.collector.config.reconcile import ReconcileConfig
from breakeven.collector.price.money import ZERO

# The kinds of rule, their severities and what spend_drift may group by.
POOL_BELOW_BREAKEVEN = "pool_below_breakeven"
CLASS_PAST_BREAKEVEN = "class_past_breakeven"
SPEND_DRIFT = "spend_drift"
UNPRICED_TRAFFIC = "unpriced_traffic"
INGEST_UNHEALTHY = "ingest_unhealthy"
LEDGER_DRIFT = "ledger_drift"
KINDS = (POOL_BELOW_BREAKEVEN, CLASS_PAST_BREAKEVEN, SPEND_DRIFT, UNPRICED_TRAFFIC, INGEST_UNHEALTHY, LEDGER_DRIFT)
SEVERITIES = ("critical", "warning", "info")
DRIFT_DIMENSIONS = ("service", "team", "provider")

PAGERDUTY_EVENTS_URL = "https://events.pagerduty.com/v2/enqueue"
_TOP_KEYS = (
    "interval",
    "dashboard_url",
    "timeout",
    "retry_backoff",
    "retry_attempts",
    "rules",
    "alertmanager",
    "webhooks",
    "slack",
    "pagerduty",
)
_COMMON_RULE_KEYS = ("name", "kind", "severity", "labels", "window", "margin", "for", "repeat_interval")
_RULE_KEYS = {
    POOL_BELOW_BREAKEVEN: ("pools",),
    CLASS_PAST_BREAKEVEN: ("budget", "backend_classes"),
    SPEND_DRIFT: ("group_by", "baseline", "min_spend"),
    UNPRICED_TRAFFIC: (),
    INGEST_UNHEALTHY: ("baseline",),
    LEDGER_DRIFT: ("sources", "min_coverage", "min_delta"),
}
# Per kind: the margin, baseline, window and repeat interval when the rule does not say (docs/alerts.md).
_DEFAULT_MARGIN = {SPEND_DRIFT: Decimal(50), LEDGER_DRIFT: Decimal(5)}
_DEFAULT_BASELINE = {SPEND_DRIFT: timedelta(days=7), INGEST_UNHEALTHY: timedelta(days=1)}
# A bill is judged by the day, days after the fact: the last week's days, one notice a day.
_DEFAULT_WINDOW = {LEDGER_DRIFT: "7d"}
_DEFAULT_REPEAT = {LEDGER_DRIFT: "1d"}
# Prometheus: an alert name is a metric name, so the shipped rules can carry the same names.
_NAME = re.compile(r"^[a-zA-Z_:][a-zA-Z0-9_:]*$")
_LABEL = re.compile(r"^[a-zA-Z_][a-zA-Z0-9_]*$")
_RESERVED_LABELS = ("alertname", "severity")
_DURATION_PART = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h|d|w)")
_UNIT_SECONDS = {"ms": Decimal("0.001"), "s": Decimal(1), "m": Decimal(60), "h": Decimal(3600), "d": Decimal(86400)}
_UNIT_SECONDS["w"] = _UNIT_SECONDS["d"] * 7


@dataclass(frozen=True, slots=True)
class Rule:
    """One configured rule. margin's unit depends on the kind (docs/alerts.md):

    pool_below_breakeven: utilization points (0.05: five points under break-even);
    class_past_breakeven, spend_drift and ledger_drift: percent; unpriced_traffic: calls
    tolerated in the window; ingest_unhealthy: rejected or refused spans per minute tolerated.
    """

    name: str
    kind: str
    severity: str = "warning"
    labels: tuple[tuple[str, str], ...] = ()  # sorted (name, value) pairs: alerts.rules.Labels
    window: timedelta = timedelta(hours=1)
    margin: Decimal = ZERO
    for_: timedelta = timedelta(0)
    repeat_interval: timedelta = timedelta(hours=4)
    pools: tuple[str, ...] = ()  # pool_below_breakeven: only these pools (empty: every pool)
    budget_usd: Decimal | None = None  # class_past_breakeven: a monthly budget per class instead of the pool cost
    backend_classes: tuple[str, ...] = ("frontier", "managed")  # class_past_breakeven
    group_by: str = "provider"  # spend_drift: service, team or provider
    baseline: timedelta = timedelta(days=7)  # spend_drift: trailing baseline; ingest_unhealthy: "usually sends"
    min_spend_usd: Decimal = ZERO  # spend_drift: ignore groups spending less than this in the window
    sources: tuple[str, ...] = ()  # ledger_drift: only these [[reconcile.sources]] (empty: every source)
    min_coverage: Decimal = Decimal("0.95")  # ledger_drift: ledger tokens / billed tokens below this fire
    min_delta_usd: Decimal = Decimal(1)  # ledger_drift: a day whose bill and ledger differ by less never fires


@dataclass(frozen=True, slots=True)
class Webhook:
    """A generic JSON webhook; with a secret, each body is signed (X-Breakeven-Signature)."""

    url: str
    secret: str | None = None


@dataclass(frozen=True)
class AlertsConfig:
    """Everything alerting reads from the config. The default has no rules and sends nowhere."""

    rules: tuple[Rule, ...] = ()
    interval: timedelta = timedelta(minutes=1)
    dashboard_url: str | None = None  # generatorURL base; None: http://<host>:<http_port>
    timeout: timedelta = timedelta(seconds=10)  # one delivery attempt
    retry_backoff: timedelta = timedelta(seconds=1)  # first retry; doubles up to MAX_BACKOFF
    retry_attempts: int = 8
    alertmanager_url: str | None = None
    webhooks: tuple[Webhook, ...] = ()
    slack_webhook_url: str | None = None
    pagerduty_routing_key: str | None = None
    pagerduty_url: str = PAGERDUTY_EVENTS_URL


def parse_alerts(raw: Any) -> AlertsConfig:
    """AlertsConfig from the raw `[alerts]` table; SettingsError naming the first bad key."""
    if isinstance(raw, AlertsConfig):
        return raw
    table = checks.table(raw, "alerts", _TOP_KEYS)
    rules = tuple(checks.tables(table, "rules", "alerts", _rule))
    seen: dict[str, int] = {}
    for i, rule in enumerate(rules):
        if rule.name in seen:
            checks.fail(f"alerts.rules[{i}].name: {rule.name!r} is already the name of alerts.rules[{seen[rule.name]}]")
        seen[rule.name] = i
    interval = duration(table.get("interval", "1m"), "alerts.interval")
    if interval <= timedelta(0):
        checks.fail("alerts.interval: must be positive")
    webhooks = tuple(checks.tables(table, "webhooks", "alerts", _webhook))
    alertmanager = checks.table(table.get("alertmanager", {}), "alerts.alertmanager", ("url",))
    slack = checks.table(table.get("slack", {}), "alerts.slack", ("webhook_url",))
    pagerduty = checks.table(table.get("pagerduty", {}), "alerts.pagerduty", ("routing_key", "url"))
    if "alertmanager" in table:
        checks.required(alertmanager, "url", "alerts.alertmanager")
    if "slack" in table:
        checks.required(slack, "webhook_url", "alerts.slack")
    if "pagerduty" in table:
        checks.required(pagerduty, "routing_key", "alerts.pagerduty")
    timeout = duration(table.get("timeout", "10s"), "alerts.timeout")
    backoff = duration(table.get("retry_backoff", "1s"), "alerts.retry_backoff")
    for name, value in (("timeout", timeout), ("retry_backoff", backoff)):
        if value <= timedelta(0):
            checks.fail(f"alerts.{name}: must be positive")
    attempts = checks.integer(table.get("retry_attempts", 8), "alerts.retry_attempts", minimum=1, one_message=True)
    return AlertsConfig(
        rules=rules,
        interval=interval,
        dashboard_url=checks.http_url(table["dashboard_url"], "alerts.dashboard_url", base=True)
        if "dashboard_url" in table
        else None,
        timeout=timeout,
        retry_backoff=backoff,
        retry_attempts=attempts,
        alertmanager_url=checks.http_url(alertmanager["url"], "alerts.alertmanager.url", base=True)
        if "url" in alertmanager
        else None,
        webhooks=webhooks,
        slack_webhook_url=checks.http_url(slack["webhook_url"], "alerts.slack.webhook_url") if slack else None,
        pagerduty_routing_key=checks.text(pagerduty["routing_key"], "alerts.pagerduty.routing_key")
        if pagerduty
        else None,
        pagerduty_url=checks.http_url(pagerduty.get("url", PAGERDUTY_EVENTS_URL), "alerts.pagerduty.url"),
    )


def _rule(raw: Any, key: str) -> Rule:
    """The rule configured at key (alerts.rules[i]); SettingsError naming its first bad key."""
    kind = checks.table(raw, key, None).get("kind")  # the kind says which keys the rule may have
    if kind not in KINDS:
        checks.fail(f"{key}.kind: one of {', '.join(KINDS)}; got {kind!r}")
    table = checks.table(raw, key, _COMMON_RULE_KEYS + _RULE_KEYS[kind])
    name = _rule_name(table, key)
    severity = table.get("severity", "warning")
    if severity not in SEVERITIES:
        checks.fail(f"{key}.severity: one of {', '.join(SEVERITIES)}; got {severity!r}")
    labels = _rule_labels(table, key)
    window = duration(table.get("window", _DEFAULT_WINDOW.get(kind, "1h")), f"{key}.window")
    if window <= timedelta(0):
        checks.fail(f"{key}.window: must be positive")
    margin = checks.amount(table.get("margin", _DEFAULT_MARGIN.get(kind, Decimal(0))), f"{key}.margin")
    rule = Rule(
        name=name,
        kind=kind,
        severity=severity,
        labels=tuple(sorted((str(k), str(v).strip()) for k, v in labels.items())),
        window=window,
        margin=margin,
        for_=duration(table.get("for", "0s"), f"{key}.for"),
        repeat_interval=duration(
            table.get("repeat_interval", _DEFAULT_REPEAT.get(kind, "4h")), f"{key}.repeat_interval"
        ),
        baseline=duration(table.get("baseline", _DEFAULT_BASELINE.get(kind, timedelta(days=7))), f"{key}.baseline"),
    )
    if rule.repeat_interval <= timedelta(0):
        checks.fail(f"{key}.repeat_interval: must be positive")
    rule = _with_kind_keys(rule, table, key)
    if rule.baseline <= timedelta(0):
        checks.fail(f"{key}.baseline: must be positive")
    return rule


def _rule_name(table: Mapping[str, Any], key: str) -> str:
    """The rule's name, checked to be a Prometheus alert name (the shipped rules carry the same names)."""
    name = checks.text(table.get("name"), f"{key}.name")
    if not _NAME.match(name):
        checks.fail(
            f"{key}.name: letters, digits and _, not starting with a digit (a Prometheus alert name); got {name!r}"
        )
    return name


def _rule_labels(table: Mapping[str, Any], key: str) -> Mapping[str, Any]:
    """The rule's labels table, each name one a user may set and each value text."""
    labels = checks.table(table.get("labels", {}), f"{key}.labels", None)
    for label, value in labels.items():
        if not _LABEL.match(label) or label in _RESERVED_LABELS:
            checks.fail(
                f"{key}.labels.{label}: not a label name you can set (letters, digits, _; not alertname or severity)"
            )
        checks.text(value, f"{key}.labels.{label}")
    return labels


def _with_kind_keys(rule: Rule, table: Mapping[str, Any], key: str) -> Rule:
    """The rule with the keys only its kind has, checked (and its margin, where the kind bounds it)."""
    if rule.kind == POOL_BELOW_BREAKEVEN:
        pools = table.get("pools", [])
        if not isinstance(pools, list):
            checks.fail(f"{key}.pools: expected a list of pool names")
        rule = replace(rule, pools=tuple(checks.text(p, f"{key}.pools[{i}]") for i, p in enumerate(pools)))
        if rule.margin >= 1:
            checks.fail(f"{key}.margin: utilization points as a ratio below 1 (0.05 is five points), got {rule.margin}")
    elif rule.kind == CLASS_PAST_BREAKEVEN:
        classes = table.get("backend_classes", ["frontier", "managed"])
        if not isinstance(classes, list) or not classes or any(c not in ("frontier", "managed") for c in classes):
            checks.fail(f"{key}.backend_classes: a list of frontier and/or managed; got {classes!r}")
        budget = checks.amount(table["budget"], f"{key}.budget") if "budget" in table else None
        rule = replace(rule, backend_classes=tuple(classes), budget_usd=budget)
    elif rule.kind == SPEND_DRIFT:
        group_by = table.get("group_by", "provider")
        if group_by not in DRIFT_DIMENSIONS:
            checks.fail(f"{key}.group_by: one of {', '.join(DRIFT_DIMENSIONS)}; got {group_by!r}")
        rule = replace(
            rule, group_by=group_by, min_spend_usd=checks.amount(table.get("min_spend", 0), f"{key}.min_spend")
        )
    elif rule.kind == LEDGER_DRIFT:
        rule = _ledger_drift_keys(rule, table, key)
    return rule


def _ledger_drift_keys(rule: Rule, table: Mapping[str, Any], key: str) -> Rule:
    """A ledger_drift rule's sources, coverage floor and smallest delta, checked (its window whole days)."""
    sources = table.get("sources", [])
    if not isinstance(sources, list):
        checks.fail(f"{key}.sources: expected a list of [[reconcile.sources]] names")
    coverage = checks.amount(table.get("min_coverage", rule.min_coverage), f"{key}.min_coverage")
    if coverage > 1:
        checks.fail(f"{key}.min_coverage: a ratio from 0 to 1 (0.95: the ledger saw 95% of the billed tokens)")
    if rule.window < timedelta(days=1) or rule.window % timedelta(days=1):
        checks.fail(f"{key}.window: whole days (a bill is judged by the UTC day), such as 7d; got {rule.window}")
    return replace(
        rule,
        sources=tuple(checks.text(s, f"{key}.sources[{i}]") for i, s in enumerate(sources)),
        min_coverage=coverage,
        min_delta_usd=checks.amount(table.get("min_delta", rule.min_delta_usd), f"{key}.min_delta"),
    )


def check_reconcile(alerts: AlertsConfig, reconcile: ReconcileConfig) -> None:
    """SettingsError when a ledger_drift rule has no bill to read: no [[reconcile.sources]] at all, or
    a `sources` name none of them has. Such a rule could never fire, so it fails loudly at start-up."""
    names = {s.name for s in reconcile.sources}
    for i, rule in enumerate(alerts.rules):
        if rule.kind != LEDGER_DRIFT:
            continue
        if not names:
            checks.fail(
                f"alerts.rules[{i}].kind: ledger_drift sets the ledger beside the bills of [[reconcile.sources]],"
                " and none is configured (docs/reconciliation.md)"
            )
        for j, name in enumerate(rule.sources):
            if name not in names:
                checks.fail(
                    f"alerts.rules[{i}].sources[{j}]: no [[reconcile.sources]] is named {name!r}"
                    f" (configured: {', '.join(sorted(names))})"
                )


def _webhook(raw: Any, key: str) -> Webhook:
    table = checks.table(raw, key, ("url", "secret"))
    checks.required(table, "url", key)
    secret = checks.text(table["secret"], f"{key}.secret") if "secret" in table else None
    return Webhook(checks.http_url(table["url"], f"{key}.url"), secret)


def duration(raw: Any, key: str) -> timedelta:
    """A duration from "90s", "15m", "1h30m", "7d", "500ms" or a number of seconds."""
    if isinstance(raw, timedelta):
        return raw
    if isinstance(raw, bool):
        checks.fail(f"{key}: not a duration: {raw!r}")
    if isinstance(raw, int | float | Decimal):
        seconds = Decimal(str(raw))
    elif isinstance(raw, str) and raw.strip():
        text = raw.strip().replace(" ", "")
        parts = _DURATION_PART.findall(text)
        if "".join(n + u for n, u in parts) != text:
            checks.fail(f"{key}: not a duration (such as 30s, 15m, 1h30m, 7d): {raw!r}")
        seconds = sum((Decimal(n) * _UNIT_SECONDS[u] for n, u in parts), Decimal(0))
    else:
        checks.fail(f"{key}: not a duration (such as 30s, 15m, 1h30m, 7d): {raw!r}")
    if not seconds.is_finite() or seconds < 0:
        checks.fail(f"{key}: a duration cannot be negative: {raw!r}")
    return timedelta(seconds=float(seconds))
