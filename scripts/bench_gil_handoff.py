"""What a busy Python thread costs the writer's DuckDB statements, by GIL switch interval.

DuckDB's Python bindings release the GIL while a statement runs and take it back several
times before it returns. Another thread that holds the GIL keeps it for up to the switch
interval (CPython's default: 5 ms) before it hands over, so each take may wait that long.
This script times the writer's two statements, an Arrow insert of 512 rows into
`llm_spans` (through a replacement scan, as collector/store/writer.py does) and the
commit, alone and beside a thread that only spins in Python, for the default interval
and the one `breakeven serve` sets (collector/ingest/tuning.py, tune_thread_switching).

    python scripts/bench_gil_handoff.py --rows 512 --commits 40
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import pyarrow as pa

from breakeven.collector.ingest.tuning import GIL_SWITCH_INTERVAL_SECONDS
from breakeven.collector.store.engine import make_engine, migrate
from breakeven.collector.store.writer import _SCHEMAS


def sample_rows(rows: int) -> pa.Table:
    """`rows` rows of the llm_spans schema (the values do not matter to the timing)."""
    schema = _SCHEMAS["llm_spans"]
    arrays = []
    for f in schema:
        if pa.types.is_string(f.type):
            arrays.append(pa.array([f"{f.name}-{i % 7}" for i in range(rows)], f.type))
        elif pa.types.is_timestamp(f.type):
            arrays.append(pa.array([1_700_000_000_000_000 + i for i in range(rows)], pa.int64()).cast(f.type))
        elif pa.types.is_boolean(f.type):
            arrays.append(pa.array([i % 2 == 0 for i in range(rows)]))
        else:
            arrays.append(pa.array(list(range(rows)), f.type))
    return pa.Table.from_arrays(arrays, schema=schema)


def timed_commits(raw: Any, incoming_rows: pa.Table, commits: int) -> tuple[float, float]:
    """Mean milliseconds of the insert and of the commit."""
    insert = commit = 0.0
    for _ in range(commits):
        raw.execute("BEGIN")
        t0 = time.perf_counter()
        raw.execute("INSERT INTO llm_spans SELECT * FROM incoming_rows")
        t1 = time.perf_counter()
        raw.execute("COMMIT")
        t2 = time.perf_counter()
        insert += t1 - t0
        commit += t2 - t1
    return insert / commits * 1e3, commit / commits * 1e3


def spin_until(stop: threading.Event) -> None:
    """A thread that only runs Python, as a busy event loop or result thread does."""
    while not stop.is_set():
        pass


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=512, help="rows per insert (512)")
    parser.add_argument("--commits", type=int, default=40, help="commits per measurement (40)")
    args = parser.parse_args()
    rows = sample_rows(args.rows)
    with tempfile.TemporaryDirectory() as tmp:
        engine = make_engine(f"duckdb:///{tmp}/handoff.duckdb")
        migrate(engine)
        with engine.connect() as conn:
            raw = conn.connection.driver_connection
            print(f"{args.rows} rows per insert, {args.commits} commits per figure, ms per statement")
            for interval in (0.005, GIL_SWITCH_INTERVAL_SECONDS):
                sys.setswitchinterval(interval)
                alone = timed_commits(raw, rows, args.commits)
                stop = threading.Event()
                spinner = threading.Thread(target=spin_until, args=(stop,), daemon=True)
                spinner.start()
                try:
                    busy = timed_commits(raw, rows, args.commits)
                finally:
                    stop.set()
                    spinner.join()
                print(
                    f"switch interval {interval * 1e3:5.2f} ms: insert {alone[0]:6.1f} alone, {busy[0]:6.1f} beside"
                    f" a busy thread; commit {alone[1]:6.1f} alone, {busy[1]:6.1f} beside a busy thread"
                )
        engine.dispose()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
