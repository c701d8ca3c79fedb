"""Inputs from the ledger, and the scheduler's evaluate-persist-notify round, on DuckDB and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
import sqlalchemy as sa

from breakeven.collector.alerts import inputs, store
from breakeven.collector.alerts.rules import FIRING, RESOLVED
from breakeven.collector.alerts.runner import ADVISORY_LOCK_KEY, AlertRunner
from breakeven.collector.config.alerts import AlertsConfig, Rule, Webhook
from breakeven.collector.store.engine import migrate
from breakeven.collector.store.writer import LedgerWriter
from tests.alerts.receiver import Receiver, receiver
from tests.alerts.scenario import frontier_call, pool_call, pricing, store_calls
from tests.conftest import wait_for

NOW = datetime.now(UTC).replace(microsecond=0)
HOUR = timedelta(hours=1)


@pytest.fixture
def ledger(engine: sa.Engine) -> sa.Engine:
    """A migrated ledger with a little of everything, relative to NOW."""
    migrate(engine)
    writer = LedgerWriter(engine)
    store_calls(
        writer,
        [
            pool_call(NOW - timedelta(minutes=10), 1000, 100),
            frontier_call(NOW - timedelta(minutes=20), 100_000, service="chat"),  # 1 USD
            frontier_call(NOW - timedelta(hours=3), 10_000, service="chat"),  # 0.10 USD, in the baseline
            frontier_call(NOW - timedelta(hours=5), 10_000, service="batch"),  # silent since
            frontier_call(NOW - timedelta(minutes=5), 10, service="chat", model="unknown-model-x"),  # unpriced
        ],
        counters={("rejected", "invalid_tokens"): 7},
    )
    return engine


def test_inputs_read_from_the_ledger(ledger: sa.Engine) -> None:
    p = pricing()
    with ledger.connect() as conn:
        (pool,) = inputs.pool_figures(conn, p, NOW - HOUR, NOW)
        assert (pool.pool, pool.calls, pool.tokens) == ("gpu-a", 1, 1100)
        assert pool.cost_usd == Decimal(1)
        assert pool.alternative_usd == Decimal("0.0011")
        assert pool.utilization == Decimal(2) / 3600  # 1000/1000 + 100/100 box-seconds
        assert pool.break_even_utilization is not None
        assert pool.break_even_utilization > Decimal("0.5")
        assert pool.idle_usd == Decimal(1) * (1 - pool.utilization)
        (klass,) = inputs.class_figures(conn, p, NOW - HOUR, NOW)
        assert (klass.service, klass.model, klass.spend_usd) == ("chat", "acme-frontier-1", Decimal(1))
        assert klass.projected_monthly_usd > 600
        assert klass.self_hosted_monthly_usd == Decimal(1000)
        unpriced = inputs.unpriced_figures(conn, p, NOW - HOUR, NOW)
        assert (unpriced.calls, unpriced.by_reason, unpriced.by_model) == (
            1,
            (("no_price", 1),),
            (("openai/unknown-model-x", 1),),
        )
        groups = inputs.spend_groups(conn, p, "service", NOW, HOUR, timedelta(hours=10))
        chat = next(g for g in groups if g.value == "chat")
        assert chat.current_usd > Decimal(1)
        assert chat.baseline_usd == Decimal("0.01")
        assert inputs.silent_services(conn, NOW, HOUR, timedelta(days=1)) == (("batch", NOW - timedelta(hours=5)),)
        totals = {(t.backend_class, t.provider): t for t in inputs.spend_totals(conn, p, NOW)}
        assert totals[("frontier", "openai")].calls == 4
        assert totals[("frontier", "openai")].unpriced_calls == 1
        assert totals[("self_hosted", "openai")].cost_usd > 0
        assert inputs.unpriced_totals(conn) == {"no_price": 1}
        assert set(inputs.last_calls(conn, NOW - timedelta(days=1))) == {"chat", "batch"}


def test_ingest_rate_is_the_difference_between_samples(ledger: sa.Engine) -> None:
    refused = [0]
    samples = inputs.IngestSamples(lambda: refused[0])
    with ledger.connect() as conn:
        samples.sample(conn, NOW - timedelta(minutes=10))
    store_calls(LedgerWriter(ledger), [], counters={("rejected", "invalid_tokens"): 30})
    refused[0] = 2
    with ledger.connect() as conn:
        samples.sample(conn, NOW)
    assert samples.over(timedelta(minutes=15), NOW) == (Decimal(600), 30, 2)
    assert samples.over(timedelta(minutes=5), NOW) == (Decimal(0), 0, 0)


def runner_for(engine: sa.Engine, rules: tuple[Rule, ...], rx: Receiver) -> AlertRunner:
    config = AlertsConfig(
        rules=rules, webhooks=(Webhook(f"{rx.url}/hook", "k"),), retry_backoff=timedelta(milliseconds=20)
    )
    runner = AlertRunner(engine, config, pricing(), "http://dash:8000")
    runner.dispatcher.start()
    return runner


def events(rx: Receiver) -> list[str]:
    return [r.json()["event"] for r in rx.posts("/hook")]


def test_states_persist_so_a_restart_neither_repages_nor_forgets(ledger: sa.Engine) -> None:
    rule = Rule("PoolBelowBreakEven", "pool_below_breakeven", repeat_interval=HOUR)
    with receiver() as rx:
        first = runner_for(ledger, (rule,), rx)
        first.tick(NOW)
        wait_for(lambda: events(rx) == ["firing"])
        first.tick(NOW + timedelta(minutes=1))
        first.dispatcher.stop()

        restarted = runner_for(ledger, (rule,), rx)  # a new process on the same database
        assert restarted.tick(NOW + timedelta(minutes=2)) is not None
        with ledger.connect() as conn:
            (alert,) = store.list_alerts(conn)
        assert (alert["state"], alert["fired_at"]) == (FIRING, NOW.isoformat().replace("+00:00", "Z"))
        restarted.tick(NOW + HOUR)  # the repeat interval has passed since the first notification
        wait_for(lambda: events(rx) == ["firing", "repeat"])

        gone = runner_for(ledger, (), rx)  # the rule removed from the config: its alert resolves
        gone.tick(NOW + HOUR + timedelta(minutes=1))
        wait_for(lambda: events(rx) == ["firing", "repeat", "resolved"])
        for r in (restarted, gone):
            r.dispatcher.stop()
    with ledger.connect() as conn:
        (alert,) = store.list_alerts(conn)
        history = store.list_history(conn)
    assert alert["state"] == RESOLVED
    assert alert["annotations"]["resolved_because"]
    assert [h["event"] for h in history] == ["resolved", "firing"]
    assert history[1]["labels"] == {"alertname": "PoolBelowBreakEven", "pool": "gpu-a", "severity": "warning"}


@pytest.mark.parametrize(
    "engine", [pytest.param("postgresql", marks=[pytest.mark.postgres, pytest.mark.slow])], indirect=True
)
def test_replicas_take_turns_on_postgresql(ledger: sa.Engine) -> None:
    """Several collectors on one PostgreSQL: one evaluates at a time (DuckDB has one process)."""
    rule = Rule("PoolBelowBreakEven", "pool_below_breakeven")
    with receiver() as rx:
        runner = runner_for(ledger, (rule,), rx)
        with ledger.begin() as conn:  # another replica is evaluating
            conn.execute(sa.select(sa.func.pg_advisory_xact_lock(ADVISORY_LOCK_KEY)))
            assert runner.tick(NOW) is None
        assert runner.tick(NOW) is not None
        runner.dispatcher.stop()
