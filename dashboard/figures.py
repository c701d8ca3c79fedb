"""The charts of each page, drawn from the page's context (so a chart never shows what the JSON
twin does not carry)."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from markupsafe import Markup

from breakeven.dashboard import charts
from breakeven.dashboard.fmt import dec
from breakeven.dashboard.pages.common import key_text

HALF = 560  # drawing width of a chart that shares the page's width with another
SHOWN_NAMES = {"self_hosted": "self-hosted (busy)", "self_hosted idle": "self-hosted idle GPU"}
SELF_HOSTED, BOUGHT, ALTERNATIVE, LOSS = "#009e73", "#6a3d9a", "#0072b2", "#c0392b"
LEDGER, BILLED = "#0072b2", "#e69f00"
GPU_METRIC_COLORS = ("#cc79a7", "#e69f00", "#56b4e9")  # one per GPU metric source, apart from busy seconds' green


def _values(raw: list[Any]) -> list[Decimal | None]:
    return [dec(v) for v in raw]


def _costs(rows: list[dict[str, Any]]) -> list[charts.Series]:
    return [charts.Series("cost", _values([r["cost"] for r in rows]))]


def overview(c: dict[str, Any]) -> dict[str, Markup]:
    """Daily spend stacked by class; top services, teams and models."""
    currency = c["view"]["currency"]
    money = charts.money_fmt(currency)
    unit = charts.currency_unit(currency, "in range")
    series = [
        charts.Series(SHOWN_NAMES.get(s["name"], s["name"]), _values(s["values"]), charts.color_for(s["name"], i))
        for i, s in enumerate(c["daily"]["series"])
    ]
    out = {"daily": charts.stacked_bars(c["daily"]["days"], series, currency, "Spend by backend class")}
    for name in ("service", "team", "model"):
        rows = c["top"][name]
        if rows:
            labels = [key_text(r["key"][name]) for r in rows]
            out[name] = charts.hbars(labels, _costs(rows), f"Top {name}s", money, unit, width=HALF)
    return out


def spend(c: dict[str, Any]) -> dict[str, Markup]:
    """Daily spend stacked by the first dimension; the largest rows as bars."""
    currency = c["view"]["currency"]
    title = f"Spend by {c['group_by'][0].replace('_', ' ')}"
    series = [charts.Series(s["name"], _values(s["values"])) for s in c["chart"]["series"]]
    out = {"daily": charts.stacked_bars(c["chart"]["days"], series, currency, title)}
    rows = [r for r in c["rows"] if r["cost"] is not None][:15]
    if rows:
        labels = [" · ".join(key_text(r["key"][g]) for g in c["group_by"]) for r in rows]
        unit = charts.currency_unit(currency, "in range")
        out["rows"] = charts.hbars(labels, _costs(rows), "Largest groups", charts.money_fmt(currency), unit)
    return out


def pools(c: dict[str, Any]) -> dict[str, Markup]:
    """Per pool: daily utilization (busy seconds, and the GPU metrics) against break-even; all pools: cost per
    million tokens against the alternative."""
    currency = c["view"]["currency"]
    out: dict[str, Markup] = {}
    for p in c["pools"]:
        d = p["daily"]
        be = dec(d["break_even_utilization"])
        refs = [("break-even", be, "#d55e00")] if be is not None else []
        utilization = [charts.Series("busy seconds", _values(d["utilization"]), SELF_HOSTED)]
        for i, gpu in enumerate(d.get("gpu_utilization", ())):
            name = f"GPU metric {gpu['metric']} ({gpu['source']})"
            color = GPU_METRIC_COLORS[i % len(GPU_METRIC_COLORS)]
            utilization.append(charts.Series(name, _values(gpu["values"]), color))
        title = f"Pool {p['name']}: utilization by day"
        out[f"utilization:{p['name']}"] = charts.lines(
            d["days"], utilization, title, "% of capacity", charts.percent_fmt, refs
        )
    if c["pools"]:
        labels = [p["name"] for p in c["pools"]]
        own = _values([p["cost_per_million_tokens"] for p in c["pools"]])
        bought = _values([p["alternative"]["per_million_tokens"] for p in c["pools"]])
        out["per_million"] = charts.hbars(
            labels,
            [charts.Series("self-hosted", own, SELF_HOSTED), charts.Series("alternative", bought, ALTERNATIVE)],
            "Cost per million tokens, self-hosted against the alternative",
            charts.money_fmt(currency),
            charts.currency_unit(currency, "per million tokens"),
        )
    return out


def breakeven(c: dict[str, Any]) -> dict[str, Markup]:
    """Traffic classes: projected monthly spend against the cheapest pool; pools: savings per month."""
    currency = c["view"]["currency"]
    money = charts.money_fmt(currency)
    per_month = charts.currency_unit(currency, "per month")
    out: dict[str, Markup] = {}
    classes = [k for k in c["classes"] if k["projected"] is not None][:12]
    if classes:
        labels = [f"{k['service'] or '(none)'} · {k['model']}" for k in classes]
        projected = _values([k["projected"] for k in classes])
        pool = _values([(k["cheapest_pool"] or {}).get("cost") for k in classes])
        out["classes"] = charts.hbars(
            labels,
            [
                charts.Series("bought per token (projected month)", projected, BOUGHT),
                charts.Series("cheapest pool (month)", pool, SELF_HOSTED),
            ],
            "Traffic classes: this month's run rate against self-hosting it",
            money,
            per_month,
        )
    if c["pools"]:
        savings = [
            charts.Series("savings per month", _values([p["savings_per_month"] for p in c["pools"]]), SELF_HOSTED)
        ]
        title = "Pools: what self-hosting saves per month (negative: buying would be cheaper)"
        labels = [p["name"] for p in c["pools"]]
        out["pools"] = charts.hbars(labels, savings, title, money, per_month, negative=LOSS)
    return out


def reconciliation(c: dict[str, Any]) -> dict[str, Markup]:
    """Per provider: the ledger's cost and the billed cost by day."""
    currency = c["view"]["currency"]
    out: dict[str, Markup] = {}
    days = c["daily"]["days"]
    for p in c["daily"]["providers"]:
        series = [
            charts.Series("ledger", _values(p["ledger_cost"]), LEDGER),
            charts.Series("billed", _values(p["billed_cost"]), BILLED),
        ]
        title = f"{p['provider']}: ledger against bill by day"
        out[f"daily:{p['provider']}"] = charts.lines(
            days, series, title, charts.currency_unit(currency, "per day"), charts.money_fmt(currency)
        )
    return out


def plans(c: dict[str, Any]) -> dict[str, Markup]:
    """Per class with a plan: its total cost over the range against the box count, today's cost as a line."""
    currency = c["view"]["currency"]
    out: dict[str, Markup] = {}
    for k in c["classes"]:
        plan = k["plan"]
        if plan is None:
            continue
        who = f"Pool {k['model']}" if k["kind"] == "pool" else f"{key_text(k['service'])} · {k['model']}"
        curve = plan["curve"]
        total = [charts.Series("total cost", _values([p["total"] for p in curve]), SELF_HOSTED)]
        today = dec(plan["today"])
        refs = [("today", today, BOUGHT)] if today is not None else []
        out[f"curve:{k['anchor']}"] = charts.lines(
            [str(p["boxes"]) for p in curve],
            total,
            f"{who}: cost by boxes of {plan['candidate']}",
            charts.currency_unit(currency, "over the range"),
            charts.money_fmt(currency),
            refs,
            x_title="boxes (0: everything bought)",
        )
    return out


BY_PAGE = {
    "overview": overview,
    "spend": spend,
    "pools": pools,
    "breakeven": breakeven,
    "plans": plans,
    "reconciliation": reconciliation,
}


def for_page(c: dict[str, Any]) -> dict[str, Markup]:
    """The charts a page shows (none for pages without any)."""
    build = BY_PAGE.get(c["page"])
    return build(c) if build is not None else {}
