"""The [alerts] config section: the example loads and matches the shipped Prometheus rules; mistakes name their key."""

from __future__ import annotations

import re
from datetime import timedelta
from decimal import Decimal
from pathlib import Path

import pytest
import yaml

from breakeven.collector.alerts.conditions import duration_text
from breakeven.collector.config.alerts import AlertsConfig, duration
from breakeven.collector.config.checks import SettingsError
from breakeven.collector.config.settings import Settings, load_settings

ROOT = Path(__file__).parents[2]
EXAMPLE = ROOT / "examples" / "alerts.toml"
SHIPPED_RULES = ROOT / "deploy" / "prometheus" / "rules" / "breakeven.yml"


def load(tmp_path: Path, text: str) -> Settings:
    config = tmp_path / "breakeven.toml"
    config.write_text(text)
    return load_settings({"config": str(config)}, environ={})


def test_default_has_no_rules_and_sends_nowhere() -> None:
    alerts = load_settings({}, environ={}).alerts
    assert alerts == AlertsConfig()
    assert alerts.rules == ()
    assert alerts.webhooks == ()
    assert (alerts.alertmanager_url, alerts.slack_webhook_url, alerts.pagerduty_routing_key) == (None, None, None)
    assert alerts.interval == timedelta(minutes=1)


def test_example_loads_and_is_on_the_alerts_page() -> None:
    alerts = load_settings({"config": str(EXAMPLE)}, environ={}).alerts
    assert [r.kind for r in alerts.rules] == [
        "pool_below_breakeven", "class_past_breakeven", "spend_drift", "unpriced_traffic", "ingest_unhealthy"
    ]  # fmt: skip
    pool = alerts.rules[0]
    assert (pool.window, pool.margin, pool.for_, pool.repeat_interval) == (
        timedelta(hours=1), Decimal("0.05"), timedelta(hours=2), timedelta(hours=4)
    )  # fmt: skip
    assert alerts.alertmanager_url == "http://alertmanager:9093"
    assert alerts.webhooks[0].secret == "change-me"
    assert alerts.slack_webhook_url
    alerts_page = (ROOT / "docs" / "alerts.md").read_text()
    assert EXAMPLE.read_text().strip() in alerts_page, "docs/alerts.md shows examples/alerts.toml verbatim"


def test_shipped_prometheus_rules_are_the_example_rules() -> None:
    """Same names, severities and durations; thresholds as the expressions spell them."""
    alerts = load_settings({"config": str(EXAMPLE)}, environ={}).alerts
    shipped = [r for g in yaml.safe_load(SHIPPED_RULES.read_text())["groups"] for r in g["rules"] if "alert" in r]
    assert {r["alert"] for r in shipped} == {r.name for r in alerts.rules}
    for rule in alerts.rules:
        for prom in (r for r in shipped if r["alert"] == rule.name):
            assert prom["labels"]["severity"] == rule.severity, rule.name
            assert prom.get("for", "0s") == (duration_text(rule.for_) if rule.for_ else "0s"), rule.name
    exprs = {r["alert"]: r["expr"] for r in shipped}
    by_name = {r.name: r for r in alerts.rules}
    assert f"+ {by_name['PoolBelowBreakEven'].margin}" in exprs["PoolBelowBreakEven"]
    assert f"[{duration_text(by_name['ClassPastBreakEven'].window)}]" in exprs["ClassPastBreakEven"]
    drift = by_name["SpendDrift"]
    assert f"> {1 + drift.margin / 100} *" in exprs["SpendDrift"]
    assert f">= {drift.min_spend_usd}" in exprs["SpendDrift"]
    ingest = [r["expr"] for r in shipped if r["alert"] == "IngestUnhealthy"]
    assert any(
        f"[{duration_text(by_name['IngestUnhealthy'].window)}]" in e
        and f"* 60 > {by_name['IngestUnhealthy'].margin}" in e
        for e in ingest
    )
    assert any(re.search(r"> 900\b.*< 86400 \+ 900", e, re.DOTALL) for e in ingest)  # window 15m, baseline 1d


@pytest.mark.parametrize(
    ("raw", "seconds"),
    [
        pytest.param("30s", 30, id="seconds"),
        pytest.param("15m", 900, id="minutes"),
        pytest.param("1h30m", 5400, id="compound"),
        pytest.param("7d", 604_800, id="days"),
        pytest.param("1w", 604_800, id="week"),
        pytest.param("250ms", 0.25, id="milliseconds"),
        pytest.param(90, 90, id="a number is seconds"),
        pytest.param(Decimal("0.5"), 0.5, id="a TOML float"),
    ],
)
def test_durations(raw: object, seconds: float) -> None:
    assert duration(raw, "k") == timedelta(seconds=seconds)


RULE = '[[alerts.rules]]\nname = "R"\nkind = "pool_below_breakeven"\n'


@pytest.mark.parametrize(
    ("text", "names"),
    [
        pytest.param('[alerts]\ninterval = "soon"\n', "alerts.interval: not a duration", id="bad duration"),
        pytest.param('[alerts]\ninterval = "0s"\n', "alerts.interval: must be positive", id="zero interval"),
        pytest.param('[alerts]\nintervall = "1m"\n', "alerts.intervall: unknown key", id="typo at the top"),
        pytest.param(
            '[[alerts.rules]]\nname = "R"\nkind = "pool_below"\n', "alerts.rules[0].kind: one of", id="unknown kind"
        ),
        pytest.param(RULE + 'windw = "1h"\n', "alerts.rules[0].windw: unknown key", id="typo in a rule"),
        pytest.param(RULE + "budget = 10\n", "alerts.rules[0].budget: unknown key", id="a key of another kind"),
        pytest.param(RULE + 'window = "an hour"\n', "alerts.rules[0].window: not a duration", id="bad window"),
        pytest.param(RULE + "for = -5\n", "alerts.rules[0].for: a duration cannot be negative", id="negative for"),
        pytest.param(
            RULE + "margin = 5\n", "alerts.rules[0].margin: utilization points as a ratio", id="pool margin is a ratio"
        ),
        pytest.param(
            RULE + 'severity = "page"\n', "alerts.rules[0].severity: one of critical, warning, info", id="severity"
        ),
        pytest.param(RULE + 'labels = { alertname = "x" }\n', "alerts.rules[0].labels.alertname", id="reserved label"),
        pytest.param(
            RULE + RULE, "alerts.rules[1].name: 'R' is already the name of alerts.rules[0]", id="duplicate name"
        ),
        pytest.param(
            '[[alerts.rules]]\nname = "my rule"\nkind = "unpriced_traffic"\n',
            "alerts.rules[0].name: letters",
            id="name not a Prometheus alert name",
        ),
        pytest.param(
            '[[alerts.rules]]\nname = "D"\nkind = "spend_drift"\ngroup_by = "model"\n',
            "alerts.rules[0].group_by: one of service, team, provider",
            id="drift dimension",
        ),
        pytest.param(
            '[[alerts.rules]]\nname = "C"\nkind = "class_past_breakeven"\nbackend_classes = ["self_hosted"]\n',
            "alerts.rules[0].backend_classes",
            id="class backend classes",
        ),
        pytest.param(
            '[alerts.alertmanager]\nurl = "alertmanager:9093"\n',
            "alerts.alertmanager.url: expected an http:// or https:// URL",
            id="alertmanager url",
        ),
        pytest.param("[alerts.alertmanager]\n", "alerts.alertmanager.url: required", id="alertmanager without url"),
        pytest.param(
            '[[alerts.webhooks]]\nurl = "https://x.example"\nsecret = ""\n',
            "alerts.webhooks[0].secret: expected a non-empty string",
            id="empty secret",
        ),
        pytest.param(
            '[alerts.slack]\nurl = "https://hooks.slack.com/x"\n', "alerts.slack.url: unknown key", id="slack key"
        ),
        pytest.param(
            "[alerts]\nretry_attempts = 0\n",
            "alerts.retry_attempts: expected a whole number of at least 1",
            id="attempts",
        ),
    ],
)
def test_mistakes_name_their_key(tmp_path: Path, text: str, names: str) -> None:
    with pytest.raises(SettingsError, match=re.escape(names)):
        load(tmp_path, text)


def test_settings_take_the_section_as_a_table_too() -> None:
    settings = load_settings(
        {"alerts": {"interval": "200ms", "rules": [{"name": "U", "kind": "unpriced_traffic"}]}}, environ={}
    )
    assert settings.alerts.interval == timedelta(milliseconds=200)
    assert settings.alerts.rules[0].name == "U"


def test_metrics_window_is_a_positive_setting() -> None:
    assert load_settings({}, environ={}).metrics_window_seconds == 3600
    assert load_settings({}, environ={"BREAKEVEN_METRICS_WINDOW_SECONDS": "600"}).metrics_window_seconds == 600
    with pytest.raises(SettingsError, match="metrics_window_seconds: must be positive"):
        load_settings({"metrics_window_seconds": 0}, environ={})
