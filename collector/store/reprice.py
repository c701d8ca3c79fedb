"""`breakeven reprice`: recompute the stored prices of a date range after the prices change.

Each call whose start time is in [since, until) is priced again exactly as ingest prices
it (collector/price/ledger.py, with the current config), and its price columns are
rewritten when the result differs. Calls are read in keyset order (start_time, trace_id,
span_id), one batch per transaction, so an interrupted run keeps what it committed and
a second run finds nothing left to do.

Every run that changes the ledger leaves one reprice_runs row: written when it starts
(finished_at empty), its running totals updated in each batch's transaction, and
finished_at set at the end; a row without finished_at is a run that was interrupted (or
is still running). A dry run writes nothing, not even that row.

DuckDB lets one process open a file for writing, so there reprice runs only while no
collector has the file open. On PostgreSQL it runs beside serving collectors: an update
applies only if the row is still the version that was read (same received_at; the
writer replaces a call by delete and insert), so a call re-merged meanwhile keeps the
price its collector gave it and is counted as skipped.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import re
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any, TextIO

import pyarrow as pa
import sqlalchemy as sa

from breakeven.collector.price.catalog import library_source
from breakeven.collector.price.config import PricingConfig
from breakeven.collector.price.ledger import ledger_pricer
from breakeven.collector.price.money import STORAGE_PRECISION, STORAGE_SCALE, ZERO
from breakeven.collector.price.periods import iso_z, parse_instant
from breakeven.collector.records import PRICED, UNPRICED, Call, CallPrice
from breakeven.collector.store.engine import head_revision, make_engine
from breakeven.collector.store.hours import floor_hour, mark_dirty
from breakeven.collector.store.rows import PRICE_COLUMNS, call_from_row, decimal_text
from breakeven.collector.store.schema import calls, reprice_runs

BATCH_SIZE = 10_000
_MIN_WINDOW = timedelta(milliseconds=1)
_PRICE_COLUMNS = ("pool", "price_status", "cost_usd", "list_cost_usd", "price_source", "price_entry", "unpriced_reason")
_MONEY_COLUMNS = ("cost_usd", "list_cost_usd")
_KEY_COLUMNS = ("trace_id", "span_id", "received_at")  # a row as read: received_at changes when a call is replaced

Progress = Callable[[int, int], None]  # (calls examined so far, calls in the range)


class RepriceError(Exception):
    """reprice cannot run as asked; the message names the flag or setting and what to do."""


@dataclass(slots=True)
class RepriceRun:
    """One run: what it was asked, and its tally so far (calls and USD)."""

    run_id: str
    actor: str
    since: datetime
    until: datetime
    price_version: str
    dry_run: bool = False
    started_at: datetime | None = None
    finished_at: datetime | None = None
    examined: int = 0
    repriced: int = 0  # rows rewritten (in a dry run: that would be)
    newly_priced: int = 0
    newly_unpriced: int = 0
    skipped: int = 0  # replaced by a collector between read and update (PostgreSQL only)
    total_before_usd: Decimal = ZERO  # per-token cost_usd of the range; pool calls are costed when read
    total_after_usd: Decimal = ZERO


_TALLY_FIELDS = (
    "examined",
    "repriced",
    "newly_priced",
    "newly_unpriced",
    "skipped",
    "total_before_usd",
    "total_after_usd",
)


def parse_bound(flag: str, text: str) -> datetime:
    """A --since/--until value: a date (00:00 UTC) or an ISO 8601 datetime (naive is UTC)."""
    try:
        return parse_instant(text).astimezone(UTC)
    except ValueError:
        raise RepriceError(f"{flag}: not a date (YYYY-MM-DD, or an ISO 8601 datetime): {text!r}") from None


def price_version(config: PricingConfig) -> str:
    """The prices a run applies: the genai-prices release, and a digest of the book and pool matches.

    The digest is over the parsed config, not the file's bytes, so comments and layout do
    not change it: entries and discounts (order-free), then each pool's name and match in
    order (the first pool that matches takes a call). Entry sources (the file's path) are
    left out: the same prices moved to another file are the same prices.
    """
    entries = [{k: v for k, v in dataclasses.asdict(e).items() if k != "source"} for e in config.book.entries]
    doc = {
        "prices": sorted(entries, key=_canonical),
        "discounts": sorted((dataclasses.asdict(d) for d in config.book.discounts), key=_canonical),
        "pools": [{"name": p.name, "match": dataclasses.asdict(p.match)} for p in config.pools],
    }
    digest = hashlib.sha256(_canonical(doc).encode()).hexdigest()[:12]
    return f"{library_source()}; book sha256:{digest}"


def _canonical(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), default=_json_scalar)


def _json_scalar(value: Any) -> str:
    if isinstance(value, Decimal):
        return format(value.normalize(), "f")  # 0.30 and 0.3 are one price
    if isinstance(value, date):
        return value.isoformat()
    raise TypeError(f"not canonical: {value!r}")


def open_ledger(url: str, duckdb_memory_limit: str | None = None) -> sa.Engine:
    """An engine on a migrated ledger this process may write; RepriceError naming the problem if not."""
    parsed = sa.engine.make_url(url)
    is_duckdb = parsed.get_backend_name() == "duckdb"
    if is_duckdb and parsed.database not in (None, "", ":memory:") and not Path(parsed.database).exists():
        raise RepriceError(f"db: no DuckDB file at {parsed.database} (nothing to reprice)")
    engine = make_engine(url, duckdb_memory_limit)
    try:
        revision, head = _schema_revision(engine), head_revision(engine)
    except Exception as exc:
        engine.dispose()
        lock = re.search(r"Conflicting lock is held in .*?\(PID (\d+)\)", str(exc))
        if is_duckdb and lock:
            raise RepriceError(
                f"db: the DuckDB file {parsed.database} is in use by a running collector (PID {lock[1]}); "
                "stop it, reprice, then start it again (DuckDB lets one process open a file for writing), "
                "or reprice through a PostgreSQL ledger, where reprice runs beside serving collectors"
            ) from None
        raise
    if revision != head:
        engine.dispose()
        at = "has no schema" if revision is None else f"is at schema revision {revision}, not {head}"
        raise RepriceError(f"db: the ledger {at}; run `breakeven migrate` first")
    return engine


def _schema_revision(engine: sa.Engine) -> str | None:
    # Read alembic's table directly: store.engine.current_revision needs alembic's DuckDB
    # dialect, which only migrations/env.py registers (so it fails in a process that has
    # not migrated).
    with engine.connect() as conn:
        if not sa.inspect(conn).has_table("alembic_version"):
            return None
        return conn.execute(sa.text("SELECT version_num FROM alembic_version")).scalar()


def plan_run(
    config: PricingConfig, since: datetime, until: datetime, *, actor: str, dry_run: bool = False
) -> RepriceRun:
    """A run not yet started, with a fresh run id; RepriceError when the range is empty."""
    if until <= since:
        raise RepriceError(f"--until: must be after --since ({until.isoformat()} is not after {since.isoformat()})")
    return RepriceRun(uuid.uuid4().hex, actor, since, until, price_version(config), dry_run)


def reprice(
    engine: sa.Engine,
    config: PricingConfig,
    run: RepriceRun,
    *,
    batch_size: int = BATCH_SIZE,
    progress: Progress | None = None,
) -> RepriceRun:
    """Price every call of the run's range again with `config`; rewrite the ones that changed."""
    price = ledger_pricer(config)
    in_range = sa.and_(calls.c.start_time >= run.since, calls.c.start_time < run.until)
    with engine.connect() as conn:
        total = conn.execute(sa.select(sa.func.count()).select_from(calls).where(in_range)).scalar_one()
    run.started_at = _now()
    if not run.dry_run:
        with engine.begin() as conn:
            conn.execute(reprice_runs.insert().values(_audit_values(run)))
    after: tuple[datetime, str, str] | None = None  # the last call done, in keyset order
    low = run.since  # every call that started before this is done
    window = _first_window(run.since, run.until, total, batch_size)
    while low < run.until:
        high = low + min(window, run.until - low)  # never past until (nor past datetime.max)
        tally = dataclasses.replace(run)  # adopted only once its batch committed
        with engine.begin() as conn:
            rows = conn.execute(
                sa.select(calls)
                .where(calls.c.start_time >= low, calls.c.start_time < high, *_past(after))
                .order_by(calls.c.start_time, calls.c.trace_id, calls.c.span_id)
                .limit(batch_size)
            ).all()
            if rows:
                _reprice_batch(conn, rows, price, tally)
        for name in _TALLY_FIELDS:
            setattr(run, name, getattr(tally, name))
        if len(rows) == batch_size:  # the window holds more: go on from the last call done
            last = rows[-1]
            after = (last.start_time, last.trace_id, last.span_id)
            window = max(_MIN_WINDOW, 2 * (last.start_time - low))
            low = last.start_time
        else:  # the window is done: move past it, wider
            low, window = high, min(2 * window, run.until - run.since)
        if rows and progress is not None:
            progress(run.examined, max(total, run.examined))
    run.finished_at = _now()
    if not run.dry_run:
        with engine.begin() as conn:
            conn.execute(_audit_update(run))
    return run


def _reprice_batch(
    conn: sa.Connection, rows: Sequence[Any], price: Callable[[Call], CallPrice], tally: RepriceRun
) -> None:
    """Price the rows again, rewrite those that changed (not in a dry run), count them into tally."""
    priced = [(row, _stored_price(row), price(call_from_row(row))) for row in rows]
    changes = [(row, new) for row, old, new in priced if new != old]
    applied = {(r.trace_id, r.span_id) for r, _ in changes}
    if changes and not tally.dry_run:
        applied = _update(conn, changes)
        mark_dirty(conn, {floor_hour(r.start_time) for r, _ in changes if (r.trace_id, r.span_id) in applied})
    for row, old, new in priced:
        if new != old and (row.trace_id, row.span_id) not in applied:
            tally.skipped += 1
            new = old  # the row keeps the price its collector stored
        _tally(tally, old, new)
    if not tally.dry_run:
        conn.execute(_audit_update(tally))


def _first_window(since: datetime, until: datetime, total: int, batch_size: int) -> timedelta:
    """How long a stretch of start times should hold about one batch, were calls spread evenly.

    Each batch reads one bounded stretch: DuckDB has no index, so a query bounded only
    below would scan (and sort) the whole rest of the range for every batch (seconds per
    batch on ten million calls). The stretch adapts as it goes: after a full batch, twice
    what that batch spanned; after a short one, doubled.
    """
    span = until - since
    return span if total <= batch_size else max(_MIN_WINDOW, span * batch_size / total)


def _now() -> datetime:
    return datetime.now(UTC)


def _past(after: tuple[datetime, str, str] | None) -> list[sa.ColumnElement[bool]]:
    """Keyset condition: rows after `after` in (start_time, trace_id, span_id) order."""
    if after is None:
        return []
    start, trace_id, span_id = after
    c = calls.c
    return [
        c.start_time >= start,  # a plain bound: DuckDB's zone maps and PostgreSQL's index use it
        sa.or_(
            c.start_time > start,
            sa.and_(
                c.start_time == start,
                sa.or_(c.trace_id > trace_id, sa.and_(c.trace_id == trace_id, c.span_id > span_id)),
            ),
        ),
    ]


def _stored_price(row: Any) -> CallPrice:
    m = row._mapping
    return CallPrice(
        status=m["price_status"] or UNPRICED,
        pool=m["pool"],
        cost_usd=m["cost_usd"],
        list_cost_usd=m["list_cost_usd"],
        source=m["price_source"],
        entry=m["price_entry"],
        unpriced_reason=m["unpriced_reason"],
    )


def _tally(run: RepriceRun, old: CallPrice, new: CallPrice) -> None:
    """Count one examined call; `new` is what the row holds now (old, when not rewritten)."""
    run.examined += 1
    if old.status == PRICED and old.cost_usd is not None:
        run.total_before_usd += old.cost_usd
    if new.status == PRICED and new.cost_usd is not None:
        run.total_after_usd += new.cost_usd
    if new == old:
        return
    run.repriced += 1
    run.newly_priced += old.status != PRICED and new.status == PRICED
    run.newly_unpriced += old.status != UNPRICED and new.status == UNPRICED


def _price_values(price: CallPrice) -> dict[str, Any]:
    return {column: getattr(price, attr) for column, attr in PRICE_COLUMNS}


def _update(conn: sa.Connection, changes: Sequence[tuple[Any, CallPrice]]) -> set[tuple[str, str]]:
    """Rewrite the price columns of changed rows still as read; the (trace_id, span_id) rewritten."""
    if conn.dialect.name == "duckdb":
        return _update_duckdb(conn, changes)
    # PostgreSQL: one statement over parallel arrays, whatever the batch size (a VALUES list
    # is one bound parameter per cell, and SQLAlchemy compiles it anew for every batch).
    columns = _change_columns(changes)
    done = conn.execute(
        _PG_UPDATE,
        {"lo": changes[0][0].start_time, "hi": changes[-1][0].start_time, **columns},
    )
    return {(t, s) for t, s in done}


_SET_PRICES = ", ".join(f"{name} = r.{name}" for name in _PRICE_COLUMNS)
_AS_READ = "calls.trace_id = r.trace_id AND calls.span_id = r.span_id AND calls.received_at = r.received_at"
_PG_ARRAYS = ", ".join(
    f"CAST(:{name} AS {'timestamptz' if name == 'received_at' else 'numeric' if name in _MONEY_COLUMNS else 'text'}[])"
    for name in _KEY_COLUMNS + _PRICE_COLUMNS
)
_PG_UPDATE = sa.text(
    f"UPDATE calls SET {_SET_PRICES} FROM unnest({_PG_ARRAYS}) AS r({', '.join(_KEY_COLUMNS + _PRICE_COLUMNS)})"
    f" WHERE calls.start_time BETWEEN :lo AND :hi AND {_AS_READ} RETURNING calls.trace_id, calls.span_id"
)


def _change_columns(changes: Sequence[tuple[Any, CallPrice]]) -> dict[str, list[Any]]:
    """The changed rows' identity (as read) and new prices, column by column."""
    columns: dict[str, list[Any]] = {name: [getattr(r, name) for r, _ in changes] for name in _KEY_COLUMNS}
    prices = [_price_values(p) for _, p in changes]
    columns.update({name: [v[name] for v in prices] for name in _PRICE_COLUMNS})
    return columns


_ARROW_SCHEMA = pa.schema(
    [
        pa.field("trace_id", pa.string()),
        pa.field("span_id", pa.string()),
        pa.field("received_at", pa.timestamp("us", tz="UTC")),
        *(
            pa.field(name, pa.decimal128(STORAGE_PRECISION, STORAGE_SCALE) if name in _MONEY_COLUMNS else pa.string())
            for name in _PRICE_COLUMNS
        ),
    ]
)


def _update_duckdb(conn: sa.Connection, changes: Sequence[tuple[Any, CallPrice]]) -> set[tuple[str, str]]:
    # One UPDATE ... FROM a registered Arrow table: DuckDB has no keys on calls, and the
    # start_time bounds let its zone maps skip every row group outside the batch.
    columns = _change_columns(changes)
    arrays = [pa.array(columns[f.name], f.type) for f in _ARROW_SCHEMA]
    raw = conn.connection.driver_connection
    assert raw is not None
    raw.register("_reprice", pa.Table.from_arrays(arrays, schema=_ARROW_SCHEMA))
    try:
        done = raw.execute(
            f"UPDATE calls SET {_SET_PRICES} FROM _reprice r"
            f" WHERE calls.start_time BETWEEN ? AND ? AND {_AS_READ} RETURNING calls.trace_id, calls.span_id",
            [changes[0][0].start_time, changes[-1][0].start_time],
        ).fetchall()
    finally:
        raw.unregister("_reprice")
    return {(t, s) for t, s in done}


def _audit_values(run: RepriceRun) -> dict[str, Any]:
    return {
        "run_id": run.run_id,
        "actor": run.actor,
        "started_at": run.started_at,
        "finished_at": run.finished_at,
        "since": run.since,
        "until": run.until,
        "price_version": run.price_version,
        "calls_repriced": run.repriced,
        "total_before_usd": run.total_before_usd,
        "total_after_usd": run.total_after_usd,
    }


def _audit_update(run: RepriceRun) -> sa.Update:
    return (
        reprice_runs.update()
        .where(reprice_runs.c.run_id == run.run_id)
        .values(
            finished_at=run.finished_at,
            calls_repriced=run.repriced,
            total_before_usd=run.total_before_usd,
            total_after_usd=run.total_after_usd,
        )
    )


def list_runs(conn: sa.Connection, limit: int = 100) -> list[dict[str, Any]]:
    """reprice_runs rows, newest first: times in ISO 8601 UTC, money as decimal strings (USD, as the money API)."""
    rows = conn.execute(
        sa.select(reprice_runs).order_by(reprice_runs.c.started_at.desc(), reprice_runs.c.run_id).limit(limit)
    ).mappings()
    out = []
    for m in rows:
        run = dict(m)
        for name in ("started_at", "finished_at", "since", "until"):
            run[name] = _iso(m[name])
        for name in ("total_before_usd", "total_after_usd"):
            run[name] = decimal_text(m[name])
        run["calls_repriced"] = int(m["calls_repriced"])
        out.append(run)
    return out


def _iso(value: datetime | None) -> str | None:
    return None if value is None else iso_z(value)


def summary(run: RepriceRun) -> str:
    """What a finished run did, for a human: counts, USD totals before and after, its id."""
    change = run.total_after_usd - run.total_before_usd
    lines = [
        f"range           {_iso(run.since)} to {_iso(run.until)} (start time; until excluded)",
        f"prices          {run.price_version}",
        f"calls examined  {run.examined:,}",
        f"calls repriced  {run.repriced:,}" + (" (dry run: would be; nothing written)" if run.dry_run else ""),
        f"newly priced    {run.newly_priced:,}",
        f"newly unpriced  {run.newly_unpriced:,}",
    ]
    if run.skipped:
        lines.append(f"skipped         {run.skipped:,} (replaced by a collector while repricing; priced by it)")
    lines += [
        f"total before    {decimal_text(run.total_before_usd)} USD (per-token calls; pool calls are costed when read)",
        f"total after     {decimal_text(run.total_after_usd)} USD ({'+' if change >= 0 else ''}{decimal_text(change)})",
        f"run id          {run.run_id}" + (" (dry run: no audit row)" if run.dry_run else ""),
    ]
    return "\n".join(lines)


class ProgressBar:
    """A progress bar on a stream: redrawn in place on a terminal, else a line every `step` percent."""

    def __init__(self, stream: TextIO, label: str = "reprice", width: int = 30, step: int = 10) -> None:
        self.stream = stream
        self.label = label
        self.width = width
        self.step = step
        self.tty = stream.isatty()
        self._last_step = 0  # lines at 10%, 20%, ... 100%
        self._last_draw = 0.0
        self._started = time.monotonic()
        self._drawn = False

    def __call__(self, done: int, total: int) -> None:
        percent = 100 if total <= 0 else min(100, done * 100 // total)
        if self.tty:
            now = time.monotonic()
            if percent < 100 and now - self._last_draw < 0.1:
                return  # a terminal needs no more than ten frames a second
            self._last_draw = now
            filled = self.width * percent // 100
            rate = done / max(now - self._started, 1e-9)
            bar = "#" * filled + "." * (self.width - filled)
            self.stream.write(f"\r{self.label} [{bar}] {percent:3d}%  {done:,}/{total:,} calls  {rate:,.0f}/s")
            self._drawn = True
        elif percent // self.step > self._last_step:
            self._last_step = percent // self.step
            self.stream.write(f"{self.label}: {percent}% ({done:,} of {total:,} calls)\n")
        self.stream.flush()

    def close(self) -> None:
        """End the bar's line on a terminal."""
        if self.tty and self._drawn:
            self.stream.write("\n")
            self.stream.flush()
