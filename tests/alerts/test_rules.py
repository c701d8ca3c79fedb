"""The rules, pure: each kind's condition, then the state machine (pending, firing, repeat, resolved)."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest

from breakeven.collector.alerts.conditions import duration_text
from breakeven.collector.alerts.rules import (
    FIRING,
    PENDING,
    RESOLVED,
    AlertState,
    ClassFigures,
    IngestFigures,
    Inputs,
    PoolFigures,
    SpendGroup,
    UnpricedFigures,
    conditions_of,
    evaluate,
    fingerprint,
)
from breakeven.collector.config.alerts import (
    CLASS_PAST_BREAKEVEN,
    INGEST_UNHEALTHY,
    POOL_BELOW_BREAKEVEN,
    SPEND_DRIFT,
    UNPRICED_TRAFFIC,
    Rule,
)

T0 = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)
D = Decimal


def pool(name: str = "gpu", util: str = "0.10", be: str | None = "0.50", tokens: int = 1000, **kw: Any) -> PoolFigures:
    base = PoolFigures(
        pool=name,
        alternative="together/llama",
        calls=10,
        tokens=tokens,
        utilization=D(util),
        break_even_utilization=None if be is None else D(be),
        cost_usd=D("100"),
        alternative_usd=D("20"),
        idle_usd=D("90"),
        cost_per_million_usd=D("5"),
    )
    return replace(base, **kw)


def klass(projected: str, self_hosted: str | None, backend_class: str = "frontier") -> ClassFigures:
    return ClassFigures(
        service="chat",
        provider="openai",
        model="gpt-4o",
        backend_class=backend_class,
        spend_usd=D(projected) / 4,
        projected_monthly_usd=D(projected),
        self_hosted_monthly_usd=None if self_hosted is None else D(self_hosted),
        self_hosted_option=None if self_hosted is None else "2 x h100",
    )


# ----------------------------------------------------------------------------- conditions, kind by kind

CONDITIONS = [
    # pool_below_breakeven: margin in utilization points
    pytest.param(
        Rule("P", POOL_BELOW_BREAKEVEN),
        Inputs(pools={"P": [pool()]}),
        [{"pool": "gpu"}],
        id="pool under break-even fires",
    ),
    pytest.param(
        Rule("P", POOL_BELOW_BREAKEVEN),
        Inputs(pools={"P": [pool(util="0.6")]}),
        [],
        id="pool above break-even does not",
    ),
    pytest.param(
        Rule("P", POOL_BELOW_BREAKEVEN, margin=D("0.05")),
        Inputs(pools={"P": [pool(util="0.46")]}),
        [],
        id="pool within the margin does not",
    ),
    pytest.param(
        Rule("P", POOL_BELOW_BREAKEVEN, margin=D("0.05")),
        Inputs(pools={"P": [pool(util="0.44")]}),
        [{"pool": "gpu"}],
        id="pool past the margin fires",
    ),
    pytest.param(
        Rule("P", POOL_BELOW_BREAKEVEN),
        Inputs(pools={"P": [pool(util="0", be=None, tokens=0, reason="no traffic")]}),
        [{"pool": "gpu"}],
        id="idle pool with a cost fires",
    ),
    pytest.param(
        Rule("P", POOL_BELOW_BREAKEVEN),
        Inputs(pools={"P": [pool(util="0", be=None, tokens=0, cost_usd=D(0))]}),
        [],
        id="idle pool that costs nothing does not",
    ),
    pytest.param(
        Rule("P", POOL_BELOW_BREAKEVEN),
        Inputs(pools={"P": [pool(be=None, alternative_usd=None)]}),
        [],
        id="pool whose alternative cannot be priced is not judged",
    ),
    pytest.param(
        Rule("P", POOL_BELOW_BREAKEVEN),
        Inputs(pools={"P": [pool(be=None, reason="A <= v")]}),
        [{"pool": "gpu"}],
        id="pool that never breaks even fires",
    ),
    pytest.param(
        Rule("P", POOL_BELOW_BREAKEVEN, pools=("other",)),
        Inputs(pools={"P": [pool()]}),
        [],
        id="pool filter leaves others out",
    ),
    pytest.param(
        Rule("P", POOL_BELOW_BREAKEVEN),
        Inputs(pools={"P": [pool("a"), pool("b", util="0.9")]}),
        [{"pool": "a"}],
        id="one instance per pool",
    ),
    # class_past_breakeven: margin in percent over the pool cost or the budget
    pytest.param(
        Rule("C", CLASS_PAST_BREAKEVEN),
        Inputs(classes={"C": [klass("5000", "3000")]}),
        [{"service": "chat", "provider": "openai", "model": "gpt-4o"}],
        id="class past the pool cost fires",
    ),
    pytest.param(
        Rule("C", CLASS_PAST_BREAKEVEN),
        Inputs(classes={"C": [klass("2000", "3000")]}),
        [],
        id="class under the pool cost does not",
    ),
    pytest.param(
        Rule("C", CLASS_PAST_BREAKEVEN, margin=D(50)),
        Inputs(classes={"C": [klass("4000", "3000")]}),
        [],
        id="class within the percent margin does not",
    ),
    pytest.param(
        Rule("C", CLASS_PAST_BREAKEVEN),
        Inputs(classes={"C": [klass("5000", None)]}),
        [],
        id="class no pool can serve does not",
    ),
    pytest.param(
        Rule("C", CLASS_PAST_BREAKEVEN, budget_usd=D(1000)),
        Inputs(classes={"C": [klass("1500", None)]}),
        [{"service": "chat", "provider": "openai", "model": "gpt-4o"}],
        id="class past its budget fires",
    ),
    pytest.param(
        Rule("C", CLASS_PAST_BREAKEVEN, backend_classes=("managed",)),
        Inputs(classes={"C": [klass("5000", "3000")]}),
        [],
        id="class of another backend class is left out",
    ),
    # spend_drift: margin in percent over the baseline
    pytest.param(
        Rule("S", SPEND_DRIFT, margin=D(50)),
        Inputs(spend={"S": [SpendGroup("openai", D(30), D(10))]}),
        [{"provider": "openai"}],
        id="spend up 200% fires",
    ),
    pytest.param(
        Rule("S", SPEND_DRIFT, margin=D(50)),
        Inputs(spend={"S": [SpendGroup("openai", D(14), D(10))]}),
        [],
        id="spend up 40% does not",
    ),
    pytest.param(
        Rule("S", SPEND_DRIFT, margin=D(50)),
        Inputs(spend={"S": [SpendGroup("new", D(30), D(0))]}),
        [],
        id="spend without a baseline does not",
    ),
    pytest.param(
        Rule("S", SPEND_DRIFT, margin=D(50), min_spend_usd=D(50)),
        Inputs(spend={"S": [SpendGroup("a", D(30), D(1))]}),
        [],
        id="spend under min_spend does not",
    ),
    pytest.param(
        Rule("S", SPEND_DRIFT, group_by="team"),
        Inputs(spend={"S": [SpendGroup(None, D(30), D(1))]}),
        [{"team": ""}],
        id="spend of no team is its own group",
    ),
    # unpriced_traffic: margin = calls tolerated
    pytest.param(
        Rule("U", UNPRICED_TRAFFIC),
        Inputs(unpriced={"U": UnpricedFigures(3, (("no_price", 3),), (("openai/gpt-9", 3),))}),
        [{}],
        id="unpriced calls fire",
    ),
    pytest.param(
        Rule("U", UNPRICED_TRAFFIC), Inputs(unpriced={"U": UnpricedFigures(0)}), [], id="no unpriced calls do not"
    ),
    pytest.param(
        Rule("U", UNPRICED_TRAFFIC, margin=D(5)),
        Inputs(unpriced={"U": UnpricedFigures(5)}),
        [],
        id="unpriced calls within the margin do not",
    ),
    # ingest_unhealthy: margin = spans per minute; silent services
    pytest.param(
        Rule("I", INGEST_UNHEALTHY, margin=D(1)),
        Inputs(ingest={"I": IngestFigures(D(600), 30, 0)}),
        [{"reason": "rejects"}],
        id="3 rejects a minute fire",
    ),
    pytest.param(
        Rule("I", INGEST_UNHEALTHY, margin=D(1)),
        Inputs(ingest={"I": IngestFigures(D(600), 2, 3)}),
        [],
        id="half a reject a minute does not",
    ),
    pytest.param(
        Rule("I", INGEST_UNHEALTHY, margin=D(0)),
        Inputs(ingest={"I": IngestFigures(D(60), 0, 1)}),
        [{"reason": "rejects"}],
        id="refused exports count",
    ),
    pytest.param(
        Rule("I", INGEST_UNHEALTHY),
        Inputs(ingest={"I": IngestFigures(D(0), 50, 0)}),
        [],
        id="no rate before a second sample",
    ),
    pytest.param(
        Rule("I", INGEST_UNHEALTHY),
        Inputs(ingest={"I": IngestFigures(D(60), 0, 0, (("chat", T0),))}),
        [{"reason": "silent", "service": "chat"}],
        id="silent service fires",
    ),
]


@pytest.mark.parametrize(("rule", "inputs", "expected"), CONDITIONS)
def test_conditions(rule: Rule, inputs: Inputs, expected: list[dict[str, str]]) -> None:
    conditions = conditions_of(rule, inputs)
    assert conditions is not None
    assert [dict(c.labels) for c in conditions] == expected
    for c in conditions:
        assert c.summary.endswith(".")
        assert "None" not in c.summary


@pytest.mark.parametrize(
    "kind", [POOL_BELOW_BREAKEVEN, CLASS_PAST_BREAKEVEN, SPEND_DRIFT, UNPRICED_TRAFFIC, INGEST_UNHEALTHY]
)
def test_a_rule_without_inputs_is_not_evaluated(kind: str) -> None:
    assert conditions_of(Rule("R", kind), Inputs()) is None


def test_pool_alert_says_what_buying_would_have_cost_and_the_idle_spend() -> None:
    (c,) = conditions_of(Rule("P", POOL_BELOW_BREAKEVEN), Inputs(pools={"P": [pool()]})) or []
    assert c.summary == (
        "Pool gpu ran at 10.0% utilization over the last 1h, under its break-even of 50.0%: buying the same "
        "traffic from together/llama would have cost 20.00 USD against 100.00 USD; idle spend 90.00 USD."
    )
    details = dict(c.details)
    assert details["alternative_cost_usd"] == "20.000000"
    assert details["idle_usd"] == "90.000000"


# ----------------------------------------------------------------------------- the state machine

UNDER = Inputs(pools={"P": [pool()]})
ABOVE = Inputs(pools={"P": [pool(util="0.9")]})
NO_DATA = Inputs()
FP = fingerprint("P", (("pool", "gpu"),))


def run(rule: Rule, steps: list[tuple[int, Inputs]]) -> list[tuple[str | None, list[str], list[str]]]:
    """Evaluate at T0 + minutes for each step; per step: state, notification events, history events."""
    states: dict[str, AlertState] = {}
    out = []
    for minutes, inputs in steps:
        ev = evaluate([rule], inputs, states, T0 + timedelta(minutes=minutes))
        states = ev.states
        state = states.get(FP)
        out.append(
            (None if state is None else state.state, [n.event for n in ev.notifications], [h.event for h in ev.history])
        )
    return out


MACHINE = [
    pytest.param(
        Rule("P", POOL_BELOW_BREAKEVEN, for_=timedelta(minutes=30)),
        [(0, UNDER), (10, UNDER), (30, UNDER)],
        [(PENDING, [], ["pending"]), (PENDING, [], []), (FIRING, ["firing"], ["firing"])],
        id="pending until it has held for the duration, then fires once",
    ),
    pytest.param(
        Rule("P", POOL_BELOW_BREAKEVEN, for_=timedelta(minutes=30)),
        [(0, UNDER), (10, ABOVE), (20, UNDER)],
        [(PENDING, [], ["pending"]), (None, [], ["cleared"]), (PENDING, [], ["pending"])],
        id="one quiet hour pages nobody: pending that stops holding is cleared unnotified",
    ),
    pytest.param(
        Rule("P", POOL_BELOW_BREAKEVEN),
        [(0, UNDER)],
        [(FIRING, ["firing"], ["firing"])],
        id="no duration fires at once",
    ),
    pytest.param(
        Rule("P", POOL_BELOW_BREAKEVEN, repeat_interval=timedelta(hours=1)),
        [(0, UNDER), (30, UNDER), (60, UNDER), (90, UNDER), (120, UNDER)],
        [
            (FIRING, ["firing"], ["firing"]),
            (FIRING, [], []),
            (FIRING, ["repeat"], []),
            (FIRING, [], []),
            (FIRING, ["repeat"], []),
        ],
        id="repeats every repeat interval while it holds",
    ),
    pytest.param(
        Rule("P", POOL_BELOW_BREAKEVEN),
        [(0, UNDER), (5, ABOVE), (10, ABOVE)],
        [(FIRING, ["firing"], ["firing"]), (RESOLVED, ["resolved"], ["resolved"]), (RESOLVED, [], [])],
        id="resolves once when it stops holding",
    ),
    pytest.param(
        Rule("P", POOL_BELOW_BREAKEVEN),
        [(0, UNDER), (5, NO_DATA), (10, NO_DATA)],
        [(FIRING, ["firing"], ["firing"]), (FIRING, [], []), (FIRING, [], [])],
        id="missing inputs neither resolve nor repeat",
    ),
    pytest.param(
        Rule("P", POOL_BELOW_BREAKEVEN, for_=timedelta(minutes=10)),
        [(0, UNDER), (5, ABOVE), (20, UNDER), (30, UNDER)],
        [
            (PENDING, [], ["pending"]),
            (None, [], ["cleared"]),
            (PENDING, [], ["pending"]),
            (FIRING, ["firing"], ["firing"]),
        ],
        id="a new episode starts its duration afresh",
    ),
    pytest.param(
        Rule("P", POOL_BELOW_BREAKEVEN),
        [(0, UNDER), (5, ABOVE), (10, UNDER)],
        [(FIRING, ["firing"], ["firing"]), (RESOLVED, ["resolved"], ["resolved"]), (FIRING, ["firing"], ["firing"])],
        id="fires again after resolving",
    ),
]


@pytest.mark.parametrize(("rule", "steps", "expected"), MACHINE)
def test_state_machine(rule: Rule, steps: list[tuple[int, Inputs]], expected: list[Any]) -> None:
    assert run(rule, steps) == expected


def test_firing_alert_carries_labels_times_and_the_latest_figures() -> None:
    rule = Rule(
        "P", POOL_BELOW_BREAKEVEN, severity="critical", labels=(("team", "ml"),), repeat_interval=timedelta(hours=1)
    )
    first = evaluate([rule], UNDER, {}, T0)
    later = evaluate([rule], Inputs(pools={"P": [pool(util="0.2")]}), first.states, T0 + timedelta(minutes=5))
    alert = later.states[FP]
    assert alert.labels == {"alertname": "P", "severity": "critical", "team": "ml", "pool": "gpu"}
    assert (alert.state, alert.active_since, alert.fired_at, alert.last_notified_at) == (FIRING, T0, T0, T0)
    assert alert.annotations["utilization"] == "0.200000"
    assert later.notifications == []
    assert later.changed(first.states) == [alert]


def test_alerts_of_a_rule_no_longer_configured_resolve() -> None:
    first = evaluate([Rule("P", POOL_BELOW_BREAKEVEN)], UNDER, {}, T0)
    later = evaluate([], Inputs(), first.states, T0 + timedelta(minutes=1))
    assert [(n.event, n.alert.state) for n in later.notifications] == [("resolved", RESOLVED)]
    assert later.states[FP].annotations["resolved_because"] == "the rule is no longer configured"


def test_evaluation_is_pure() -> None:
    previous = evaluate([Rule("P", POOL_BELOW_BREAKEVEN, for_=timedelta(minutes=5))], UNDER, {}, T0).states
    snapshot = dict(previous)
    a = evaluate(
        [Rule("P", POOL_BELOW_BREAKEVEN, for_=timedelta(minutes=5))], UNDER, previous, T0 + timedelta(minutes=5)
    )
    b = evaluate(
        [Rule("P", POOL_BELOW_BREAKEVEN, for_=timedelta(minutes=5))], UNDER, previous, T0 + timedelta(minutes=5)
    )
    assert previous == snapshot
    assert a.states == b.states
    assert a.notifications == b.notifications


@pytest.mark.parametrize(
    ("seconds", "text"),
    [pytest.param(0.5, "500ms", id="ms"), pytest.param(90, "1m30s", id="m+s"), pytest.param(93_600, "1d2h", id="d+h")],
)
def test_duration_text(seconds: float, text: str) -> None:
    assert duration_text(timedelta(seconds=seconds)) == text
