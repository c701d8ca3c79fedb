"""The alert scheduler: every interval, read the inputs, evaluate, persist, notify.

One thread, started by Collector.start. States live in the database and are read back on
every evaluation, so a restart picks up where it was (a firing alert stays firing and is
not notified again before its repeat interval) and several collectors sharing PostgreSQL
take turns: an evaluation holds a transaction-scoped advisory lock, and a replica that
cannot take it skips that round. Persisting comes before notifying: a crash in between
loses a notification (the next repeat, or Alertmanager's refresh, brings it back), never
pages twice.
"""

from __future__ import annotations

import logging
import socket
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime

import sqlalchemy as sa

from breakeven.collector.alerts import store
from breakeven.collector.alerts.inputs import IngestSamples, rule_inputs
from breakeven.collector.alerts.notify import Dispatcher, Notifiers
from breakeven.collector.alerts.rules import Evaluation, evaluate
from breakeven.collector.config.alerts import AlertsConfig, check_reconcile
from breakeven.collector.config.reconcile import ReconcileConfig
from breakeven.collector.price.config import PricingConfig

log = logging.getLogger("breakeven.alerts")
# pg_try_advisory_xact_lock key: "brkevalr" as a 64-bit integer, unlikely to meet another app's.
ADVISORY_LOCK_KEY = int.from_bytes(b"brkevalr", "big") & 0x7FFF_FFFF_FFFF_FFFF


def default_dashboard_url(host: str, port: int) -> str:
    """Where the dashboard answers, when alerts.dashboard_url does not say: this host and API port."""
    if host in ("0.0.0.0", "::", ""):
        host = socket.getfqdn()
    if ":" in host:
        host = f"[{host}]"
    return f"http://{host}:{port}"


class AlertRunner:
    """Evaluates the configured rules on an interval, on its own thread."""

    def __init__(
        self,
        engine: sa.Engine,
        config: AlertsConfig,
        pricing: PricingConfig,
        dashboard_url: str,
        refused: Callable[[], int] = lambda: 0,
        reconcile: ReconcileConfig | None = None,
    ) -> None:
        """SettingsError when a rule cannot be evaluated with this config (a ledger_drift rule without bills)."""
        self.reconcile = reconcile or ReconcileConfig()
        check_reconcile(config, self.reconcile)
        self.engine = engine
        self.config = config
        self.pricing = pricing
        self.dispatcher = Dispatcher(
            backoff=config.retry_backoff.total_seconds(),
            attempts=config.retry_attempts,
            timeout=config.timeout.total_seconds(),
        )
        self.notifiers = Notifiers(config, config.dashboard_url or dashboard_url, self.dispatcher)
        self.samples = IngestSamples(refused)
        self.evaluations = 0
        self.failures = 0  # evaluations that failed, and rules whose inputs could not be read
        self.last_evaluation: datetime | None = None
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        """Start the notifier and the scheduler threads; the first evaluation runs at once."""
        self.dispatcher.start()
        self._thread = threading.Thread(target=self._run, name="breakeven-alerts", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop evaluating; give queued notifications a last attempt."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(30)
        self.dispatcher.stop()

    def _run(self) -> None:
        interval = self.config.interval.total_seconds()
        while not self._stop.is_set():
            started = time.monotonic()
            try:
                self.tick()
            except Exception as exc:  # the database is down, say: count it, try again next round
                self.failures += 1
                log.warning("alert evaluation failed: %s: %s", exc.__class__.__name__, exc)
            self._stop.wait(max(0.0, interval - (time.monotonic() - started)))

    def tick(self, now: datetime | None = None) -> Evaluation | None:
        """One evaluation at `now` (default: the clock); None when another replica holds the turn."""
        with self._lock:
            now = now or datetime.now(UTC)
            try:
                with self.engine.connect() as conn:
                    self.samples.sample(conn, now)
            except Exception as exc:
                log.warning("alerts: cannot read the ingest counters: %s", exc.__class__.__name__)
            inputs, failed = rule_inputs(
                self.engine, self.pricing, self.config.rules, now, self.samples, self.reconcile
            )
            self.failures += len(failed)
            with self.engine.begin() as conn:
                if (
                    conn.dialect.name == "postgresql"
                    and not conn.execute(sa.select(sa.func.pg_try_advisory_xact_lock(ADVISORY_LOCK_KEY))).scalar()
                ):
                    return None
                previous = store.load_states(conn)
                evaluation = evaluate(self.config.rules, inputs, previous, now)
                store.save(conn, evaluation, previous)
            self.evaluations += 1
            self.last_evaluation = now
            for note in evaluation.notifications:
                log.info("alert %s: %s", note.alert.fingerprint, note.event)
            self.notifiers.send(evaluation.notifications, now)
            self.notifiers.refresh_alertmanager(evaluation.states.values(), now)
            return evaluation
