"""The `[alerts]` section of the config file: rules, schedule and where notifications go.

Every error names the exact key (`alerts.rules[1].window: ...`, indexes from 0); unknown
keys are errors, as everywhere in the config. Durations are strings such as "90s", "15m",
"1h30m", "7d" (also "500ms"), or a number of seconds.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import timedelta
from decimal import Decimal, InvalidOperation
from typing import Any, NoReturn
from urllib.parse import urlsplit

from breakeven.collector.alerts.rules import (
    CLASS_PAST_BREAKEVEN,
    DRIFT_DIMENSIONS,
    INGEST_UNHEALTHY,
    KINDS,
    POOL_BELOW_BREAKEVEN,
    SEVERITIES,
    SPEND_DRIFT,
    Rule,
)

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
    "unpriced_traffic": (),
    INGEST_UNHEALTHY: ("baseline",),
}
# Per kind: the margin and baseline when the rule does not say (README, Alerts).
_DEFAULT_MARGIN = {SPEND_DRIFT: Decimal(50)}
_DEFAULT_BASELINE = {SPEND_DRIFT: timedelta(days=7), INGEST_UNHEALTHY: timedelta(days=1)}
# Prometheus: an alert name is a metric name, so the shipped rules can carry the same names.
_NAME = re.compile(r"^[a-zA-Z_:][a-zA-Z0-9_:]*$")
_LABEL = re.compile(r"^[a-zA-Z_][a-zA-Z0-9_]*$")
_RESERVED_LABELS = ("alertname", "severity")
_DURATION_PART = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h|d|w)")
_UNIT_SECONDS = {"ms": Decimal("0.001"), "s": Decimal(1), "m": Decimal(60), "h": Decimal(3600), "d": Decimal(86400)}
_UNIT_SECONDS["w"] = _UNIT_SECONDS["d"] * 7


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


def _fail(message: str) -> NoReturn:
    # Imported here: breakeven.collector.config.settings imports this module to build Settings.
    from breakeven.collector.config.settings import SettingsError

    raise SettingsError(message)


def parse_alerts(raw: Any) -> AlertsConfig:
    """AlertsConfig from the raw `[alerts]` table; SettingsError naming the first bad key."""
    if isinstance(raw, AlertsConfig):
        return raw
    table = _table(raw, "alerts", _TOP_KEYS)
    rules_raw = table.get("rules", [])
    if not isinstance(rules_raw, list):
        _fail("alerts.rules: expected an array of tables ([[alerts.rules]])")
    rules = tuple(_rule(item, f"alerts.rules[{i}]") for i, item in enumerate(rules_raw))
    seen: dict[str, int] = {}
    for i, rule in enumerate(rules):
        if rule.name in seen:
            _fail(f"alerts.rules[{i}].name: {rule.name!r} is already the name of alerts.rules[{seen[rule.name]}]")
        seen[rule.name] = i
    interval = duration(table.get("interval", "1m"), "alerts.interval")
    if interval <= timedelta(0):
        _fail("alerts.interval: must be positive")
    webhooks_raw = table.get("webhooks", [])
    if not isinstance(webhooks_raw, list):
        _fail("alerts.webhooks: expected an array of tables ([[alerts.webhooks]])")
    webhooks = tuple(_webhook(item, f"alerts.webhooks[{i}]") for i, item in enumerate(webhooks_raw))
    alertmanager = _table(table.get("alertmanager", {}), "alerts.alertmanager", ("url",))
    slack = _table(table.get("slack", {}), "alerts.slack", ("webhook_url",))
    pagerduty = _table(table.get("pagerduty", {}), "alerts.pagerduty", ("routing_key", "url"))
    if "alertmanager" in table and "url" not in alertmanager:
        _fail("alerts.alertmanager.url: required")
    if "slack" in table and "webhook_url" not in slack:
        _fail("alerts.slack.webhook_url: required")
    if "pagerduty" in table and "routing_key" not in pagerduty:
        _fail("alerts.pagerduty.routing_key: required")
    timeout = duration(table.get("timeout", "10s"), "alerts.timeout")
    backoff = duration(table.get("retry_backoff", "1s"), "alerts.retry_backoff")
    for name, value in (("timeout", timeout), ("retry_backoff", backoff)):
        if value <= timedelta(0):
            _fail(f"alerts.{name}: must be positive")
    attempts = table.get("retry_attempts", 8)
    if isinstance(attempts, bool) or not isinstance(attempts, int) or attempts < 1:
        _fail(f"alerts.retry_attempts: expected a whole number of at least 1, got {attempts!r}")
    return AlertsConfig(
        rules=rules,
        interval=interval,
        dashboard_url=_url(table["dashboard_url"], "alerts.dashboard_url", base=True)
        if "dashboard_url" in table
        else None,
        timeout=timeout,
        retry_backoff=backoff,
        retry_attempts=attempts,
        alertmanager_url=_url(alertmanager["url"], "alerts.alertmanager.url", base=True)
        if "url" in alertmanager
        else None,
        webhooks=webhooks,
        slack_webhook_url=_url(slack["webhook_url"], "alerts.slack.webhook_url") if slack else None,
        pagerduty_routing_key=_text(pagerduty["routing_key"], "alerts.pagerduty.routing_key") if pagerduty else None,
        pagerduty_url=_url(pagerduty.get("url", PAGERDUTY_EVENTS_URL), "alerts.pagerduty.url"),
    )


def _rule(raw: Any, key: str) -> Rule:
    if not isinstance(raw, Mapping):
        _fail(f"{key}: expected a table")
    kind = raw.get("kind")
    if kind not in KINDS:
        _fail(f"{key}.kind: one of {', '.join(KINDS)}; got {kind!r}")
    table = _table(raw, key, _COMMON_RULE_KEYS + _RULE_KEYS[kind])
    name = _text(table.get("name"), f"{key}.name")
    if not _NAME.match(name):
        _fail(f"{key}.name: letters, digits and _, not starting with a digit (a Prometheus alert name); got {name!r}")
    severity = table.get("severity", "warning")
    if severity not in SEVERITIES:
        _fail(f"{key}.severity: one of {', '.join(SEVERITIES)}; got {severity!r}")
    labels = _table(table.get("labels", {}), f"{key}.labels", None)
    for label, value in labels.items():
        if not _LABEL.match(label) or label in _RESERVED_LABELS:
            _fail(f"{key}.labels.{label}: not a label name you can set (letters, digits, _; not alertname or severity)")
        _text(value, f"{key}.labels.{label}")
    window = duration(table.get("window", "1h"), f"{key}.window")
    if window <= timedelta(0):
        _fail(f"{key}.window: must be positive")
    margin = _number(table.get("margin", _DEFAULT_MARGIN.get(kind, Decimal(0))), f"{key}.margin")
    rule = Rule(
        name=name,
        kind=kind,
        severity=severity,
        labels=tuple(sorted((str(k), str(v).strip()) for k, v in labels.items())),
        window=window,
        margin=margin,
        for_=duration(table.get("for", "0s"), f"{key}.for"),
        repeat_interval=duration(table.get("repeat_interval", "4h"), f"{key}.repeat_interval"),
        baseline=duration(table.get("baseline", _DEFAULT_BASELINE.get(kind, timedelta(days=7))), f"{key}.baseline"),
    )
    if rule.repeat_interval <= timedelta(0):
        _fail(f"{key}.repeat_interval: must be positive")
    if kind == POOL_BELOW_BREAKEVEN:
        pools = table.get("pools", [])
        if not isinstance(pools, list):
            _fail(f"{key}.pools: expected a list of pool names")
        rule = replace(rule, pools=tuple(_text(p, f"{key}.pools[{i}]") for i, p in enumerate(pools)))
        if margin >= 1:
            _fail(f"{key}.margin: utilization points as a ratio below 1 (0.05 is five points), got {margin}")
    elif kind == CLASS_PAST_BREAKEVEN:
        classes = table.get("backend_classes", ["frontier", "managed"])
        if not isinstance(classes, list) or not classes or any(c not in ("frontier", "managed") for c in classes):
            _fail(f"{key}.backend_classes: a list of frontier and/or managed; got {classes!r}")
        budget = _number(table["budget"], f"{key}.budget") if "budget" in table else None
        rule = replace(rule, backend_classes=tuple(classes), budget_usd=budget)
    elif kind == SPEND_DRIFT:
        group_by = table.get("group_by", "provider")
        if group_by not in DRIFT_DIMENSIONS:
            _fail(f"{key}.group_by: one of {', '.join(DRIFT_DIMENSIONS)}; got {group_by!r}")
        rule = replace(rule, group_by=group_by, min_spend_usd=_number(table.get("min_spend", 0), f"{key}.min_spend"))
    if rule.baseline <= timedelta(0):
        _fail(f"{key}.baseline: must be positive")
    return rule


def _webhook(raw: Any, key: str) -> Webhook:
    table = _table(raw, key, ("url", "secret"))
    if "url" not in table:
        _fail(f"{key}.url: required")
    secret = _text(table["secret"], f"{key}.secret") if "secret" in table else None
    return Webhook(_url(table["url"], f"{key}.url"), secret)


def duration(raw: Any, key: str) -> timedelta:
    """A duration from "90s", "15m", "1h30m", "7d", "500ms" or a number of seconds."""
    if isinstance(raw, timedelta):
        return raw
    if isinstance(raw, bool):
        _fail(f"{key}: not a duration: {raw!r}")
    if isinstance(raw, int | float | Decimal):
        seconds = Decimal(str(raw))
    elif isinstance(raw, str) and raw.strip():
        text = raw.strip().replace(" ", "")
        parts = _DURATION_PART.findall(text)
        if "".join(n + u for n, u in parts) != text:
            _fail(f"{key}: not a duration (such as 30s, 15m, 1h30m, 7d): {raw!r}")
        seconds = sum((Decimal(n) * _UNIT_SECONDS[u] for n, u in parts), Decimal(0))
    else:
        _fail(f"{key}: not a duration (such as 30s, 15m, 1h30m, 7d): {raw!r}")
    if not seconds.is_finite() or seconds < 0:
        _fail(f"{key}: a duration cannot be negative: {raw!r}")
    return timedelta(seconds=float(seconds))


def _table(raw: Any, key: str, known: tuple[str, ...] | None) -> Mapping[str, Any]:
    if not isinstance(raw, Mapping):
        _fail(f"{key}: expected a table")
    for name in raw:
        if known is not None and name not in known:
            _fail(f"{key}.{name}: unknown key (known: {', '.join(known)})")
    return raw


def _text(raw: Any, key: str) -> str:
    if not isinstance(raw, str) or not raw.strip():
        _fail(f"{key}: expected a non-empty string, got {raw!r}")
    return raw.strip()


def _url(raw: Any, key: str, base: bool = False) -> str:
    text = _text(raw, key)
    parts = urlsplit(text)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        _fail(f"{key}: expected an http:// or https:// URL, got {raw!r}")
    return text.rstrip("/") if base else text


def _number(raw: Any, key: str) -> Decimal:
    if isinstance(raw, bool) or not isinstance(raw, int | float | Decimal | str):
        _fail(f"{key}: not a number: {raw!r}")
    try:
        value = Decimal(str(raw).strip())
    except InvalidOperation:
        _fail(f"{key}: not a number: {raw!r}")
    if not value.is_finite() or value < 0:
        _fail(f"{key}: expected a non-negative number, got {raw!r}")
    return value
