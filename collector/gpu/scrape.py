"""The scraper thread of `breakeven serve`: every pool's Prometheus endpoints, every interval.

Each round fetches every configured endpoint at once (a few threads, each request with a
timeout of min(10 s, interval), as Prometheus's scrape_timeout), parses the exposition
with prometheus_client's parser, and commits the samples and the endpoint's health in one
transaction. A target that is down, slow, or answers something else is logged (once per
change of error, not every round), counted (its health row, and the ingest counter
gpu_scrapes_failed) and retried next round; nothing it does reaches the server. With
retention_days, the thread also merges minutes older than that into hours, once an hour.
"""

from __future__ import annotations

import logging
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta

from breakeven.collector import __version__
from breakeven.collector.gpu.samples import SCRAPE, buckets, from_exposition
from breakeven.collector.gpu.store import GpuStore, ScrapeOutcome
from breakeven.collector.price.pools import Pool

log = logging.getLogger("breakeven.gpu.scrape")
MAX_TIMEOUT_SECONDS = 10.0
MAX_BODY_BYTES = 16 * 1024 * 1024  # a DCGM exporter of 8 GPUs sends ~100 KiB
MAX_THREADS = 8
MERGE_EVERY_SECONDS = 3600.0
_ACCEPT = "text/plain;version=0.0.4;q=1,*/*;q=0.1"  # the text format prometheus_client parses

Counter = Callable[[dict[tuple[str, str], int]], None]


def scrape_targets(pools: Sequence[Pool]) -> list[tuple[str, str]]:
    """(url, pool) for every configured scrape endpoint, in config order."""
    return [(url, pool.name) for pool in pools if pool.gpu_metrics for url in pool.gpu_metrics.scrape]


def fetch(url: str, timeout: float) -> str:
    """The endpoint's exposition text; raises OSError (or ValueError) saying why not."""
    request = urllib.request.Request(url, headers={"Accept": _ACCEPT, "User-Agent": f"breakeven/{__version__}"})
    with urllib.request.urlopen(request, timeout=timeout) as reply:  # http(s) only: checked at start
        body: bytes = reply.read(MAX_BODY_BYTES + 1)
    if len(body) > MAX_BODY_BYTES:
        raise ValueError(f"exposition larger than {MAX_BODY_BYTES} bytes")
    return body.decode("utf-8", errors="replace")


def describe(exc: BaseException, timeout: float) -> str:
    """Why a scrape failed, in a line an operator can act on."""
    if isinstance(exc, urllib.error.HTTPError):
        return f"HTTP {exc.code} {exc.reason}"
    reason = exc.reason if isinstance(exc, urllib.error.URLError) else exc
    if isinstance(reason, TimeoutError):
        return f"timed out after {timeout:g} s"
    if isinstance(exc, ValueError):
        return f"not a Prometheus text exposition: {exc}"[:300]
    return f"{reason.__class__.__name__}: {reason}"[:300]


class Scraper:
    """Scrapes every configured endpoint each interval, on its own thread; merges old minutes."""

    def __init__(
        self,
        store: GpuStore,
        pools: Sequence[Pool],
        interval: float,
        retention_days: int = 0,
        count: Counter = lambda counters: None,
    ) -> None:
        self.store = store
        self.targets = scrape_targets(pools)
        self.interval = interval
        self.timeout = min(MAX_TIMEOUT_SECONDS, interval)
        self.retention_days = retention_days
        self.count = count
        self.rounds = 0
        self.failures = 0  # failed scrapes, and rounds whose health could not be stored
        self._errors: dict[str, str | None] = {}  # url -> its last error, to log changes only
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._pool = ThreadPoolExecutor(max(1, min(MAX_THREADS, len(self.targets))), "breakeven-scrape")
        self._merged_at = 0.0

    @property
    def needed(self) -> bool:
        """Whether there is anything to run: endpoints to scrape, or minutes to merge past retention."""
        return bool(self.targets) or self.retention_days > 0

    def start(self) -> None:
        """Start the thread; the first round runs at once."""
        self._thread = threading.Thread(target=self._run, name="breakeven-gpu-scrape", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 30.0) -> None:
        """Stop after the round under way."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)
        self._pool.shutdown(wait=False, cancel_futures=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            started = time.monotonic()
            self.scrape_all()
            if self.retention_days > 0 and started - self._merged_at >= MERGE_EVERY_SECONDS:
                self._merged_at = started
                self.merge_old_minutes()
            self._stop.wait(max(0.0, self.interval - (time.monotonic() - started)))

    def scrape_all(self) -> list[ScrapeOutcome]:
        """One round: every endpoint at once, their counters added in one go; the outcomes (never raises)."""
        results = list(self._pool.map(lambda target: self._scrape(*target), self.targets))
        counters: dict[tuple[str, str], int] = {}
        for _, found in results:
            for key, n in found.items():
                counters[key] = counters.get(key, 0) + n
        if counters:
            try:
                self.count(counters)
            except Exception as exc:  # a full or stopping queue: the counters are lost, the samples are not
                log.debug("scrape counters not queued: %s", exc)
        self.rounds += 1
        return [outcome for outcome, _ in results]

    def _scrape(self, url: str, pool: str) -> tuple[ScrapeOutcome, dict[tuple[str, str], int]]:
        """Fetch, parse and store one endpoint: its outcome and ingest counters (never raises)."""
        try:
            text = fetch(url, self.timeout)
            extracted = from_exposition(text, pool, url, time.time_ns())
            outcome = ScrapeOutcome(url, pool, datetime.now(UTC), samples=len(extracted.samples))
            self.store.write(buckets(extracted.samples), outcome)
            self._log_change(url, None)
            return outcome, extracted.counters(SCRAPE)
        except Exception as exc:
            error = describe(exc, self.timeout)
            outcome = ScrapeOutcome(url, pool, datetime.now(UTC), error=error)
            self.failures += 1
            self._log_change(url, error)
            try:
                self.store.write([], outcome)
            except Exception as db_exc:  # the database is down too: the log and the counter say it
                log.warning("scrape health of %s not stored: %s", url, db_exc.__class__.__name__)
            return outcome, {("gpu_scrapes_failed", ""): 1}

    def _log_change(self, url: str, error: str | None) -> None:
        before = self._errors.get(url)
        self._errors[url] = error
        if error is not None and error != before:
            log.warning("GPU metrics scrape of %s failed (retried every %g s): %s", url, self.interval, error)
        elif error is None and before is not None:
            log.info("GPU metrics scrape of %s works again", url)

    def merge_old_minutes(self, now: datetime | None = None) -> int:
        """Merge minutes older than retention_days into hours; rows merged (never raises)."""
        before = (now or datetime.now(UTC)) - timedelta(days=self.retention_days)
        before = before.replace(minute=0, second=0, microsecond=0)
        try:
            return self.store.merge_old_minutes(before, self._stop)
        except Exception as exc:
            self.failures += 1
            log.warning("merging old GPU metric minutes failed (retried in an hour): %s", exc)
            return 0
