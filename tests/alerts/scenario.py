"""One small fleet for the alert tests: a rented GPU pool, its alternative, a priced frontier model.

The pool costs 1 USD an hour; its alternative charges 1 USD per million tokens. Over a
one-hour window the pool is under break-even exactly when its traffic would have cost less
than 1 USD to buy (break-even utilization = utilization x fixed cost / alternative cost):
SMALL_CALL (1,100 tokens, 0.0011 USD) leaves it far under; BIG_CALL (3 M tokens) above.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from breakeven.collector.config.pricing import parse_pricing
from breakeven.collector.price.config import PricingConfig
from breakeven.collector.price.ledger import ledger_pricer
from breakeven.collector.records import Call, WriteBatch
from breakeven.collector.store.writer import LedgerWriter
from tests.pricecalls import call

POOL_ADDRESS = "10.9.9.9"
POOL_MODEL = "meta-llama/Llama-3.1-8B-Instruct"
FRONTIER_MODEL = "acme-frontier-1"
PRICING: dict[str, Any] = {
    "prices": [
        {
            "provider": "together",
            "model": "test/llama-8b-turbo",
            "effective_from": "2020-01-01",
            "input": 1.0,
            "output": 1.0,
        },
        {"provider": "openai", "model": FRONTIER_MODEL, "effective_from": "2020-01-01", "input": 10.0, "output": 10.0},
    ],
    "pools": [
        {
            "name": "gpu-a",
            "boxes": 1,
            "rent_per_hour": 1.0,
            "capacity": {"input_tps": 1000, "output_tps": 100},
            "match": {"server_address": POOL_ADDRESS},
            "alternative": {"provider": "together", "model": "test/llama-8b-turbo"},
        }
    ],
    "candidates": [
        {"name": "h100", "rent_per_month": 1000, "capacity": {"input_tps": 10000, "output_tps": 1000}},
    ],
}
BACKEND_CLASSES = {POOL_ADDRESS: "self_hosted"}
SMALL_CALL = {"gen_ai.usage.input_tokens": 1000, "gen_ai.usage.output_tokens": 100}
BIG_CALL = {"gen_ai.usage.input_tokens": 3_000_000, "gen_ai.usage.output_tokens": 1000}


def pricing() -> PricingConfig:
    return parse_pricing(PRICING)


def pool_span_attributes(usage: dict[str, int]) -> dict[str, Any]:
    """An OpenAI client's chat span aimed at the pool's vLLM box."""
    return {
        "gen_ai.operation.name": "chat",
        "gen_ai.provider.name": "openai",
        "gen_ai.request.model": POOL_MODEL,
        "gen_ai.response.model": POOL_MODEL,
        "server.address": POOL_ADDRESS,
        **usage,
    }


def at_text(when: datetime) -> str:
    return when.astimezone(UTC).replace(tzinfo=None).isoformat()


def pool_call(when: datetime, input: int, output: int, service: str = "chat") -> Call:
    return call(provider="openai", model=POOL_MODEL, start=at_text(when), input=input, output=output,
                backend_class="self_hosted", server_address=POOL_ADDRESS, service=service)  # fmt: skip


def frontier_call(when: datetime, tokens: int, service: str = "chat", model: str = FRONTIER_MODEL) -> Call:
    return call(provider="openai", model=model, start=at_text(when), input=tokens, output=0, service=service)


def store_calls(writer: LedgerWriter, calls: list[Call], counters: dict[tuple[str, str], int] | None = None) -> None:
    """Write calls priced as ingest would price them."""
    price = ledger_pricer(pricing())
    writer.write(WriteBatch(calls=calls, prices=[price(c) for c in calls], counters=counters or {}), 0)
