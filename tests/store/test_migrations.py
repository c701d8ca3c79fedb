"""Upgrade to head produces the declared schema on DuckDB and PostgreSQL; downgrade works."""

from __future__ import annotations

import sqlalchemy as sa

from breakeven.collector.store.engine import current_revision, downgrade, head_revision, make_engine, migrate
from breakeven.collector.store.schema import metadata


def _columns(conn: sa.Connection, table: str) -> dict[str, tuple[str, bool]]:
    rows = conn.execute(
        sa.text(
            "SELECT column_name, data_type, is_nullable FROM information_schema.columns "
            "WHERE table_name = :t AND table_schema = current_schema()"
        ),
        {"t": table},
    )
    return {name: (kind.lower(), nullable == "YES") for name, kind, nullable in rows}


def _family(kind: str) -> str:
    for word, family in (
        ("timestamp", "time"),
        ("bigint", "int8"),
        ("integer", "int4"),
        ("int", "int"),
        ("char", "text"),
        ("text", "text"),
        ("double", "float"),
        ("float", "float"),
        ("bool", "bool"),
        ("numeric", "numeric"),
        ("decimal", "numeric"),
    ):
        if word in kind:
            return family
    return kind


def test_upgrade_to_head_is_the_declared_schema_and_downgrade_empties(engine: sa.Engine) -> None:
    migrate(engine)
    assert current_revision(engine) == head_revision(engine)
    with engine.connect() as conn:
        for table in metadata.sorted_tables:
            actual = _columns(conn, table.name)
            declared = {
                c.name: (_family(c.type.compile(dialect=engine.dialect).lower()), c.nullable) for c in table.columns
            }
            assert {n: (_family(k), nullable) for n, (k, nullable) in actual.items()} == declared, table.name
    downgrade(engine, "base")
    assert current_revision(engine) is None
    with engine.connect() as conn:
        assert set(sa.inspect(conn).get_table_names()) <= {"alembic_version"}
    migrate(engine)  # and back up again
    assert current_revision(engine) == head_revision(engine)


def _keys_and_indexes(conn: sa.Connection, table: str) -> tuple[list[str], list[str]]:
    inspector = sa.inspect(conn)
    if conn.dialect.name == "duckdb":  # duckdb_engine's reflection does not report these
        sql = conn.execute(sa.text("SELECT sql FROM duckdb_tables() WHERE table_name = :t"), {"t": table}).scalar()
        keys = ["trace_id", "span_id"] if "PRIMARY KEY" in str(sql) else []
        rows = conn.execute(sa.text("SELECT index_name FROM duckdb_indexes() WHERE table_name = :t"), {"t": table})
        return keys, [r[0] for r in rows]
    return inspector.get_pk_constraint(table)["constrained_columns"], [i["name"] for i in inspector.get_indexes(table)]


def test_keys_and_indexes_exist_on_postgresql_only(engine: sa.Engine) -> None:
    """DuckDB prunes by zone maps; its ART indexes slowed every insert (migration 0002).
    PostgreSQL looks calls up by response id too, for collectors that share it (0012)."""
    migrate(engine)
    postgresql_indexes = {
        "calls": ["ix_calls_origin", "ix_calls_response_id", "ix_calls_start_time"],
        "llm_spans": ["ix_llm_spans_start_time"],
    }
    with engine.connect() as conn:
        for table in ("calls", "llm_spans"):
            keys, indexes = _keys_and_indexes(conn, table)
            if engine.dialect.name == "duckdb":
                assert (keys, indexes) == ([], []), table
            else:
                assert (keys, sorted(indexes)) == (["trace_id", "span_id"], postgresql_indexes[table]), table


def test_duckdb_ledger_from_0001_keeps_its_rows_through_0002_and_back(tmp_path) -> None:
    eng = make_engine(f"duckdb:///{tmp_path / 'old.duckdb'}")
    migrate(eng, "0001")
    row = (
        "INSERT INTO calls (trace_id, span_id, start_time, end_time, backend_class, status, emitter, conventions,"
        " received_at, input_tokens, cache_read_tokens, cache_write_tokens, output_tokens, reasoning_tokens,"
        " usage_reported, span_count, member_span_ids) VALUES ('t1', 's1', now(), now(), 'frontier', 'ok', 'e', '',"
        " now(), 10, 0, 0, 2, 0, true, 1, 's1')"
    )
    with eng.begin() as conn:
        conn.execute(sa.text(row))
    migrate(eng)
    with eng.begin() as conn:
        assert _keys_and_indexes(conn, "calls") == ([], [])
        conn.execute(sa.text(row))  # no key any more: a second copy goes in ...
    downgrade(eng, "0001")  # ... and going back to a keyed table keeps one per key
    with eng.connect() as conn:
        assert conn.execute(sa.text("SELECT trace_id, input_tokens FROM calls")).all() == [("t1", 10)]
        assert _keys_and_indexes(conn, "calls") == (["trace_id", "span_id"], ["ix_calls_start_time"])
    eng.dispose()


def _attributes_compression(conn: sa.Connection) -> set[str]:
    rows = conn.exec_driver_sql(
        "SELECT DISTINCT compression FROM pragma_storage_info('llm_spans')"
        " WHERE column_name = 'attributes' AND segment_type = 'VARCHAR'"
    )
    return {r[0] for r in rows}


def test_duckdb_attributes_are_zstd_from_0008_and_keep_their_rows_both_ways(tmp_path) -> None:
    """The audit JSON is compressed with zstd (migration 0008 says why); the rebuild keeps the spans."""
    eng = make_engine(f"duckdb:///{tmp_path / 'z.duckdb'}")
    migrate(eng, "0007")
    fill = (
        "INSERT INTO llm_spans (trace_id, span_id, name, kind, is_engine, start_time, end_time, backend_class,"
        " status, emitter, conventions, received_at, attributes) SELECT 't' || i, 's' || i, 'chat', 3, false, now(),"
        " now(), 'frontier', 'ok', 'e', '', now(), '{\"gen_ai.response.id\":\"chatcmpl-' || md5(i::VARCHAR) || '\"}'"
        " FROM range(5000) r(i)"
    )
    with eng.begin() as conn:
        conn.exec_driver_sql(fill)
    migrate(eng)
    with eng.connect() as conn:
        conn.exec_driver_sql("CHECKPOINT")
        assert _attributes_compression(conn) == {"ZSTD"}
        assert conn.exec_driver_sql("SELECT count(DISTINCT attributes) FROM llm_spans").scalar() == 5000
    downgrade(eng, "0007")
    with eng.connect() as conn:
        assert (
            "USING COMPRESSION"
            not in conn.exec_driver_sql("SELECT sql FROM duckdb_tables() WHERE table_name = 'llm_spans'").scalar_one()
        )
        assert conn.exec_driver_sql("SELECT count(*) FROM llm_spans").scalar() == 5000
    eng.dispose()


def test_a_fresh_process_reads_the_revision_of_a_duckdb_ledger(tmp_path) -> None:
    """`serve --no-migrate` and `reprice` ask Alembic without migrating: DuckDB must be known to it."""
    import subprocess
    import sys

    eng = make_engine(f"duckdb:///{tmp_path / 'r.duckdb'}")
    migrate(eng)
    eng.dispose()
    code = (
        "from breakeven.collector.store.engine import current_revision, head_revision, make_engine;"
        f"e = make_engine('duckdb:///{tmp_path / 'r.duckdb'}'); print(current_revision(e) == head_revision(e))"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert result.stdout.strip() == "True", result.stderr
