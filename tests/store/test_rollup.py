"""Hourly rollups stay exact: whatever the roller has done, spend equals spend over the raw calls.

Every comparison reads spend twice: as the money API does (clean hours from call_rollups),
and with a `where` on a column the rollups lack, which reads the calls table only. Calls go
in through the real write path (ledger_pricer + LedgerWriter, or the pipeline for late
spans); both dialects.
"""

from __future__ import annotations

import dataclasses
import random
import threading
import time
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
import sqlalchemy as sa

from breakeven.collector.calls.pipeline import Pipeline
from breakeven.collector.config.checks import SettingsError
from breakeven.collector.config.pricing import parse_pricing
from breakeven.collector.config.settings import load_settings
from breakeven.collector.price.config import PricingConfig
from breakeven.collector.price.ledger import ledger_pricer
from breakeven.collector.price.periods import utc
from breakeven.collector.price.usage import TokenUsage
from breakeven.collector.records import POOL, Call, Work, WriteBatch
from breakeven.collector.store import hours, rollup
from breakeven.collector.store import spend as store
from breakeven.collector.store.engine import downgrade, migrate
from breakeven.collector.store.reprice import plan_run, reprice
from breakeven.collector.store.schema import (
    call_rollups,
    call_rollups_daily,
    calls,
    llm_spans,
    retention_horizon,
    rollup_dirty,
)
from breakeven.collector.store.writer import LedgerWriter
from tests.pricecalls import at, call
from tests.spans import llm

pytestmark = pytest.mark.slow  # seconds per test: not the fast part

RAW = calls.c.emitter.is_not(None)  # a column the rollups lack: spend reads the calls table only


def pricing_table(period: str = "day", gpt_input: str = "2") -> dict[str, Any]:
    """Two per-token models (one discounted), one without a price, two pools, a pound rate."""
    pool = {"capacity": {"input_tps": "1000", "output_tps": "100"}, "variable_per_million": "0.10"}
    return {
        "currency": "USD",
        "allocation_period": period,
        "prices": [
            {"provider": "openai", "model": "gpt-t", "effective_from": "2025-01-01", "input": gpt_input, "output": "8"},
            {"provider": "anthropic", "model": "claude-t", "effective_from": "2025-01-01", "input": "3", "output": "15"},
            {"provider": "together", "model": "llama-t", "effective_from": "2025-01-01", "input": "0.2", "output": "0.2"},
        ],
        "discounts": [{"provider": "anthropic", "percent": "10", "effective_from": "2025-01-01"}],
        "fx": [{"currency": "GBP", "date": "2025-01-01", "per_usd": "0.8"}, {"currency": "GBP", "date": "2025-06-11", "per_usd": "0.75"}],
        "pools": [
            {"name": "p", "boxes": 1, "rent_per_hour": "1", "match": {"backend": "vllm-p"},
             "alternative": {"provider": "together", "model": "llama-t"}, **pool},
            {"name": "q", "boxes": 2, "rent_per_month": "1500", "match": {"backend": "vllm-q"},
             "alternative": {"provider": "together", "model": "llama-t"}, **pool},
        ],
        "candidates": [{"name": "box", "rent_per_month": "3", "capacity": {"input_tps": "1000", "output_tps": "100"}}],
    }  # fmt: skip


def pricing(period: str = "day", gpt_input: str = "2") -> PricingConfig:
    return parse_pricing(pricing_table(period, gpt_input))


START = at("2025-06-09T20:00:00")
END = at("2025-06-12T10:00:00")


def dataset(n: int = 400, seed: int = 7) -> list[Call]:
    """Calls spread over 62 hours at microsecond start times, some exactly on the hour."""
    rng = random.Random(seed)
    ttft = random.Random(seed + 1)  # apart, so the other fields stay what they were for each seed
    kinds = [
        dict(provider="openai", model="gpt-t", backend_class="frontier"),
        dict(provider="anthropic", model="claude-t", backend_class="frontier"),
        dict(provider="openai", model="mystery", backend_class="frontier"),
        dict(provider="together", model="llama-t", backend_class="managed"),
        dict(provider="vllm", model="llama-p", backend="vllm-p", backend_class="self_hosted", quantization="fp8"),
        dict(provider="vllm", model="llama-q", backend="vllm-q", backend_class="self_hosted"),
    ]
    out = []
    span = int((END - START).total_seconds())
    for i in range(n):
        offset = timedelta(seconds=rng.randrange(span), microseconds=rng.randrange(10**6))
        start = START + (timedelta(hours=rng.randrange(span // 3600)) if i % 10 == 0 else offset)
        kind = rng.choice(kinds)
        c = call(
            **kind,  # type: ignore[arg-type]
            start=start.replace(tzinfo=None).isoformat(),
            service=rng.choice(["search", "chat", "agent", None]),
            team=rng.choice(["a", "b", None]),
            input=rng.randrange(1, 400_000),
            output=rng.randrange(0, 40_000),
            cache_read=rng.choice([0, 0, 1_000]),
        )
        version = rng.choice([None, f"{kind['model']}-2025"])
        # time to first token in full double precision (102.621534 was 32 bits on DuckDB once)
        first_token = ttft.choice([None, round(ttft.uniform(5, 900), 6), ttft.uniform(5, 900)])
        out.append(
            dataclasses.replace(c, feature=rng.choice(["f1", "f2", None]), response_model=version, ttft_ms=first_token)
        )
    return out


def write(engine: sa.Engine, ledger: Sequence[Call], config: PricingConfig | None = None, batch: int = 97) -> None:
    price = ledger_pricer(config or pricing())
    writer = LedgerWriter(engine)
    for i in range(0, len(ledger), batch):
        part = list(ledger[i : i + batch])
        writer.write(WriteBatch(calls=part, prices=[price(c) for c in part]), 0)


def write_while_rolling(engine: sa.Engine, ledger: Sequence[Call], batch: int = 7) -> list[BaseException]:
    """Write the calls in small batches while rollers run (two on PostgreSQL, as two
    collectors would); what the rollers raised, a DuckDB transaction conflict aside
    (the next pass retries)."""
    done = threading.Event()
    errors: list[BaseException] = []

    def roll() -> None:
        while not done.is_set():
            try:
                rollup.roll_pass(engine, max_hours=8)
            except Exception as exc:
                if "conflict" not in str(exc).lower():
                    errors.append(exc)

    rollers = [threading.Thread(target=roll) for _ in range(2 if engine.dialect.name == "postgresql" else 1)]
    for t in rollers:
        t.start()
    try:
        write(engine, ledger, batch=batch)
    finally:
        done.set()
        for t in rollers:
            t.join(30)
    return errors


def late_span_re_merges(
    engine: sa.Engine, config: PricingConfig, rolled: Callable[[], None], **outer_fields: Any
) -> None:
    """Trace f*32 through a pipeline: the caller's span alone (no usage: unpriced no_usage),
    rolled up, `rolled()` checked, then the engine's span, which re-merges the stored call
    (its model version, tokens and price change)."""
    pipeline = Pipeline(LedgerWriter(engine), 1000, 100, 100, price=ledger_pricer(config))
    pipeline.start()
    try:
        start_ns = int(at("2025-06-10T09:59:59.5").timestamp() * 1e9)
        base = dict(trace_id="f" * 32, request_model="gpt-t", service="search", input_tokens=None, output_tokens=None)
        outer = dataclasses.replace(llm("a" * 16, **base), start_ns=start_ns, end_ns=start_ns + 10**9, **outer_fields)  # type: ignore[arg-type]  # fmt: skip
        pipeline.submit(Work(spans=[outer])).result(timeout=10)
        rollup.roll_all(engine)
        rolled()
        inner = dataclasses.replace(
            outer, span_id="b" * 16, parent_span_id="a" * 16, start_ns=start_ns + 10**6, end_ns=start_ns + 9 * 10**8,
            response_model="gpt-t-2025", input_tokens=5_000, output_tokens=700,
        )  # fmt: skip
        pipeline.submit(Work(spans=[inner])).result(timeout=10)
    finally:
        pipeline.stop()


@pytest.fixture
def ledger(engine: sa.Engine) -> sa.Engine:
    migrate(engine)
    write(engine, dataset())
    return engine


QUERIES = [
    ((), ()),
    (("service",), ()),
    (("backend_class", "model"), ()),
    (("model_version", "quantization"), ()),
    (("pool", "day"), ()),
    (("team", "month", "feature"), ()),
    (("provider", "service"), (calls.c.backend_class.in_(["frontier", "managed"]),)),
    (("pool", "service"), (calls.c.price_status == POOL,)),
]
RANGES = [
    (at("2025-06-09"), at("2025-06-13")),  # everything, whole days
    (at("2025-06-10T03:17:05"), at("2025-06-11T22:40:00")),  # partial hours at both ends
    (at("2025-06-10T05:10:00"), at("2025-06-10T05:50:00")),  # inside one hour
    (at("2025-06-10T05:10:00"), at("2025-06-10T06:50:00")),  # two partial hours, no whole one
    (at("2025-06-11T00:00:00"), at("2025-06-11T01:00:00")),  # exactly one hour
]


def assert_exact(engine: sa.Engine, config: PricingConfig, ranges: Sequence[tuple[datetime, datetime]] = RANGES) -> int:
    """Spend as served equals spend over raw calls, for every query and range; how many compared."""
    compared = 0
    breaks = [at("2025-06-11")]
    with engine.connect() as conn:
        for since, until in ranges:
            for group_by, where in QUERIES:
                served = store.spend(conn, config, since, until, group_by, breaks, where)
                raw = store.spend(conn, config, since, until, group_by, breaks, [*where, RAW])
                assert served == raw, (since, until, group_by)
                compared += 1
    return compared


def dirty(engine: sa.Engine) -> int:
    with engine.connect() as conn:
        return conn.execute(sa.select(sa.func.count()).select_from(rollup_dirty)).scalar_one()


def rollup_rows(engine: sa.Engine) -> list[tuple[Any, ...]]:
    """call_rollups summed per key, and the same GROUP BY over calls: they must be equal."""
    dims = [call_rollups.c[d] for d in rollup.DIMENSIONS]
    sums = [sa.func.sum(call_rollups.c[m]) for m in ("calls", *rollup.TOKENS, "cost_usd", "list_cost_usd")]
    with engine.connect() as conn:
        rows = conn.execute(sa.select(call_rollups.c.hour, *dims, *sums).group_by(call_rollups.c.hour, *dims))
        return sorted((tuple(str(v) for v in r) for r in rows), key=str)


def calls_grouped(engine: sa.Engine) -> list[tuple[Any, ...]]:
    with engine.connect() as conn:
        rows = conn.execute(rollup._grouped_calls(at("1970-01-01"), at("2100-01-01")))
        return sorted((tuple(str(v) for v in r) for r in rows), key=str)


def assert_days_sum_hours(engine: sa.Engine) -> None:
    """call_rollups_daily holds each day's hours summed (both read in one GROUP BY shape)."""
    shapes = []
    for table, at_column in (
        (call_rollups, rollup.bucket_start(call_rollups.c.hour, 86_400)),
        (call_rollups_daily, call_rollups_daily.c.day),
    ):
        dims = [table.c[d] for d in rollup.DIMENSIONS]
        sums = [sa.func.sum(table.c[m]) for m in ("calls", *rollup.TOKENS, "cost_usd", "list_cost_usd")]
        with engine.connect() as conn:
            rows = conn.execute(sa.select(at_column, *dims, *sums).group_by(at_column, *dims))
            shapes.append(sorted((tuple(str(v) for v in r) for r in rows), key=str))
    assert shapes[0] == shapes[1]
    assert shapes[0]


@pytest.mark.parametrize("period", ["hour", "day", "month"])
def test_spend_is_exact_before_during_and_after_the_roll(ledger: sa.Engine, period: str) -> None:
    config = pricing(period)
    assert dirty(ledger) > 0
    assert rollup_rows(ledger) == []
    assert_exact(ledger, config)
    assert rollup.roll_pass(ledger, max_hours=20) == 20  # some hours rolled, the rest dirty
    assert_exact(ledger, config)
    rollup.roll_all(ledger)
    assert dirty(ledger) == 0
    assert rollup_rows(ledger) == calls_grouped(ledger)
    assert_days_sum_hours(ledger)
    assert_exact(ledger, config)


def test_clean_hours_are_read_from_the_rollups(ledger: sa.Engine) -> None:
    """Proof the rollups are what is read: change calls behind the marks' back, and spend does not see it."""
    rollup.roll_all(ledger)
    hour = at("2025-06-10T12:00:00")
    in_hour = sa.and_(calls.c.start_time >= hour, calls.c.start_time < hour + rollup.HOUR)
    with ledger.begin() as conn:
        conn.execute(calls.update().where(in_hour).values(input_tokens=calls.c.input_tokens + 1))
    config, day = pricing(), (at("2025-06-10"), at("2025-06-11"))
    with ledger.connect() as conn:
        served = store.spend(conn, config, *day)
        raw = store.spend(conn, config, *day, where=[RAW])
    assert served.rows[0].usage.input < raw.rows[0].usage.input
    with ledger.begin() as conn:  # what the writer and reprice do in the transaction that changes calls
        hours.mark_dirty(conn, [hour])
    assert_exact(ledger, config, [day])
    rollup.roll_all(ledger)
    assert_exact(ledger, config, [day])


def hourly_from_calls(engine: sa.Engine, since: datetime, until: datetime) -> dict[tuple[Any, ...], tuple[Any, ...]]:
    """store.hourly's reference twin: each call of [since, until) read one by one, summed in Python."""
    c = calls.c
    columns = [c.service, c.provider, c.response_model, c.request_model, c.pool, c.price_status, c.start_time,
               *(c[name] for name in rollup.TOKENS), c.cost_usd]  # fmt: skip
    sums: dict[tuple[Any, ...], tuple[Any, ...]] = {}
    with engine.connect() as conn:
        for service, provider, version, model, pool, status, start, *tokens, cost in conn.execute(
            sa.select(*columns).where(c.start_time >= since, c.start_time < until)
        ):
            hour = utc(start).replace(minute=0, second=0, microsecond=0)
            key = (service, provider, version or model, pool, status, hour)
            n, usage, total = sums.get(key, (0, TokenUsage(), None))
            total = total if cost is None else (total or 0) + cost
            sums[key] = (n + 1, usage + TokenUsage(*tokens), total)
    return sums


def test_hourly_is_exact_before_during_and_after_the_roll(ledger: sa.Engine) -> None:
    """The plans' arrival profiles (store.hourly) equal the calls summed one by one, whatever is rolled up."""

    def assert_hourly_exact() -> None:
        with ledger.connect() as conn:
            for since, until in RANGES:
                rows = store.hourly(conn, since, until)
                served = {
                    (r.service, r.provider, r.model, r.pool, r.price_status, r.hour): (r.calls, r.usage, r.cost_usd)
                    for r in rows
                }
                assert len(served) == len(rows)
                assert served == hourly_from_calls(ledger, since, until), (since, until)
                assert all(type(r.calls) is int and (r.cost_usd is None or type(r.cost_usd) is Decimal) for r in rows)

    assert_hourly_exact()
    rollup.roll_pass(ledger, max_hours=20)
    assert_hourly_exact()
    rollup.roll_all(ledger)
    assert_hourly_exact()


def test_a_late_span_that_re_merges_a_rolled_up_call(engine: sa.Engine) -> None:
    """The writer deletes the call and inserts the merged one: its hour is dirty until rolled again."""
    migrate(engine)
    config = pricing()
    write(engine, dataset(60))
    late_span_re_merges(engine, config, lambda: assert_exact(engine, config))
    with engine.connect() as conn:
        merged = sa.select(calls.c.response_model, calls.c.span_count, calls.c.price_status)
        assert conn.execute(merged.where(calls.c.trace_id == "f" * 32)).all() == [("gpt-t-2025", 2, "priced")]
    assert dirty(engine) > 0
    assert_exact(engine, config)
    rollup.roll_all(engine)
    assert rollup_rows(engine) == calls_grouped(engine)
    assert_exact(engine, config)


def test_reprice_marks_what_it_rewrites(ledger: sa.Engine) -> None:
    rollup.roll_all(ledger)
    dearer = pricing(gpt_input="4")
    with ledger.connect() as conn:
        before = store.spend(conn, dearer, at("2025-06-09"), at("2025-06-13"), ("model",))
    run = reprice(ledger, dearer, plan_run(dearer, at("2025-06-10"), at("2025-06-11"), actor="test"), batch_size=50)
    assert run.repriced > 0
    assert dirty(ledger) > 0
    assert_exact(ledger, dearer)
    with ledger.connect() as conn:
        after = store.spend(conn, dearer, at("2025-06-09"), at("2025-06-13"), ("model",))
    gpt = [(b, a) for b, a in zip(before.rows, after.rows, strict=True) if b.key == ("gpt-t",)]
    assert gpt
    assert all(store.days_of(a.cost_usd) > store.days_of(b.cost_usd) for b, a in gpt)
    rollup.roll_all(ledger)
    assert rollup_rows(ledger) == calls_grouped(ledger)
    assert_exact(ledger, dearer)


def test_concurrent_writes_never_lose_a_mark(engine: sa.Engine) -> None:
    """Batches land in the hours being rolled while rollers run (two of them on PostgreSQL, as two
    collectors would): once the writes stop and a last roll ends, rollups equal the calls."""
    migrate(engine)
    ledger = dataset(600, seed=11)
    assert write_while_rolling(engine, ledger) == []
    rollup.roll_all(engine)
    assert rollup_rows(engine) == calls_grouped(engine)
    assert_days_sum_hours(engine)
    assert_exact(engine, pricing(), RANGES[:2])


def test_the_roller_thread_rolls_up_by_itself(ledger: sa.Engine) -> None:
    roller = rollup.Roller(ledger, interval=0.05)
    roller.start()
    try:
        deadline = time.monotonic() + 20
        while dirty(ledger) and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        roller.stop()
    assert dirty(ledger) == 0
    assert roller.failures == 0
    assert rollup_rows(ledger) == calls_grouped(ledger)


def _count(engine: sa.Engine, table: sa.Table) -> int:
    with engine.connect() as conn:
        return conn.execute(sa.select(sa.func.count()).select_from(table)).scalar_one()


def test_retention_deletes_raw_calls_and_keeps_the_figures(engine: sa.Engine) -> None:
    migrate(engine)
    config = pricing("hour")
    ledger = dataset()
    spans = [
        dataclasses.replace(llm("1" * 16), trace_id="1" * 32, start_ns=int(at("2025-06-10T01:00").timestamp() * 1e9)),
        dataclasses.replace(llm("2" * 16), trace_id="2" * 32, start_ns=int(at("2025-06-12T01:00").timestamp() * 1e9)),
    ]
    LedgerWriter(engine).write(WriteBatch(new_spans=spans), 0)
    write(engine, ledger, config)
    rollup.roll_pass(engine, max_hours=30)  # part rolled: purge rolls the rest of what it deletes first
    whole, cut = (at("2025-06-09"), at("2025-06-13")), (at("2025-06-10T06:30:00"), at("2025-06-11T17:30:00"))
    # Past the horizon an hour counts when it starts in the range: cut's first partial hour is out.
    hours = (at("2025-06-10T07:00:00"), at("2025-06-11T17:30:00"))
    with engine.connect() as conn:
        before = {r: store.spend(conn, config, *r, ("service", "pool", "day")) for r in (whole, hours)}

    now = at("2025-06-12T12:30:00")
    deleted = rollup.purge(engine, retention_days=1, now=now)
    horizon = at("2025-06-11T12:00:00")
    assert deleted == sum(1 for c in ledger if c.start_ns < horizon.timestamp() * 1e9)
    with engine.connect() as conn:
        assert conn.execute(sa.select(sa.func.min(calls.c.start_time))).scalar() >= horizon
        assert conn.execute(sa.select(llm_spans.c.trace_id)).scalars().all() == ["2" * 32]
        assert conn.execute(sa.select(retention_horizon.c.purged_before)).scalars().all() == [horizon]
        assert store.spend(conn, config, *whole, ("service", "pool", "day")) == before[whole]
        assert store.spend(conn, config, *cut, ("service", "pool", "day")).rows == before[hours].rows
    assert rollup.purge(engine, retention_days=1, now=now) == 0  # nothing left to delete

    # A call that arrives after its hour was purged is added to that hour, not lost nor redone.
    late = call(model="gpt-t", start="2025-06-10T08:15:00", service="search", input=1_000_000)
    write(engine, [late], config)
    with engine.connect() as conn:
        served = store.spend(conn, config, *whole, ("service", "pool", "day"))
    search = next(r for r in served.rows if r.key == ("search", None, at("2025-06-10").date()))
    old = next(r for r in before[whole].rows if r.key == search.key)
    assert (search.calls, search.usage.input) == (old.calls + 1, old.usage.input + 1_000_000)
    rollup.roll_all(engine)
    assert_days_sum_hours(engine)
    assert _count(engine, calls) == sum(1 for c in ledger if c.start_ns >= horizon.timestamp() * 1e9)
    with engine.connect() as conn:
        assert store.spend(conn, config, *whole, ("service", "pool", "day")) == served


def test_the_migration_marks_every_hour_that_already_has_calls(engine: sa.Engine) -> None:
    migrate(engine, "0004")
    write_old = (
        "INSERT INTO calls (trace_id, span_id, start_time, end_time, backend_class, status, emitter, conventions,"
    )
    with engine.begin() as conn:
        for i, start in enumerate(("2025-06-10 05:59:59+00", "2025-06-10 06:00:00+00", "2025-06-11 23:30:00+00")):
            conn.execute(
                sa.text(
                    f"{write_old} received_at, input_tokens, cache_read_tokens, cache_write_tokens, output_tokens,"
                    " reasoning_tokens, usage_reported, span_count, member_span_ids, price_status) VALUES"
                    f" ('t{i}', 's{i}', '{start}', '{start}', 'frontier', 'ok', 'e', '', now(), 10, 0, 0, 2, 0,"
                    " true, 1, 's', 'unpriced')"
                )
            )
    migrate(engine)
    with engine.connect() as conn:
        marked = conn.execute(sa.select(rollup_dirty.c.hour).order_by(rollup_dirty.c.hour)).scalars().all()
    assert marked == [at("2025-06-10T05:00"), at("2025-06-10T06:00"), at("2025-06-11T23:00")]
    assert_exact(engine, pricing(), RANGES[:2])
    rollup.roll_all(engine)
    assert rollup_rows(engine) == calls_grouped(engine)
    downgrade(engine, "0004")
    migrate(engine)


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        pytest.param({}, 0, id="default: keep raw calls forever"),
        pytest.param({"retention_days": "30"}, 30, id="a number of days"),
    ],
)
def test_retention_days_setting(raw: dict[str, str], expected: int) -> None:
    env = {f"BREAKEVEN_{k.upper()}": v for k, v in raw.items()}
    assert load_settings(environ=env).retention_days == expected


def test_retention_days_must_not_be_negative() -> None:
    with pytest.raises(SettingsError, match="retention_days"):
        load_settings(environ={"BREAKEVEN_RETENTION_DAYS": "-1"})
