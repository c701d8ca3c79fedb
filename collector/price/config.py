"""PricingConfig: the `[pricing]` section as the price stage reads it (config/pricing.py parses it).

It lives here, below the config package, because the price stage itself runs on it
(ledger.py binds it to each new call), and the price stage sits below config.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from breakeven.collector.price.book import PriceBook
from breakeven.collector.price.breakeven import Candidate
from breakeven.collector.price.fx import USD, FxTable
from breakeven.collector.price.pools import Pool
from breakeven.collector.price.pricer import Pricer
from breakeven.collector.price.substitutes import Substitute


@dataclass(frozen=True)
class PricingConfig:
    """Everything pricing reads from the config. The default prices from genai-prices alone."""

    currency: str = USD  # reporting currency; money is USD inside
    allocation_period: str = "day"  # hour | day | month: the window a self-hosted call's share is taken over
    book: PriceBook = field(default_factory=PriceBook)
    fx: FxTable = field(default_factory=FxTable)
    pools: tuple[Pool, ...] = ()
    candidates: tuple[Candidate, ...] = ()
    substitutes: tuple[Substitute, ...] = ()  # models the user found may serve some traffic

    def pricer(self) -> Pricer:
        """A Pricer over this config's price book and genai-prices."""
        return Pricer(self.book)
