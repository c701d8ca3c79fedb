"""Ingest counters: appended by each commit on DuckDB, summed when read, folded by the roller.

Counts go in through the real writer (LedgerWriter), on both dialects; folding is
DuckDB's alone (PostgreSQL keeps one row per key and upserts).
"""

from __future__ import annotations

import threading
import time

import pytest
import sqlalchemy as sa

from breakeven.collector.records import WriteBatch
from breakeven.collector.store import counters, queries, rollup
from breakeven.collector.store.engine import downgrade, make_engine, migrate
from breakeven.collector.store.rollup import Roller
from breakeven.collector.store.writer import LedgerWriter

COMMITS = [
    {("spans_received", ""): 3, ("log_records_received", ""): 2, ("non_llm_dropped", ""): 1},
    {("spans_received", ""): 5, ("rejected", "bad_trace_id"): 2, ("rejected", "too_many_attributes"): 1},
    {("spans_received", ""): 1, ("rejected", "bad_trace_id"): 4},
]
TOTALS = {"spans_received": 9, "log_records_received": 2, "non_llm_dropped": 1, "rejected_total": 7}
REJECTED = {"bad_trace_id": 6, "too_many_attributes": 1}


@pytest.fixture
def ledger(engine: sa.Engine) -> sa.Engine:
    migrate(engine)
    return engine


def _commit(engine: sa.Engine, counts: dict[tuple[str, str], int]) -> None:
    LedgerWriter(engine).write(WriteBatch(counters=dict(counts)), 0)


def _totals(engine: sa.Engine) -> dict[str, object]:
    with engine.connect() as conn:
        return queries.ingest_totals(conn)


def _rows(engine: sa.Engine) -> int:
    with engine.connect() as conn:
        return int(conn.execute(sa.text("SELECT count(*) FROM ingest_counters")).scalar_one())


def _check(totals: dict[str, object]) -> None:
    assert {name: totals[name] for name in TOTALS} == TOTALS
    assert totals["rejected"] == REJECTED


def test_counts_of_every_commit_add_up_when_read_and_after_a_fold(ledger: sa.Engine) -> None:
    for counts in COMMITS:
        _commit(ledger, counts)
    _check(_totals(ledger))
    keys = len({key for counts in COMMITS for key in counts})
    if ledger.dialect.name == "duckdb":
        assert _rows(ledger) == sum(len(c) for c in COMMITS)  # appended, one row per count
        assert counters.fold(ledger, past_rows=len(COMMITS) * 10) == 0  # few rows: left alone
        assert counters.fold(ledger, past_rows=2) == sum(len(c) for c in COMMITS) - keys
    else:
        assert counters.fold(ledger, past_rows=2) == 0  # PostgreSQL: one row per key already
    assert _rows(ledger) == keys
    _check(_totals(ledger))
    _commit(ledger, COMMITS[0])  # and counting goes on after the fold
    assert _totals(ledger)["spans_received"] == 12


def _duckdb(tmp_path) -> sa.Engine:
    eng = make_engine(f"duckdb:///{tmp_path / 'c.duckdb'}")
    migrate(eng)
    return eng


def test_the_roller_folds_the_counters(tmp_path) -> None:
    eng = _duckdb(tmp_path)
    rows = counters.FOLD_PAST_ROWS + 1
    with eng.begin() as conn:  # as many commits' rows at once
        conn.execute(sa.text(f"INSERT INTO ingest_counters SELECT 'spans_received', '', 2 FROM range({rows})"))
    Roller(eng).run_once()
    assert _rows(eng) == 1
    assert _totals(eng)["spans_received"] == 2 * rows
    eng.dispose()


def test_the_roller_folds_the_counters_even_when_rolling_up_fails(tmp_path, monkeypatch: pytest.MonkeyPatch) -> None:
    eng = _duckdb(tmp_path)
    with eng.begin() as conn:
        conn.execute(
            sa.text(
                f"INSERT INTO ingest_counters SELECT 'spans_received', '', 1 FROM range({counters.FOLD_PAST_ROWS + 1})"
            )
        )

    def broken(engine: sa.Engine) -> int:
        raise RuntimeError("the rollup tables are locked")

    monkeypatch.setattr(rollup, "roll_all", broken)
    roller = Roller(eng)
    roller.run_once()
    assert roller.failures == 1
    assert _rows(eng) == 1
    eng.dispose()


def test_commits_during_folds_lose_no_count(tmp_path) -> None:
    """A fold sees a snapshot: what a commit appends meanwhile stays for the next one."""
    eng = _duckdb(tmp_path)
    commits, errors = 300, []

    def write() -> None:
        try:
            for _ in range(commits):
                _commit(eng, {("spans_received", ""): 1})
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)

    writer = threading.Thread(target=write)
    writer.start()
    folds = 0
    while writer.is_alive():
        folds += counters.fold(eng, past_rows=5) > 0
        time.sleep(0.001)
    writer.join()
    assert errors == []
    assert _totals(eng)["spans_received"] == commits
    assert folds > 0
    eng.dispose()


def test_duckdb_counters_keep_their_sums_through_0009_and_back(tmp_path) -> None:
    eng = make_engine(f"duckdb:///{tmp_path / 'c.duckdb'}")
    migrate(eng, "0008")
    with eng.begin() as conn:
        conn.execute(sa.text("INSERT INTO ingest_counters VALUES ('spans_received', '', 7), ('rejected', 'x', 2)"))
    migrate(eng)
    _commit(eng, {("spans_received", ""): 3})
    assert _rows(eng) == 3
    downgrade(eng, "0008")  # back to one row per key: the appended rows summed
    with eng.connect() as conn:
        rows = conn.execute(sa.text("SELECT name, reason, value FROM ingest_counters ORDER BY name")).all()
    assert [tuple(r) for r in rows] == [("rejected", "x", 2), ("spans_received", "", 10)]
    eng.dispose()
