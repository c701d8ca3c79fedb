"""Plans benchmark: how long GET /api/v1/plans takes over a month of hourly data for 50 traffic classes.

What it does
  1. Fills a ledger with N calls over June 2025 (default 1M; --calls 10000000) through
     scripts/bench_spend.py's bulk fill (its models, services, price book, pools, token
     sizes and insert), each chunk re-drawn here: 50 traffic classes bought per token
     (service x provider x model, from 6 models; from about 0.4% to 8% of the calls each),
     four streams of the two self-hosted pools' own traffic (28% of the calls), and a
     day/night shape (calls per UTC hour of the day from 1 at night to 10 in the afternoon,
     shifted by each class's region: 0, +6 or -7 hours).
  2. Marks every hour dirty and rolls everything up (breakeven.collector.store.rollup.roll_all),
     so the rollups are caught up as `serve`'s roller keeps them.
  3. The config: bench_spend's price book and pools, three candidate boxes (Llama 3.3 70B FP8,
     Llama 3.1 8B, Qwen 2.5 32B) and [[pricing.substitutes]] that let them take most classes
     (GPT-4o, GPT-4o mini, Gemini Flash; Claude for four services only), besides the pools'
     own boxes (price/breakeven.py pool_candidates).
  4. Times plans_report for the month --repeat times after one first run: median and spread
     of the whole report, of its SQL read (store/spend.py `hourly`, rows built), and of its
     arithmetic (reports/plans.py `plan_classes` over those rows: every curve of every class
     and candidate); the same with growth=1.5; and GET /api/v1/plans in process (FastAPI's
     TestClient: routing and JSON, no network).

Run (with the test extra installed: the API timing needs httpx)
  python scripts/bench_plans.py                         # 1M calls, DuckDB in a temp dir
  python scripts/bench_plans.py --calls 10000000 --db /tmp/plans.duckdb --keep
  python scripts/bench_plans.py --db /tmp/plans.duckdb --reuse   # measure it again, no fill
  python scripts/bench_plans.py --calls 10000000 --db-url postgresql://postgres@127.0.0.1:5432/test
  (PostgreSQL: a schema bench_plans is dropped and created in that database; --reuse keeps it.)
Measured as `serve` runs: DuckDB at a 1 GB memory limit on one thread, the interpreter with serve's
cycle-collector and thread-switch tuning (collector/ingest/tuning.py), unless told otherwise.
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import replace
from decimal import Decimal
from pathlib import Path
from typing import Any
from unittest import mock

import bench_spend
import pyarrow as pa
import pyarrow.compute as pc
import sqlalchemy as sa

from breakeven.collector.config.pricing import parse_pricing
from breakeven.collector.ingest.tuning import tune_garbage_collector, tune_thread_switching
from breakeven.collector.price.config import PricingConfig
from breakeven.collector.reports.currency import Converter
from breakeven.collector.reports.plans import WhatIf, plan_classes, plans_report
from breakeven.collector.store import rollup
from breakeven.collector.store.engine import make_engine, migrate
from breakeven.collector.store.schema import call_rollups
from breakeven.collector.store.spend import hourly

MONTH, MONTH_END = bench_spend.MONTH, bench_spend.MONTH_END
BOUGHT_MODELS = range(6)  # bench_spend.MODELS 0-5: priced per token; 6, 7: the pools; 8: unpriced
POOL_STREAMS = [(1, 6, 50), (4, 6, 30), (2, 7, 25), (7, 7, 15)]  # (service, model, weight): the pools' own traffic
# Calls per UTC hour of the day, relative: night to afternoon peak.
DAY_SHAPE = [2, 1, 1, 1, 1, 2, 3, 5, 7, 8, 9, 9, 9, 10, 10, 10, 9, 8, 7, 6, 5, 4, 3, 2]
SHIFTS = [0, 0, 0, 6, -7]  # a class's region: its day/night shape moved by these hours
CANDIDATES = [
    {"name": "h100-llama-70b-fp8", "model": "llama-3.3-70b", "quantization": "fp8", "rent_per_month": "2000",
     "variable_per_million": "0.01", "capacity": {"input_tps": "20000", "output_tps": "2000"}, "max_utilization": "0.8"},
    {"name": "l4-llama-8b", "model": "llama-3.1-8b", "rent_per_month": "550",
     "capacity": {"input_tps": "30000", "output_tps": "3000"}},
    {"name": "h100-qwen-32b", "model": "qwen-2.5-32b", "quantization": "awq", "rent_per_month": "1800",
     "capacity": {"input_tps": "25000", "output_tps": "2500"}},
]  # fmt: skip
SUBSTITUTES = [
    {"from": {"model": "gpt-4o-mini*"}, "to": {"model": "llama-3.1-8b"}, "share": "0.7", "evidence": "bench eval: mini"},
    {"from": {"model": "gemini-2.5-flash*"}, "to": {"model": "llama-3.1-8b"}, "share": "0.5", "evidence": "bench eval: flash"},
    {"from": {"model": "gpt-4o-2*"}, "to": {"model": "llama-3.3-70b"}, "share": "0.6", "evidence": "bench eval: 4o"},
    {"from": {"model": "gpt-4o-2*"}, "to": {"model": "qwen-2.5-32b", "quantization": "awq"}, "share": "0.5",
     "evidence": "bench eval: 4o on qwen"},
    *({"from": {"provider": "anthropic", "model": "claude-sonnet-4*", "service": f"svc-{i:02d}"},
       "to": {"model": "qwen-2.5-32b"}, "share": "0.4", "evidence": "bench eval: sonnet"} for i in range(4)),
]  # fmt: skip
HOUR_US = 3_600_000_000
DAY_US = 24 * HOUR_US


def classes(seed: int) -> list[tuple[int, int, int, int]]:
    """(service, model, weight, shift index): 50 bought classes of 12 services x 6 models, then the pool streams."""
    rng = random.Random(seed)
    pairs = rng.sample([(s, m) for s in range(len(bench_spend.SERVICES)) for m in BOUGHT_MODELS], 50)
    bought = [(s, m, round(2000 / (rank + 3)), rng.randrange(len(SHIFTS))) for rank, (s, m) in enumerate(pairs)]
    return bought + [(s, m, w * 20, 0) for s, m, w in POOL_STREAMS]


def plans_pricing(allocation: str) -> PricingConfig:
    """bench_spend's price book and pools, with this benchmark's candidates and substitutes."""
    extra = parse_pricing({"candidates": CANDIDATES, "substitutes": SUBSTITUTES})
    return replace(bench_spend.pricing(allocation), candidates=extra.candidates, substitutes=extra.substitutes)


def shaped_chunk(uniform: Callable[..., pa.Table], seed: int) -> Callable[[int, int, int, int], pa.Table]:
    """bench_spend's chunk with each call's class and hour of the day re-drawn: 50 classes, day/night."""
    table = classes(seed)
    service = pa.array([c[0] for c in table], pa.int32())
    model = pa.array([c[1] for c in table], pa.int32())
    region = pa.array([c[3] for c in table], pa.int32())
    # Row region x 24 + drawn hour -> the UTC hour it lands on.
    hour_of = pa.array([(h - SHIFTS[r]) % 24 for r in range(len(SHIFTS)) for h in range(24)], pa.int64())

    def chunk(first: int, n: int, total: int, chunk_seed: int) -> pa.Table:
        base = uniform(first, n, total, chunk_seed)
        rnd = [pc.random(n, initializer=chunk_seed * 7919 + first // bench_spend.CHUNK * 4 + k) for k in range(3)]
        which = bench_spend._pick(rnd[0], [c[2] for c in table])
        drawn = bench_spend._pick(rnd[1], DAY_SHAPE)
        slot = pc.add(pc.multiply(pc.cast(pc.take(region, which), pa.int64()), 24), pc.cast(drawn, pa.int64()))
        day = pc.multiply(
            pc.cast(pc.floor(pc.divide(pc.cast(base["start_us"], pa.float64()), DAY_US)), pa.int64()), DAY_US
        )
        start = pc.add(
            pc.add(day, pc.multiply(pc.take(hour_of, slot), HOUR_US)),
            pc.cast(pc.floor(pc.multiply(rnd[2], HOUR_US)), pa.int64()),
        )
        out = base.set_column(base.schema.get_field_index("start_us"), "start_us", start)
        out = out.set_column(out.schema.get_field_index("model_id"), "model_id", pc.take(model, which))
        out = out.set_column(out.schema.get_field_index("service_id"), "service_id", pc.take(service, which))
        return out.take(pc.sort_indices(out, [("start_us", "ascending")]))

    return chunk


def build(url: str, total: int, seed: int) -> None:
    """A fresh, migrated ledger of `total` calls, every hour rolled up."""
    engine = make_engine(url, "4GB")
    migrate(engine)
    # bench_spend.fill draws each chunk with its module's chunk(): this benchmark's, for this fill.
    with mock.patch.object(bench_spend, "chunk", shaped_chunk(bench_spend.chunk, seed)):
        seconds = bench_spend.fill(engine, total, seed)
    print(f"fill: {seconds:.1f} s ({total / seconds:,.0f} calls/s)")
    hours = bench_spend.mark_every_hour(engine)
    engine.dispose()
    roll(url, f"roll-up of {hours} dirty hours")


def roll(url: str, what: str) -> None:
    """Roll every dirty hour up, as the serve roller does (and what autovacuum would do next)."""
    engine = make_engine(url, "4GB")
    migrate(engine)
    started = time.perf_counter()
    rollup.roll_all(engine)
    rolled = time.perf_counter() - started
    if engine.dialect.name != "duckdb":
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.exec_driver_sql("VACUUM ANALYZE call_rollups")
    else:
        with engine.connect() as conn:
            conn.exec_driver_sql("CHECKPOINT")
    with engine.connect() as conn:
        rows = conn.execute(sa.select(sa.func.count()).select_from(call_rollups)).scalar_one()
    engine.dispose()
    print(f"{what}: {rolled:.1f} s -> {rows:,} hourly rollup rows")


def runs(repeat: int, work: Callable[[], Any]) -> tuple[float, list[float], Any]:
    """(the first run, the next `repeat` runs, the result), in ms."""
    times = []
    result = None
    for _ in range(repeat + 1):
        started = time.perf_counter()
        result = work()
        times.append((time.perf_counter() - started) * 1000)
    return times[0], times[1:], result


def show(name: str, first: float, times: list[float]) -> None:
    median = statistics.median(times)
    print(
        f"  {name:<40} median {median:7.0f}   min {min(times):7.0f}   max {max(times):7.0f}   first {first:7.0f}"
        f"   runs {' '.join(f'{t:.0f}' for t in times)}",
        flush=True,
    )


def measure(url: str, config: PricingConfig, args: argparse.Namespace) -> dict[str, Any]:
    """Time the report, its parts, the what-if and the API; the month's report body."""
    engine = make_engine(url, args.memory_limit, duckdb_threads=args.duckdb_threads)
    usd = Converter(config.fx, None, config.currency)
    grown = WhatIf(growth=Decimal("1.5"))
    if not args.python_defaults:
        tune_garbage_collector()
        tune_thread_switching()
    tuning = "Python's defaults" if args.python_defaults else "serve's GC and thread-switch tuning"
    print(f"\nplans over June 2025 (ms; {args.repeat} runs after a first; {tuning})")
    with engine.connect() as conn:
        first, times, body = runs(args.repeat, lambda: plans_report(conn, config, usd, MONTH, MONTH_END, WhatIf()))
        show("plans_report (the whole report)", first, times)
        first, times, rows = runs(args.repeat, lambda: hourly(conn, MONTH, MONTH_END))
        show("  SQL read: hourly(), rows built", first, times)
        first, times, _ = runs(args.repeat, lambda: plan_classes(rows, config, MONTH, MONTH_END, WhatIf()))
        show("  arithmetic: plan_classes()", first, times)
        first, times, grown_body = runs(args.repeat, lambda: plans_report(conn, config, usd, MONTH, MONTH_END, grown))
        show("plans_report, growth=1.5", first, times)
        first, times, _ = runs(args.repeat, lambda: plan_classes(rows, config, MONTH, MONTH_END, grown))
        show("  arithmetic: plan_classes(), growth=1.5", first, times)
    if not args.no_api:
        from fastapi.testclient import TestClient

        from breakeven.collector.api.routes import build_api

        client = TestClient(build_api(engine, None, config))
        query = {"since": MONTH.isoformat(), "until": MONTH_END.isoformat()}

        def get(params: dict[str, str]) -> Any:
            reply = client.get("/api/v1/plans", params=params)
            if reply.status_code != 200:
                raise SystemExit(f"/api/v1/plans: {reply.status_code} {reply.text[:300]}")
            return reply.json()

        first, times, served = runs(args.repeat, lambda: get(query))
        show("GET /api/v1/plans (in process)", first, times)
        first, times, _ = runs(args.repeat, lambda: get({**query, "growth": "1.5"}))
        show("GET /api/v1/plans?growth=1.5", first, times)
        print(f"  the API's body is the report's: {served == json.loads(json.dumps(body))}")
    engine.dispose()
    summary(rows, body, grown_body)
    return body


def summary(rows: list[Any], body: dict[str, Any], grown: dict[str, Any]) -> None:
    bought = {(r.service, r.provider, r.model) for r in rows if r.price_status == "priced"}
    planned = [c for c in body["classes"] if c["plan"]]
    curves = sum(len(c["plan"]["curve"]) for c in planned)
    print(
        f"\n{len(rows):,} hourly rows; {len(bought)} bought classes; {len(body['classes'])} classes in the report,"
        f" {len(planned)} with a plan (curves of {curves} points in all)"
    )
    for c in body["classes"][:3]:
        print(f"  {c['plan']['sentence'] if c['plan'] else c['reason']}")
    saved = sum((Decimal(c["plan"]["savings"]) for c in planned), Decimal(0))
    saved_grown = sum((Decimal(c["plan"]["savings"]) for c in grown["classes"] if c["plan"]), Decimal(0))
    print(f"  savings of the best plans, summed: {saved} USD; at growth 1.5: {saved_grown} USD")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=1_000_000, help="calls in the month (default 1M)")
    parser.add_argument("--db", help="DuckDB file (default: a temporary one, deleted after)")
    parser.add_argument("--keep", action="store_true", help="keep the DuckDB file")
    parser.add_argument("--reuse", action="store_true", help="measure an existing --db (or --db-url schema) as it is")
    parser.add_argument("--db-url", help="PostgreSQL URL: the ledger goes into a schema bench_plans there")
    parser.add_argument("--allocation", default="day", choices=["hour", "day", "month"], help="pool allocation period")
    parser.add_argument("--repeat", type=int, default=7, help="timed runs after the first (7)")
    parser.add_argument("--memory-limit", default="1GB", help="DuckDB memory limit while measuring (serve's 1GB)")
    parser.add_argument("--duckdb-threads", type=int, default=1, help="DuckDB threads while measuring (serve's 1)")
    parser.add_argument(
        "--python-defaults", action="store_true", help="measure without serve's GC and thread-switch tuning"
    )
    parser.add_argument("--no-api", action="store_true", help="skip the HTTP API timing (it needs httpx)")
    parser.add_argument("--json", help="write the month's report body here (to compare two builds)")
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args(argv)

    tmp = None
    made_dir = False
    if args.db_url:
        admin = make_engine(args.db_url)
        with admin.begin() as conn:
            if not args.reuse:
                conn.exec_driver_sql("DROP SCHEMA IF EXISTS bench_plans CASCADE")
            conn.exec_driver_sql("CREATE SCHEMA IF NOT EXISTS bench_plans")
        admin.dispose()
        url = f"{args.db_url}{'&' if '?' in args.db_url else '?'}options=-csearch_path%3Dbench_plans"
        where = "PostgreSQL schema bench_plans"
    else:
        db = Path(args.db) if args.db else Path(tempfile.mkdtemp(prefix="bench_plans_")) / "b.duckdb"
        tmp = None if args.keep or args.reuse else db
        made_dir = not args.db
        if not args.reuse:
            db.unlink(missing_ok=True)
            Path(f"{db}.wal").unlink(missing_ok=True)
        url = f"duckdb:///{db}"
        where = str(db)
    print(f"breakeven plans benchmark: {where}")
    if args.reuse:
        roll(url, "catching up dirty hours")
    else:
        print(f"filling {args.calls:,} calls in June 2025")
        build(url, args.calls, args.seed)
    if not args.db_url:
        print(f"DuckDB file: {db.stat().st_size / 2**20:,.0f} MiB")
    body = measure(url, plans_pricing(args.allocation), args)
    if args.json:
        Path(args.json).write_text(json.dumps(body, indent=1, sort_keys=True))
    if tmp is not None:
        tmp.unlink(missing_ok=True)
        Path(f"{tmp}.wal").unlink(missing_ok=True)
        if made_dir:
            tmp.parent.rmdir()
    return 0


if __name__ == "__main__":
    sys.exit(main())
