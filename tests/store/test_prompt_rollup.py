"""Prompt rollups stay exact: the repeated-prompts figures equal the same figures worked out in
Python from the raw calls, whatever the roller has done, after late calls and spans, reprice
and retention, with prompt keys that collide; and the rows the page skips are the ones that
cannot repeat. Calls go in through the real write path; both dialects.
"""

from __future__ import annotations

import dataclasses
import hashlib
import random
from collections import defaultdict
from collections.abc import Sequence
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
import sqlalchemy as sa

from breakeven.collector.price.usage import TokenUsage
from breakeven.collector.records import POOL, PRICED, Call
from breakeven.collector.store import hours, prompts, rollup
from breakeven.collector.store.engine import downgrade, migrate
from breakeven.collector.store.reprice import plan_run, reprice
from breakeven.collector.store.schema import calls, prompt_rollups, prompt_rollups_unpaired, rollup_dirty
from breakeven.dashboard.queries import EPOCH, RepeatedPrompt, repeated_prompts
from tests.pricecalls import at, call
from tests.store.test_rollup import late_span_re_merges, pricing, write, write_while_rolling

pytestmark = pytest.mark.slow  # seconds per test: not the fast part

START = at("2025-06-01")
DAYS = 20
KINDS = [
    dict(provider="openai", model="gpt-t", backend_class="frontier"),
    dict(provider="anthropic", model="claude-t", backend_class="frontier"),
    dict(provider="openai", model="mystery", backend_class="frontier"),  # unpriced
    dict(provider="vllm", model="llama-p", backend="vllm-p", backend_class="self_hosted"),
    dict(provider="vllm", model="llama-q", backend="vllm-q", backend_class="self_hosted"),
]
# Two calls of one prompt this many hours apart: around PAIR_WINDOW (168 hours) on purpose.
GAPS = [0.01, 1, 23.5, 100, 167, 167.99, 168, 168.5, 169, 200, 300]


def digest(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def made(rng: random.Random, start: datetime, prompt: str | None) -> Call:
    kind = rng.choice(KINDS)
    c = call(
        **kind,  # type: ignore[arg-type]
        start=start.replace(tzinfo=None).isoformat(),
        service=rng.choice(["search", "chat", "agent", None]),
        input=rng.randrange(1, 200_000),
        output=rng.randrange(0, 20_000),
        cache_read=rng.choice([0, 0, 1_000]),
    )
    version = rng.choice([None, f"{kind['model']}-2025"])
    return dataclasses.replace(
        c, start_ns=c.start_ns + rng.randrange(10**9), prompt_hash=prompt, response_model=version
    )


def dataset(n: int = 400, seed: int = 5) -> list[Call]:
    """Calls over DAYS days: distinct prompts, a few popular ones, pairs GAPS apart, calls without a hash."""
    rng = random.Random(seed)
    span = DAYS * 86_400
    out = []
    for i in range(n):
        start = START + timedelta(seconds=rng.randrange(span))
        roll = rng.random()
        prompt = None if roll < 0.1 else digest(f"popular {rng.randrange(12)}") if roll < 0.45 else digest(f"one {i}")
        out.append(made(rng, start, prompt))
    for i, gap in enumerate(GAPS):
        first = START + timedelta(days=2, minutes=37 * i)
        for start in (first, first + timedelta(hours=gap)):
            out.append(made(rng, start, digest(f"gap {gap}")))
    rng.shuffle(out)
    return out


def expected(conn: sa.Connection, since: datetime, until: datetime, limit: int, seconds: int) -> list[RepeatedPrompt]:
    """repeated_prompts worked out in Python from the raw calls of [since, until)."""
    found = conn.execute(
        sa.select(calls).where(
            calls.c.start_time >= since, calls.c.start_time < until, calls.c.prompt_hash.is_not(None)
        )
    ).all()
    by_hash: dict[str, list[Any]] = defaultdict(list)
    for r in found:
        by_hash[r.prompt_hash].append(r)

    def usage(rows: Sequence[Any]) -> TokenUsage:
        return TokenUsage(
            *(sum(getattr(r, f"{kind}_tokens") for r in rows) for kind in ("input", "cache_read", "cache_write", "output", "reasoning"))
        )  # fmt: skip

    def order(h: str) -> tuple[Decimal, int, str]:
        rows = by_hash[h]
        cost = sum((Decimal(r.cost_usd) for r in rows if r.cost_usd is not None), Decimal(0))
        return (-cost, -sum(r.input_tokens + r.cache_read_tokens + r.output_tokens for r in rows), h)

    out = []
    for h in sorted((h for h, rows in by_hash.items() if len(rows) > 1), key=order)[:limit]:
        rows = by_hash[h]
        services = {r.service for r in rows if r.service is not None}
        item = RepeatedPrompt(
            h, len(rows), len(services), min(services, default=None),
            len({r.response_model or r.request_model for r in rows if (r.response_model or r.request_model)}),
            usage(rows), min(utc(r.start_time) for r in rows), max(utc(r.start_time) for r in rows), {}, [],
        )  # fmt: skip
        buckets: dict[tuple[Any, ...], list[Any]] = defaultdict(list)
        for r in rows:
            start = EPOCH + timedelta(seconds=int(utc(r.start_time).timestamp()) // seconds * seconds)
            buckets[(r.price_status, r.pool, start)].append(r)
        for (status, pool, start), group in buckets.items():
            costs = [Decimal(r.cost_usd) for r in group if r.cost_usd is not None]
            if status == PRICED and costs:
                item.priced_usd[start.date()] = item.priced_usd.get(start.date(), Decimal(0)) + sum(costs, Decimal(0))
            elif status == POOL and pool is not None:
                item.pool_items.append((pool, max(start, since), usage(group)))
            else:
                item.unpriced_calls += len(group)
        out.append(item)
    return out


def utc(value: datetime) -> datetime:
    return hours.utc(value)


def comparable(items: Sequence[RepeatedPrompt]) -> list[RepeatedPrompt]:
    """The same prompts with their pool items in one order (the page sums them)."""
    return [dataclasses.replace(i, pool_items=sorted(i.pool_items, key=str)) for i in items]


T = at("2025-06-11T14:17:23.5")
WINDOWS = [
    (T - timedelta(days=7), T),  # the page's default: a week ending inside an hour
    (at("2025-06-03"), at("2025-06-10")),  # a week of whole hours
    (at("2025-06-02T23:50"), at("2025-06-09T23:50")),  # a week holding the pairs up to 168 hours apart
    (T - timedelta(hours=3), T),
    (at("2025-06-05T10:05"), at("2025-06-05T10:55")),  # inside one hour
    (at("2025-06-01"), at("2025-06-13T06:30")),  # longer than PAIR_WINDOW: unpaired rows are read too
    (at("2025-05-31"), at("2025-06-22")),  # everything
]


def assert_exact(engine: sa.Engine, windows: Sequence[tuple[datetime, datetime]] = WINDOWS) -> int:
    """The served figures equal the raw calls' for every window (all repeats by the hour, the top 3 by the day);
    how many prompts compared."""
    compared = 0
    with engine.connect() as conn:
        for since, until in windows:
            for limit, seconds in ((1000, 3600), (3, 86_400)):
                served = repeated_prompts(conn, since, until, limit, seconds)
                assert comparable(served) == comparable(expected(conn, since, until, limit, seconds)), (
                    since, until, seconds, limit,
                )  # fmt: skip
                compared += len(served)
    return compared


def prompt_rows(engine: sa.Engine) -> list[tuple[str, ...]]:
    """Both prompt rollups' rows, summed per key (a re-rolled hour past the horizon may hold one twice)."""
    with engine.connect() as conn:
        both = sa.union_all(*(sa.select(*t.c) for t in (prompt_rollups, prompt_rollups_unpaired))).subquery()
        keys = [both.c[n] for n in ("hour", "prompt_key", "prompt_hash", "service", "model", "price_status", "pool")]
        sums = [sa.func.sum(both.c[n]) for n in ("calls", *rollup.TOKENS, "cost_usd")]
        grouped = sa.select(*keys, *sums, sa.func.min(both.c.first_start), sa.func.max(both.c.last_start))
        rows = conn.execute(grouped.group_by(*keys))
        return sorted(tuple(str(v) for v in r) for r in rows)


def calls_grouped(engine: sa.Engine) -> list[tuple[str, ...]]:
    with engine.connect() as conn:
        grouped = prompts.grouped(at("1970-01-01"), at("2100-01-01")).subquery()
        names = ["hour", "prompt_key", "prompt_hash", "service", "model", "price_status", "pool", "calls"]
        cols = [grouped.c[n] for n in (*names, *rollup.TOKENS, "cost_usd", "first_start", "last_start")]
        return sorted(tuple(str(v) for v in r) for r in conn.execute(sa.select(*cols)))


def assert_paired(engine: sa.Engine) -> None:
    """No unpaired row holds more than one call, or has a row of its key within PAIR_WINDOW."""
    with engine.connect() as conn:
        unpaired = conn.execute(sa.select(prompt_rollups_unpaired.c.prompt_key, prompt_rollups_unpaired.c.hour, prompt_rollups_unpaired.c.calls)).all()  # fmt: skip
        paired = conn.execute(sa.select(prompt_rollups.c.prompt_key, prompt_rollups.c.hour)).all()
    hours: dict[int, list[datetime]] = defaultdict(list)
    for key, hour, *_ in [*unpaired, *paired]:
        hours[key].append(utc(hour))
    for key, hour, n in unpaired:
        assert n == 1, (key, hour)
        near = [h for h in hours[key] if abs(h - utc(hour)) <= prompts.PAIR_WINDOW]
        assert len(near) == 1, (key, hour, near)


def dirty(engine: sa.Engine) -> int:
    with engine.connect() as conn:
        return conn.execute(sa.select(sa.func.count()).select_from(rollup_dirty)).scalar_one()


@pytest.fixture
def ledger(engine: sa.Engine) -> sa.Engine:
    migrate(engine)
    write(engine, dataset())
    return engine


def test_repeated_prompts_are_exact_before_during_and_after_the_roll(ledger: sa.Engine) -> None:
    assert dirty(ledger) > 0
    assert prompt_rows(ledger) == []
    assert assert_exact(ledger) > 0
    assert rollup.roll_pass(ledger, max_hours=100) == 100  # part rolled, the rest dirty
    assert_paired(ledger)
    assert_exact(ledger)
    rollup.roll_all(ledger)
    assert dirty(ledger) == 0
    assert prompt_rows(ledger) == calls_grouped(ledger)
    assert_paired(ledger)
    assert_exact(ledger)


def test_a_week_leaves_out_the_prompts_that_cannot_repeat(ledger: sa.Engine) -> None:
    """What makes the page fast: a week reads the rows whose key has a partner, not every prompt."""
    rollup.roll_all(ledger)
    since, until = WINDOWS[0]
    with ledger.connect() as conn:
        rows = prompts.prompt_rows(conn, since, until)
        read = conn.execute(sa.select(sa.func.count(), sa.func.sum(rows.c.calls))).one()
        in_range = calls.c.start_time.between(since, until - timedelta(microseconds=1))
        hashed = conn.execute(sa.select(sa.func.count()).where(in_range, calls.c.prompt_hash.is_not(None))).scalar()
        unpaired = conn.execute(sa.select(sa.func.count()).select_from(prompt_rollups_unpaired)).scalar()
        gaps = conn.execute(sa.select(prompt_rollups.c.prompt_hash).distinct()).scalars().all()
    assert unpaired
    assert read.count < hashed
    assert all(digest(f"gap {g}") in gaps for g in GAPS if g <= 168)  # ... and every pair within a week is read
    assert_exact(ledger, WINDOWS[:1])


def test_a_late_call_repeats_a_rolled_up_prompt_alone_until_then(ledger: sa.Engine) -> None:
    """An unpaired row's prompt sent again days later: read from calls (its hour dirty), then paired."""
    rollup.roll_all(ledger)
    first = made(random.Random(1), at("2025-06-06T09:10"), digest("late"))
    write(ledger, [first])
    rollup.roll_all(ledger)
    with ledger.connect() as conn:
        assert conn.execute(sa.select(prompt_rollups_unpaired.c.prompt_hash).where(prompt_rollups_unpaired.c.prompt_hash == digest("late"))).all()  # fmt: skip
    again = made(random.Random(2), at("2025-06-11T13:59:59"), digest("late"))
    write(ledger, [again])
    assert dirty(ledger) == 1
    with ledger.connect() as conn:
        served = repeated_prompts(conn, *WINDOWS[0], 1000, 3600)
    assert [p.calls for p in served if p.prompt_hash == digest("late")] == [2]
    assert_exact(ledger, WINDOWS[:2])
    rollup.roll_all(ledger)
    assert_paired(ledger)
    with ledger.connect() as conn:
        pair = conn.execute(sa.select(prompt_rollups.c.hour).where(prompt_rollups.c.prompt_hash == digest("late")))
        assert sorted(utc(h) for h in pair.scalars()) == [at("2025-06-06T09:00"), at("2025-06-11T13:00")]
    assert_exact(ledger)


def test_a_late_span_that_re_merges_a_rolled_up_call(ledger: sa.Engine) -> None:
    """The writer deletes the call and inserts the merged one (model, tokens, price change): its hour is dirty."""
    late_span_re_merges(ledger, pricing(), lambda: assert_exact(ledger, WINDOWS[:3]), prompt_hash=digest("popular 3"))
    with ledger.connect() as conn:
        merged = sa.select(calls.c.response_model, calls.c.price_status, calls.c.prompt_hash)
        assert conn.execute(merged.where(calls.c.trace_id == "f" * 32)).all() == [
            ("gpt-t-2025", "priced", digest("popular 3"))
        ]
    assert dirty(ledger) > 0
    assert_exact(ledger)
    rollup.roll_all(ledger)
    assert prompt_rows(ledger) == calls_grouped(ledger)
    assert_exact(ledger)


def test_reprice_changes_what_the_repeats_cost(ledger: sa.Engine) -> None:
    rollup.roll_all(ledger)
    with ledger.connect() as conn:
        before = repeated_prompts(conn, *WINDOWS[1], 1000, 86_400)
    dearer = pricing(gpt_input="4")
    run = reprice(ledger, dearer, plan_run(dearer, at("2025-06-01"), at("2025-06-22"), actor="test"), batch_size=50)
    assert run.repriced > 0
    assert dirty(ledger) > 0
    assert_exact(ledger)
    with ledger.connect() as conn:
        after = repeated_prompts(conn, *WINDOWS[1], 1000, 86_400)
    cost = {p.prompt_hash: sum(p.priced_usd.values(), Decimal(0)) for p in before}
    assert any(sum(p.priced_usd.values(), Decimal(0)) > cost.get(p.prompt_hash, Decimal(0)) for p in after)
    rollup.roll_all(ledger)
    assert prompt_rows(ledger) == calls_grouped(ledger)
    assert_exact(ledger)


def test_retention_deletes_prompt_rollups_with_their_calls(ledger: sa.Engine) -> None:
    rollup.roll_pass(ledger, max_hours=200)  # part rolled: purge rolls the rest of what it deletes first
    now = at("2025-06-12T12:30:00")
    assert rollup.purge(ledger, retention_days=5, now=now) > 0
    horizon = at("2025-06-07T12:00:00")
    with ledger.connect() as conn:
        for table in (prompt_rollups, prompt_rollups_unpaired):
            assert conn.execute(sa.select(sa.func.min(table.c.hour))).scalar() >= horizon
    assert_exact(ledger)  # the page covers the calls still kept, as it always did
    # A call that arrives for a purged hour is read while its hour is dirty, then folded away with it.
    late = made(random.Random(3), at("2025-06-05T08:15:00"), digest("popular 1"))
    write(ledger, [late])
    assert_exact(ledger)
    rollup.roll_all(ledger)
    assert prompt_rows(ledger) == calls_grouped(ledger)
    assert_paired(ledger)
    assert_exact(ledger)


@pytest.fixture
def colliding(monkeypatch: pytest.MonkeyPatch) -> None:
    """Prompt keys of one hex digit: sixteen keys for all the prompts."""
    monkeypatch.setattr(prompts, "PROMPT_KEY_DIGITS", 1)


def test_colliding_prompt_keys_change_no_figure(colliding: None, engine: sa.Engine) -> None:
    migrate(engine)
    write(engine, dataset(300, seed=9))
    rollup.roll_pass(engine, max_hours=150)
    assert_exact(engine)
    rollup.roll_all(engine)
    with engine.connect() as conn:
        keys = conn.execute(sa.select(sa.func.count(sa.distinct(prompt_rollups.c.prompt_key)))).scalar()
    assert keys <= 16
    assert prompt_rows(engine) == calls_grouped(engine)
    assert_paired(engine)
    assert_exact(engine)


def test_concurrent_writes_keep_the_prompt_rollups_exact(engine: sa.Engine) -> None:
    """Batches land in the hours being rolled while rollers run (two on PostgreSQL, as two collectors)."""
    migrate(engine)
    ledger = dataset(400, seed=13)
    assert write_while_rolling(engine, ledger) == []
    rollup.roll_all(engine)
    assert prompt_rows(engine) == calls_grouped(engine)
    assert_paired(engine)
    assert_exact(engine, WINDOWS[:2])


def test_the_migration_marks_every_hour_with_calls_to_roll_up_again(engine: sa.Engine) -> None:
    """A ledger rolled up before 0007: its clean hours are marked again, so the page stays exact meanwhile."""
    migrate(engine)
    ledger = dataset(120, seed=17)
    write(engine, ledger)  # by today's writer, into today's tables; then back to 0006 with the rows
    downgrade(engine, "0006")
    with engine.begin() as conn:
        conn.execute(rollup_dirty.delete())  # as 0006's roller leaves them (its call_rollups do not matter here)
    migrate(engine)
    marked_hours = {hours.hour_of_ns(c.start_ns) for c in ledger}
    with engine.connect() as conn:
        marked = conn.execute(sa.select(rollup_dirty.c.hour)).scalars().all()
    assert sorted(utc(h) for h in marked) == sorted(marked_hours)  # each once
    assert_exact(engine, WINDOWS[:2])
    rollup.roll_all(engine)
    assert prompt_rows(engine) == calls_grouped(engine)
    assert_exact(engine, WINDOWS[:2])
    downgrade(engine, "0006")
    migrate(engine)


@pytest.mark.parametrize("text", ["", "a" * 64, "é ünïcode", digest("x")])
def test_prompt_keys_are_md5_and_the_same_on_both_databases(engine: sa.Engine, text: str) -> None:
    with engine.connect() as conn:
        key = conn.execute(sa.select(prompts.prompt_key(sa.literal(text, sa.String)))).scalar()
    assert key == int(hashlib.md5(text.encode()).hexdigest()[:15], 16)
