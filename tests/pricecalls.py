"""Builders for pricing unit tests: calls, entries and a catalog that knows only what it is told."""

from __future__ import annotations

import itertools
from datetime import UTC, date, datetime
from decimal import Decimal

from breakeven.collector.price.entries import PriceEntry, Rate, Tier
from breakeven.collector.price.periods import NS_PER_SECOND
from breakeven.collector.price.pools import Alternative, BoxCost, Capacity, Pool, PoolMatch
from breakeven.collector.price.pricer import Catalog
from breakeven.collector.price.usage import TokenUsage
from breakeven.collector.records import Call

_ids = itertools.count(1)


def at(text: str) -> datetime:
    """A UTC datetime from ISO text ("2025-06-01" or "2025-06-01T12:00:00")."""
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def call(
    *,
    provider: str | None = "openai",
    model: str | None = "gpt-x",
    request_model: str | None = None,
    start: str = "2025-06-15T12:00:00",
    input: int = 0,
    cache_read: int = 0,
    cache_write: int = 0,
    output: int = 0,
    reasoning: int = 0,
    usage_reported: bool = True,
    backend_class: str = "frontier",
    service: str | None = "svc",
    team: str | None = None,
    backend: str | None = None,
    server_address: str | None = None,
    quantization: str | None = None,
) -> Call:
    """A stored call with the fields pricing reads; the rest are plain defaults."""
    start_ns = int(at(start).timestamp()) * NS_PER_SECOND
    return Call(
        trace_id=f"{next(_ids):032x}",
        span_id=f"{next(_ids):016x}",
        parent_span_id=None,
        start_ns=start_ns,
        end_ns=start_ns + NS_PER_SECOND,
        ttft_ms=None,
        service=service,
        environment=None,
        team=team,
        feature=None,
        operation="chat",
        provider=provider,
        backend=backend,
        backend_class=backend_class,
        server_address=server_address,
        request_model=request_model if request_model is not None else model,
        response_model=model,
        quantization=quantization,
        prompt_hash=None,
        input_tokens=input,
        cache_read_tokens=cache_read,
        cache_write_tokens=cache_write,
        output_tokens=output,
        reasoning_tokens=reasoning,
        usage_reported=usage_reported,
        streaming=False,
        status="ok",
        error_type=None,
        emitter="tests",
        conventions="",
        member_span_ids=(),
    )


def entry(
    provider: str,
    model: str,
    *,
    input: str,
    output: str,
    cache_read: str | None = None,
    cache_write: str | None = None,
    reasoning: str | None = None,
    tiers: dict[str, list[tuple[int, str]]] | None = None,
    effective_from: date | None = None,
    source: str = "test list",
    net: bool = False,
) -> PriceEntry:
    """A price entry from decimal strings; tiers maps a kind to [(above, rate), ...]."""
    tiers = tiers or {}

    def rate(kind: str, base: str | None) -> Rate | None:
        if base is None:
            return None
        return Rate(Decimal(base), tuple(Tier(above, Decimal(r)) for above, r in tiers.get(kind, [])))

    input_rate, output_rate = rate("input", input), rate("output", output)
    assert input_rate is not None
    assert output_rate is not None
    return PriceEntry(
        entry_id=f"test:{provider}/{model}@{effective_from}",
        source=source,
        provider=provider,
        model=model,
        effective_from=effective_from,
        input=input_rate,
        output=output_rate,
        cache_read=rate("cache_read", cache_read),
        cache_write=rate("cache_write", cache_write),
        reasoning=rate("reasoning", reasoning),
        net=net,
    )


def catalog(*entries: PriceEntry) -> Catalog:
    """A list-price catalog holding exactly these entries (exact provider and model names)."""
    by_name = {(e.provider, e.model): e for e in entries}

    def lookup(provider: str | None, model: str | None, when: datetime) -> PriceEntry | None:
        return by_name.get((provider or "", model or ""))

    return lookup


# A pool and a known traffic mix, shared by the pool and break-even tests.
JUNE = (at("2025-06-01"), at("2025-07-01"))  # 30 days = 720 h = 2,592,000 s

# Two rented boxes: 2 x 900 rent + 360 ops = 2,160 fixed a month; 0.25 per million tokens.
RENTED = Pool(
    name="rented",
    match=PoolMatch(backend="vllm-a"),
    boxes=2,
    cost=BoxCost(rent_per_month=Decimal("900"), ops_per_month=Decimal("360"), variable_per_million=Decimal("0.25")),
    capacity=Capacity(input_tps=Decimal("1000"), output_tps=Decimal("100")),
    alternative=Alternative("together", "llama-x-turbo"),
)
# A known traffic mix over June (tokens; busy seconds at 1,000 in/s and 100 out/s per box):
SEARCH = TokenUsage(input=500_000_000, cache_read=100_000_000, output=48_000_000)  # 600,000 + 480,000 = 1,080,000 s
CHAT = TokenUsage(input=56_000_000, output=16_000_000)  # 56,000 + 160,000 = 216,000 s
# Together: 720,000,000 tokens, 1,296,000 busy seconds of 2 x 2,592,000 = 5,184,000: utilization 0.25.
