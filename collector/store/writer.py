"""The single writer: one transaction per group of exports (group commit).

DuckDB gets columnar batches through Arrow (executemany is far slower there) into
tables without keys or indexes (migration 0002); every by-trace delete or update is
bounded by start time, so DuckDB's zone maps keep it off the old row groups. The
pipeline de-duplicates before rows get here. PostgreSQL gets multi-row inserts with
ON CONFLICT DO NOTHING on its primary keys.

PostgreSQL may be shared by several collectors. There each commit is made in the locked
transaction of collector/store/shared.py, which write_in writes the batch in.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

import pyarrow as pa
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

from breakeven.collector.records import NOT_PRICED, Call, CallPrice, LlmSpan, SpanKey, WriteBatch
from breakeven.collector.store.hours import hours_of_ns, mark_dirty
from breakeven.collector.store.rows import (
    TIME_COLUMNS,
    call_columns,
    datetime_to_ns,
    ns_to_datetime,
    span_columns,
    span_from_row,
)
from breakeven.collector.store.schema import (
    calls,
    ingest_counters,
    llm_spans,
    prompt_hash_hints,
)

# A late span is looked up among the spans of its trace that started within this much of
# it: spans of one call overlap in time, so this bounds the lookup, not the merge.
TRACE_LOOKUP_WINDOW_NS = 3600 * 10**9

# How long a shared PostgreSQL keeps a prompt hash whose span has not come (prompt_hash_hints).
HINTS_KEPT = sa.text("interval '1 day'")

_ARROW_TYPES = {
    sa.BigInteger: pa.int64(),
    sa.Integer: pa.int32(),
    sa.Float: pa.float64(),
    sa.Boolean: pa.bool_(),
}
_MICROS = pa.timestamp("us", tz="UTC")


def _arrow_schema(table: sa.Table) -> pa.Schema:
    fields = []
    for col in table.columns:
        if col.name in TIME_COLUMNS:
            kind = _MICROS
        elif isinstance(col.type, sa.Numeric) and not isinstance(col.type, sa.Float):
            kind = pa.decimal128(col.type.precision or 20, col.type.scale or 10)
        else:
            kind = next((t for base, t in _ARROW_TYPES.items() if isinstance(col.type, base)), pa.string())
        fields.append(pa.field(col.name, kind))
    return pa.schema(fields)


_SCHEMAS = {"calls": _arrow_schema(calls), "llm_spans": _arrow_schema(llm_spans)}
_RECEIVED_SPAN_ROWS = _SCHEMAS["llm_spans"].remove(_SCHEMAS["llm_spans"].get_field_index("attributes"))


def _arrow_table(schema: pa.Schema, columns: Mapping[str, list[Any]]) -> pa.Table:
    arrays = []
    for f in schema:
        if f.type == _MICROS:
            # a view, not a cast: the same int64 buffer, without cast()'s checks
            arrays.append(pa.array(columns[f.name], pa.int64()).view(_MICROS))
        else:
            arrays.append(pa.array(columns[f.name], f.type))
    return pa.Table.from_arrays(arrays, schema=schema)


def span_rows_ipc(spans: Sequence[LlmSpan]) -> bytes:
    """The spans' llm_spans rows as an Arrow IPC stream, but for their audit attributes, and
    received_at left 0 (the commit sets it).

    Made in a decode process, where there are cores to spare: the writer's thread then
    inserts them as they are instead of building them. The
    attributes, the rows' largest column, travel once, in the spans (attributes_json).
    """
    return _ipc(_arrow_table(_RECEIVED_SPAN_ROWS, span_columns(spans, 0)))


def call_rows_ipc(calls: Sequence[Call], prices: Sequence[CallPrice]) -> bytes:
    """The priced calls' rows as an Arrow IPC stream, received_at left 0 (the commit sets it).

    Made in a decode process, as span_rows_ipc: pricing, the row columns and the Arrow
    table then cost the writer's thread nothing.
    """
    return _ipc(_arrow_table(_SCHEMAS["calls"], call_columns(calls, prices, 0)))


def _ipc(table: pa.Table) -> bytes:
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, table.schema) as stream:
        stream.write_table(table)
    return bytes(sink.getvalue())


def _received_table(streams: Sequence[bytes], received_at_us: int) -> pa.Table:
    """IPC streams of rows made in the decode processes as one table, received now."""
    table = pa.concat_tables([pa.ipc.open_stream(stream).read_all() for stream in streams])
    received = pa.array([received_at_us] * table.num_rows, pa.int64()).view(_MICROS)
    return table.set_column(table.schema.get_field_index("received_at"), "received_at", received)


def _span_rows_table(streams: Sequence[bytes], spans: Sequence[LlmSpan], received_at_us: int) -> pa.Table:
    """span_rows_ipc's streams of these spans as one table, with their attributes, received now."""
    table = _received_table(streams, received_at_us)
    schema = _SCHEMAS["llm_spans"]
    attributes = pa.array([s.attributes_json for s in spans], pa.string())
    return table.add_column(schema.get_field_index("attributes"), schema.field("attributes"), attributes)


def _bounds(keys: Sequence[SpanKey]) -> tuple[datetime, datetime]:
    return ns_to_datetime(min(k.start_ns for k in keys)), ns_to_datetime(max(k.start_ns for k in keys))


class LedgerWriter:
    """Writes batches in one transaction each; the only writer in its process."""

    def __init__(self, engine: sa.Engine) -> None:
        self.engine = engine
        self.is_duckdb = engine.dialect.name == "duckdb"

    def write(self, batch: WriteBatch, received_at_us: int) -> None:
        """Commit the batch, or raise and commit nothing."""
        if not self.is_duckdb:
            with self.engine.begin() as conn:
                self.write_in(conn, batch, received_at_us)
            return
        prices = batch.prices or [NOT_PRICED] * len(batch.calls)
        hours = _changed_hours(batch)
        span_table = (
            _span_rows_table(batch.span_rows, batch.new_spans, received_at_us)
            if batch.span_rows is not None
            else _arrow_table(_SCHEMAS["llm_spans"], span_columns(batch.new_spans, received_at_us))
        )
        call_table = (
            _received_table(batch.call_rows, received_at_us)
            if batch.call_rows is not None
            else _arrow_table(_SCHEMAS["calls"], call_columns(batch.calls, prices, received_at_us))
        )
        with self.engine.begin() as conn:
            self._write_duckdb(conn, batch, span_table, call_table)
            _duckdb_bookkeeping(conn, batch.counters, hours)

    def write_in(self, conn: sa.Connection, batch: WriteBatch, received_at_us: int) -> None:
        """PostgreSQL: write the batch in the caller's transaction (store/shared.py's `locked`)."""
        prices = batch.prices or [NOT_PRICED] * len(batch.calls)
        hours = _changed_hours(batch)
        span_cols = span_columns(batch.new_spans, received_at_us)
        call_cols = call_columns(batch.calls, prices, received_at_us)
        self._write_generic(conn, batch, span_cols, call_cols)
        self._bump_counters(conn, batch.counters)
        mark_dirty(conn, hours)
        if batch.used_hints:
            keys = sa.tuple_(prompt_hash_hints.c.trace_id, prompt_hash_hints.c.span_id)
            conn.execute(prompt_hash_hints.delete().where(keys.in_(batch.used_hints)))
        if batch.parked_hints:
            rows = [
                {"trace_id": h.trace_id, "span_id": h.span_id, "prompt_hash": h.prompt_hash, "parked_at": sa.func.now()}
                for h in batch.parked_hints
            ]
            conn.execute(postgresql.insert(prompt_hash_hints).values(rows).on_conflict_do_nothing())
            conn.execute(prompt_hash_hints.delete().where(prompt_hash_hints.c.parked_at < sa.func.now() - HINTS_KEPT))

    def _write_duckdb(
        self,
        conn: sa.Connection,
        batch: WriteBatch,
        span_table: pa.Table,
        call_table: pa.Table,
    ) -> None:
        raw = conn.connection.driver_connection
        assert raw is not None
        if batch.replaced_calls:
            keys = batch.replaced_calls
            raw.register(
                "_keys", pa.table({"trace_id": [k.trace_id for k in keys], "span_id": [k.span_id for k in keys]})
            )
            raw.execute(
                "DELETE FROM calls USING _keys k WHERE calls.start_time BETWEEN ? AND ?"
                " AND calls.trace_id = k.trace_id AND calls.span_id = k.span_id",
                list(_bounds(keys)),
            )
            raw.unregister("_keys")
        if batch.span_hashes:
            keys = [k for k, _ in batch.span_hashes]
            raw.register(
                "_hashes",
                pa.table(
                    {
                        "trace_id": [k.trace_id for k in keys],
                        "span_id": [k.span_id for k in keys],
                        "prompt_hash": [h for _, h in batch.span_hashes],
                    }
                ),
            )
            raw.execute(
                "UPDATE llm_spans SET prompt_hash = h.prompt_hash FROM _hashes h"
                " WHERE llm_spans.start_time BETWEEN ? AND ?"
                " AND llm_spans.trace_id = h.trace_id AND llm_spans.span_id = h.span_id",
                list(_bounds(keys)),
            )
            raw.unregister("_hashes")
        for name, incoming_rows in (("llm_spans", span_table), ("calls", call_table)):
            # Read by DuckDB's replacement scan (a Python variable named in the query):
            # register/unregister costs more per table per commit (each is a catalog change).
            if incoming_rows.num_rows:
                raw.execute(f"INSERT INTO {name} SELECT * FROM incoming_rows")

    def _write_generic(
        self, conn: sa.Connection, batch: WriteBatch, span_cols: dict[str, list[Any]], call_cols: dict[str, list[Any]]
    ) -> None:
        """PostgreSQL: keys guard the rows, and the counters say what this commit really stored.

        Several collectors may share the database: a span or call another one stored first
        conflicts and is not inserted here, so the counters come from what RETURNING gave.
        """
        deleted = 0
        if batch.replaced_calls:
            keys = [(k.trace_id, k.span_id) for k in batch.replaced_calls]
            deleted = conn.execute(
                calls.delete().where(sa.tuple_(calls.c.trace_id, calls.c.span_id).in_(keys))
            ).rowcount
        if batch.span_hashes:
            conn.execute(
                llm_spans.update()
                .where(llm_spans.c.trace_id == sa.bindparam("t"), llm_spans.c.span_id == sa.bindparam("s"))
                .values(prompt_hash=sa.bindparam("h")),
                [{"t": k.trace_id, "s": k.span_id, "h": h} for k, h in batch.span_hashes],
            )
        inserted = {
            table.name: _copy_insert(conn, table, cols) if cols["trace_id"] else 0
            for table, cols in ((llm_spans, span_cols), (calls, call_cols))
        }
        counters = batch.counters
        spans_sent = len(span_cols["trace_id"])
        if inserted["llm_spans"] < spans_sent:
            counters[("duplicates_ignored", "")] = counters.get(("duplicates_ignored", ""), 0) + (
                spans_sent - inserted["llm_spans"]
            )
        counters[("llm_spans_stored", "")] = inserted["llm_spans"]
        counters[("calls_stored", "")] = inserted["calls"] - deleted
        counters[("spans_merged", "")] = inserted["llm_spans"] - (inserted["calls"] - deleted)

    def _bump_counters(self, conn: sa.Connection, counters: dict[tuple[str, str], int]) -> None:
        rows = [{"name": n, "reason": r, "value": v} for (n, r), v in counters.items() if v]
        if not rows:
            return
        stmt = postgresql.insert(ingest_counters).values(rows)  # one statement: executemany is slow on DuckDB
        stmt = stmt.on_conflict_do_update(
            index_elements=["name", "reason"], set_={"value": ingest_counters.c.value + stmt.excluded.value}
        )
        conn.execute(stmt)

    def spans_of_traces(
        self, windows: Mapping[str, tuple[int, int]], conn: sa.Connection | None = None
    ) -> list[LlmSpan]:
        """The stored LLM spans of these traces that started within their windows (ns), read
        in `conn`'s transaction when given (store/shared.py's `locked`), else on a connection of their own."""
        if conn is None:
            with self.engine.connect() as own:
                return self.spans_of_traces(windows, own)
        found: list[LlmSpan] = []
        if not self.is_duckdb:
            # By primary key only: a young or fast-growing table's statistics made PostgreSQL
            # scan the start-time index over every span of the window (all recent ones) and
            # filter them by trace. The time bound is kept as a filter it cannot index.
            conn.exec_driver_sql("SET LOCAL enable_seqscan = off; SET LOCAL max_parallel_workers_per_gather = 0")
        for lo, hi, trace_ids in _clusters(windows):
            # PostgreSQL gets one array parameter: thousands of IN placeholders cost more
            # to prepare than the indexed lookup itself.
            in_window: sa.ColumnElement[bool]
            in_traces: sa.ColumnElement[bool]
            if self.is_duckdb:
                in_window = llm_spans.c.start_time.between(ns_to_datetime(lo), ns_to_datetime(hi))
                in_traces = llm_spans.c.trace_id.in_(trace_ids)
            else:
                start = sa.func.date_trunc("microseconds", llm_spans.c.start_time)
                in_window = start.between(ns_to_datetime(lo), ns_to_datetime(hi))
                in_traces = llm_spans.c.trace_id == sa.func.any(sa.literal(trace_ids, postgresql.ARRAY(sa.String)))
            rows = conn.execute(sa.select(llm_spans).where(in_window, in_traces))
            found.extend(span_from_row(r) for r in rows)
        if not self.is_duckdb:
            conn.exec_driver_sql("RESET enable_seqscan; RESET max_parallel_workers_per_gather")
        return found

    def trace_ids_received_since(self, since_us: int, limit: int) -> tuple[list[str], int]:
        """Trace ids of spans received since since_us, to warm the pipeline's memory after a
        restart, and the time (us) since which every trace stored is among them: since_us,
        0 when no span was received before (a new ledger: a backfill of old spans costs no
        lookups), or, when more than `limit` traces were, later (the newest `limit` traces by
        their last span)."""
        since = sa.func.to_timestamp(since_us / 1e6) if not self.is_duckdb else sa.func.make_timestamptz(since_us)
        last = sa.func.max(llm_spans.c.received_at)
        query = sa.select(llm_spans.c.trace_id).where(llm_spans.c.received_at >= since).group_by(llm_spans.c.trace_id)
        with self.engine.connect() as conn:
            ids = [r[0] for r in conn.execute(query.limit(limit + 1))]
            if len(ids) <= limit:
                older = conn.execute(sa.select(sa.literal(1)).where(llm_spans.c.received_at < since).limit(1)).first()
                return ids, since_us if older is not None else 0
            rows = conn.execute(query.add_columns(last).order_by(last.desc()).limit(limit)).all()
        # every span received after the oldest of these traces' last spans is of one of them
        return [r[0] for r in rows], datetime_to_ns(rows[-1][1]) // 1000 + 1


def _changed_hours(batch: WriteBatch) -> list[datetime]:
    """The hours whose calls the batch changes, rolled up again by the roller (collector/store/rollup.py)."""
    return hours_of_ns([k.start_ns for k in batch.replaced_calls] + [c.start_ns for c in batch.calls])


def _duckdb_bookkeeping(conn: sa.Connection, counters: Mapping[tuple[str, str], int], hours: list[datetime]) -> None:
    """DuckDB: the commit's counters and dirty hours, appended by two plain statements.

    The same rows as mark_dirty, and the counts _bump_counters adds, appended rather than
    upserted (migration 0009; collector/store/counters.py folds them). Plain statements
    on the driver's connection, because SQLAlchemy's compile of them cost a share of every
    commit.
    """
    raw = conn.connection.driver_connection
    assert raw is not None
    rows = [(name, reason, value) for (name, reason), value in counters.items() if value]
    if rows:
        raw.execute(
            "INSERT INTO ingest_counters (name, reason, value) VALUES " + ", ".join(["(?, ?, ?)"] * len(rows)),
            [item for row in rows for item in row],
        )
    if hours:
        raw.execute("INSERT INTO rollup_dirty (hour) VALUES " + ", ".join(["(?)"] * len(hours)), hours)


def _copy_insert(conn: sa.Connection, table: sa.Table, cols: Mapping[str, list[Any]]) -> int:
    """COPY rows into a session temp table, then insert what is new; returns how many were.

    COPY is PostgreSQL's bulk path; the INSERT ... ON CONFLICT DO NOTHING from the temp
    table keeps the keys' guard against other collectors sharing the database.
    """
    raw = conn.connection.driver_connection
    assert raw is not None
    staging = f"_incoming_{table.name}"
    names = list(cols)
    rows = zip(*(_pg_values(name, values) for name, values in cols.items()), strict=True)
    with raw.cursor() as cur:
        cur.execute(
            f"CREATE TEMP TABLE IF NOT EXISTS {staging} (LIKE {table.name} INCLUDING DEFAULTS) ON COMMIT DELETE ROWS"
        )
        with cur.copy(f"COPY {staging} ({', '.join(names)}) FROM STDIN") as copy:
            for row in rows:
                copy.write_row(row)
        cur.execute(
            f"INSERT INTO {table.name} ({', '.join(names)}) SELECT {', '.join(names)} FROM {staging}"
            " ON CONFLICT DO NOTHING"
        )
        return int(cur.rowcount)


def _pg_values(name: str, values: list[Any]) -> list[Any]:
    if name in TIME_COLUMNS:
        return [ns_to_datetime(v * 1000) for v in values]
    # PostgreSQL text cannot hold NUL; a span that sends one must not fail its commit.
    return [v.replace("\x00", "\ufffd") if isinstance(v, str) and "\x00" in v else v for v in values]


def _clusters(windows: Mapping[str, tuple[int, int]]) -> list[tuple[int, int, list[str]]]:
    """Traces grouped into few time ranges, so one query scans one stretch of the table."""
    out: list[tuple[int, int, list[str]]] = []
    for trace_id, (lo, hi) in sorted(windows.items(), key=lambda item: item[1]):
        if out and lo <= out[-1][1] + TRACE_LOOKUP_WINDOW_NS:
            last_lo, last_hi, ids = out[-1]
            ids.append(trace_id)
            out[-1] = (last_lo, max(last_hi, hi), ids)
        else:
            out.append((lo, hi, [trace_id]))
    return out
