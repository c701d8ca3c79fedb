"""One source's bill brought into the ledger, and the attempt noted (`reconcile fetch`, `serve`).

An API source's reports are fetched over [first, last) and each stored replacing those
days; a FOCUS source's files (its `path` glob) are read and stored as one report. Either
way the attempt is noted with its error, or None, so `serve`'s scheduler and a reader of
reconcile_fetches can tell when a source was last tried and why it failed. A source's own
failure (a FetchError, a file that does not parse, a bug) is the result's error, never
raised; an error text names the source and never holds the admin key.

The store is handed in as a Ledger: the reconcile package sits below the store in the
layers (pyproject.toml), so the composition root binds collector/store/bills.py's functions
to its engine.
"""

from __future__ import annotations

import glob
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Protocol

from breakeven.collector.config.reconcile import ReconcileSource, admin_key
from breakeven.collector.reconcile.errors import BillError
from breakeven.collector.reconcile.fetch import FetchError, fetch_lines
from breakeven.collector.reconcile.files import read_bill_file
from breakeven.collector.records import BilledLine

MAX_ERROR_CHARS = 1000  # an error noted in reconcile_fetches: enough for a few files' reasons


class LastFetch(Protocol):
    """A source's last attempt as the store keeps it (store/bills.py's FetchStatus)."""

    @property
    def attempted_at(self) -> datetime: ...

    @property
    def error(self) -> str | None: ...


@dataclass(frozen=True, slots=True)
class Ledger:
    """collector/store/bills.py's functions bound to one engine."""

    replace_lines: Callable[[str, str, Sequence[date], Sequence[BilledLine]], int]
    record_fetch: Callable[[str, datetime, str | None], None]
    fetch_statuses: Callable[[], Mapping[str, LastFetch]]


@dataclass(frozen=True, slots=True)
class Synced:
    """What one attempt at a source did: lines stored by report (in report order), and why it
    failed, if it did (a FOCUS source may have stored some files and failed on another)."""

    source: str
    stored: dict[str, int] = field(default_factory=dict)
    error: str | None = None


def refetch_window(today: date, refetch_days: int) -> tuple[date, date]:
    """[first, last) of a fetch with no dates given: the last refetch_days days and today."""
    return today - timedelta(days=refetch_days), today + timedelta(days=1)


def fetch_source(
    ledger: Ledger, source: ReconcileSource, first: date, last: date, sleep: Callable[[float], None] = time.sleep
) -> Synced:
    """Fetch an API source's reports over [first, last), store each replacing those days and
    note the attempt; raises only when the attempt cannot be noted (the database)."""
    attempted = datetime.now(UTC)
    days = [first + timedelta(days=n) for n in range((last - first).days)]
    stored: dict[str, int] = {}
    error = None
    try:
        for report, lines in sorted(fetch_lines(source, first, last, sleep=sleep).items()):
            stored[report] = ledger.replace_lines(source.name, report, days, lines)
    except FetchError as exc:  # its message names the source and endpoint, never the key
        error = str(exc)
    except Exception as exc:  # a bug or the database: this source failed, the next is tried
        error = describe(exc, source)
    ledger.record_fetch(source.name, attempted, _bounded(error))
    return Synced(source.name, stored, error)


def import_source_files(ledger: Ledger, source: ReconcileSource) -> Synced:
    """Read every file a FOCUS source's `path` glob matches and store their lines as one
    report (so files covering the same days add up, as `reconcile import` of them all would),
    and note the attempt; a file that cannot be read is the error, the others are stored."""
    attempted = datetime.now(UTC)
    paths = sorted(glob.glob(source.path or "", recursive=True))
    errors = [] if paths else [f"{source.name}: no file matches {source.path}"]
    lines: list[BilledLine] = []
    for path in paths:
        try:
            lines.extend(read_bill_file(source, Path(path)))
        except BillError as exc:  # focus.py names the file in some errors only
            errors.append(f"{source.name}: {exc}" if Path(path).name in str(exc) else f"{source.name}: {path}: {exc}")
        except Exception as exc:
            errors.append(describe(exc, source, path))
    stored: dict[str, int] = {}
    try:
        if lines:
            stored["focus"] = ledger.replace_lines(source.name, "focus", [], lines)
    except Exception as exc:
        errors.append(describe(exc, source))
    error = "; ".join(errors) or None
    ledger.record_fetch(source.name, attempted, _bounded(error))
    return Synced(source.name, stored, error)


def describe(exc: BaseException, source: ReconcileSource, where: str = "") -> str:
    """An unexpected failure of a source (at `where`, a file) in one line: its class and first
    line, with the source's admin key blanked should the message hold it (fetch.py's own
    errors never do)."""
    said = next(iter(str(exc).strip().splitlines()), "")
    text = f"{source.name}: {where + ': ' if where else ''}{exc.__class__.__name__}" + (f": {said}" if said else "")
    key = admin_key(source)
    return text.replace(key, "[admin key]") if key else text


def _bounded(error: str | None) -> str | None:
    return error if error is None or len(error) <= MAX_ERROR_CHARS else error[: MAX_ERROR_CHARS - 3] + "..."
