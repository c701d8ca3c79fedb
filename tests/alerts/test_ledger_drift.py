"""The ledger_drift rule: pure and table-driven (closed days, margin, coverage, min_delta), its
config, then end to end: the reconciliation fixture's bills fire it through the runner to a
webhook, and a restated bill resolves it."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from breakeven.collector.alerts import store
from breakeven.collector.alerts.drift import BillDay, BillFigures, closed_days
from breakeven.collector.alerts.rules import FIRING, RESOLVED, Inputs, conditions_of, evaluate
from breakeven.collector.alerts.runner import AlertRunner
from breakeven.collector.config.alerts import LEDGER_DRIFT, AlertsConfig, Rule, Webhook, check_reconcile, parse_alerts
from breakeven.collector.config.checks import SettingsError
from breakeven.collector.config.reconcile import ReconcileConfig, ReconcileSource
from breakeven.collector.reconcile.fetch import fetch_lines
from breakeven.collector.store.bills import replace_lines
from tests.alerts.receiver import Receiver, receiver
from tests.api.test_reconciliation import BILLS, DAY, admin, reconciled  # noqa: F401 - fixtures, used by name
from tests.conftest import RunningCollector, start_collector, wait_for
from tests.fakeadmin import AdminApi

D = Decimal
DAY0 = date(2026, 3, 1)
AS_OF = datetime(2026, 3, 3, 1, 0, tzinfo=UTC)  # DAY0 ended 25 h ago
RULE = Rule("LedgerDrift", LEDGER_DRIFT, margin=D(5), window=timedelta(days=7))


def bill_day(**kw: Any) -> BillDay:
    """A source's day where bill and ledger agree, changed by kw."""
    base = BillDay(
        source="openai-org",
        day=DAY0,
        ledger_usd=D(100),
        billed_usd=D(100),
        ledger_tokens=1000,
        billed_tokens=1000,
        coverage=D(1),
        delta_usd=D(0),
        delta_percent=D(0),
        cause=None,
        fetched_at=None,
    )
    return replace(base, **kw)


def fired(rule: Rule, *days: BillDay, as_of: datetime = AS_OF) -> list[dict[str, str]]:
    conditions = conditions_of(rule, Inputs(bills={rule.name: BillFigures(as_of, days)}))
    assert conditions is not None
    return [dict(c.labels) for c in conditions]


def drifting(percent: str, **kw: Any) -> BillDay:
    """A day whose bill is `percent` above the ledger's 100 USD (below, when negative)."""
    delta = D(percent)
    return bill_day(billed_usd=D(100) + delta, delta_usd=delta, delta_percent=delta / (100 + delta) * 100, **kw)


def short_of_tokens(coverage: str) -> BillDay:
    """A day whose ledger saw `coverage` of the billed tokens, its cost 4% under the bill."""
    return bill_day(
        ledger_tokens=int(1000 * D(coverage)),
        coverage=D(coverage),
        ledger_usd=D(96),
        delta_usd=D(4),
        delta_percent=D(4),
    )


@pytest.mark.parametrize(
    ("rule", "day", "fires"),
    [
        pytest.param(RULE, bill_day(), False, id="bill and ledger agree"),
        pytest.param(RULE, drifting("20"), True, id="bill above the ledger by more than the margin fires"),
        pytest.param(RULE, drifting("-20"), True, id="bill below the ledger fires too"),
        pytest.param(RULE, bill_day(delta_usd=D(5), delta_percent=D(5)), False, id="exactly the margin does not"),
        pytest.param(
            RULE, short_of_tokens("0.9"), True, id="coverage under min_coverage fires, the cost within the margin"
        ),
        pytest.param(RULE, short_of_tokens("0.95"), False, id="coverage at min_coverage does not"),
        pytest.param(
            RULE,
            bill_day(ledger_tokens=500, coverage=D("0.5"), ledger_usd=D("99.50"), delta_usd=D("0.50")),
            False,
            id="coverage under min_coverage, the costs within min_delta: no page",
        ),
        pytest.param(
            RULE,
            bill_day(ledger_usd=D("0.50"), billed_usd=D(1), delta_usd=D("0.50"), delta_percent=D(50), coverage=D(0)),
            False,
            id="a delta under min_delta never fires",
        ),
        pytest.param(
            replace(RULE, min_delta_usd=D(0)),
            bill_day(ledger_usd=D("0.50"), billed_usd=D(1), delta_usd=D("0.50"), delta_percent=D(50)),
            True,
            id="min_delta 0 judges every cent",
        ),
        pytest.param(
            RULE,
            bill_day(billed_usd=None, delta_usd=None, delta_percent=None, ledger_tokens=500, coverage=D("0.5")),
            True,
            id="a bill without cost is judged on coverage",
        ),
        pytest.param(
            RULE,
            bill_day(billed_usd=None, billed_tokens=0, coverage=None, delta_usd=None, delta_percent=None),
            False,
            id="a day without bill lines is not judged",
        ),
        pytest.param(RULE, drifting("50", day=DAY0 + timedelta(days=1)), False, id="yesterday is not closed"),
        pytest.param(
            RULE,
            drifting("50", fetched_at=datetime(2026, 3, 2, 23, tzinfo=UTC)),
            False,
            id="fetched less than a day after the day ended: not closed",
        ),
        pytest.param(
            RULE,
            drifting("50", fetched_at=datetime(2026, 3, 3, 0, tzinfo=UTC)),
            True,
            id="fetched a day after it ended: closed",
        ),
        pytest.param(RULE, drifting("50", day=date(2026, 2, 24)), True, id="the first day of the window is judged"),
        pytest.param(RULE, drifting("50", day=date(2026, 2, 23)), False, id="a day before the window is not"),
        pytest.param(
            replace(RULE, sources=("anthropic",)), drifting("50"), False, id="a source the rule does not watch"
        ),
        pytest.param(replace(RULE, sources=("openai-org",)), drifting("50"), True, id="a source the rule watches"),
    ],
)
def test_ledger_drift_conditions(rule: Rule, day: BillDay, fires: bool) -> None:
    expected = [{"day": day.day.isoformat(), "source": day.source}] if fires else []
    assert fired(rule, day) == expected


def test_closed_days_are_billed_and_settled() -> None:
    days = (
        bill_day(),
        bill_day(source="anthropic", fetched_at=datetime(2026, 3, 2, 12, tzinfo=UTC)),  # fetched too soon
        bill_day(source="aws", billed_usd=None, billed_tokens=0),  # nothing billed
        bill_day(day=DAY0 + timedelta(days=1)),  # not over for a day yet
    )
    assert closed_days(BillFigures(AS_OF, days)) == [days[0]]


def test_the_alert_tells_costs_coverage_and_cause() -> None:
    day = bill_day(
        ledger_usd=D("4.86"),
        billed_usd=D("22.80"),
        ledger_tokens=3_300_000,
        billed_tokens=8_100_000,
        coverage=D(3_300_000) / D(8_100_000),
        delta_usd=D("17.94"),
        delta_percent=D("17.94") / D("22.80") * 100,
        cause="the bill counts 4,800,000 tokens the ledger never saw",
    )
    (condition,) = conditions_of(RULE, Inputs(bills={RULE.name: BillFigures(AS_OF, (day,))})) or []
    assert condition.summary == (
        "openai-org billed 22.80 USD for 2026-03-01 against 4.86 USD in the ledger (+78.7% of the bill); "
        "the ledger saw 40.7% of the 8,100,000 billed tokens. The bill counts 4,800,000 tokens the ledger never saw."
    )
    assert dict(condition.details) == {
        "day": "2026-03-01",
        "ledger_cost_usd": "4.860000",
        "billed_cost_usd": "22.800000",
        "delta_usd": "17.940000",
        "delta_percent": "78.7",
        "coverage": "0.407407",
        "ledger_tokens": "3300000",
        "billed_tokens": "8100000",
        "cause": "the bill counts 4,800,000 tokens the ledger never saw",
        "report": "/api/v1/reconciliation?since=2026-03-01T00:00:00Z&until=2026-03-02T00:00:00Z"
        "&group_by=source,provider,model",
    }


def test_a_restated_day_resolves() -> None:
    first = evaluate([RULE], Inputs(bills={RULE.name: BillFigures(AS_OF, (drifting("20"),))}), {}, AS_OF)
    (note,) = first.notifications
    assert (note.event, note.alert.labels["source"], note.alert.labels["day"]) == (FIRING, "openai-org", "2026-03-01")
    later = AS_OF + timedelta(hours=6)
    restated = evaluate([RULE], Inputs(bills={RULE.name: BillFigures(later, (bill_day(),))}), first.states, later)
    assert [(n.event, n.alert.fingerprint) for n in restated.notifications] == [
        (RESOLVED, 'LedgerDrift{day="2026-03-01",source="openai-org"}')
    ]


def test_missing_inputs_keep_the_alerts() -> None:
    assert conditions_of(RULE, Inputs()) is None


# ----------------------------------------------------------------------------- config


def test_config_defaults() -> None:
    (rule,) = parse_alerts({"rules": [{"name": "LedgerDrift", "kind": "ledger_drift"}]}).rules
    assert (rule.margin, rule.min_coverage, rule.min_delta_usd, rule.sources) == (D(5), D("0.95"), D(1), ())
    assert (rule.window, rule.repeat_interval) == (timedelta(days=7), timedelta(days=1))


@pytest.mark.parametrize(
    ("keys", "names"),
    [
        pytest.param({"min_coverage": 1.5}, "alerts.rules[0].min_coverage: a ratio from 0 to 1", id="coverage > 1"),
        pytest.param({"window": "12h"}, "alerts.rules[0].window: whole days", id="window under a day"),
        pytest.param({"window": "36h"}, "alerts.rules[0].window: whole days", id="window not whole days"),
        pytest.param({"sources": "openai-org"}, "alerts.rules[0].sources: expected a list", id="sources not a list"),
        pytest.param({"min_delta": -1}, "alerts.rules[0].min_delta: expected a non-negative", id="negative delta"),
        pytest.param({"group_by": "source"}, "alerts.rules[0].group_by: unknown key", id="a key of another kind"),
    ],
)
def test_config_mistakes_name_their_key(keys: dict[str, Any], names: str) -> None:
    with pytest.raises(SettingsError, match=names.replace("[", r"\[").replace("]", r"\]")):
        parse_alerts({"rules": [{"name": "L", "kind": "ledger_drift", **keys}]})


SOURCES = ReconcileConfig((ReconcileSource("openai-org", "openai", "OPENAI_ADMIN_KEY"),))


@pytest.mark.parametrize(
    ("sources", "reconcile", "error"),
    [
        pytest.param([], SOURCES, None, id="every configured source"),
        pytest.param(["openai-org"], SOURCES, None, id="a configured source"),
        pytest.param(
            [], ReconcileConfig(), r"alerts.rules\[1\].kind: ledger_drift .* none is configured", id="no sources"
        ),
        pytest.param(
            ["aws"], SOURCES, r"alerts.rules\[1\].sources\[0\]: no \[\[reconcile.sources\]\] is named 'aws'",
            id="an unknown source",
        ),
    ],
)  # fmt: skip
def test_a_rule_without_bills_to_read_is_a_config_error(
    sources: list[str], reconcile: ReconcileConfig, error: str | None
) -> None:
    alerts = parse_alerts(
        {
            "rules": [
                {"name": "U", "kind": "unpriced_traffic"},
                {"name": "L", "kind": "ledger_drift", "sources": sources},
            ]
        }
    )
    if error is None:
        check_reconcile(alerts, reconcile)
    else:
        with pytest.raises(SettingsError, match=error):
            check_reconcile(alerts, reconcile)


def test_serve_starts_with_a_ledger_drift_rule_only_when_there_are_bills(tmp_path: Path) -> None:
    alerts = {"rules": [{"name": "LedgerDrift", "kind": "ledger_drift"}]}
    (tmp_path / "without").mkdir()
    with pytest.raises(SettingsError, match=r"alerts.rules\[0\].kind: ledger_drift"):
        start_collector(tmp_path / "without", alerts=alerts)
    focus = {"name": "aws", "kind": "focus", "path": str(tmp_path / "focus" / "*.csv")}
    running = start_collector(tmp_path, alerts=alerts, reconcile={"sources": [focus]})
    running.app.stop()


# ----------------------------------------------------------------------------- end to end

CLOSED = datetime.combine(DAY + timedelta(days=2), datetime.min.time(), UTC) + timedelta(hours=1)


def events(rx: Receiver) -> list[tuple[str, str]]:
    return [(b["event"], b["alert"]["labels"]["source"]) for b in (r.json() for r in rx.posts("/hook"))]


def fetch_again(running: RunningCollector, source_name: str) -> None:
    """What a scheduled fetch does for the day: read the (fake) admin API, replace the stored day."""
    source = running.app.settings.reconcile.source(source_name)
    assert source is not None
    for report, lines in fetch_lines(source, DAY, DAY + timedelta(days=1)).items():
        replace_lines(running.app.engine, source.name, report, [DAY], lines)


def test_drift_fires_to_a_webhook_and_a_restated_bill_resolves_it(
    reconciled: RunningCollector,  # noqa: F811 - the imported fixture
    admin: AdminApi,  # noqa: F811
) -> None:
    rule = Rule("LedgerDrift", LEDGER_DRIFT, margin=D(5), window=timedelta(days=7), repeat_interval=timedelta(days=1))
    with receiver() as rx:
        config = AlertsConfig(rules=(rule,), webhooks=(Webhook(f"{rx.url}/hook"),))
        settings = reconciled.app.settings
        runner = AlertRunner(
            reconciled.app.engine, config, settings.pricing, "http://dash:8000", reconcile=settings.reconcile
        )
        runner.dispatcher.start()
        try:
            # The day before it closes: nothing is judged.
            assert runner.tick(CLOSED - timedelta(hours=2)) is not None
            assert rx.posts("/hook") == []

            runner.tick(CLOSED)
            wait_for(lambda: sorted(events(rx)) == [("firing", "anthropic"), ("firing", "openai-org")])
            bodies = {b["alert"]["labels"]["source"]: b["alert"] for b in (r.json() for r in rx.posts("/hook"))}
            openai = bodies["openai-org"]
            assert openai["labels"] == {
                "alertname": "LedgerDrift", "severity": "warning", "source": "openai-org", "day": "2026-11-03"
            }  # fmt: skip
            notes = openai["annotations"]
            # support's gpt-4o ($4.50) and gpt-4o-mini ($0.36) against the bill's $22.50 + $0.30
            assert (notes["ledger_cost_usd"], notes["billed_cost_usd"], notes["delta_usd"]) == (
                "4.860000", "22.800000", "17.940000"
            )  # fmt: skip
            assert (notes["delta_percent"], notes["coverage"]) == ("78.7", "0.407407")
            assert notes["cause"].startswith("the bill counts 4,800,000 tokens the ledger never saw")
            assert notes["summary"].startswith("openai-org billed 22.80 USD for 2026-11-03 against 4.86 USD")
            anthropic = bodies["anthropic"]["annotations"]
            assert (anthropic["delta_usd"], anthropic["delta_percent"], anthropic["coverage"]) == (
                "-1.650000", "-11.1", "1.000000"
            )  # fmt: skip

            # Anthropic restates the day at list price: the bill now agrees with the ledger.
            admin.results[("anthropic-cost", DAY)] = [
                {**line, "amount": amount}
                for line, amount in zip(BILLS[("anthropic-cost", DAY)], ("900.00", "750.00"), strict=True)
            ]
            fetch_again(reconciled, "anthropic")
            runner.tick(CLOSED + timedelta(hours=1))
            wait_for(lambda: events(rx)[2:] == [("resolved", "anthropic")])
            with reconciled.app.engine.connect() as conn:
                states = {a["labels"]["source"]: a["state"] for a in store.list_alerts(conn)}
            assert states == {"openai-org": FIRING, "anthropic": RESOLVED}
        finally:
            runner.dispatcher.stop()
            admin.results[("anthropic-cost", DAY)] = BILLS[("anthropic-cost", DAY)]
            fetch_again(reconciled, "anthropic")


def test_the_settings_refuse_a_ledger_drift_rule_without_bills_before_anything_starts() -> None:
    from breakeven.collector.config.settings import load_settings

    with pytest.raises(SettingsError, match=r"alerts.rules\[0\].kind: ledger_drift"):
        load_settings({"alerts": {"rules": [{"name": "LedgerDrift", "kind": "ledger_drift"}]}}, environ={})
