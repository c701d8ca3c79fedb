"""GPU metric buckets and scrape health on DuckDB and PostgreSQL: writes add up, reads sum, old minutes merge."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import pytest
import sqlalchemy as sa

from breakeven.collector.gpu.samples import Sample, buckets
from breakeven.collector.gpu.store import GpuStore, ScrapeOutcome, daily_means, scrape_health, source_totals
from breakeven.collector.store.engine import make_engine, migrate
from breakeven.collector.store.schema import gpu_metric_minutes, gpu_scrape_targets
from tests.conftest import postgres_schema

NOON = datetime(2025, 6, 10, 12, 0, tzinfo=UTC)
S = 10**9


@pytest.fixture(
    scope="module", params=["duckdb", pytest.param("postgresql", marks=[pytest.mark.postgres, pytest.mark.slow])]
)
def migrated(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[sa.Engine]:
    """One migrated database per dialect for the module (migrating per test would take most of its time)."""
    with contextlib.ExitStack() as stack:
        url = f"duckdb:///{tmp_path_factory.mktemp('gpu') / 'm.duckdb'}"
        if request.param == "postgresql":
            url = stack.enter_context(postgres_schema("gpu"))
        engine = make_engine(url)
        migrate(engine)
        yield engine
        engine.dispose()


@pytest.fixture
def store(migrated: sa.Engine) -> Iterator[GpuStore]:
    yield GpuStore(migrated)
    with migrated.begin() as conn:
        conn.execute(gpu_metric_minutes.delete())
        conn.execute(gpu_scrape_targets.delete())


def sample(
    at: datetime, value: str, host: str = "a", device: str = "0", metric: str = "DCGM_FI_DEV_GPU_UTIL"
) -> Sample:
    kind = "kv_cache_usage" if metric.startswith("vllm") else "gpu_utilization"
    return Sample("big", "scrape", metric, kind, host, device, int(at.timestamp()) * S, Decimal(value))


def totals(
    store: GpuStore, since: datetime = NOON, until: datetime = NOON + timedelta(days=1)
) -> list[tuple[object, ...]]:
    with store.engine.connect() as conn:
        return [
            (t.metric, t.samples, t.value_sum, t.value_max, t.hosts, t.gpus, t.mean, t.first_minute, t.last_sample_at)
            for t in source_totals(conn, since, until)
        ]


def rows(store: GpuStore) -> int:
    with store.engine.connect() as conn:
        return conn.execute(sa.select(sa.func.count()).select_from(gpu_metric_minutes)).scalar_one()


def test_writes_of_one_key_add_up(store: GpuStore) -> None:
    store.write(buckets([sample(NOON, "0.5", device="0"), sample(NOON, "0.7", device="1")]))
    store.write(buckets([sample(NOON + timedelta(seconds=30), "0.9", device="0")]))  # the next scrape, same minute
    assert rows(store) == 1
    assert totals(store) == [
        (
            "DCGM_FI_DEV_GPU_UTIL",
            3,
            Decimal("2.1"),
            Decimal("0.9"),
            1,
            2,
            Decimal("0.7"),
            NOON,
            NOON + timedelta(seconds=30),
        )
    ]


def test_gpus_add_across_hosts_and_take_the_busiest_minute(store: GpuStore) -> None:
    later = NOON + timedelta(minutes=5)
    store.write(buckets([sample(NOON, "0.1", host=h, device=d) for h in ("a", "b") for d in ("0", "1")]))
    store.write(buckets([sample(later, "0.3", host="a", device="0")]))  # one GPU reported later
    ((_, samples, _, _, hosts, gpus, mean, *_),) = totals(store)
    assert (samples, hosts, gpus, mean) == (5, 2, 4, Decimal("0.14"))


def test_the_range_counts_minutes_that_start_in_it(store: GpuStore) -> None:
    store.write(buckets([sample(NOON + timedelta(minutes=m, seconds=30), "0.5") for m in range(4)]))
    # since 12:01:20 counts 12:01's minute; until 12:03 excludes 12:03's.
    ((_, samples, *_),) = totals(store, NOON + timedelta(minutes=1, seconds=20), NOON + timedelta(minutes=3))
    assert samples == 2
    assert totals(store, NOON + timedelta(hours=1), NOON + timedelta(hours=2)) == []


def test_kinds_and_metrics_stay_apart(store: GpuStore) -> None:
    store.write(buckets([sample(NOON, "0.5"), sample(NOON, "0.8", metric="vllm:kv_cache_usage_perc", host="a:8000")]))
    with store.engine.connect() as conn:
        got = {(t.metric, t.kind, t.mean) for t in source_totals(conn, NOON, NOON + timedelta(hours=1))}
    assert got == {("DCGM_FI_DEV_GPU_UTIL", "gpu_utilization", Decimal("0.5")),
                   ("vllm:kv_cache_usage_perc", "kv_cache_usage", Decimal("0.8"))}  # fmt: skip


def test_daily_means(store: GpuStore) -> None:
    store.write(
        buckets(
            [sample(NOON, "0.2"), sample(NOON + timedelta(hours=1), "0.4"), sample(NOON + timedelta(days=1), "0.9")]
        )
    )
    with store.engine.connect() as conn:
        means = daily_means(conn, NOON - timedelta(days=1), NOON + timedelta(days=3))
    assert means == {
        ("big", "scrape", "DCGM_FI_DEV_GPU_UTIL"): {
            date(2025, 6, 10): Decimal("0.3"),
            date(2025, 6, 11): Decimal("0.9"),
        }
    }


def test_old_minutes_merge_into_hours_and_figures_stay(store: GpuStore) -> None:
    samples = [sample(NOON + timedelta(minutes=m), str(Decimal(m) / 100), host=h, device=d)
               for m in range(0, 120, 7) for h in ("a", "b") for d in ("0", "1")]  # fmt: skip
    store.write(buckets(samples))
    store.write(buckets([sample(NOON + timedelta(hours=3), "0.5")]))  # after the cut: kept as a minute
    before = totals(store)
    assert rows(store) == 18 * 2 + 1
    merged = store.merge_old_minutes(NOON + timedelta(hours=2))
    assert merged == 36
    assert rows(store) == 2 * 2 + 1
    after = totals(store)
    assert after == before  # the same samples, sums, peaks, hosts, GPUs, first minute and last sample
    assert store.merge_old_minutes(NOON + timedelta(hours=2)) == 0  # nothing left to merge
    late = sample(NOON + timedelta(minutes=30), "1")  # a late point for a merged hour merges next time
    store.write(buckets([late]))
    assert store.merge_old_minutes(NOON + timedelta(hours=2)) > 0
    assert rows(store) == 5


def test_scrape_health(store: GpuStore) -> None:
    url = "http://gpu-70b-1:9400/metrics"
    store.write([], ScrapeOutcome(url, "big", NOON, samples=16))
    store.write([], ScrapeOutcome(url, "big", NOON + timedelta(seconds=15), error="HTTP 500 Internal Server Error"))
    store.write([], ScrapeOutcome(url, "big", NOON + timedelta(seconds=30), error="timed out after 10 s"))
    with store.engine.connect() as conn:
        health = scrape_health(conn)[url]
    assert (health.last_success_at, health.last_error_at, health.last_error, health.consecutive_failures, health.failures,
            health.last_samples) == (NOON, NOON + timedelta(seconds=30), "timed out after 10 s", 2, 2, 16)  # fmt: skip
    store.write([], ScrapeOutcome(url, "big", NOON + timedelta(seconds=45), samples=16))
    with store.engine.connect() as conn:
        health = scrape_health(conn)[url]
    assert (health.last_attempt_at, health.consecutive_failures, health.failures, health.last_error) == (
        NOON + timedelta(seconds=45), 0, 2, "timed out after 10 s"
    )  # fmt: skip


def test_the_scraper_thread_merges_what_retention_days_puts_past_the_horizon(store: GpuStore) -> None:
    from breakeven.collector.gpu.scrape import Scraper

    store.write(buckets([sample(NOON + timedelta(minutes=m), "0.5") for m in range(0, 180, 10)]))  # 12:00 to 14:50
    scraper = Scraper(store, pools=(), interval=15, retention_days=1)
    assert scraper.needed
    assert scraper.targets == []
    merged = scraper.merge_old_minutes(
        now=NOON + timedelta(days=1, hours=2, minutes=30)
    )  # horizon: 14:00 the day before
    assert merged == 12
    assert rows(store) == 2 + 6
