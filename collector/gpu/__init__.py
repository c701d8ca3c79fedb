"""GPU metrics: utilization a pool's boxes report, pushed over OTLP or scraped from Prometheus endpoints.

names.py    the metric names read and their units (pure)
samples.py  samples -> per-minute buckets, Prometheus expositions -> samples (pure)
store.py    the buckets and scrape health in the database
scrape.py   the scraper thread of `breakeven serve` (also merges old minutes into hours)

Elsewhere in the flow: which pool a series belongs to is the pool's config
(price/gpu_match.py, price/pools.py: pool_of); pushed exports are read and committed by the
receivers (ingest/gpu_metrics.py); the per-pool figures are a report (reports/gpu.py).
"""
