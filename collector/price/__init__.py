"""Pricing: per-token prices with history, GPU pool amortization, break-even. Pure, Decimal.

Modules, in the order data flows through them:

- money.py      Decimal helpers, the per-million arithmetic and the storage quantum
- usage.py      TokenUsage: the token kinds of one call, one meaning for every provider
- entries.py    PriceEntry: per-kind rates (optionally tiered) in force from a date
- catalog.py    genai-prices adapter: strict model matching, provider-name mapping
- book.py       the local price book and negotiated discounts from the config
- pricer.py     one call -> Priced (cost, breakdown, entry, source) or Unpriced (reason)
- fx.py         reporting currency: dated exchange rates, conversion that names its rate
- periods.py    UTC period arithmetic: calendar-month proration, allocation windows
- gpu_match.py  a pool's GPU metric series: which pushed points and scraped endpoints are its own
- pools.py      self-hosted pools: fixed cost, busy seconds, utilization, idle, allocation, matching
- breakeven.py  pool break-even and traffic-class (service x model) projections
- config.py     PricingConfig: the `[pricing]` section as this stage reads it (config/pricing.py parses it)
- ledger.py     the price step of ingest: each new call's stored price (CallPrice), or its pool

Nothing here does I/O except catalog.py reading the installed package's bundled data
(never the network).
"""
