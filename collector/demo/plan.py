"""The demo month to send: every call's spans cut into export bodies, and the GPU utilization they cause."""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from breakeven.collector.demo.metrics import gpu_body
from breakeven.collector.demo.spans import NS, Batch, call_spans, rejected_spans
from breakeven.collector.demo.traffic import POOL_BOXES, STREAMS, Stream, Usage, call_start, day_factor, pool_of

BATCH_SPANS = 1500
GPU_SLOT_SECONDS = 300  # each box reports its GPU utilization every 5 minutes


@dataclass
class Plan:
    """The month to send: request bodies, and what they hold."""

    bodies: list[bytes] = field(default_factory=list)
    calls: int = 0
    spans: int = 0
    # pool -> GPU slot start (s since the epoch) -> busy seconds its calls started then (at the config's capacity)
    busy: dict[str, dict[int, float]] = field(default_factory=dict)
    metric_bodies: list[bytes] = field(default_factory=list)
    metric_points: int = 0


def plan_month(days: int, now: datetime, seed: int = 7) -> Plan:
    """Every span of the demo month ending at `now`, cut into OTLP/HTTP request bodies."""
    rng = random.Random(seed)
    today = datetime.combine(now.date(), datetime.min.time(), UTC)
    latest = now - timedelta(minutes=2)
    plan, batch = Plan(), Batch()

    def flush() -> None:
        nonlocal batch
        if batch.count:
            plan.bodies.append(batch.body())
            plan.spans += batch.count
            batch = Batch()

    for index in range(days):
        day_start = today - timedelta(days=days - 1 - index)
        share = index / max(1, days - 1)
        for s in STREAMS:
            mean = s.per_day * day_factor(s, day_start.date(), index, days) * rng.uniform(0.85, 1.15)
            for _ in range(max(0, round(mean))):
                at = call_start(rng, day_start, s.hours, latest)
                if at is not None:
                    served = lambda usage, s=s, at=at: _add_busy(plan, s, usage, at)  # noqa: E731
                    for service, dialect, span in call_spans(rng, s, at, share, served):
                        batch.add(service, dialect, span)
                    plan.calls += 1
            if batch.count >= BATCH_SPANS:
                flush()
        for service, dialect, span in rejected_spans(rng, day_start, latest):
            batch.add(service, dialect, span)
    flush()
    _plan_gpu_metrics(plan, random.Random(seed + 1), today - timedelta(days=days - 1), latest)
    return plan


def _add_busy(plan: Plan, s: Stream, usage: Usage, at: datetime) -> None:
    """The box-seconds a served pool call's tokens take, at the config's capacity, in its GPU slot."""
    pool = pool_of(s)
    if pool is None:
        return
    (input_tps, output_tps), _ = POOL_BOXES[pool]
    slot = int(at.timestamp()) // GPU_SLOT_SECONDS * GPU_SLOT_SECONDS
    by_slot = plan.busy.setdefault(pool, {})
    by_slot[slot] = by_slot.get(slot, 0.0) + usage.prompt / input_tps + usage.output / output_tps


def _plan_gpu_metrics(plan: Plan, rng: random.Random, first: datetime, latest: datetime) -> None:
    """Every 5 minutes, each pool's GPU utilization as its box reports it: a day's points per export.

    A GPU counts a sample period busy whenever a kernel runs, so it reads above the token-based
    busy share (batches keep it occupied between tokens), plus an idle floor and some noise.
    """
    slot = int(first.timestamp())
    end = int(latest.timestamp())
    day_points: dict[str, list[tuple[int, float, float]]] = {pool: [] for pool in POOL_BOXES}
    while slot < end:
        for pool, points in day_points.items():
            busy = plan.busy.get(pool, {}).get(slot, 0.0) / GPU_SLOT_SECONDS
            gpu = min(0.99, 0.02 + 1.5 * busy + rng.uniform(0, 0.03))
            kv = min(0.97, 0.05 + 2.2 * busy + rng.uniform(0, 0.05))
            points.append((slot * NS, gpu, kv))
        slot += GPU_SLOT_SECONDS
        if slot % 86_400 == 0 or slot >= end:
            plan.metric_bodies.append(gpu_body(day_points))
            plan.metric_points += 2 * len(day_points["llama-70b-fp8"]) + len(day_points["llama-8b-owned"])
            day_points = {pool: [] for pool in POOL_BOXES}
