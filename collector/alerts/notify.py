"""Notifiers: Alertmanager (API v2), Slack incoming webhooks, generic JSON webhooks, PagerDuty Events v2.

Payloads are built by plain functions; delivery is the Dispatcher's, on its own thread:
a failed attempt (connection error, timeout, HTTP 5xx, 408 or 429) is retried with
exponential backoff (retry_backoff, doubling, at most MAX_BACKOFF) up to retry_attempts
attempts, then dropped; a 4xx answer is not retried (the payload will not get better).
Every outcome is counted by notifier. Nothing here ever blocks the caller: submit() only
queues (a full queue drops its oldest delivery, counted).

Alertmanager deduplicates and repeats by itself, as it does for Prometheus: it is sent
every firing alert on every evaluation, with endsAt a few intervals ahead (an alert whose
sender dies resolves by itself), and resolved alerts with endsAt set for RESOLVED_RESEND
after they resolve. The others are sent the notifications rules.evaluate decides: firing,
repeat (every repeat_interval) and resolved.
"""

from __future__ import annotations

import hashlib
import heapq
import hmac
import itertools
import json
import logging
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import quote

from breakeven.collector import __version__
from breakeven.collector.alerts.rules import FIRING, RESOLVED, AlertState, Notification
from breakeven.collector.config.alerts import AlertsConfig

log = logging.getLogger("breakeven.alerts")
MAX_BACKOFF = 300.0
RESOLVED_RESEND = timedelta(minutes=15)
QUEUE_MAX = 10_000
SIGNATURE_HEADER = "X-Breakeven-Signature"
SLACK_COLORS = {FIRING: "#d62728", "repeat": "#d62728", RESOLVED: "#2ca02c"}
PAGERDUTY_SEVERITY = {"critical": "critical", "warning": "warning", "info": "info"}


# ----------------------------------------------------------------------------- payloads


def _iso(at: datetime) -> str:
    return at.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def alert_url(dashboard_url: str, alert: AlertState) -> str:
    """The dashboard's page for an alert (generatorURL)."""
    return f"{dashboard_url}/alerts?alert={quote(alert.fingerprint, safe='')}"


def alertmanager_alerts(
    alerts: Iterable[AlertState], now: datetime, lifetime: timedelta, dashboard_url: str
) -> list[dict[str, Any]]:
    """The body of POST /api/v2/alerts: firing alerts (endsAt `lifetime` ahead) and resolved ones."""
    out = []
    for alert in alerts:
        if alert.state == FIRING:
            ends = now + lifetime
        elif alert.state == RESOLVED and alert.resolved_at is not None and now - alert.resolved_at <= RESOLVED_RESEND:
            ends = alert.resolved_at
        else:
            continue
        out.append(
            {
                "labels": dict(alert.labels),
                "annotations": dict(alert.annotations),
                "startsAt": _iso(alert.fired_at or alert.active_since),
                "endsAt": _iso(ends),
                "generatorURL": alert_url(dashboard_url, alert),
            }
        )
    return out


def webhook_body(note: Notification, dashboard_url: str, now: datetime) -> dict[str, Any]:
    """The generic webhook's JSON: the event and the alert as GET /api/v1/alerts shows it."""
    a = note.alert
    return {
        "version": "1",
        "event": note.event,  # firing | repeat | resolved
        "status": RESOLVED if note.event == RESOLVED else FIRING,
        "sent_at": _iso(now),
        "alert": {
            "fingerprint": a.fingerprint,
            "rule": a.rule,
            "severity": a.severity,
            "labels": dict(a.labels),
            "annotations": dict(a.annotations),
            "starts_at": _iso(a.fired_at or a.active_since),
            "ends_at": None if a.resolved_at is None else _iso(a.resolved_at),
            "url": alert_url(dashboard_url, a),
        },
    }


def signature(secret: str, body: bytes) -> str:
    """X-Breakeven-Signature: sha256=<hex HMAC-SHA256 of the exact body bytes>."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def _slack_text(text: str) -> str:
    """Span-borne strings (service, model names) escaped as Slack asks: no <!channel>, no <url|links>."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def slack_body(note: Notification, dashboard_url: str) -> dict[str, Any]:
    """A Slack incoming-webhook message: a one-line text and a coloured attachment."""
    a = note.alert
    word = {FIRING: "FIRING", "repeat": "STILL FIRING", RESOLVED: "RESOLVED"}[note.event]
    instance = ", ".join(f"{k}={v}" for k, v in sorted(a.labels.items()) if k not in ("alertname", "severity"))
    title = _slack_text(f"[{word}] {a.rule}" + (f" ({instance})" if instance else ""))
    summary = _slack_text(a.annotations.get("summary", ""))
    return {
        "text": f"{title}: {summary}",
        "attachments": [
            {
                "color": SLACK_COLORS[note.event],
                "title": title,
                "title_link": alert_url(dashboard_url, a),
                "text": summary,
                "fields": [{"title": "severity", "value": a.severity, "short": True}],
                "footer": "breakeven",
                "ts": int((a.resolved_at or a.fired_at or a.active_since).timestamp()),
            }
        ],
    }


def pagerduty_body(note: Notification, routing_key: str, dashboard_url: str) -> dict[str, Any]:
    """A PagerDuty Events API v2 event: trigger (firing, repeat) or resolve, deduplicated by fingerprint."""
    a = note.alert
    body: dict[str, Any] = {
        "routing_key": routing_key,
        "event_action": "resolve" if note.event == RESOLVED else "trigger",
        "dedup_key": a.fingerprint,
    }
    if note.event != RESOLVED:
        body["payload"] = {
            "summary": a.annotations.get("summary", a.rule)[:1024],
            "source": "breakeven",
            "severity": PAGERDUTY_SEVERITY.get(a.severity, "warning"),
            "component": a.rule,
            "custom_details": {"labels": dict(a.labels), "annotations": dict(a.annotations)},
        }
        body["links"] = [{"href": alert_url(dashboard_url, a), "text": "breakeven"}]
    return body


# ----------------------------------------------------------------------------- delivery


class DeliveryError(Exception):
    """One attempt failed; `retry` says whether another could succeed."""

    def __init__(self, message: str, retry: bool) -> None:
        super().__init__(message)
        self.retry = retry


def post_json(url: str, body: bytes, headers: Mapping[str, str], timeout: float) -> None:
    """POST a JSON body; DeliveryError unless the answer is 2xx."""
    request = urllib.request.Request(
        url,
        data=body,
        headers={"Content-Type": "application/json", "User-Agent": f"breakeven/{__version__}", **headers},
        method="POST",
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            response.read()
    except urllib.error.HTTPError as exc:
        raise DeliveryError(f"HTTP {exc.code}", retry=exc.code >= 500 or exc.code in (408, 425, 429)) from None
    except (urllib.error.URLError, OSError) as exc:
        raise DeliveryError(f"{exc.__class__.__name__}: {getattr(exc, 'reason', exc)}", retry=True) from None


@dataclass(order=True)
class _Delivery:
    due: float
    seq: int
    notifier: str = field(compare=False)
    url: str = field(compare=False)
    body: bytes = field(compare=False)
    headers: Mapping[str, str] = field(compare=False)
    key: str | None = field(compare=False, default=None)
    attempts: int = field(compare=False, default=0)
    cancelled: bool = field(compare=False, default=False)


OUTCOMES = ("sent", "failed", "dropped")


class Dispatcher:
    """Delivers queued notifications on its own thread, with retries and backoff; counts outcomes."""

    def __init__(self, backoff: float = 1.0, attempts: int = 8, timeout: float = 10.0, post: Any = post_json) -> None:
        self.backoff = backoff
        self.attempts = attempts
        self.timeout = timeout
        self._post = post
        self._heap: list[_Delivery] = []
        self._keyed: dict[str, _Delivery] = {}
        self._seq = itertools.count()
        self._cond = threading.Condition()
        self._running = False
        self._thread: threading.Thread | None = None
        self._busy = False
        self.counts: dict[tuple[str, str], int] = {}

    def start(self) -> None:
        """Start the delivery thread."""
        self._running = True
        self._thread = threading.Thread(target=self._run, name="breakeven-notify", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        """Deliver what is due within `timeout` (one attempt each), drop the rest (counted), stop."""
        with self._cond:
            self._running = False
            self._cond.notify_all()
        if self._thread is not None:
            self._thread.join(timeout)
        with self._cond:
            for item in self._heap:
                if not item.cancelled:
                    self._count(item.notifier, "dropped")
            self._heap.clear()
            self._keyed.clear()

    def submit(self, notifier: str, url: str, payload: Any, headers: Mapping[str, str] | None = None,
               key: str | None = None, sign_with: str | None = None) -> None:  # fmt: skip
        """Queue a JSON payload. A keyed delivery replaces a queued one with the same key (a refresh)."""
        body = json.dumps(payload, separators=(",", ":"), sort_keys=True).encode()
        all_headers = dict(headers or {})
        if sign_with:
            all_headers[SIGNATURE_HEADER] = signature(sign_with, body)
        item = _Delivery(time.monotonic(), next(self._seq), notifier, url, body, all_headers, key)
        with self._cond:
            if key is not None and key in self._keyed:
                self._keyed[key].cancelled = True
            if key is not None:
                self._keyed[key] = item
            live = [d for d in self._heap if not d.cancelled]
            if len(live) >= QUEUE_MAX:
                oldest = min(live, key=lambda d: d.seq)
                oldest.cancelled = True
                self._count(oldest.notifier, "dropped")
            heapq.heappush(self._heap, item)
            self._cond.notify()

    @property
    def queued(self) -> int:
        """Deliveries waiting (including retries)."""
        with self._cond:
            return sum(1 for d in self._heap if not d.cancelled) + (1 if self._busy else 0)

    def idle(self) -> bool:
        """Nothing queued and nothing in flight."""
        return self.queued == 0

    def snapshot(self) -> dict[tuple[str, str], int]:
        """(notifier, outcome) -> count, a copy."""
        with self._cond:
            return dict(self.counts)

    def _count(self, notifier: str, outcome: str) -> None:
        self.counts[(notifier, outcome)] = self.counts.get((notifier, outcome), 0) + 1

    def _next(self) -> _Delivery | None:
        with self._cond:
            while True:
                while self._heap and self._heap[0].cancelled:
                    heapq.heappop(self._heap)
                if not self._running:
                    # Stopping: one last attempt for what is due now.
                    if self._heap and self._heap[0].due <= time.monotonic():
                        return self._take()
                    return None
                if self._heap and self._heap[0].due <= time.monotonic():
                    return self._take()
                wait = self._heap[0].due - time.monotonic() if self._heap else 1.0
                self._cond.wait(max(0.0, min(wait, 1.0)))

    def _take(self) -> _Delivery:
        item = heapq.heappop(self._heap)
        if item.key is not None and self._keyed.get(item.key) is item:
            del self._keyed[item.key]
        self._busy = True
        return item

    def _run(self) -> None:
        while True:
            item = self._next()
            if item is None:
                return
            try:
                self._attempt(item)
            finally:
                with self._cond:
                    self._busy = False

    def _attempt(self, item: _Delivery) -> None:
        item.attempts += 1
        try:
            self._post(item.url, item.body, item.headers, self.timeout)
        except DeliveryError as exc:
            with self._cond:
                self._count(item.notifier, "failed")
                superseded = item.key is not None and item.key in self._keyed
                if not exc.retry or item.attempts >= self.attempts or not self._running or superseded:
                    if not superseded:
                        self._count(item.notifier, "dropped")
                    log.warning("notifier %s: giving up after %d attempt(s): %s", item.notifier, item.attempts, exc)
                    return
                delay = min(MAX_BACKOFF, self.backoff * 2 ** (item.attempts - 1))
                log.info("notifier %s: attempt %d failed (%s); retrying in %.1fs", item.notifier, item.attempts, exc,
                         delay)  # fmt: skip
                item.due = time.monotonic() + delay
                item.seq = next(self._seq)
                if item.key is not None:
                    self._keyed[item.key] = item
                heapq.heappush(self._heap, item)
        except Exception as exc:  # a bug here must not kill the thread
            log.exception("notifier %s: unexpected error: %s", item.notifier, exc)
            with self._cond:
                self._count(item.notifier, "failed")
                self._count(item.notifier, "dropped")
        else:
            with self._cond:
                self._count(item.notifier, "sent")


# ----------------------------------------------------------------------------- fan-out


class Notifiers:
    """The configured notifiers: what each is sent, queued on one Dispatcher."""

    def __init__(self, config: AlertsConfig, dashboard_url: str, dispatcher: Dispatcher) -> None:
        self.config = config
        self.dashboard_url = dashboard_url
        self.dispatcher = dispatcher
        interval = config.interval.total_seconds()
        self.lifetime = timedelta(seconds=4 * max(interval, 60.0))

    def names(self) -> list[str]:
        """Every notifier's name, as counted."""
        c = self.config
        names = ["alertmanager"] if c.alertmanager_url else []
        names += [f"webhook[{i}]" for i in range(len(c.webhooks))]
        names += ["slack"] if c.slack_webhook_url else []
        names += ["pagerduty"] if c.pagerduty_routing_key else []
        return names

    def send(self, notes: Sequence[Notification], now: datetime) -> None:
        """Queue each notification for every per-event notifier (webhooks, Slack, PagerDuty)."""
        c = self.config
        for note in notes:
            for i, hook in enumerate(c.webhooks):
                self.dispatcher.submit(
                    f"webhook[{i}]", hook.url, webhook_body(note, self.dashboard_url, now), sign_with=hook.secret
                )
            if c.slack_webhook_url:
                self.dispatcher.submit("slack", c.slack_webhook_url, slack_body(note, self.dashboard_url))
            if c.pagerduty_routing_key:
                self.dispatcher.submit(
                    "pagerduty", c.pagerduty_url, pagerduty_body(note, c.pagerduty_routing_key, self.dashboard_url)
                )

    def refresh_alertmanager(self, alerts: Iterable[AlertState], now: datetime) -> None:
        """Send Alertmanager every firing and recently resolved alert (replacing an unsent refresh)."""
        if not self.config.alertmanager_url:
            return
        body = alertmanager_alerts(alerts, now, self.lifetime, self.dashboard_url)
        if body:
            url = f"{self.config.alertmanager_url}/api/v2/alerts"
            self.dispatcher.submit("alertmanager", url, body, key="alertmanager")
