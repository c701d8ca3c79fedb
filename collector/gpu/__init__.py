"""GPU metrics: utilization a pool's boxes report, pushed over OTLP or scraped from Prometheus endpoints.

names.py    the metric names read and their units (pure)
match.py    which pool a series belongs to (pure; the config's dataclass)
samples.py  OTLP exports and Prometheus expositions -> samples -> per-minute buckets (pure)
store.py    the buckets and scrape health in the database
ingest.py   what the OTLP metrics receivers call: its own transaction, committed before the 2xx
scrape.py   the scraper thread of `breakeven serve` (also merges old minutes into hours)
report.py   per pool over a range, as /api/v1/pools and the Pools page show it

This package's __init__ imports nothing: breakeven.collector.price.pools imports match.py.
"""
