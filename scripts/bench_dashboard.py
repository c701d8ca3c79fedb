"""Dashboard benchmark: each page's server time over a ledger of N calls (default 1M; --calls 10000000).

What it does
  1. Makes a fresh DuckDB ledger (migrated) and fills it fast, without OTLP: a template of
     --template calls is drawn from the `breakeven demo` fleet (services, teams, models,
     token sizes, the two self-hosted pools) and priced by the real ledger pricer, then
     bulk-inserted through Arrow again and again (trace ids, prompt hashes and times
     shifted per copy) until N calls, spread over the last --days days; one LLM span per
     call goes into llm_spans too. 30% of prompts repeat from a pool of 5,000.
  2. Marks every hour dirty and rolls the rollups up (collector/store/rollup.py: hourly and
     daily call rollups, prompt rollups), as `breakeven serve`'s roller would, so reads take
     clean hours from the rollups.
  3. Builds the API and dashboard in process (the demo's config: GBP, two pools, FX) and
     requests each page --repeat times; prints the median and the slowest server time.
     Server time is the request handled in process (query, Python, template), no network.

With --db-url (PostgreSQL), the ledger is filled in DuckDB as above, then copied into a
schema `bench_dashboard` of that database (COPY, both tables), rolled up there and measured
there; --reuse then measures the schema as it is.

Run (with the test extra installed: FastAPI's TestClient needs httpx)
  python scripts/bench_dashboard.py                      # 1M calls
  python scripts/bench_dashboard.py --calls 10000000     # 10M calls
  python scripts/bench_dashboard.py --db /tmp/b.duckdb --keep   # keep the file; --reuse to skip filling
  python scripts/bench_dashboard.py --db-url postgresql://postgres@127.0.0.1:5432/test
A reused ledger is migrated first, and what that marks dirty rolled up (timed).
"""

from __future__ import annotations

import argparse
import io
import random
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa
import pyarrow.csv as pacsv
import sqlalchemy as sa
from fastapi.testclient import TestClient

from breakeven.collector.api.routes import build_api
from breakeven.collector.config.settings import load_settings
from breakeven.collector.demo.config import config_text
from breakeven.collector.demo.traffic import STREAMS
from breakeven.collector.price.ledger import ledger_pricer
from breakeven.collector.records import Call
from breakeven.collector.store.engine import make_engine, migrate
from breakeven.collector.store.rows import call_columns
from breakeven.collector.store.schema import calls as calls_table
from breakeven.dashboard.routes import add_dashboard

POPULAR_PROMPTS = 5_000
PAGES = [
    ("overview", "/overview"),
    ("spend (service x model)", "/spend"),
    ("spend (version x quant, filtered)", "/spend?g1=model_version&g2=quantization&team=support"),
    ("spend.csv", "/spend.csv?g1=team&g2=provider"),
    ("pools", "/pools"),
    ("breakeven", "/breakeven"),
    ("plans", "/plans"),
    ("plans (what-if)", "/plans?growth=1.5&max_utilization=0.6&deferrable=doc-pipeline"),
    ("calls", "/calls"),
    ("calls (service search)", "/calls?service=checkout-api"),
    ("call detail", None),  # filled in with a real call
    ("repeated prompts", "/calls/repeated"),
    ("data quality", "/quality"),
    ("alerts", "/alerts"),
    ("overview.json", "/overview.json"),
]


def _arrow_schema() -> pa.Schema:
    fields = []
    for col in calls_table.columns:
        if col.name in ("start_time", "end_time", "received_at"):
            kind = pa.timestamp("us", tz="UTC")
        elif isinstance(col.type, sa.Numeric) and not isinstance(col.type, sa.Float):
            kind = pa.decimal128(col.type.precision or 20, col.type.scale or 10)
        elif isinstance(col.type, sa.BigInteger):
            kind = pa.int64()
        elif isinstance(col.type, sa.Integer):
            kind = pa.int32()
        elif isinstance(col.type, sa.Float):
            kind = pa.float64()
        elif isinstance(col.type, sa.Boolean):
            kind = pa.bool_()
        else:
            kind = pa.string()
        fields.append(pa.field(col.name, kind))
    return pa.schema(fields)


def template_calls(count: int, days: int, now: datetime, seed: int) -> list[Call]:
    """Calls drawn from the demo fleet's streams, weighted by their daily volume, over `days` days."""
    rng = random.Random(seed)
    weights = [s.per_day for s in STREAMS]
    span = days * 86_400 - 7_200  # leave the last two hours free: copies shift by up to one
    out = []
    for i in range(count):
        s = rng.choices(STREAMS, weights)[0]
        at = now - timedelta(seconds=7_200 + rng.uniform(0, span))
        at = at.replace(hour=rng.choices(range(24), s.hours)[0])
        if at > now - timedelta(hours=2):
            at -= timedelta(days=1)
        prompt_tokens = rng.randint(*s.input_tokens)
        cached = int(prompt_tokens * rng.uniform(0.2, 0.6)) if rng.random() < s.cache_share else 0
        reasoning = rng.randint(*s.reasoning) if s.reasoning else 0
        output = rng.randint(*s.output_tokens) + reasoning
        start_ns = int(at.timestamp() * 1e9)
        popular = rng.random() < 0.3
        prompt = f"0000{rng.randrange(POPULAR_PROMPTS):060x}" if popular else f"{rng.getrandbits(256):064x}"
        engine = s.engine is not None or s.extra.get("breakeven.provider") == "vllm"
        out.append(
            Call(
                trace_id=f"{rng.getrandbits(128):032x}", span_id=f"{i:016x}", parent_span_id=None,
                start_ns=start_ns, end_ns=start_ns + int((0.3 + prompt_tokens / 25_000 + output / 60) * 1e9),
                ttft_ms=None, service=s.service, environment="prod", team=s.team, feature=s.feature,
                operation="chat", provider="vllm" if engine else s.provider,
                backend=s.engine or f"{s.address}:{s.port}",
                backend_class="self_hosted" if engine else ("managed" if s.provider == "together" else "frontier"),
                server_address=s.address, request_model=s.request_model, response_model=s.response_model(i / count),
                quantization="fp8" if "FP8" in s.response_model(0) else s.extra.get("breakeven.quantization"),
                prompt_hash=prompt, input_tokens=prompt_tokens - cached, cache_read_tokens=cached,
                cache_write_tokens=0, output_tokens=output, reasoning_tokens=reasoning, usage_reported=True,
                streaming=False, status="ok", error_type=None, emitter=f"bench.{s.dialect}@1.0",
                conventions=s.dialect, member_span_ids=(f"{i:016x}",),
            )
        )  # fmt: skip
    return out


def floor_day(at: datetime) -> datetime:
    """00:00 UTC of the day that holds `at`."""
    return at.replace(hour=0, minute=0, second=0, microsecond=0)


def fill(db: Path, pricing: Any, total: int, template_size: int, days: int, seed: int) -> None:
    """Migrate a fresh ledger and bulk-insert `total` calls (and as many LLM spans) through Arrow."""
    engine = make_engine(f"duckdb:///{db}")
    migrate(engine)
    engine.dispose()
    now = datetime.now(UTC)
    size = min(total, template_size)
    started = time.monotonic()
    made = template_calls(size, days, now, seed)
    price = ledger_pricer(pricing)
    columns = call_columns(made, [price(c) for c in made], int(now.timestamp() * 1e6))
    template = pa.table(columns, schema=_arrow_schema())
    print(f"template: {size:,} calls drawn and priced in {time.monotonic() - started:.1f} s", flush=True)
    con = duckdb.connect(str(db))
    con.register("tpl_raw", template)
    # Time order, as ingest writes it (and DuckDB's zone maps on start_time expect): one
    # insert per UTC day, every copy of that day's template rows, sorted.
    con.execute("CREATE TEMP TABLE tpl AS SELECT *, row_number() OVER () - 1 AS idx FROM tpl_raw ORDER BY start_time")
    names = [c.name for c in calls_table.columns]
    shifted = {
        "trace_id": "printf('%08x', r.k) || substr(trace_id, 9)",
        "start_time": "start_time + to_seconds((r.k * 13) % 3600)",
        "end_time": "end_time + to_seconds((r.k * 13) % 3600)",
        "prompt_hash": "CASE WHEN prompt_hash LIKE '0000%' THEN prompt_hash ELSE printf('%08x', r.k) || substr(prompt_hash, 9) END",
    }
    select_calls = ", ".join(shifted.get(n, n) for n in names)
    span_columns = [c[1] for c in con.execute("PRAGMA table_info('llm_spans')").fetchall()]
    span_values = {
        "name": "'chat ' || request_model",
        "kind": "3",
        "is_engine": "provider = 'vllm'",
        "attributes": "'{}'",
    }
    select_spans = ", ".join({**span_values, **shifted}.get(n, n) for n in span_columns)
    copies = -(-total // size)
    # Copy k holds every template row, except the last copy, which holds the first `total - k * size`.
    wanted = f"(r.k < {copies - 1} OR tpl.idx < {total - (copies - 1) * size})"
    started = time.monotonic()
    first = floor_day(now - timedelta(days=days + 1))
    for d in range(days + 2):
        lo, hi = first + timedelta(days=d), first + timedelta(days=d + 1)
        source = f"FROM tpl, range({copies}) r(k) WHERE start_time >= '{lo.isoformat()}' AND start_time < '{hi.isoformat()}' AND {wanted}"
        con.execute(f"INSERT INTO calls SELECT {select_calls} {source} ORDER BY tpl.start_time")
        con.execute(
            f"INSERT INTO llm_spans ({', '.join(span_columns)}) SELECT {select_spans} {source} ORDER BY tpl.start_time"
        )
        if d % 10 == 9 or d == days + 1:
            print(f"  day {d + 1} of {days + 2} inserted ({time.monotonic() - started:.0f} s)", flush=True)
    con.execute(
        "INSERT INTO rollup_dirty SELECT DISTINCT to_timestamp(floor(date_part('epoch', start_time) / 3600) * 3600) FROM calls"
    )
    con.execute("CHECKPOINT")
    stored = con.execute("SELECT count(*) FROM calls").fetchone()
    con.close()
    print(f"filled {stored[0] if stored else 0:,} calls in {time.monotonic() - started:.1f} s", flush=True)


def copy_to_postgresql(db: Path, url: str) -> None:
    """Copy the DuckDB ledger's calls and LLM spans into a freshly migrated PostgreSQL schema."""
    engine = make_engine(url)
    migrate(engine)
    started = time.monotonic()
    con = duckdb.connect(str(db), read_only=True)
    with engine.begin() as conn:
        raw = conn.connection.driver_connection
        assert raw is not None
        for table in ("calls", "llm_spans"):
            names = [c[1] for c in con.execute(f"PRAGMA table_info('{table}')").fetchall()]
            reader = con.sql(f"SELECT * FROM {table}").to_arrow_reader(200_000)
            with raw.cursor() as cur:
                for batch in reader:
                    buffer = io.BytesIO()
                    pacsv.write_csv(pa.Table.from_batches([batch]), buffer)
                    with cur.copy(f"COPY {table} ({', '.join(names)}) FROM STDIN (FORMAT csv, HEADER true)") as copy:
                        copy.write(buffer.getvalue())
            print(f"  {table} copied ({time.monotonic() - started:.0f} s)", flush=True)
        conn.exec_driver_sql(
            "INSERT INTO rollup_dirty SELECT DISTINCT to_timestamp(floor(date_part('epoch', start_time) / 3600) * 3600)"
            " FROM calls"
        )
    con.close()
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.exec_driver_sql("VACUUM ANALYZE")
    engine.dispose()
    print(f"copied into PostgreSQL in {time.monotonic() - started:.1f} s", flush=True)


def roll(url: str) -> None:
    """Migrate, then roll every dirty hour up, as the serve roller does."""
    from breakeven.collector.store import rollup

    engine = make_engine(url)
    migrate(engine)
    started = time.monotonic()
    hours = rollup.roll_all(engine)
    if engine.dialect.name == "postgresql":  # what autovacuum would do soon after
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.exec_driver_sql("VACUUM ANALYZE")
    engine.dispose()
    print(f"rolled up {hours:,} hours in {time.monotonic() - started:.1f} s", flush=True)


def measure(url: str, pricing: Any, repeat: int, memory_limit: str, threads: int) -> list[tuple[str, float, float]]:
    """Each page's median and slowest server time over `repeat` requests (after one warm-up)."""
    engine = make_engine(url, memory_limit, duckdb_threads=threads)
    app = build_api(engine, None, pricing)
    add_dashboard(app, engine, pricing)
    client = TestClient(app)
    first = client.get("/calls.json", params={"range": "30d"}).json()["calls"][0]
    results = []
    for name, path in PAGES:
        path = path or f"/calls/{first['trace_id']}/{first['span_id']}"
        sep = "&" if "?" in path else "?"
        url = f"{path}{sep}range=30d"
        reply = client.get(url)  # warm-up: caches, DuckDB buffer pool
        if reply.status_code != 200:
            raise SystemExit(f"{url}: {reply.status_code} {reply.text[:300]}")
        times = []
        for _ in range(repeat):
            started = time.perf_counter()
            client.get(url)
            times.append(time.perf_counter() - started)
        results.append((name, statistics.median(times), max(times)))
        print(
            f"  {name:<36} median {statistics.median(times) * 1000:8.0f} ms   max {max(times) * 1000:8.0f} ms",
            flush=True,
        )
    engine.dispose()
    return results


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--calls", type=int, default=1_000_000, help="calls in the ledger (default 1,000,000)")
    parser.add_argument("--days", type=int, default=30, help="days they spread over, ending now (30)")
    parser.add_argument("--template", type=int, default=200_000, help="distinct calls drawn and priced (200,000)")
    parser.add_argument("--repeat", type=int, default=5, help="timed requests per page (5)")
    parser.add_argument("--db", help="DuckDB file (default: a temporary one)")
    parser.add_argument("--keep", action="store_true", help="keep the DuckDB file")
    parser.add_argument(
        "--reuse", action="store_true", help="measure an existing --db (or --db-url) without filling it"
    )
    parser.add_argument("--db-url", help="PostgreSQL URL: copy the filled ledger into a schema there and measure it")
    parser.add_argument("--memory-limit", default="1GB", help="DuckDB memory limit, as serve's default (1GB)")
    parser.add_argument("--duckdb-threads", type=int, default=1, help="DuckDB's threads, as serve's default (1)")
    parser.add_argument("--seed", type=int, default=11)
    args = parser.parse_args()
    tmp = None
    if args.db:
        db = Path(args.db)
    else:
        tmp = tempfile.mkdtemp(prefix="dashboard-bench-")
        db = Path(tmp) / "bench.duckdb"
    db.parent.mkdir(parents=True, exist_ok=True)
    config = db.parent / "bench.toml"
    config.write_text(config_text(f"duckdb:///{db}", 8000, (datetime.now(UTC) - timedelta(days=args.days)).date()))
    pricing = load_settings({"config": str(config)}, environ={}).pricing
    url = f"duckdb:///{db}"
    if args.db_url:
        admin = make_engine(args.db_url)
        with admin.begin() as conn:
            if not args.reuse:
                conn.exec_driver_sql("DROP SCHEMA IF EXISTS bench_dashboard CASCADE")
            conn.exec_driver_sql("CREATE SCHEMA IF NOT EXISTS bench_dashboard")
        admin.dispose()
        url = f"{args.db_url}{'&' if '?' in args.db_url else '?'}options=-csearch_path%3Dbench_dashboard"
    if not args.reuse:
        if db.exists():
            db.unlink()
        fill(db, pricing, args.calls, args.template, args.days, args.seed)
        if args.db_url:
            copy_to_postgresql(db, url)
    roll(url)
    where = f"PostgreSQL schema bench_dashboard (filled from {db})" if args.db_url else f"{db}"
    size = db.stat().st_size / 2**20
    print(f"\n=== breakeven dashboard benchmark: {args.calls:,} calls over {args.days} days, {where} ({size:,.0f} MiB)")
    duckdb = "" if args.db_url else f", DuckDB memory_limit {args.memory_limit}, {args.duckdb_threads} thread(s)"
    print(f"server time per page, range=30d, {args.repeat} requests after a warm-up{duckdb}")
    results = measure(url, pricing, args.repeat, args.memory_limit, args.duckdb_threads)
    slow = [name for name, median, _ in results if median > 0.3]
    print(f"pages over 300 ms (median): {', '.join(slow) if slow else 'none'}")
    if tmp and not args.keep:
        db.unlink(missing_ok=True)
        Path(f"{db}.wal").unlink(missing_ok=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
