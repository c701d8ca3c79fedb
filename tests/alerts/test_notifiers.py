"""Notifier payloads and delivery, against a local receiver: webhook (HMAC), Slack, PagerDuty, Alertmanager."""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from breakeven.collector.alerts.notify import Dispatcher, Notifiers, alertmanager_alerts, post_json
from breakeven.collector.alerts.rules import FIRING, REPEAT, RESOLVED, AlertState, Notification
from breakeven.collector.config.alerts import AlertsConfig, Webhook
from tests.alerts.receiver import receiver
from tests.conftest import wait_for

T0 = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)
DASHBOARD = "http://breakeven.example:8000"
ALERT = AlertState(
    fingerprint='PoolBelowBreakEven{pool="gpu"}',
    rule="PoolBelowBreakEven",
    state=FIRING,
    severity="warning",
    labels={"alertname": "PoolBelowBreakEven", "severity": "warning", "pool": "gpu"},
    annotations={"summary": "Pool gpu ran at 10.0% utilization.", "idle_usd": "90.000000"},
    active_since=T0 - timedelta(hours=2),
    updated_at=T0,
    fired_at=T0,
    last_notified_at=T0,
)
RESOLVED_ALERT = replace(ALERT, state=RESOLVED, resolved_at=T0 + timedelta(hours=1))


def config(url: str, **kw: Any) -> AlertsConfig:
    return AlertsConfig(interval=timedelta(seconds=1), retry_backoff=timedelta(milliseconds=50), **kw)


def test_generic_webhook_carries_the_alert_and_a_verifiable_hmac_signature() -> None:
    with receiver() as rx:
        dispatcher = Dispatcher(backoff=0.05)
        notifiers = Notifiers(
            config(rx.url, webhooks=(Webhook(f"{rx.url}/hook", "s3cret"), Webhook(f"{rx.url}/plain"))),
            DASHBOARD,
            dispatcher,
        )
        dispatcher.start()
        notifiers.send([Notification(FIRING, ALERT)], T0)
        wait_for(lambda: len(rx.requests) == 2)
        dispatcher.stop()
    (signed,) = rx.posts("/hook")
    mac = hmac.new(b"s3cret", signed.body, hashlib.sha256).hexdigest()
    assert hmac.compare_digest(signed.headers["X-Breakeven-Signature"], f"sha256={mac}")
    assert signed.headers["Content-Type"] == "application/json"
    body = signed.json()
    assert (body["version"], body["event"], body["status"]) == ("1", "firing", "firing")
    assert body["alert"]["labels"] == ALERT.labels
    assert body["alert"]["annotations"] == ALERT.annotations
    assert body["alert"]["starts_at"] == "2026-03-02T12:00:00.000Z"
    assert body["alert"]["ends_at"] is None
    assert body["alert"]["url"] == f"{DASHBOARD}/alerts?alert=PoolBelowBreakEven%7Bpool%3D%22gpu%22%7D"
    (plain,) = rx.posts("/plain")
    assert "X-Breakeven-Signature" not in plain.headers


def test_slack_message_per_event() -> None:
    with receiver() as rx:
        dispatcher = Dispatcher(backoff=0.05)
        notifiers = Notifiers(config(rx.url, slack_webhook_url=f"{rx.url}/services/T/B/X"), DASHBOARD, dispatcher)
        dispatcher.start()
        notifiers.send(
            [Notification(FIRING, ALERT), Notification(REPEAT, ALERT), Notification(RESOLVED, RESOLVED_ALERT)], T0
        )
        wait_for(lambda: len(rx.requests) == 3)
        dispatcher.stop()
    bodies = [r.json() for r in rx.posts("/services/T/B/X")]
    assert [b["text"].split("]")[0] for b in bodies] == ["[FIRING", "[STILL FIRING", "[RESOLVED"]
    assert bodies[0]["text"] == "[FIRING] PoolBelowBreakEven (pool=gpu): Pool gpu ran at 10.0% utilization."
    attachment = bodies[0]["attachments"][0]
    assert attachment["color"] == "#d62728"
    assert bodies[2]["attachments"][0]["color"] == "#2ca02c"
    assert attachment["title_link"].startswith(f"{DASHBOARD}/alerts?alert=")
    assert attachment["fields"] == [{"title": "severity", "value": "warning", "short": True}]


def test_pagerduty_events_v2_trigger_then_resolve_by_dedup_key() -> None:
    with receiver() as rx:
        dispatcher = Dispatcher(backoff=0.05)
        cfg = config(rx.url, pagerduty_routing_key="R0UT1NG", pagerduty_url=f"{rx.url}/v2/enqueue")
        notifiers = Notifiers(cfg, DASHBOARD, dispatcher)
        dispatcher.start()
        notifiers.send([Notification(FIRING, ALERT), Notification(RESOLVED, RESOLVED_ALERT)], T0)
        wait_for(lambda: len(rx.requests) == 2)
        dispatcher.stop()
    trigger, resolve = (r.json() for r in rx.posts("/v2/enqueue"))
    assert (trigger["event_action"], trigger["routing_key"], trigger["dedup_key"]) == (
        "trigger",
        "R0UT1NG",
        ALERT.fingerprint,
    )
    assert trigger["payload"]["severity"] == "warning"
    assert trigger["payload"]["source"] == "breakeven"
    assert resolve == {"routing_key": "R0UT1NG", "event_action": "resolve", "dedup_key": ALERT.fingerprint}


def test_alertmanager_body_has_labels_annotations_times_and_generator_url() -> None:
    stale = replace(RESOLVED_ALERT, resolved_at=T0 - timedelta(hours=1))
    body = alertmanager_alerts(
        [ALERT, RESOLVED_ALERT, stale], T0 + timedelta(hours=1, minutes=1), timedelta(minutes=4), DASHBOARD
    )
    firing, resolved = body  # a long-resolved alert is no longer resent
    assert firing == {
        "labels": ALERT.labels,
        "annotations": ALERT.annotations,
        "startsAt": "2026-03-02T12:00:00.000Z",
        "endsAt": "2026-03-02T13:05:00.000Z",
        "generatorURL": f"{DASHBOARD}/alerts?alert=PoolBelowBreakEven%7Bpool%3D%22gpu%22%7D",
    }
    assert resolved["endsAt"] == "2026-03-02T13:00:00.000Z"


def test_failures_are_retried_with_backoff_and_counted() -> None:
    with receiver() as rx:
        rx.fail_next = [503, 500]
        dispatcher = Dispatcher(backoff=0.05, attempts=5)
        dispatcher.start()
        dispatcher.submit("webhook[0]", f"{rx.url}/hook", {"n": 1})
        wait_for(lambda: len(rx.requests) == 1)
        wait_for(dispatcher.idle)
        dispatcher.stop()
    assert dispatcher.snapshot() == {("webhook[0]", "failed"): 2, ("webhook[0]", "sent"): 1}


def test_a_4xx_is_not_retried_and_giving_up_is_counted() -> None:
    with receiver() as rx:
        rx.fail_next = [400, 503, 503, 503]
        dispatcher = Dispatcher(backoff=0.01, attempts=3)
        dispatcher.start()
        dispatcher.submit("slack", f"{rx.url}/bad", {"n": 1})
        dispatcher.submit("pagerduty", f"{rx.url}/down", {"n": 2})
        wait_for(lambda: dispatcher.snapshot().get(("pagerduty", "dropped")) == 1)
        wait_for(dispatcher.idle)
        dispatcher.stop()
    counts = dispatcher.snapshot()
    assert (counts[("slack", "failed")], counts[("slack", "dropped")]) == (1, 1)
    assert (counts[("pagerduty", "failed")], counts[("pagerduty", "dropped")]) == (3, 1)


def test_an_unreachable_receiver_never_blocks_the_caller(tmp_path: Path) -> None:
    import socket

    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        dead = f"http://127.0.0.1:{s.getsockname()[1]}/x"
    dispatcher = Dispatcher(backoff=0.01, attempts=2, timeout=1)
    dispatcher.start()
    started = datetime.now(UTC)
    for i in range(100):
        dispatcher.submit("webhook[0]", dead, {"i": i})
    assert datetime.now(UTC) - started < timedelta(seconds=1)
    wait_for(dispatcher.idle, timeout=20)
    dispatcher.stop()
    assert dispatcher.snapshot()[("webhook[0]", "dropped")] == 100


def test_a_refresh_replaces_the_one_still_queued() -> None:
    calls: list[bytes] = []
    dispatcher = Dispatcher(post=lambda url, body, headers, timeout: calls.append(body))
    for i in range(3):  # not started: all three wait; the last one wins
        dispatcher.submit("alertmanager", "http://am/api/v2/alerts", [i], key="alertmanager")
    assert dispatcher.queued == 1
    dispatcher.start()
    wait_for(dispatcher.idle)
    dispatcher.stop()
    assert calls == [b"[2]"]


def test_post_json_reports_http_errors_as_retryable_or_not() -> None:
    from breakeven.collector.alerts.notify import DeliveryError

    with receiver() as rx:
        rx.fail_next = [429, 404]
        with pytest.raises(DeliveryError) as busy:
            post_json(f"{rx.url}/a", b"{}", {}, 5)
        with pytest.raises(DeliveryError) as missing:
            post_json(f"{rx.url}/a", b"{}", {}, 5)
    assert busy.value.retry
    assert not missing.value.retry


def test_slack_text_from_spans_is_escaped() -> None:
    """A service named `<!channel>` or `<https://evil|click>` must not ping or link in Slack."""
    from breakeven.collector.alerts.notify import slack_body

    hostile = replace(
        ALERT,
        labels={**ALERT.labels, "service": "<!channel> & <https://evil.example|click>"},
        annotations={**ALERT.annotations, "summary": "Spend of <!here> grew"},
    )
    body = slack_body(Notification(FIRING, hostile), DASHBOARD)
    text = body["text"] + body["attachments"][0]["title"] + body["attachments"][0]["text"]
    assert "<" not in text
    assert ">" not in text
    assert "&lt;!channel&gt; &amp; &lt;https://evil.example|click&gt;" in body["text"]
