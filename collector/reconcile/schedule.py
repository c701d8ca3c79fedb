"""The reconcile thread of `breakeven serve`: each source's bill fetched (or imported) when due.

The thread looks at the sources a few seconds after start (FIRST_LOOK_SECONDS), then about
every LOOK_SECONDS (a twelfth of the interval when that is shorter; each wait drawn at random
from half to one and a half of it). A source is due when reconcile_fetches holds no attempt
of it, or its last attempt is fetch_interval_hours old (RETRY_FAILED when that attempt
failed, if sooner). The attempt may be this collector's, another's sharing the database, or
`breakeven reconcile fetch`'s: so a restart does not fetch again what was just fetched, a
newly configured source is fetched at once, and collectors sharing PostgreSQL share the
work (the first to look once a source is due fetches it; the others see its attempt and
skip it). Two that look within one fetch of each other, replicas started together, may
both fetch a source once; storing replaces, so that costs a second read of the API, never
a double count, and the random waits part them.

An API source is fetched over the last refetch_days days and today; a FOCUS source's files
(its `path` glob) are all read again each time it is due (storing replaces, so an unchanged
file changes nothing). Nothing here reaches ingest or the server: a source's failure is
logged (its name and the error, never the key) and noted, and the next source is tried.
Stopping never waits for a fetch: stop() waits only for a database write under way, after
which this thread writes nothing (a request in flight is left to the exiting process).
"""

from __future__ import annotations

import logging
import random
import threading
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import ParamSpec, TypeVar

from breakeven.collector.config.reconcile import ReconcileConfig, ReconcileSource
from breakeven.collector.reconcile.sync import (
    LastFetch,
    Ledger,
    Synced,
    describe,
    fetch_source,
    import_source_files,
    refetch_window,
)

log = logging.getLogger("breakeven.reconcile")
FIRST_LOOK_SECONDS = (1.0, 3.0)  # the first look, at random in this range: data the day serve starts
LOOK_SECONDS = 300.0
RETRY_FAILED = timedelta(hours=1)  # a failed source is tried again this soon (a provider's outage, a fixed key)

P = ParamSpec("P")
R = TypeVar("R")


class _Stopping(BaseException):
    """Unwinds a sync once serve is stopping: a BaseException, so a sync's `except Exception` lets it by."""


def is_due(last: LastFetch | None, now: datetime, interval: timedelta) -> bool:
    """Whether a source whose last attempt was `last` is to be fetched now."""
    if last is None:
        return True
    wait = interval if last.error is None else min(interval, RETRY_FAILED)
    return now - last.attempted_at >= wait


class FetchScheduler:
    """Fetches each API source and imports each FOCUS source when due, on its own thread."""

    def __init__(
        self,
        ledger: Ledger,
        config: ReconcileConfig,
        *,
        interval_seconds: float | None = None,  # tests: the config's fetch_interval_hours otherwise
        look_seconds: float | None = None,
        first_look_seconds: tuple[float, float] = FIRST_LOOK_SECONDS,
    ) -> None:
        self.sources = config.sources
        self.refetch_days = config.refetch_days
        hours = config.fetch_interval_hours
        self.interval = timedelta(seconds=interval_seconds) if interval_seconds else timedelta(hours=hours)
        self.look_seconds = look_seconds or min(LOOK_SECONDS, self.interval.total_seconds() / 12)
        self.first_look_seconds = first_look_seconds
        self.looks = 0
        self._stop = threading.Event()
        self._writing = threading.Lock()  # held while the store is used; stop() waits on it
        self._thread: threading.Thread | None = None
        guard = self._guarded
        self.ledger = Ledger(guard(ledger.replace_lines), guard(ledger.record_fetch), guard(ledger.fetch_statuses))

    @property
    def needed(self) -> bool:
        """Whether there is a source to fetch or import."""
        return bool(self.sources)

    def start(self) -> None:
        """Start the thread; the first look comes within FIRST_LOOK_SECONDS."""
        self._thread = threading.Thread(target=self._run, name="breakeven-reconcile", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 30.0) -> None:
        """Write nothing more: wait for a database write under way, never for a fetch."""
        self._stop.set()
        if self._writing.acquire(timeout=timeout):
            self._writing.release()

    def _run(self) -> None:
        wait = random.uniform(*self.first_look_seconds)
        while not self._stop.wait(wait):
            try:
                self.look()
            except _Stopping:
                return
            wait = self.look_seconds * random.uniform(0.5, 1.5)

    def look(self) -> list[Synced]:
        """Fetch or import every source that is due, one after another; what each did. A source's
        failure is logged and noted and the next is tried; raises only _Stopping."""
        self.looks += 1
        done: list[Synced] = []
        for source in self.sources:
            if self._stop.is_set():
                raise _Stopping
            try:
                # Read again before each source: another collector may have fetched it meanwhile.
                if not is_due(self.ledger.fetch_statuses().get(source.name), datetime.now(UTC), self.interval):
                    continue
                synced = self._sync(source)
            except Exception as exc:  # the database: nothing could be noted; the next look tries again
                log.error("reconcile: %s (not noted)", describe(exc, source))
                continue
            if synced.error is not None:
                log.warning("reconcile: %s", synced.error)
            if synced.stored or synced.error is None:
                stored = ", ".join(f"{report} {n}" for report, n in synced.stored.items()) or "none"
                log.info("reconcile: %s: lines stored: %s", source.name, stored)
            done.append(synced)
        return done

    def _sync(self, source: ReconcileSource) -> Synced:
        if source.kind == "focus":
            return import_source_files(self.ledger, source)
        first, last = refetch_window(datetime.now(UTC).date(), self.refetch_days)
        return fetch_source(self.ledger, source, first, last, sleep=self._sleep)

    def _sleep(self, seconds: float) -> None:
        """A fetch's wait before it tries again, cut short by stop()."""
        if self._stop.wait(seconds):
            raise _Stopping

    def _guarded(self, use: Callable[P, R]) -> Callable[P, R]:
        """`use` of the store, under the write lock and never once stop() has begun."""

        def guarded(*args: P.args, **kwargs: P.kwargs) -> R:
            with self._writing:
                if self._stop.is_set():
                    raise _Stopping
                return use(*args, **kwargs)

        return guarded
