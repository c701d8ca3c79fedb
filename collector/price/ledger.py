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
from dataclasses import dataclass
from decimal import Decimal

from collector.price.config import PricingConfig
from collector.price.money import stored
from collector.price.pools import pool_for
from collector.price.pricer import DayCachedPricer, Priced
from collector.records import Call

PRICED = "priced"
POOL = "pool"
UNPRICED = "unpriced"


@dataclass(frozen=True, slots=True)
class CallPrice:
    """What the ledger stores of a call's price."""

    status: str  # PRICED, POOL or UNPRICED
    pool: str | None = None
    cost_usd: Decimal | None = None  # at the storage quantum; after discount
    list_cost_usd: Decimal | None = None
    source: str | None = None
    entry: str | None = None
    unpriced_reason: str | None = None


NOT_PRICED = CallPrice(UNPRICED, unpriced_reason="pricing is off")


def ledger_pricer(config: PricingConfig) -> Callable[[Call], CallPrice]:
    """The function the pipeline prices each new call with."""
    pools = config.pools
    pricer = DayCachedPricer(config.pricer())

    def price(call: Call) -> CallPrice:
        pool = pool_for(pools, call)
        if pool is not None:
            return CallPrice(POOL, pool=pool.name, source=f"pool {pool.name}")
        result = pricer.price_call(call)
        if isinstance(result, Priced):
            return CallPrice(
                PRICED,
                cost_usd=stored(result.cost_usd),
                list_cost_usd=stored(result.list_cost_usd),
                source=result.source,
                entry=result.entry_id,
            )
        return CallPrice(UNPRICED, unpriced_reason=result.reason)

    return price
