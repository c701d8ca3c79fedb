"""Each pool's GPU metrics over a range, as GET /api/v1/pools and the Pools page show them.

Beside the busy-seconds utilization (tokens served x 1/capacity, over box-seconds: what the
pool's traffic would have kept it busy) stands what the GPUs themselves reported: the
mean of every sample in the range, each GPU's reading at each sample weighing the same
(a minute without samples counts for nothing, not as idle). Each source (otlp or scrape,
and the metric name) is reported on its own, side by side; the headline `utilization` is
the GPU-utilization source that saw the most GPUs (then the most samples, then scrape
before otlp), and says which it is. KV cache usage (vLLM, SGLang) is listed apart, never as
utilization. Ratios are decimal strings, as every ratio of the money API.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, MutableMapping, Sequence
from datetime import date, datetime
from decimal import Decimal
from typing import Any

import sqlalchemy as sa

from breakeven.collector.gpu.names import GPU_UTILIZATION
from breakeven.collector.gpu.samples import SCRAPE
from breakeven.collector.gpu.store import SourceTotals, TargetHealth, daily_means, scrape_health, source_totals
from breakeven.collector.price.periods import iso_z
from breakeven.collector.price.pools import Pool
from breakeven.collector.store.rows import decimal_text

DailyMeans = Mapping[tuple[str, str, str], Mapping[date, Decimal]]


def _ratio(value: Decimal | None) -> str | None:
    return decimal_text(value, 0)


def _iso(at: datetime | None) -> str | None:
    return None if at is None else iso_z(at)


def _rank(t: SourceTotals) -> tuple[int, int, int, str]:
    return (-t.gpus, -t.samples, 0 if t.source == SCRAPE else 1, t.metric)


def _source_json(t: SourceTotals) -> dict[str, Any]:
    figure = "utilization" if t.kind == GPU_UTILIZATION else "usage"
    devices = "gpus" if t.kind == GPU_UTILIZATION else "engines"
    return {
        "source": t.source,
        "metric": t.metric,
        figure: _ratio(t.mean),
        "peak": _ratio(t.value_max),
        devices: t.gpus,
        "hosts": t.hosts,
        "samples": t.samples,
        "first_minute": _iso(t.first_minute),
        "last_sample": _iso(t.last_sample_at),
    }


def gpu_metrics_json(totals: Iterable[SourceTotals]) -> dict[str, Any] | None:
    """One pool's `gpu_metrics`: the headline, every GPU utilization source, KV cache usage; None without samples."""
    found = sorted(totals, key=_rank)
    if not found:
        return None
    gpu = [t for t in found if t.kind == GPU_UTILIZATION]
    kv = [t for t in found if t.kind != GPU_UTILIZATION]
    head = gpu[0] if gpu else None
    return {
        "utilization": _ratio(head.mean) if head else None,
        "source": head.source if head else None,
        "metric": head.metric if head else None,
        "sources": [_source_json(t) for t in gpu],
        "kv_cache": [_source_json(t) for t in kv],
    }


def scrape_json(pool: Pool, health: dict[str, TargetHealth]) -> list[dict[str, Any]]:
    """The pool's scrape endpoints, in config order, with their health (nulls before the first attempt)."""
    out = []
    for url in pool.gpu_metrics.scrape if pool.gpu_metrics else ():
        h = health.get(url)
        out.append(
            {
                "url": url,
                "up": None if h is None else h.consecutive_failures == 0,
                "last_attempt": _iso(h.last_attempt_at) if h else None,
                "last_success": _iso(h.last_success_at) if h else None,
                "last_error_at": _iso(h.last_error_at) if h else None,
                "last_error": h.last_error if h else None,
                "consecutive_failures": h.consecutive_failures if h else 0,
                "failures": h.failures if h else 0,
                "last_samples": h.last_samples if h else 0,
            }
        )
    return out


def add_gpu_figures(
    conn: sa.Connection,
    pools: Sequence[Pool],
    since: datetime,
    until: datetime,
    shown: Sequence[MutableMapping[str, Any]],
) -> None:
    """Add `gpu_metrics` and `gpu_scrape` to each pool's JSON (matched by name)."""
    by_pool: dict[str, list[SourceTotals]] = {}
    for t in source_totals(conn, since, until):
        by_pool.setdefault(t.pool, []).append(t)
    scraping = any(p.gpu_metrics and p.gpu_metrics.scrape for p in pools)
    health = scrape_health(conn) if scraping else {}
    configured = {p.name: p for p in pools}
    for pool_json in shown:
        pool = configured.get(pool_json["name"])
        pool_json["gpu_metrics"] = gpu_metrics_json(by_pool.get(pool_json["name"], ()))
        pool_json["gpu_scrape"] = scrape_json(pool, health) if pool is not None else []


def daily_by_source(conn: sa.Connection, since: datetime, until: datetime) -> DailyMeans:
    """(pool, source, metric) -> UTC day -> the mean of that day's samples, over [since, until)."""
    return daily_means(conn, since, until)


def gpu_daily(means: DailyMeans, days: Sequence[date], shown: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Per GPU utilization source of one pool's JSON (its `gpu_metrics`), the mean of each day's samples."""
    gpu = shown.get("gpu_metrics")
    if not gpu or not gpu["sources"]:
        return []
    return [
        {
            "source": s["source"],
            "metric": s["metric"],
            "values": [_ratio(means.get((shown["name"], s["source"], s["metric"]), {}).get(day)) for day in days],
        }
        for s in gpu["sources"]
    ]
