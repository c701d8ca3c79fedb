"""/metrics' reconciliation series: each source's latest closed day (coverage, delta) for the
reconciliation fixture's bills, its last fetch, computed at most once a minute, and accepted
by `promtool check metrics`."""

from __future__ import annotations

import subprocess
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import httpx
import pytest
import sqlalchemy as sa
from prometheus_client.parser import text_string_to_metric_families

from breakeven.collector.alerts import inputs
from breakeven.collector.alerts.drift import BillFigures
from breakeven.collector.api import metrics as metrics_module
from breakeven.collector.api.metrics import Metrics
from breakeven.collector.config.settings import load_settings
from breakeven.collector.store.bills import fetch_statuses, record_fetch
from breakeven.collector.store.engine import migrate
from tests.api.test_reconciliation import DAY, admin, reconciled  # noqa: F401 - fixtures, used by name
from tests.conftest import RunningCollector, require_program, wait_for
from tests.store.conftest import engine  # noqa: F401 - a fixture, used by name

Samples = dict[str, dict[tuple[tuple[str, str], ...], float]]
DAY_START = datetime.combine(DAY, datetime.min.time(), UTC)
CLOSED = DAY_START + timedelta(days=2, hours=1)  # DAY ended 25 h ago
DAY_FAMILIES = (
    "breakeven_reconcile_closed_day_timestamp_seconds",
    "breakeven_reconcile_coverage_ratio",
    "breakeven_reconcile_delta_usd",
    "breakeven_reconcile_delta_ratio",
)


def parsed(text: str) -> Samples:
    out: Samples = {}
    for family in text_string_to_metric_families(text):
        out.setdefault(family.name, {})  # a family without samples is still there
        for sample in family.samples:
            out.setdefault(sample.name, {})[tuple(sorted(sample.labels.items()))] = sample.value
    return out


def by_source(samples: Samples, name: str) -> dict[str, float]:
    return {dict(labels)["source"]: value for labels, value in samples[name].items()}


def scrape_at(running: RunningCollector, now: datetime) -> str:
    """What /metrics of this collector serves when the clock says `now` (a fresh registry, as tests build)."""
    return Metrics(running.app.engine, running.app.settings, clock=lambda: now).exposition().decode()


def promtool_accepts(text: str) -> None:
    promtool = require_program("promtool")
    result = subprocess.run(
        [promtool, "check", "metrics"], input=text, capture_output=True, text=True, timeout=60, check=False
    )
    assert (result.returncode, result.stdout.strip()) == (0, ""), result.stderr


def test_each_sources_latest_closed_day(reconciled: RunningCollector) -> None:  # noqa: F811 - the imported fixture
    text = scrape_at(reconciled, CLOSED)
    samples = parsed(text)
    assert by_source(samples, "breakeven_reconcile_closed_day_timestamp_seconds") == {
        "openai-org": DAY_START.timestamp(),
        "anthropic": DAY_START.timestamp(),
    }
    # OpenAI: the ledger 4.50 + 0.36 USD and 1.2M + 2.1M tokens; the bill 22.50 + 0.30 USD and 6M + 2.1M tokens.
    # Anthropic: the tokens agree; the bill is 10% under the ledger's list price (14.85 against 16.50).
    assert by_source(samples, "breakeven_reconcile_coverage_ratio") == pytest.approx(
        {"openai-org": 3.3 / 8.1, "anthropic": 1.0}
    )
    assert by_source(samples, "breakeven_reconcile_delta_usd") == pytest.approx(
        {"openai-org": 17.94, "anthropic": -1.65}
    )
    assert by_source(samples, "breakeven_reconcile_delta_ratio") == pytest.approx(
        {"openai-org": 17.94 / 22.80, "anthropic": -1.65 / 14.85}
    )
    promtool_accepts(text)


def test_a_day_not_closed_yet_shows_no_figures(reconciled: RunningCollector) -> None:  # noqa: F811
    samples = parsed(scrape_at(reconciled, CLOSED - timedelta(hours=2)))
    for name in DAY_FAMILIES:
        assert samples[name] == {}, name


def test_figures_are_computed_once_a_minute(
    reconciled: RunningCollector,  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    calls: list[datetime] = []
    real: Callable[..., BillFigures] = inputs.bill_days

    def counted(*args: object) -> BillFigures:
        calls.append(datetime.now(UTC))
        return real(*args)

    monkeypatch.setattr(inputs, "bill_days", counted)
    metrics = Metrics(reconciled.app.engine, reconciled.app.settings, clock=lambda: CLOSED)
    metrics.exposition()
    metrics.exposition()
    assert len(calls) == 1
    monkeypatch.setattr(metrics_module, "RECONCILE_CACHE_SECONDS", 0.0)  # the minute is over
    metrics.exposition()
    assert len(calls) == 2


def test_served_on_metrics(reconciled: RunningCollector) -> None:  # noqa: F811
    """The running collector's /metrics has the series, its fetch statuses those stored (the collector's
    own scheduled fetch may note one while the test looks: poll until scrape and table agree)."""

    def agreeing() -> str | None:
        text = httpx.get(f"{reconciled.api}/metrics", timeout=30).text
        stored = fetch_statuses(reconciled.app.engine)
        shown = by_source(parsed(text), "breakeven_reconcile_last_attempt_timestamp_seconds")
        return text if shown == {name: s.attempted_at.timestamp() for name, s in stored.items()} else None

    text = wait_for(agreeing)
    for name in DAY_FAMILIES:
        assert f"# TYPE {name} gauge" in text
    promtool_accepts(text)


def test_fetch_status_per_configured_source(engine: sa.Engine) -> None:  # noqa: F811
    migrate(engine)
    settings = load_settings(
        {
            "reconcile": {
                "sources": [
                    {"name": "openai-org", "kind": "openai", "admin_key_env": "OPENAI_ADMIN_KEY"},
                    {"name": "aws", "kind": "focus", "path": "/var/lib/breakeven/focus/*.parquet"},
                    {"name": "anthropic", "kind": "anthropic", "admin_key_env": "ANTHROPIC_ADMIN_KEY"},
                ]
            }
        },
        environ={},
    )
    t0 = datetime(2026, 12, 1, 6, tzinfo=UTC)
    record_fetch(engine, "openai-org", t0, None)
    record_fetch(engine, "openai-org", t0 + timedelta(days=1), "openai-org: HTTP 401")  # failing since
    record_fetch(engine, "aws", t0 + timedelta(hours=2), None)
    record_fetch(engine, "gone", t0, None)  # a source no longer configured: not shown
    samples = parsed(Metrics(engine, settings, clock=lambda: t0 + timedelta(days=2)).exposition().decode())
    assert by_source(samples, "breakeven_reconcile_last_attempt_timestamp_seconds") == {
        "openai-org": (t0 + timedelta(days=1)).timestamp(),
        "aws": (t0 + timedelta(hours=2)).timestamp(),
    }
    assert by_source(samples, "breakeven_reconcile_last_success_timestamp_seconds") == {
        "openai-org": t0.timestamp(),
        "aws": (t0 + timedelta(hours=2)).timestamp(),
    }
    assert by_source(samples, "breakeven_reconcile_fetch_up") == {"openai-org": 0.0, "aws": 1.0}
    for name in DAY_FAMILIES:  # no bill stored: no day to describe
        assert samples[name] == {}, name
