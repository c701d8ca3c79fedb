"""GET /metrics: the app's own Prometheus registry, and the figures that live in the database.

In-process metrics (commit latency, queue depth, refused exports, notifier outcomes) are
this collector's. Ledger figures are computed at scrape time by a custom collector, through
collector/alerts/inputs.py, the same code the built-in alert rules read, so a Prometheus
rule over these series sees what the built-in rule sees:

- cumulative counters from the database (ingest outcomes, spend, unpriced calls) are the
  whole ledger's, every replica's: with several collectors on one PostgreSQL, aggregate
  them with max, not sum;
- pool and traffic-class gauges cover the trailing metrics_window_seconds;
- reconciliation gauges describe each source's latest closed day (alerts/rules.py
  closed_days, what the ledger_drift rule judges) among the last refetch_days, computed at
  most once a RECONCILE_CACHE_SECONDS; its fetch status is read on every scrape.

One prefix, breakeven_, and unit suffixes. Labels stay bounded: backend class, provider
(known providers, else "other"), pool, reason, alert name; traffic classes (service x
provider x model) and services are capped at the busiest CLASS_LIMIT and SERVICE_LIMIT;
sources are the configured [[reconcile.sources]].
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator
from concurrent.futures import Future
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import TYPE_CHECKING

import sqlalchemy as sa
from fastapi import APIRouter, Response
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector as PrometheusCollector

from breakeven.collector.alerts import inputs, store
from breakeven.collector.alerts.drift import BillDay, BillFigures, closed_days
from breakeven.collector.alerts.notify import OUTCOMES
from breakeven.collector.alerts.rules import FIRING, PENDING
from breakeven.collector.calls.pipeline import Pipeline
from breakeven.collector.config.settings import Settings
from breakeven.collector.price.periods import utc
from breakeven.collector.providers import PROVIDER_ALIASES
from breakeven.collector.reports.errors import ReportError
from breakeven.collector.store import queries
from breakeven.collector.store.bills import fetch_statuses

if TYPE_CHECKING:
    from breakeven.collector.alerts.runner import AlertRunner
    from breakeven.collector.ingest.offload import TraceDecoder

log = logging.getLogger("breakeven.metrics")
PREFIX = "breakeven_"
KNOWN_PROVIDERS = frozenset(PROVIDER_ALIASES.values())
CLASS_LIMIT = 100
SERVICE_LIMIT = 1000
SERVICE_HORIZON = timedelta(days=7)  # services listed by last call: those that called in this long
# The reconciliation figures change when a bill is fetched (daily) or a late call lands on a
# closed day: computing them (a reconciliation over refetch_days) once a minute is plenty.
RECONCILE_CACHE_SECONDS = 60.0
COMMIT_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
# /api/v1/ingest counter -> outcome of breakeven_ingest_spans_total (the outcomes add up to received).
SPAN_OUTCOMES = {
    "llm_spans_stored": "stored",
    "duplicates_ignored": "duplicate",
    "non_llm_dropped": "not_llm",
    "rejected_total": "rejected",
}
PLAIN_COUNTERS = {
    "spans_received": "ingest_spans_received",
    "calls_stored": "ingest_calls_stored",
    "spans_merged": "ingest_spans_merged",
    "log_records_received": "ingest_log_records_received",
    "prompt_hashes_from_logs": "ingest_prompt_hashes_from_logs",
    "failed_calls_unlinked": "ingest_failed_calls_unlinked",
    "sdk_calls_unlinked": "ingest_sdk_calls_unlinked",
    "metric_points_received": "ingest_metric_points_received",
}
POOL_GAUGES = (
    "pool_utilization_ratio",
    "pool_breakeven_utilization_ratio",
    "pool_cost_usd",
    "pool_alternative_cost_usd",
    "pool_idle_spend_usd",
    "pool_cost_per_million_tokens_usd",
    "pool_tokens",
)
# Every family the scrape-time collector yields (name without the prefix) and its help text.
HELP = {
    "ingest_queue_depth_spans": "Spans and prompt hints queued for the writer, not yet committed.",
    "ingest_writer_up": "1 while the writer thread runs.",
    "ingest_decode_processes": "Processes decoding trace exports (0: threads of the server's process).",
    "ingest_decode_process_deaths": (
        "Times a decode process died, hung or failed to start and its pool was replaced (this process)."
    ),
    "ingest_refused_exports": "Exports answered 503 because their commit failed (this process).",
    "metrics_window_seconds": "The trailing window the pool and traffic-class gauges cover.",
    "notifications": "Notification deliveries by notifier and outcome: sent, failed (an attempt), dropped.",
    "notifications_queued": "Notification deliveries waiting, retries included.",
    "alert_evaluations": "Alert rule evaluations done by this process.",
    "alert_evaluation_failures": "Evaluations, or rules' inputs, that could not be read.",
    "alert_last_evaluation_timestamp_seconds": "When this process last evaluated the rules.",
    "ingest_spans": "Spans received, by what became of them (whole ledger).",
    "ingest_rejected_spans": "Spans rejected as unusable, by reason (whole ledger).",
    "ingest_spans_received": "Spans received over OTLP (whole ledger).",
    "ingest_calls_stored": "LLM calls stored, after merging spans (whole ledger).",
    "ingest_spans_merged": "LLM spans merged into a call with other spans (whole ledger).",
    "ingest_log_records_received": "OTLP log records received (whole ledger).",
    "ingest_prompt_hashes_from_logs": "Prompt hashes taken from log records (whole ledger).",
    "ingest_failed_calls_unlinked": "Failed calls that may be another trace's half of one call, left alone: "
    "not the only match (whole ledger).",
    "ingest_sdk_calls_unlinked": "Successful calls that may be another trace's half of one call (a client's own span "
    "without a response id), left alone: not the only match (whole ledger).",
    "ingest_metric_points_received": "OTLP metric data points received (whole ledger).",
    "ingest_gpu_points": "GPU metric points by outcome (stored, unmatched, invalid) and source (whole ledger).",
    "ingest_gpu_scrapes_failed": "Scrapes of GPU metric endpoints that failed (whole ledger).",
    "spend_usd": "Spend since the first call: per-token cost, and pool cost allocated to calls (idle hours aside).",
    "calls": "LLM calls stored, by backend class and provider.",
    "unpriced_calls": "Calls stored without a price, by reason.",
    "pool_utilization_ratio": "Busy box-seconds over box-seconds in the window.",
    "pool_breakeven_utilization_ratio": "Utilization at which the pool costs what buying its traffic would.",
    "pool_cost_usd": "The pool's fixed and variable cost over the window.",
    "pool_alternative_cost_usd": "What the pool's alternative would have charged for the window's traffic.",
    "pool_idle_spend_usd": "Fixed cost x (1 - utilization) over the window: money spent on nothing.",
    "pool_cost_per_million_tokens_usd": "Cost per million tokens served in the window.",
    "pool_tokens": "Tokens (in and out) the pool served in the window.",
    "class_projected_monthly_spend_usd": "A per-token traffic class's spend over the window as a month's run rate.",
    "class_self_hosted_monthly_cost_usd": "The month's cost of the cheapest pool that could serve the class.",
    "service_last_call_timestamp_seconds": "Start of each service's latest call (services seen in the last 7 days).",
    "alerts": "Alert instances of each built-in rule that are pending or firing.",
    "reconcile_closed_day_timestamp_seconds": (
        "Start of the source's latest closed day with a bill (in the last refetch_days), the day the "
        "reconcile coverage and delta gauges describe."
    ),
    "reconcile_coverage_ratio": "Ledger tokens over billed tokens on the source's latest closed day.",
    "reconcile_delta_usd": "Billed cost less ledger cost on the source's latest closed day (bills converted to USD).",
    "reconcile_delta_ratio": "Billed cost less ledger cost over billed cost on the source's latest closed day.",
    "reconcile_last_attempt_timestamp_seconds": "When the source's bill was last fetched, successfully or not.",
    "reconcile_last_success_timestamp_seconds": "When the source's bill was last fetched successfully.",
    "reconcile_fetch_up": "1 when the source's last fetch succeeded, 0 when it failed.",
    "database_up": "1 when every ledger figure of this scrape could be read, else 0.",
}


def provider_label(provider: str | None) -> str:
    """A bounded provider label: a known provider, "none", or "other"."""
    if provider is None:
        return "none"
    return provider if provider in KNOWN_PROVIDERS else "other"


class Metrics:
    """The registry /metrics serves: in-process instruments plus the ledger collector."""

    def __init__(
        self,
        engine: sa.Engine,
        settings: Settings,
        pipeline: Pipeline | None = None,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.registry = CollectorRegistry()
        self.commit_seconds = Histogram(
            PREFIX + "ingest_commit_duration_seconds",
            "Time the writer took to build and commit one group commit (successful or not).",
            buckets=COMMIT_BUCKETS,
            registry=self.registry,
        )
        self.refused = 0  # exports answered 503 because their commit failed (only the writer thread adds)
        self.alerts: AlertRunner | None = None
        self.decoder: TraceDecoder | None = None
        self.ledger = _LedgerCollector(engine, settings, pipeline, self, clock)
        self.registry.register(self.ledger)

    def observe_commit(self, seconds: float, futures: list[Future[None]]) -> None:
        """The pipeline's commit hook: latency, and exports refused because the commit failed. Never raises
        (it runs on the writer thread)."""
        try:
            self.commit_seconds.observe(seconds)
            self.refused += sum(1 for f in futures if f.done() and not f.cancelled() and f.exception() is not None)
        except Exception:  # pragma: no cover - a metrics bug must not stop ingest
            log.exception("metrics: commit hook failed")

    def refused_total(self) -> int:
        """Exports refused so far by this process."""
        return self.refused

    def exposition(self) -> bytes:
        """The registry in the Prometheus text format."""
        return generate_latest(self.registry)


def metrics_router(metrics: Metrics) -> APIRouter:
    """GET /metrics."""
    router = APIRouter()

    @router.get("/metrics", include_in_schema=False)
    def get_metrics() -> Response:
        """Prometheus text format; ledger figures computed now."""
        return Response(metrics.exposition(), media_type=CONTENT_TYPE_LATEST)

    return router


def _gauge(name: str, *labels: str) -> GaugeMetricFamily:
    return GaugeMetricFamily(PREFIX + name, HELP[name], labels=list(labels))


def _counter(name: str, *labels: str) -> CounterMetricFamily:
    return CounterMetricFamily(PREFIX + name, HELP[name], labels=list(labels))


class _LedgerCollector(PrometheusCollector):
    """Scrape-time figures: in-process state, and the database's."""

    def __init__(
        self,
        engine: sa.Engine,
        settings: Settings,
        pipeline: Pipeline | None,
        owner: Metrics,
        clock: Callable[[], datetime],
    ) -> None:
        self.engine = engine
        self.settings = settings
        self.pipeline = pipeline
        self.owner = owner
        self.clock = clock
        self._bills: tuple[float, BillFigures] | None = None  # (monotonic time computed, figures)

    def collect(self) -> Iterator[Metric]:
        yield from self._in_process()
        now = self.clock()
        up = True
        sections = (
            self._ingest,
            self._spend,
            self._pools,
            self._classes,
            self._services,
            self._alerts,
            self._reconcile,
        )
        for section in sections:
            try:
                with self.engine.connect() as conn:
                    yield from section(conn, now)
            except Exception as exc:  # a scrape never fails on the database: it says so instead
                up = False
                log.warning("metrics: %s failed: %s: %s", section.__name__, exc.__class__.__name__, exc)
        database = _gauge("database_up")
        database.add_metric([], 1.0 if up else 0.0)
        yield database

    def _in_process(self) -> Iterator[Metric]:
        depth, writer = _gauge("ingest_queue_depth_spans"), _gauge("ingest_writer_up")
        if self.pipeline is not None:
            depth.add_metric([], float(self.pipeline.depth))
            writer.add_metric([], 1.0 if self.pipeline.writer_alive else 0.0)
        refused = _counter("ingest_refused_exports")
        refused.add_metric([], float(self.owner.refused))
        window = _gauge("metrics_window_seconds")
        window.add_metric([], float(self.settings.metrics_window_seconds))
        yield from (depth, writer, refused, window)
        if self.owner.decoder is not None:
            processes, deaths = _gauge("ingest_decode_processes"), _counter("ingest_decode_process_deaths")
            processes.add_metric([], float(self.owner.decoder.processes))
            deaths.add_metric([], float(self.owner.decoder.deaths))
            yield from (processes, deaths)
        runner = self.owner.alerts
        if runner is None:
            return
        sent = _counter("notifications", "notifier", "outcome")
        counts = runner.dispatcher.snapshot()
        for name in runner.notifiers.names():
            for outcome in OUTCOMES:
                sent.add_metric([name, outcome], float(counts.get((name, outcome), 0)))
        queued = _gauge("notifications_queued")
        queued.add_metric([], float(runner.dispatcher.queued))
        evaluations = _counter("alert_evaluations")
        evaluations.add_metric([], float(runner.evaluations))
        failures = _counter("alert_evaluation_failures")
        failures.add_metric([], float(runner.failures))
        yield from (sent, queued, evaluations, failures)
        if runner.last_evaluation is not None:
            last = _gauge("alert_last_evaluation_timestamp_seconds")
            last.add_metric([], runner.last_evaluation.timestamp())
            yield last

    def _ingest(self, conn: sa.Connection, now: datetime) -> Iterator[Metric]:
        totals = queries.ingest_totals(conn)
        spans = _counter("ingest_spans", "outcome")
        for key, outcome in SPAN_OUTCOMES.items():
            spans.add_metric([outcome], float(totals[key]))
        rejected = _counter("ingest_rejected_spans", "reason")
        for reason, n in sorted(totals["rejected"].items()):
            rejected.add_metric([reason], float(n))
        gpu = _counter("ingest_gpu_points", "outcome", "source")
        for outcome, by_source in sorted(totals["gpu_points"].items()):
            for source, n in sorted(by_source.items()):
                gpu.add_metric([outcome, source], float(n))
        scrapes = _counter("ingest_gpu_scrapes_failed")
        scrapes.add_metric([], float(totals["gpu_scrapes_failed"]))
        yield from (spans, rejected, gpu, scrapes)
        for key, name in PLAIN_COUNTERS.items():
            counter = _counter(name)
            counter.add_metric([], float(totals[key]))
            yield counter

    def _spend(self, conn: sa.Connection, now: datetime) -> Iterator[Metric]:
        spend, calls = (
            _counter("spend_usd", "backend_class", "provider"),
            _counter("calls", "backend_class", "provider"),
        )
        # Summed as Decimal; float only at exposition (Prometheus samples are floats).
        merged: dict[tuple[str, str], tuple[Decimal, int]] = {}
        for t in inputs.spend_totals(conn, self.settings.pricing, now):
            key = (t.backend_class, provider_label(t.provider))
            usd, n = merged.get(key, (Decimal(0), 0))
            merged[key] = (usd + t.cost_usd, n + t.calls)
        for key, (usd, n) in sorted(merged.items()):
            spend.add_metric(list(key), float(usd))
            calls.add_metric(list(key), float(n))
        unpriced = _counter("unpriced_calls", "reason")
        for reason, count in sorted(inputs.unpriced_totals(conn).items()):
            unpriced.add_metric([reason], float(count))
        yield from (spend, calls, unpriced)

    def _pools(self, conn: sa.Connection, now: datetime) -> Iterator[Metric]:
        since = now - timedelta(seconds=self.settings.metrics_window_seconds)
        names = POOL_GAUGES
        families = {name: _gauge(name, "pool") for name in names}
        for f in inputs.pool_figures(conn, self.settings.pricing, since, now):
            values = (f.utilization, f.break_even_utilization, f.cost_usd, f.alternative_usd, f.idle_usd,
                      f.cost_per_million_usd, f.tokens)  # fmt: skip
            for name, value in zip(names, values, strict=True):
                if value is not None:  # no break-even, no alternative price, no tokens: no sample
                    families[name].add_metric([f.pool], float(value))
        yield from families.values()

    def _classes(self, conn: sa.Connection, now: datetime) -> Iterator[Metric]:
        since = now - timedelta(seconds=self.settings.metrics_window_seconds)
        figures = inputs.class_figures(conn, self.settings.pricing, since, now)
        figures.sort(key=lambda c: c.projected_monthly_usd, reverse=True)
        labels = ("service", "provider", "model", "backend_class")
        projected = _gauge("class_projected_monthly_spend_usd", *labels)
        self_hosted = _gauge("class_self_hosted_monthly_cost_usd", *labels)
        for c in figures[:CLASS_LIMIT]:
            key = [c.service or "", provider_label(c.provider), c.model or "", c.backend_class]
            projected.add_metric(key, float(c.projected_monthly_usd))
            if c.self_hosted_monthly_usd is not None:
                self_hosted.add_metric(key, float(c.self_hosted_monthly_usd))
        yield from (projected, self_hosted)

    def _services(self, conn: sa.Connection, now: datetime) -> Iterator[Metric]:
        last = _gauge("service_last_call_timestamp_seconds", "service")
        for service, at in sorted(inputs.last_calls(conn, now - SERVICE_HORIZON, SERVICE_LIMIT).items()):
            last.add_metric([service], at.timestamp())
        yield last

    def _alerts(self, conn: sa.Connection, now: datetime) -> Iterator[Metric]:
        alerts = _gauge("alerts", "alertname", "severity", "state")
        counts = store.state_counts(conn)
        rules = {(r.name, r.severity) for r in self.settings.alerts.rules}
        rules |= {(rule, severity) for rule, severity, _ in counts}
        for rule, severity in sorted(rules):
            for state in (PENDING, FIRING):
                alerts.add_metric([rule, severity, state], float(counts.get((rule, severity, state), 0)))
        yield alerts

    def _reconcile(self, conn: sa.Connection, now: datetime) -> Iterator[Metric]:
        sources = [s.name for s in self.settings.reconcile.sources]
        attempted = _gauge("reconcile_last_attempt_timestamp_seconds", "source")
        succeeded = _gauge("reconcile_last_success_timestamp_seconds", "source")
        fetch_up = _gauge("reconcile_fetch_up", "source")
        statuses = fetch_statuses(conn) if sources else {}
        for name in sources:
            status = statuses.get(name)
            if status is None:
                continue  # never fetched nor imported: nothing to tell yet
            attempted.add_metric([name], utc(status.attempted_at).timestamp())
            if status.succeeded_at is not None:
                succeeded.add_metric([name], utc(status.succeeded_at).timestamp())
            fetch_up.add_metric([name], 0.0 if status.error else 1.0)
        day = _gauge("reconcile_closed_day_timestamp_seconds", "source")
        coverage = _gauge("reconcile_coverage_ratio", "source")
        delta = _gauge("reconcile_delta_usd", "source")
        delta_ratio = _gauge("reconcile_delta_ratio", "source")
        for name, d in sorted(self._latest_closed_days(conn, now).items()):
            if name not in sources:
                continue
            day.add_metric([name], datetime.combine(d.day, datetime.min.time(), UTC).timestamp())
            if d.coverage is not None:
                coverage.add_metric([name], float(d.coverage))
            if d.delta_usd is not None:
                delta.add_metric([name], float(d.delta_usd))
            if d.delta_percent is not None:
                delta_ratio.add_metric([name], float(d.delta_percent / 100))
        yield from (attempted, succeeded, fetch_up, day, coverage, delta, delta_ratio)

    def _latest_closed_days(self, conn: sa.Connection, now: datetime) -> dict[str, BillDay]:
        """Each source's latest closed day with a bill, from figures at most RECONCILE_CACHE_SECONDS old."""
        config = self.settings.reconcile
        if not config.sources:
            return {}
        cached = self._bills
        if cached is None or time.monotonic() - cached[0] >= RECONCILE_CACHE_SECONDS:
            try:
                figures = inputs.bill_days(
                    conn, self.settings.pricing, config, now, timedelta(days=config.refetch_days)
                )
            except ReportError as exc:  # a bill in a currency without a rate: a config gap, not the database
                log.warning("metrics: reconciliation figures: %s", exc)
                figures = BillFigures(now)
            cached = self._bills = (time.monotonic(), figures)
        latest: dict[str, BillDay] = {}
        for d in closed_days(cached[1]):
            if d.source not in latest or d.day > latest[d.source].day:
                latest[d.source] = d
        return latest
