"""A pool falls under break-even and recovers, end to end: real OTel SDK spans in, a real Alertmanager
and a real Prometheus (with the shipped rules) out, and the webhook and Slack receivers in between."""

from __future__ import annotations

import hashlib
import hmac
import re
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.alerts.programs import alertmanager, prometheus
from tests.alerts.receiver import receiver
from tests.alerts.scenario import BACKEND_CLASSES, BIG_CALL, PRICING, SMALL_CALL, pool_span_attributes
from tests.conftest import start_collector, wait_for
from tests.otel import tracer

pytestmark = pytest.mark.slow
SHIPPED_RULES = Path(__file__).parents[2] / "deploy" / "prometheus" / "rules" / "breakeven.yml"
SECRET = "webhook-secret"


def am_alerts(am: str) -> list[dict[str, Any]]:
    return [
        a
        for a in httpx.get(f"{am}/api/v2/alerts", timeout=5).json()
        if a["labels"]["alertname"] == "PoolBelowBreakEven"
    ]


def prom_alerts(prom: str) -> list[dict[str, Any]]:
    alerts = httpx.get(f"{prom}/api/v1/alerts", timeout=5).json()["data"]["alerts"]
    return [a for a in alerts if a["labels"]["alertname"] == "PoolBelowBreakEven" and a["state"] == "firing"]


def send(endpoint: str, usage: dict[str, int]) -> None:
    with tracer(endpoint, "chat") as t:
        with t.start_as_current_span("chat llama", attributes=pool_span_attributes(usage)):
            pass


def test_pool_under_break_even_pages_alertmanager_and_prometheus_then_resolves(tmp_path: Path) -> None:
    # The shipped rules as they are, but without their hours-long `for:` (this test has seconds).
    rules = re.sub(r"(?m)^(\s+)for: \S+$", r"\1for: 0s", SHIPPED_RULES.read_text())
    with receiver() as rx, alertmanager(tmp_path) as am:
        alerts = {
            "interval": "200ms",
            "alertmanager": {"url": am},
            "webhooks": [{"url": f"{rx.url}/hook", "secret": SECRET}],
            "slack": {"webhook_url": f"{rx.url}/slack"},
            "rules": [
                {"name": "PoolBelowBreakEven", "kind": "pool_below_breakeven", "window": "1h", "margin": 0.05,
                 "for": "1s", "repeat_interval": "1h"},
            ],
        }  # fmt: skip
        running = start_collector(
            tmp_path, pricing=PRICING, backend_classes=BACKEND_CLASSES, alerts=alerts, metrics_window_seconds=3600
        )
        try:
            with prometheus(tmp_path, f"127.0.0.1:{running.app.http_port}", rules) as prom:
                # Traffic worth 0.0011 USD against a pool costing 1 USD an hour: under break-even.
                send(running.otlp_http, SMALL_CALL)
                (alert,) = wait_for(lambda: am_alerts(am), timeout=20)
                assert alert["labels"] == {"alertname": "PoolBelowBreakEven", "severity": "warning", "pool": "gpu-a"}
                assert alert["status"]["state"] == "active"
                assert (
                    "would have cost 0.00 USD against 1.00 USD; idle spend 1.00 USD" in alert["annotations"]["summary"]
                )
                assert alert["generatorURL"] == f"{running.api}/alerts?alert=PoolBelowBreakEven%7Bpool%3D%22gpu-a%22%7D"
                (prom_alert,) = wait_for(lambda: prom_alerts(prom), timeout=20)
                assert prom_alert["labels"] == {
                    "alertname": "PoolBelowBreakEven",
                    "severity": "warning",
                    "pool": "gpu-a",
                }
                assert (
                    "utilization over the last hour, under its break-even of 50.51%"
                    in prom_alert["annotations"]["summary"]
                )

                # Traffic returns: 3 M tokens would have cost 3 USD to buy. Both resolve.
                send(running.otlp_http, BIG_CALL)
                wait_for(lambda: not am_alerts(am), timeout=20)
                wait_for(lambda: not prom_alerts(prom), timeout=20)
            body = httpx.get(f"{running.api}/api/v1/alerts", timeout=5).json()
        finally:
            running.app.stop()
        hooks = rx.posts("/hook")
        slack = rx.posts("/slack")
    assert [h.json()["event"] for h in hooks] == ["firing", "resolved"]
    for hook in hooks:
        expected = "sha256=" + hmac.new(SECRET.encode(), hook.body, hashlib.sha256).hexdigest()
        assert hmac.compare_digest(hook.headers["X-Breakeven-Signature"], expected)
    assert [s.json()["text"].split("]")[0] for s in slack] == ["[FIRING", "[RESOLVED"]
    (state,) = body["alerts"]
    assert (state["state"], state["labels"]["pool"]) == ("resolved", "gpu-a")
    assert [h["event"] for h in body["history"]] == ["resolved", "firing", "pending"]
