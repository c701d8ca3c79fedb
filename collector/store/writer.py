"""The single writer: one transaction per group of exports (group commit).

DuckDB gets columnar batches through Arrow (executemany is ~1000x slower there);
PostgreSQL gets multi-row inserts with ON CONFLICT DO NOTHING.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

import pyarrow as pa
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

from collector.records import Call, LlmSpan, PromptHashHint
from collector.store.rows import CALL_COLUMNS, SPAN_COLUMNS, TIME_COLUMNS, call_values, span_from_row, span_values
from collector.store.schema import calls, ingest_counters, llm_spans


@dataclass(slots=True)
class WriteBatch:
    """Everything one commit writes."""

    new_spans: list[LlmSpan] = field(default_factory=list)
    replaced_calls: list[tuple[str, str]] = field(default_factory=list)  # keys to delete first
    calls: list[Call] = field(default_factory=list)
    hints: list[PromptHashHint] = field(default_factory=list)
    counters: dict[tuple[str, str], int] = field(default_factory=dict)


_ARROW_TYPES = {
    sa.BigInteger: pa.int64(),
    sa.Integer: pa.int32(),
    sa.Float: pa.float64(),
    sa.Boolean: pa.bool_(),
}


def _arrow_schema(table: sa.Table) -> pa.Schema:
    fields = []
    for col in table.columns:
        if col.name in TIME_COLUMNS:
            kind = pa.timestamp("us", tz="UTC")
        else:
            kind = next((t for base, t in _ARROW_TYPES.items() if isinstance(col.type, base)), pa.string())
        fields.append(pa.field(col.name, kind))
    return pa.schema(fields)


_SCHEMAS = {"calls": _arrow_schema(calls), "llm_spans": _arrow_schema(llm_spans)}


def _arrow_table(name: str, columns: Sequence[str], rows: Sequence[dict[str, object]]) -> pa.Table:
    schema = _SCHEMAS[name]
    arrays = []
    for col in columns:
        kind = schema.field(col).type
        values = [r[col] for r in rows]
        if pa.types.is_timestamp(kind):
            arrays.append(pa.array(values, pa.int64()).cast(kind))
        else:
            arrays.append(pa.array(values, kind))
    return pa.Table.from_arrays(arrays, schema=schema)


class LedgerWriter:
    """Writes batches in one transaction each; the only writer in its process."""

    def __init__(self, engine: sa.Engine) -> None:
        self.engine = engine
        self.is_duckdb = engine.dialect.name == "duckdb"

    def write(self, batch: WriteBatch, received_at_us: int) -> None:
        """Commit the batch, or raise and commit nothing."""
        span_rows = [span_values(s, received_at_us) for s in batch.new_spans]
        call_rows = [call_values(c, received_at_us) for c in batch.calls]
        with self.engine.begin() as conn:
            if self.is_duckdb:
                self._write_duckdb(conn, span_rows, batch.replaced_calls, call_rows)
            else:
                self._write_generic(conn, span_rows, batch.replaced_calls, call_rows)
            self._apply_hints(conn, batch.hints)
            self._bump_counters(conn, batch.counters)

    def _write_duckdb(
        self,
        conn: sa.Connection,
        span_rows: list[dict[str, object]],
        replaced: list[tuple[str, str]],
        call_rows: list[dict[str, object]],
    ) -> None:
        raw = conn.connection.driver_connection
        assert raw is not None
        if replaced:
            keys = pa.table({"trace_id": [k[0] for k in replaced], "span_id": [k[1] for k in replaced]})
            raw.register("_replaced", keys)
            raw.execute(
                "DELETE FROM calls USING _replaced r WHERE calls.trace_id = r.trace_id AND calls.span_id = r.span_id"
            )
            raw.unregister("_replaced")
        for name, columns, rows in (("llm_spans", SPAN_COLUMNS, span_rows), ("calls", CALL_COLUMNS, call_rows)):
            if not rows:
                continue
            raw.register("_batch", _arrow_table(name, columns, rows))
            raw.execute(f"INSERT INTO {name} SELECT * FROM _batch ON CONFLICT DO NOTHING")
            raw.unregister("_batch")

    def _write_generic(
        self,
        conn: sa.Connection,
        span_rows: list[dict[str, object]],
        replaced: list[tuple[str, str]],
        call_rows: list[dict[str, object]],
    ) -> None:
        if replaced:
            conn.execute(
                calls.delete().where(calls.c.trace_id == sa.bindparam("t"), calls.c.span_id == sa.bindparam("s")),
                [{"t": t, "s": s} for t, s in replaced],
            )
        for table, rows in ((llm_spans, span_rows), (calls, call_rows)):
            if rows:
                stmt = postgresql.insert(table).on_conflict_do_nothing()
                conn.execute(stmt, [_with_datetimes(r) for r in rows])

    def _apply_hints(self, conn: sa.Connection, hints: Iterable[PromptHashHint]) -> None:
        for hint in hints:
            conn.execute(
                calls.update()
                .where(
                    calls.c.trace_id == hint.trace_id,
                    calls.c.prompt_hash.is_(None),
                    sa.or_(calls.c.span_id == hint.span_id, calls.c.member_span_ids.contains(hint.span_id)),
                )
                .values(prompt_hash=hint.prompt_hash)
            )
            conn.execute(
                llm_spans.update()
                .where(
                    llm_spans.c.trace_id == hint.trace_id,
                    llm_spans.c.span_id == hint.span_id,
                    llm_spans.c.prompt_hash.is_(None),
                )
                .values(prompt_hash=hint.prompt_hash)
            )

    def _bump_counters(self, conn: sa.Connection, counters: dict[tuple[str, str], int]) -> None:
        rows = [{"name": n, "reason": r, "value": v} for (n, r), v in counters.items() if v]
        if not rows:
            return
        stmt = postgresql.insert(ingest_counters)
        stmt = stmt.on_conflict_do_update(
            index_elements=["name", "reason"], set_={"value": ingest_counters.c.value + stmt.excluded.value}
        )
        conn.execute(stmt, rows)

    def spans_of_traces(self, trace_ids: Sequence[str]) -> list[LlmSpan]:
        """Every stored LLM span of these traces (the slow path for late spans)."""
        if not trace_ids:
            return []
        with self.engine.connect() as conn:
            rows = conn.execute(sa.select(llm_spans).where(llm_spans.c.trace_id.in_(list(trace_ids))))
            return [span_from_row(r) for r in rows]

    def trace_ids_received_since(self, since_us: int, limit: int) -> list[str]:
        """Trace ids of the newest spans, to warm the pipeline's memory after a restart."""
        since = sa.func.to_timestamp(since_us / 1e6) if not self.is_duckdb else sa.func.make_timestamptz(since_us)
        with self.engine.connect() as conn:
            rows = conn.execute(
                sa.select(llm_spans.c.trace_id)
                .where(llm_spans.c.received_at >= since)
                .group_by(llm_spans.c.trace_id)
                .limit(limit)
            )
            return [r[0] for r in rows]


def _with_datetimes(row: dict[str, object]) -> dict[str, object]:
    from collector.store.rows import ns_to_datetime

    out = dict(row)
    for name in TIME_COLUMNS:
        out[name] = ns_to_datetime(int(out[name]) * 1000)  # type: ignore[call-overload]
    return out
