"""GET /metrics on the API port: one prefix, unit suffixes, bounded labels, ledger figures computed at scrape."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from breakeven.collector.api.metrics import HELP
from tests.alerts.scenario import BACKEND_CLASSES, PRICING, SMALL_CALL, pool_span_attributes
from tests.conftest import RunningCollector, start_collector, wait_for
from tests.otel import chat_attributes, tracer

METRICS_PAGE = (Path(__file__).parents[2] / "docs" / "metrics.md").read_text()
ALERTS = {"interval": "100ms", "rules": [{"name": "PoolBelowBreakEven", "kind": "pool_below_breakeven"}]}
# Unit suffixes Prometheus' naming guide and STYLE.md ask for; a counter's _total comes after its unit.
# Gauges without a unit are counts of the thing they name (alerts, deliveries queued) or 0/1 (_up).
UNITS = ("_seconds", "_ratio", "_usd", "_spans", "_tokens", "_up", "_queued", "_alerts", "_processes")


@pytest.fixture(scope="module")
def running(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningCollector]:
    app = start_collector(
        tmp_path_factory.mktemp("metrics"), pricing=PRICING, backend_classes=BACKEND_CLASSES, alerts=ALERTS
    )
    with tracer(app.otlp_http, "chat") as t:
        with t.start_as_current_span("pool", attributes=pool_span_attributes(SMALL_CALL)):
            pass
        with t.start_as_current_span(
            "unpriced",
            attributes=chat_attributes(**{"gen_ai.request.model": "no-such-model-9", "gen_ai.response.model": None}),
        ):
            pass
    wait_for(lambda: len(app.calls()) == 2)
    yield app
    app.app.stop()


def scrape(app: RunningCollector) -> dict[str, dict[tuple[tuple[str, str], ...], float]]:
    response = httpx.get(f"{app.api}/metrics", timeout=10)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    out: dict[str, dict[tuple[tuple[str, str], ...], float]] = {}
    for family in text_string_to_metric_families(response.text):
        for sample in family.samples:
            out.setdefault(sample.name, {})[tuple(sorted(sample.labels.items()))] = sample.value
    return out


def value(samples: dict[str, dict[tuple[tuple[str, str], ...], float]], name: str, **labels: str) -> float:
    return samples[name][tuple(sorted(labels.items()))]


def test_ledger_figures_at_scrape_time(running: RunningCollector) -> None:
    m = wait_for(
        lambda: (
            (s := scrape(running))
            and value(s, "breakeven_alerts", alertname="PoolBelowBreakEven", severity="warning", state="firing") == 1
            and s
        )
    )
    assert value(m, "breakeven_ingest_spans_total", outcome="stored") == 2
    assert value(m, "breakeven_ingest_spans_received_total") == 2
    assert value(m, "breakeven_ingest_commit_duration_seconds_count") >= 1
    assert value(m, "breakeven_ingest_queue_depth_spans") == 0
    assert value(m, "breakeven_unpriced_calls_total", reason="no_price") == 1
    assert value(m, "breakeven_calls_total", backend_class="self_hosted", provider="openai") == 1
    assert value(m, "breakeven_spend_usd_total", backend_class="self_hosted", provider="openai") > 0
    assert value(m, "breakeven_pool_utilization_ratio", pool="gpu-a") == pytest.approx(2 / 3600)
    assert value(m, "breakeven_pool_breakeven_utilization_ratio", pool="gpu-a") == pytest.approx(2 / 3600 / 0.0011)
    assert value(m, "breakeven_pool_cost_usd", pool="gpu-a") == pytest.approx(1)
    assert value(m, "breakeven_pool_alternative_cost_usd", pool="gpu-a") == pytest.approx(0.0011)
    assert value(m, "breakeven_pool_idle_spend_usd", pool="gpu-a") == pytest.approx(1 - 2 / 3600)
    assert value(m, "breakeven_pool_cost_per_million_tokens_usd", pool="gpu-a") == pytest.approx(1 / 0.0011)
    assert value(m, "breakeven_service_last_call_timestamp_seconds", service="chat") > 0
    assert value(m, "breakeven_database_up") == 1
    assert value(m, "breakeven_alert_evaluations_total") >= 1


def test_names_prefix_units_and_docs(running: RunningCollector) -> None:
    text = httpx.get(f"{running.api}/metrics", timeout=10).text
    families = {f.name: f for f in text_string_to_metric_families(text) if not f.name.endswith("_created")}
    for name, family in families.items():
        assert name.startswith("breakeven_"), name
        if family.type == "counter":
            exposed = f"{name}_total"  # the parser drops it; the exposition has it
            assert f"# TYPE {exposed} counter" in text, name
        else:
            exposed = name
            assert name.endswith(UNITS), f"{name}: no unit suffix"
        assert f"`{exposed}`" in METRICS_PAGE, f"docs/metrics.md does not list {exposed}"
    assert {f"breakeven_{n}" for n in HELP} == set(families) - {"breakeven_ingest_commit_duration_seconds"}


def test_labels_stay_bounded(running: RunningCollector) -> None:
    text = httpx.get(f"{running.api}/metrics", timeout=10).text
    label_names = set(re.findall(r"[{,]([a-z_]+)=", text))
    assert label_names <= {"outcome", "reason", "backend_class", "provider", "pool", "service", "model", "alertname",
                           "severity", "state", "notifier", "le", "source"}  # fmt: skip
    assert not re.search(r'="[0-9a-f]{16,}"', text), "a label value that looks like a trace, span or prompt hash"
