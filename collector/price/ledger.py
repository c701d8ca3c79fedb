"""The price stage of ingest: each new call gets its per-token cost, or its pool, at commit.

A call served by a configured self-hosted pool is marked with that pool; its cost is
its share of the pool's cost over the allocation period that holds it, which moves
while that period is still open, so it is worked out when read (collector/store/spend.py),
not stored. Every other call is priced per token by the Pricer (price book, then list
prices) at its start time, or stored unpriced with the reason. `breakeven reprice`
recomputes what is stored here after the prices change.
"""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal
from typing import NamedTuple, TypeVar

from breakeven.collector.memo import remember
from breakeven.collector.price.config import PricingConfig
from breakeven.collector.price.exact import IntegerPlan, integer_plan
from breakeven.collector.price.money import stored
from breakeven.collector.price.periods import from_ns
from breakeven.collector.price.pools import Pool, pool_for
from breakeven.collector.price.pricer import NO_USAGE, PricePlan, Unpriced, names
from breakeven.collector.price.usage import TokenUsage
from breakeven.collector.records import POOL, PRICED, UNPRICED, Call, CallPrice

MEMO_ENTRIES = 10_000  # distinct keys each memo holds; past it the memo starts over
DAY_NS = 86_400 * 10**9
K = TypeVar("K")
V = TypeVar("V")


def ledger_pricer(config: PricingConfig) -> Callable[[Call], CallPrice]:
    """The function the pipeline prices each new call with.

    The hot path of ingest's commit: a call's pool is looked up once per distinct
    (class, backend, address, models, quantization), its price plan once per (provider,
    models, UTC day). The arithmetic is the Pricer's own (PricePlan.totals), done in exact
    integers where that gives the same Decimal (collector/price/exact.py).
    """
    pools = config.pools
    pricer = config.pricer()
    pools_of: dict[tuple[str | None, ...], Pool | None] = {}
    plans: dict[tuple[str | None, str | None, str | None, int], _Plan | Unpriced] = {}

    def plan_of(call: Call) -> _Plan | Unpriced:
        models = (call.response_model, call.request_model)
        plan = pricer.plan(call.provider, names(models), from_ns(call.start_ns))
        return plan if isinstance(plan, Unpriced) else _Plan(plan, integer_plan(plan))

    def price(call: Call) -> CallPrice:
        if pools:
            where = (call.backend_class, call.backend, call.server_address, call.response_model, call.request_model,
                     call.quantization)  # fmt: skip
            pool = _remembered(pools_of, where, lambda: pool_for(pools, call))
            if pool is not None:
                return CallPrice(POOL, pool=pool.name, source=f"pool {pool.name}")
        if not call.usage_reported:
            return CallPrice(UNPRICED, unpriced_reason=NO_USAGE)
        # Entries and discounts start on UTC days: one plan per (provider, models, day).
        day = (call.provider, call.response_model, call.request_model, call.start_ns // DAY_NS)
        found = plans.get(day) or _remembered(plans, day, lambda: plan_of(call))
        if isinstance(found, Unpriced):
            return CallPrice(UNPRICED, unpriced_reason=found.reason)
        plan, exact = found
        totals = None if exact is None else exact.stored_totals(
            call.input_tokens, call.cache_read_tokens, call.cache_write_tokens, call.output_tokens,
            call.reasoning_tokens,
        )  # fmt: skip
        cost, list_cost = totals or _stored_totals(plan, call)
        return CallPrice(PRICED, cost_usd=cost, list_cost_usd=list_cost, source=plan.entry.source,
                         entry=plan.entry.entry_id)  # fmt: skip

    return price


class _Plan(NamedTuple):
    """A price plan and, when its arithmetic can be done in integers, its IntegerPlan."""

    plan: PricePlan
    exact: IntegerPlan | None


def _stored_totals(plan: PricePlan, call: Call) -> tuple[Decimal, Decimal]:
    """(cost, list cost) at the storage quantum by Decimal arithmetic: the reference path."""
    cost, list_cost = plan.totals(TokenUsage.of_call(call))
    return stored(cost), stored(list_cost)


def _remembered(memo: dict[K, V], key: K, compute: Callable[[], V]) -> V:
    """memo[key], computed on a miss (None is a value here); past MEMO_ENTRIES keys the memo starts over."""
    if key in memo:
        return memo[key]
    return remember(memo, key, compute(), chars=0, entries=MEMO_ENTRIES)
