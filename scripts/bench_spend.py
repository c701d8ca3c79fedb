"""Spend benchmark: how long the money reports take over a month of N calls, read from rollups.

What it does
  1. Fills a fresh ledger with N priced calls spread over June 2025 (default 1M;
     --calls 10000000), bypassing OTLP: random columns are generated with Arrow compute
     in chunks (roughly in time order, as ingest writes them), staged (DuckDB: an Arrow
     table registered on the connection; PostgreSQL: COPY of CSV into a temp table) and
     inserted with one INSERT ... SELECT per chunk that derives ids, models and prices.
     Traffic: 12 services of 6 teams with 3 features each; four frontier models, two
     managed ones, two self-hosted pools, 1% of calls on a model without a price.
  2. Marks every hour dirty (what the migration does to a ledger that predates rollups)
     and times rolling everything up (breakeven.collector.store.rollup.roll_all).
  3. Times what the money API does for the month (best of --repeat runs, and the first):
     spend totals, spend by service and day, by backend class and model, pool figures
     (/api/v1/pools), break-even (/api/v1/breakeven); and spend by service up to an
     instant inside an hour (the partial hour is read from calls), one hour dirty, and
     the same report read from calls alone for comparison.
  4. Prints the figures, so runs on the two dialects can be compared.

Run
  python scripts/bench_spend.py                       # 1M calls, DuckDB in a temp dir
  python scripts/bench_spend.py --calls 10000000
  python scripts/bench_spend.py --db-url postgresql://postgres@127.0.0.1:5432/test
  (PostgreSQL: a schema bench_spend is dropped and created in that database.)
"""

from __future__ import annotations

import argparse
import io
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import sqlalchemy as sa

from breakeven.collector.config.pricing import parse_pricing
from breakeven.collector.price.config import PricingConfig
from breakeven.collector.reports.breakeven import breakeven_report
from breakeven.collector.reports.currency import Converter
from breakeven.collector.reports.pools import pool_figures, pool_json
from breakeven.collector.reports.spend import spend_report
from breakeven.collector.store import rollup
from breakeven.collector.store import spend as store
from breakeven.collector.store.engine import make_engine, migrate
from breakeven.collector.store.schema import call_rollups, calls, rollup_dirty

MONTH = datetime(2025, 6, 1, tzinfo=UTC)
MONTH_END = datetime(2025, 7, 1, tzinfo=UTC)
CHUNK = 1_000_000

# (provider, request model, response model, backend, class, quantization, pool, status,
#  USD per million input, output, cache read, share of calls in percent)
MODELS = [
    ("openai", "gpt-4o", "gpt-4o-2024-08-06", "api.openai.com", "frontier", None, None, "priced", "2.5", "10", "1.25", 18),
    ("openai", "gpt-4o-mini", "gpt-4o-mini-2024-07-18", "api.openai.com", "frontier", None, None, "priced", "0.15", "0.6", "0.075", 20),
    ("anthropic", "claude-sonnet-4", "claude-sonnet-4-20250514", "api.anthropic.com", "frontier", None, None, "priced", "3", "15", "0.3", 12),
    ("gcp.gemini", "gemini-2.5-flash", None, "generativelanguage.googleapis.com", "frontier", None, None, "priced", "0.3", "2.5", "0.075", 8),
    ("together", "llama-3.3-70b", None, "api.together.xyz", "managed", None, None, "priced", "0.88", "0.88", "0.88", 8),
    ("groq", "llama-3.1-8b", None, "api.groq.com", "managed", None, None, "priced", "0.05", "0.08", "0.05", 8),
    ("vllm", "llama-3.3-70b-fp8", "llama-3.3-70b-fp8", "vllm-70b", "self_hosted", "fp8", "llama-70b", "pool", "0", "0", "0", 15),
    ("vllm", "qwen-2.5-32b-awq", "qwen-2.5-32b-awq", "vllm-qwen", "self_hosted", "awq", "qwen-32b", "pool", "0", "0", "0", 10),
    ("openai", "mystery-model", None, "api.openai.com", "frontier", None, None, "unpriced", "0", "0", "0", 1),
]  # fmt: skip
SERVICES = [(f"svc-{i:02d}", f"team-{i // 2}") for i in range(12)]


def pricing(allocation: str) -> PricingConfig:
    """The config the reports use: a price book for every priced model, the two pools, a candidate box."""
    prices = [
        {
            "provider": m[0],
            "model": m[1],
            "effective_from": "2025-01-01",
            "input": m[8],
            "output": m[9],
            "cache_read": m[10],
        }
        for m in MODELS
        if m[7] == "priced"
    ]
    prices.append(
        {
            "provider": "together",
            "model": "qwen-2.5-32b",
            "effective_from": "2025-01-01",
            "input": "0.8",
            "output": "0.8",
        }
    )
    pools = [
        {"name": "llama-70b", "boxes": 2, "rent_per_hour": "2.5", "variable_per_million": "0.01",
         "capacity": {"input_tps": "20000", "output_tps": "2000"}, "match": {"backend": "vllm-70b"},
         "alternative": {"provider": "together", "model": "llama-3.3-70b"}},
        {"name": "qwen-32b", "boxes": 1, "rent_per_hour": "1.2",
         "capacity": {"input_tps": "12000", "output_tps": "1200"}, "match": {"backend": "vllm-qwen"},
         "alternative": {"provider": "together", "model": "qwen-2.5-32b"}},
    ]  # fmt: skip
    candidates = [{"name": "h100", "rent_per_month": "2000", "capacity": {"input_tps": "20000", "output_tps": "2000"}}]
    return parse_pricing({"allocation_period": allocation, "prices": prices, "pools": pools, "candidates": candidates})


def _pick(u: pa.Array, weights: list[int]) -> pa.Array:
    """Indexes drawn with these integer weights, from uniform [0, 1) doubles."""
    table = pa.array([i for i, w in enumerate(weights) for _ in range(w)], pa.int32())
    slot = pc.cast(pc.floor(pc.multiply(u, len(table))), pa.int64())
    return pc.take(table, slot)


def _ints(u: pa.Array, low: int, high: int, power: float = 1.0) -> pa.Array:
    """Integers in [low, high), skewed towards low by `power`."""
    return pc.cast(pc.add(pc.floor(pc.multiply(pc.power(u, power), high - low)), low), pa.int64())


def chunk(first: int, n: int, total: int, seed: int) -> pa.Table:
    """Calls first .. first+n-1 of `total`: start times in their share of the month, in order."""
    month_us = int((MONTH_END - MONTH).total_seconds() * 1e6)
    lo = int(MONTH.timestamp() * 1e6) + month_us * first // total
    width = month_us * n // total
    rnd = [pc.random(n, initializer=seed * 1000 + first // CHUNK * 16 + k) for k in range(9)]
    start = pc.cast(pc.add(pc.floor(pc.multiply(rnd[0], width)), lo), pa.int64())
    table = pa.table(
        {
            "i": pa.array(range(first, first + n), pa.int64()),
            "start_us": start,
            "model_id": _pick(rnd[1], [m[-1] for m in MODELS]),
            "service_id": _pick(rnd[2], [6, 5, 5, 4, 4, 3, 3, 2, 2, 2, 1, 1]),
            "feature_id": _ints(rnd[3], 0, 3),
            "input": _ints(rnd[4], 50, 12_000, 2.0),
            "output": _ints(rnd[5], 10, 2_000, 2.0),
            "cache_read": pc.if_else(pc.less(rnd[6], 0.3), _ints(rnd[7], 0, 4_000), pa.scalar(0, pa.int64())),
            "ms": _ints(rnd[8], 200, 20_000, 2.0),
        }
    )
    return table.take(pc.sort_indices(table, [("start_us", "ascending")]))


def _lookup_tables(conn: sa.Connection) -> None:
    def text(v: object) -> str:
        return "NULL" if v is None else "'" + str(v) + "'"

    def rate(per_million: object) -> str:  # USD per token, exact
        return f"CAST('{Decimal(str(per_million)) / 1_000_000:f}' AS DECIMAL(20,12))"

    rows = ", ".join(
        f"({i}, {', '.join(text(v) for v in m[:8])}, {rate(m[8])}, {rate(m[9])}, {rate(m[10])})"
        for i, m in enumerate(MODELS)
    )
    conn.exec_driver_sql(
        "CREATE TEMP TABLE bench_models AS SELECT * FROM (VALUES " + rows + ") AS t(id, provider, request_model,"
        " response_model, backend, backend_class, quantization, pool, price_status, in_rate, out_rate, cache_rate)"
    )
    conn.exec_driver_sql(
        "CREATE TEMP TABLE bench_services AS SELECT * FROM (VALUES "
        + ", ".join(f"({i}, '{s}', '{t}')" for i, (s, t) in enumerate(SERVICES))
        + ") AS t(id, service, team)"
    )


def _insert_sql(dialect: str, staging: str) -> str:
    ts = (
        "make_timestamptz(b.start_us)"
        if dialect == "duckdb"
        else "(TIMESTAMPTZ 'epoch' + b.start_us * INTERVAL '1 microsecond')"
    )
    ms = "to_milliseconds(b.ms)" if dialect == "duckdb" else "b.ms * INTERVAL '1 millisecond'"
    cost = "CAST(b.input * m.in_rate + b.output * m.out_rate + b.cache_read * m.cache_rate AS DECIMAL(20,10))"
    return f"""
    INSERT INTO calls (trace_id, span_id, start_time, end_time, service, environment, team, feature, operation,
        provider, backend, backend_class, server_address, request_model, response_model, quantization, streaming,
        status, emitter, conventions, received_at, input_tokens, cache_read_tokens, cache_write_tokens,
        output_tokens, reasoning_tokens, usage_reported, span_count, member_span_ids, pool, price_status,
        cost_usd, list_cost_usd, price_source, price_entry, unpriced_reason)
    SELECT md5(CAST(b.i AS VARCHAR)), substr(md5(CAST(b.i AS VARCHAR) || 's'), 1, 16), {ts}, {ts} + {ms},
        s.service, 'prod', s.team, 'feature-' || CAST(b.feature_id AS VARCHAR), 'chat',
        m.provider, m.backend, m.backend_class, m.backend, m.request_model, m.response_model, m.quantization, false,
        CASE WHEN b.i % 97 = 0 THEN 'error' ELSE 'ok' END, 'bench', 'otel_genai', {ts} + INTERVAL '2 seconds',
        b.input, b.cache_read, 0, b.output, 0, true, 1, substr(md5(CAST(b.i AS VARCHAR) || 's'), 1, 16),
        m.pool, m.price_status,
        CASE WHEN m.price_status = 'priced' THEN {cost} END, CASE WHEN m.price_status = 'priced' THEN {cost} END,
        CASE m.price_status WHEN 'priced' THEN 'price book bench' WHEN 'pool' THEN 'pool ' || m.pool END,
        CASE WHEN m.price_status = 'priced' THEN m.provider || '/' || m.request_model END,
        CASE WHEN m.price_status = 'unpriced' THEN 'no_price' END
    FROM {staging} b JOIN bench_models m ON m.id = b.model_id JOIN bench_services s ON s.id = b.service_id
    """


def fill(engine: sa.Engine, total: int, seed: int) -> float:
    """Insert `total` calls; seconds it took."""
    started = time.perf_counter()
    dialect = engine.dialect.name
    with engine.begin() as conn:
        _lookup_tables(conn)
        if dialect != "duckdb":
            conn.exec_driver_sql(
                "CREATE TEMP TABLE bench_staging (i bigint, start_us bigint, model_id int, service_id int,"
                " feature_id bigint, input bigint, output bigint, cache_read bigint, ms bigint)"
            )
        for first in range(0, total, CHUNK):
            table = chunk(first, min(CHUNK, total - first), total, seed)
            raw = conn.connection.driver_connection
            assert raw is not None
            if dialect == "duckdb":
                raw.register("bench_staging", table)
                raw.execute(_insert_sql(dialect, "bench_staging"))
                raw.unregister("bench_staging")
            else:
                buffer = io.BytesIO()
                pacsv.write_csv(table, buffer)
                with raw.cursor() as cur:
                    cur.execute("TRUNCATE bench_staging")
                    with cur.copy("COPY bench_staging FROM STDIN (FORMAT csv, HEADER true)") as copy:
                        copy.write(buffer.getvalue())
                    cur.execute(_insert_sql(dialect, "bench_staging"))
            print(f"  {first + table.num_rows:>11,} calls  {time.perf_counter() - started:7.1f} s", flush=True)
    if dialect != "duckdb":
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.exec_driver_sql("VACUUM ANALYZE calls")
    return time.perf_counter() - started


def mark_every_hour(engine: sa.Engine) -> int:
    """Every hour that holds calls marked dirty; how many hours."""
    hour = rollup.bucket_start(calls.c.start_time)
    with engine.begin() as conn:
        conn.execute(sa.text("DELETE FROM rollup_dirty"))
        conn.execute(sa.text("DELETE FROM call_rollups"))
        conn.execute(rollup_dirty.insert().from_select(["hour"], sa.select(hour).distinct()))
        return int(conn.execute(sa.text("SELECT count(*) FROM rollup_dirty")).scalar_one())


def timed(repeat: int, work: Callable[[], Any]) -> tuple[float, float, Any]:
    """(first run, best of the rest, the result) in milliseconds."""
    times = []
    result = None
    for _ in range(max(1, repeat)):
        started = time.perf_counter()
        result = work()
        times.append((time.perf_counter() - started) * 1000)
    return times[0], min(times[1:] or times), result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=1_000_000, help="calls in the month (default 1M)")
    parser.add_argument("--db-url", help="PostgreSQL URL (default: a DuckDB file in a temp dir)")
    parser.add_argument("--duckdb-path", help="DuckDB file to create (deleted first)")
    parser.add_argument("--allocation", default="day", choices=["hour", "day", "month"], help="pool allocation period")
    parser.add_argument("--repeat", type=int, default=5, help="runs per report (first, then best of the rest)")
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args(argv)

    tmp = None
    if args.db_url:
        admin = make_engine(args.db_url)
        with admin.begin() as conn:
            conn.exec_driver_sql("DROP SCHEMA IF EXISTS bench_spend CASCADE")
            conn.exec_driver_sql("CREATE SCHEMA bench_spend")
        admin.dispose()
        sep = "&" if "?" in args.db_url else "?"
        url = f"{args.db_url}{sep}options=-csearch_path%3Dbench_spend"
    else:
        path = (
            Path(args.duckdb_path) if args.duckdb_path else Path(tempfile.mkdtemp(prefix="bench_spend_")) / "b.duckdb"
        )
        tmp = path
        path.unlink(missing_ok=True)
        url = f"duckdb:///{path}"
    engine = make_engine(url, "4GB")
    migrate(engine)
    config = pricing(args.allocation)
    print(f"breakeven spend benchmark: {args.calls:,} calls in June 2025 on {engine.dialect.name}")

    seconds = fill(engine, args.calls, args.seed)
    print(f"fill: {seconds:.1f} s ({args.calls / seconds:,.0f} calls/s)")
    hours = mark_every_hour(engine)
    started = time.perf_counter()
    rollup.roll_all(engine)
    rolled = time.perf_counter() - started
    if engine.dialect.name != "duckdb":  # what autovacuum would do soon after
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.exec_driver_sql("VACUUM ANALYZE call_rollups")
    with engine.connect() as conn:
        rollup_rows = conn.execute(sa.select(sa.func.count()).select_from(call_rollups)).scalar_one()
    print(f"roll-up of {hours} dirty hours: {rolled:.1f} s -> {rollup_rows:,} rollup rows")
    if tmp is not None:
        with engine.connect() as conn:
            conn.exec_driver_sql("CHECKPOINT")
        print(f"DuckDB file: {tmp.stat().st_size / 2**20:,.0f} MiB")

    usd = Converter(config.fx, None, config.currency)
    mid_hour = MONTH_END - timedelta(days=2, minutes=23, seconds=7)  # "now", inside an hour
    raw = [calls.c.emitter.is_not(None)]  # a column the rollups lack: read every call
    reports: list[tuple[str, Callable[[sa.Connection], Any]]] = [
        ("spend total (month)", lambda c: spend_report(c, config, usd, MONTH, MONTH_END, None)),
        ("spend by service, day", lambda c: spend_report(c, config, usd, MONTH, MONTH_END, "service,day")),
        ("spend by class, model", lambda c: spend_report(c, config, usd, MONTH, MONTH_END, "backend_class,model")),
        (
            "pools",
            lambda c: [pool_json(f, usd, MONTH, MONTH_END) for f in pool_figures(c, config, MONTH, MONTH_END, [])],
        ),
        ("break-even", lambda c: breakeven_report(c, config, usd, MONTH, MONTH_END)),
        ("spend by service to mid-hour", lambda c: spend_report(c, config, usd, MONTH, mid_hour, "service")),
    ]
    print(f"\nreports over the month (ms; first run, best of {args.repeat - 1} more):")
    results: dict[str, Any] = {}
    with engine.connect() as conn:
        for name, work in reports:
            first, best, results[name] = timed(args.repeat, lambda w=work: w(conn))  # type: ignore[misc]
            print(f"  {name:<34} {first:8.1f} {best:8.1f}")
    with engine.begin() as conn:  # one dirty hour mid-month: read from calls until rolled
        rollup.mark_dirty(conn, [datetime(2025, 6, 15, 12, tzinfo=UTC)])
    with engine.connect() as conn:
        first, best, _ = timed(args.repeat, lambda: spend_report(conn, config, usd, MONTH, MONTH_END, "service,day"))
        print(f"  {'spend by service, day; 1 dirty hour':<34} {first:8.1f} {best:8.1f}")
        first, best, from_calls = timed(
            min(args.repeat, 2), lambda: store.spend(conn, config, MONTH, MONTH_END, ("service", "day"), (), raw)
        )
        print(f"  {'same, from calls only (no rollups)':<34} {first:8.1f} {best:8.1f}")
        served = store.spend(conn, config, MONTH, MONTH_END, ("service", "day"))
        print(f"  rollups and calls agree: {served == from_calls}")

    total = results["spend total (month)"]
    print(f"\nfigures (USD): month total {total['total_cost']}, calls {total['rows'][0]['calls']:,},"
          f" unpriced {total['unpriced']['calls']:,}, idle pool cost {total['unallocated_pool_cost']}")  # fmt: skip
    for p in results["pools"]:
        print(
            f"  pool {p['name']}: cost {p['cost']['total']}, utilization {p['utilization'][:6]},"
            f" alternative {p['alternative']['cost']}, savings {p['break_even']['savings']}"
        )
    for c in results["break-even"]["classes"][:3]:
        print(
            f"  class {c['service']} {c['provider']}/{c['model']}: month {c['month_to_date']}, savings {c['savings']}"
        )
    engine.dispose()
    return 0


if __name__ == "__main__":
    sys.exit(main())
