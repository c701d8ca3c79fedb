"""Calls: search (trace id, prompt hash, service, model), one call's price breakdown, and repeated
prompt hashes (caching opportunities) with what they cost.

The list is GET /api/v1/calls' (breakeven.collector.store.queries.list_calls, costs from
breakeven.collector.reports.calls.call_costs). A trace id is looked up over all time (it is what an alert or
a log line hands you); the other searches stay inside the chosen range.

A call's breakdown is recomputed for display with breakeven.collector.price: the entry in force at its
start, each token kind's rate and amount, the discount. A pool call shows its allocation
window, the pool's fixed cost for it and the call's share of the busy seconds.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

import sqlalchemy as sa
from fastapi import HTTPException

from breakeven.collector.price.config import PricingConfig
from breakeven.collector.price.money import ZERO, stored
from breakeven.collector.price.periods import allocation_window, utc
from breakeven.collector.price.pools import fixed_cost
from breakeven.collector.price.pricer import Priced
from breakeven.collector.price.usage import TokenUsage
from breakeven.collector.records import POOL, PRICED
from breakeven.collector.reports.calls import call_costs
from breakeven.collector.reports.currency import Converter
from breakeven.collector.reports.fields import money, number
from breakeven.collector.store import queries as store_queries
from breakeven.collector.store import spend as store
from breakeven.collector.store.prompts import PAIR_WINDOW
from breakeven.collector.store.schema import calls
from breakeven.dashboard import queries
from breakeven.dashboard.pages.common import converter, iso, tokens_json
from breakeven.dashboard.view import View

PAGE_SIZE = 50
NARROW = timedelta(days=1)
SEARCH = ("trace_id", "prompt_hash", "service", "model")
REPEATED_LIMIT = 25
REPEATED_WINDOW = PAIR_WINDOW  # a week: the longest window read without the prompts sent once
AVERAGE_MONTH_SECONDS = Decimal("2629746")  # 365.2425 days / 12
_KINDS = ("input", "cache_read", "cache_write", "output", "reasoning")


def search_of(query: Mapping[str, str]) -> dict[str, str]:
    """The search fields given (trimmed; a trace id lower-cased, as stored)."""
    out = {name: query[name].strip() for name in SEARCH if query.get(name, "").strip()}
    if "trace_id" in out:
        out["trace_id"] = out["trace_id"].lower()
    return out


def context(conn: sa.Connection, pricing: PricingConfig, view: View, query: Mapping[str, str]) -> dict[str, Any]:
    """The Calls page: newest first, one page at a time (cursor)."""
    search = search_of(query)
    all_time = "trace_id" in search
    filters = store_queries.CallFilters(
        service=search.get("service"),
        model=search.get("model"),
        trace_id=search.get("trace_id"),
        prompt_hash=search.get("prompt_hash"),
        since=None if all_time else view.since,
        until=None if all_time else view.until,
    )
    try:
        page, next_cursor = _newest(conn, filters, query.get("cursor") or None)
    except store_queries.CursorError as exc:
        raise HTTPException(400, str(exc)) from None
    page = call_costs(conn, pricing, page, view.currency)
    return {
        "page": "calls",
        "view": view.as_json(),
        "search": search,
        "all_time": all_time,
        "calls": page,
        "next": next_cursor,
    }


def _newest(
    conn: sa.Connection, filters: store_queries.CallFilters, cursor: str | None
) -> tuple[list[dict[str, Any]], str | None]:
    """One page of list_calls, looked for in the last day before its end first.

    Newest first over a month of millions of calls is a top-N over all of them; the newest
    page nearly always lies in the last day. The narrow answer stands only when the day held
    more than a page (so nothing older could belong on it); otherwise the whole range is read.
    """
    end = filters.until
    if cursor is not None:
        end = store_queries.decode_cursor(cursor)[0] + timedelta(microseconds=1)
    if end is not None and filters.since is not None and end - NARROW > filters.since:
        narrow = dataclasses.replace(filters, since=end - NARROW)
        page, next_cursor = store_queries.list_calls(conn, narrow, PAGE_SIZE, cursor)
        if next_cursor is not None:
            return page, next_cursor
    return store_queries.list_calls(conn, filters, PAGE_SIZE, cursor)


def _usage(call: Mapping[str, Any]) -> TokenUsage:
    return TokenUsage(*(int(call[f"{k}_tokens"] or 0) for k in _KINDS))


def _per_token_breakdown(
    pricing: PricingConfig, call: dict[str, Any], conv: Converter, stored_usd: Decimal | None
) -> dict[str, Any]:
    start = _start(call)
    result = pricing.pricer().price(
        call["provider"], (call["response_model"], call["request_model"]), start, _usage(call)
    )
    if not isinstance(result, Priced):
        return {"kind": "unpriced_now", "reason": result.reason, "detail": result.detail}
    day = start.date()
    lines = [
        {
            "kind": line.kind,
            "tokens": line.tokens,
            "rate_usd_per_million": number(line.rate),
            "tier_above": line.tier,
            "amount_usd": money(line.amount),
            "amount": money(conv.at(line.amount, day)),
        }
        for line in result.lines
    ]
    now_usd = stored(result.cost_usd)
    return {
        "kind": "per_token",
        "entry": result.entry_id,
        "effective_from": result.effective_from.isoformat() if result.effective_from else None,
        "source": result.source,
        "provider": result.provider,
        "priced_model": result.model,
        "lines": lines,
        "list_cost": money(conv.at(result.list_cost_usd, day)),
        "discount_percent": number(result.discount_percent),
        "discount": money(conv.at(result.discount_usd, day)),
        "cost": money(conv.at(result.cost_usd, day)),
        "stored_cost_usd": money(stored_usd),
        "matches_stored": stored_usd is not None and now_usd == stored_usd,
    }


def _start(call: Mapping[str, Any]) -> datetime:
    return utc(datetime.fromisoformat(call["start_time"].replace("Z", "+00:00")))


def _pool_breakdown(
    conn: sa.Connection, pricing: PricingConfig, call: dict[str, Any], conv: Converter
) -> dict[str, Any]:
    pools = {p.name: p for p in pricing.pools}
    pool = pools.get(call["pool"])
    if pool is None:
        return {"kind": "pool_gone", "pool": call["pool"]}
    start = _start(call)
    ws, we = allocation_window(start, pricing.allocation_period)
    window = store.spend(conn, pricing, ws, we, ("pool",), (), [calls.c.pool == pool.name])
    window_usage = sum((r.usage for r in window.rows), TokenUsage())
    usage = _usage(call)
    busy = pool.capacity.busy_seconds(usage)
    all_busy = pool.capacity.busy_seconds(window_usage)
    fixed = fixed_cost(pool.cost, pool.boxes, ws, we)
    share = busy / all_busy if all_busy else ZERO
    variable = pool.cost.variable_per_million * usage.total / Decimal(1_000_000)
    day = ws.date()
    return {
        "kind": "pool",
        "pool": pool.name,
        "boxes": pool.boxes,
        "allocation_period": pricing.allocation_period,
        "window": {"since": iso(ws), "until": iso(we)},
        "window_calls": sum(r.calls for r in window.rows),
        "window_tokens": window_usage.total,
        "fixed": {
            "hardware": money(conv.at(fixed.hardware, day)),
            "power": money(conv.at(fixed.power, day)),
            "ops": money(conv.at(fixed.ops, day)),
            "total": money(conv.at(fixed.total, day)),
        },
        "busy_seconds": number(busy),
        "window_busy_seconds": number(all_busy),
        "share": number(share),
        "fixed_share": money(conv.at(fixed.total * share, day)),
        "variable_per_million_usd": number(pool.cost.variable_per_million),
        "variable": money(conv.at(variable, day)),
        "cost": money(conv.at(fixed.total * share + variable, day)),
        "capacity": {"input_tps": number(pool.capacity.input_tps), "output_tps": number(pool.capacity.output_tps)},
    }


def detail(conn: sa.Connection, pricing: PricingConfig, view: View, trace_id: str, span_id: str) -> dict[str, Any]:
    """One call: its record, its price breakdown and the spans that made it."""
    trace_id, span_id = trace_id.lower(), span_id.lower()
    found, _ = store_queries.list_calls(conn, store_queries.CallFilters(trace_id=trace_id), 1000)
    matching = [c for c in found if c["span_id"] == span_id]
    if not matching:
        raise HTTPException(404, f"no call {trace_id}/{span_id}")
    call = matching[0]
    stored_usd = Decimal(call["cost"]) if call["price_status"] == PRICED and call["cost"] is not None else None
    (call,) = call_costs(conn, pricing, [call], view.currency)
    conv = converter(pricing, view)
    if call["price_status"] == PRICED:
        price = _per_token_breakdown(pricing, call, conv, stored_usd)
    elif call["price_status"] == POOL:
        price = _pool_breakdown(conn, pricing, call, conv)
    else:
        price = {"kind": "unpriced", "reason": call["unpriced_reason"]}
        now = _per_token_breakdown(pricing, call, conv, None)
        if now["kind"] == "per_token":
            price["priced_now"] = now  # a price exists today: `breakeven reprice` would price it
    spans = queries.call_spans(conn, trace_id, _start(call))
    for span in spans:
        span["start_time"] = iso(span["start_time"])
    return {
        "page": "call",
        "view": view.as_json(),
        "call": call,
        "tokens": tokens_json(_usage(call)),
        "price": price,
        "spans": spans,
        "fx": conv.described(view.until),
    }


def repeated(conn: sa.Connection, pricing: PricingConfig, view: View, query: Mapping[str, str]) -> dict[str, Any]:
    """Prompt hashes sent more than once: caching opportunities and what the repeats cost.

    Over the last REPEATED_WINDOW of the range unless `window=range`: what a cache would save
    is a matter of the current pace (the cost is also shown per month), and a window up to a
    week reads only the prompts that repeat in it (collector/store/prompts.py); a longer one
    groups every prompt of its range by hash, seconds over a month of millions of calls.
    """
    conv = converter(pricing, view)
    whole = query.get("window") == "range"
    since = view.since if whole else max(view.since, view.until - REPEATED_WINDOW)
    seconds = 3600 if pricing.allocation_period == "hour" else 86_400
    found = queries.repeated_prompts(conn, since, view.until, REPEATED_LIMIT, seconds)
    # One read of the pools' windows for every prompt's pool calls, not one per prompt.
    all_shares = iter(store.pool_call_costs(conn, pricing, [i for item in found for i in item.pool_items]))
    per_month = AVERAGE_MONTH_SECONDS / Decimal((view.until - since).total_seconds())
    rows = []
    for item in found:
        cost = conv.total(item.priced_usd)
        shares = [next(all_shares) for _ in item.pool_items]
        for (_, at, _), share in zip(item.pool_items, shares, strict=True):
            if share is not None:
                cost += conv.at(share, at.date())
        priced = bool(item.priced_usd) or any(s is not None for s in shares)
        repeats = Decimal(item.calls - 1) / Decimal(item.calls)
        rows.append(
            {
                "prompt_hash": item.prompt_hash,
                "calls": item.calls,
                "services": item.services,
                "service": item.first_service,
                "models": item.models,
                "tokens": tokens_json(item.usage),
                "first_start": iso(item.first_start),
                "last_start": iso(item.last_start),
                "cost": money(cost) if priced else None,
                "cost_of_repeats": money(cost * repeats) if priced else None,
                "cost_of_repeats_per_month": money(cost * repeats * per_month) if priced else None,
                "unpriced_calls": item.unpriced_calls,
            }
        )
    rows.sort(key=lambda r: (r["cost"] is None, -Decimal(str(r["cost_of_repeats"] or 0))))
    return {
        "page": "repeated",
        "view": view.as_json(),
        "window": {"since": iso(since), "until": iso(view.until), "whole_range": whole or since == view.since},
        "limit": REPEATED_LIMIT,
        "prompts": rows,
        "note": "cost of repeats = cost x (calls - 1) / calls: what the calls after the first cost; a response cache "
        "or provider prompt caching would save part of it",
        "fx": conv.described(view.until),
    }
