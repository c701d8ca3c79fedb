"""The demo's fleet: which services call which models, how often, how big, in which dialect, and when.

Per UTC day, before weekday and growth factors:
- frontier: support-bot on Anthropic (Claude Sonnet agent with long contexts, Haiku triage),
  checkout-api on an OpenAI fine-tune (price book entry), growth-email on gpt-4o (whose
  version changes mid-month) and o4-mini (reasoning tokens);
- managed: Together for doc-pipeline's overflow and search's bursts, and a model Together
  sells that no price list knows (unpriced, on purpose: Data quality shows it);
- self-hosted: two vLLM pools. llama-70b-fp8 (a rented H100) serves doc-pipeline's nightly
  long-document batch and support drafts, a little above its break-even; llama-8b-owned (an
  L40S bought last year) serves search's reranking, far under its break-even.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

BUSINESS_HOURS = [1, 1, 1, 1, 1, 2, 3, 5, 8, 10, 10, 10, 9, 10, 10, 10, 9, 8, 6, 4, 3, 2, 1, 1]
NIGHT_BATCH = [10, 10, 10, 10, 8, 6, 2, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 3, 6]
FAQ = [
    "How do I reset my password?", "Where is my refund?", "Can I change my plan mid-cycle?",
    "Why was my card declined?", "How do I export my invoices?", "Is there an API rate limit?",
    "How do I add a team member?", "Do you support SSO?", "How do I cancel?", "What regions do you host in?",
    "Can I get a VAT invoice?", "Why did my bill go up?",
]  # fmt: skip


@dataclass(frozen=True)
class Stream:
    """One kind of call a service makes: who, what, how many a day, how big, in which dialect."""

    service: str
    team: str
    feature: str
    provider: str  # what the client's instrumentation names
    address: str
    port: int
    request_model: str
    response_model: Callable[[float], str]  # share of the month elapsed -> version that answered
    per_day: int
    input_tokens: tuple[int, int]  # uniform range, cache reads included
    output_tokens: tuple[int, int]
    dialect: str
    hours: list[int] = field(default_factory=lambda: BUSINESS_HOURS)
    weekend: float = 0.55  # share of a weekday's traffic on Saturdays and Sundays
    growth: float = 0.0  # per day, compounding, centred on the middle of the month
    cache_share: float = 0.0  # share of calls that read part of the prompt from a cache
    reasoning: tuple[int, int] | None = None
    engine: str | None = None  # the vLLM service whose engine span nests under the client's
    extra: dict[str, Any] = field(default_factory=dict)  # attributes the app adds (breakeven.*)
    prompts: int = 0  # calls draw from this many distinct prompts (repeats: caching opportunities)
    prompt_share: float = 0.0
    prompt_by_hash: bool = False  # the app sends breakeven.prompt_hash rather than content
    errors: float = 0.0
    http_parent: float = 0.0


def _fixed(name: str) -> Callable[[float], str]:
    return lambda _share: name


def _gpt4o(share: float) -> str:
    return "gpt-4o-2024-08-06" if share < 0.5 else "gpt-4o-2024-11-20"


POOL_70B = "meta-llama/Llama-3.3-70B-Instruct-FP8"
POOL_8B = "meta-llama/Llama-3.1-8B-Instruct"
# Each pool's box: (capacity as the config measures it: input tps, output tps), what it reports.
POOL_BOXES = {
    "llama-70b-fp8": ((12_000, 1_500), "gpu-70b-1"),
    "llama-8b-owned": ((20_000, 2_500), "gpu-8b-1"),
}
STREAMS = (
    Stream("support-bot", "support", "answer", "anthropic", "api.anthropic.com", 443, "claude-sonnet-4-5",
           _fixed("claude-sonnet-4-5-20250929"), 340, (40_000, 140_000), (800, 2_500), "openllmetry",
           growth=0.012, cache_share=0.5, errors=0.01, http_parent=0.1, prompts=40, prompt_share=0.15),
    Stream("support-bot", "support", "triage", "anthropic", "api.anthropic.com", 443, "claude-haiku-4-5",
           _fixed("claude-haiku-4-5-20251001"), 120, (2_000, 5_000), (50, 300), "openllmetry",
           prompts=len(FAQ), prompt_share=0.6, errors=0.01),
    Stream("support-bot", "support", "draft", "openai", "vllm-llama70b.internal", 8000, "llama-3.3-70b",
           _fixed(POOL_70B), 80, (5_000, 12_000), (300, 900), "otel", engine="vllm-llama70b"),
    Stream("doc-pipeline", "platform", "summarize", "openai", "vllm-llama70b.internal", 8000, "llama-3.3-70b",
           _fixed(POOL_70B), 340, (70_000, 125_000), (1_000, 3_000), "openinference", hours=NIGHT_BATCH,
           weekend=1.0, engine="vllm-llama70b"),
    Stream("doc-pipeline", "platform", "summarize-overflow", "together", "api.together.xyz", 443,
           "meta-llama/Llama-3.3-70B-Instruct-Turbo", _fixed("meta-llama/Llama-3.3-70B-Instruct-Turbo"), 30,
           (20_000, 60_000), (500, 1_500), "otel", hours=NIGHT_BATCH, weekend=1.0),
    Stream("checkout-api", "payments", "fraud-explain", "openai", "api.openai.com", 443,
           "ft:gpt-4o-mini-2024-07-18:acme::b7x2k9", _fixed("ft:gpt-4o-mini-2024-07-18:acme::b7x2k9"), 100,
           (1_500, 3_000), (100, 300), "otel_legacy", cache_share=0.3, prompts=30, prompt_share=0.5,
           prompt_by_hash=True, errors=0.005),
    Stream("growth-email", "growth", "copywriting", "openai", "api.openai.com", 443, "gpt-4o", _gpt4o, 60,
           (3_000, 8_000), (800, 2_000), "otel", weekend=0.2, prompts=20, prompt_share=0.5, growth=0.02),
    Stream("growth-email", "growth", "campaign-plan", "openai", "api.openai.com", 443, "o4-mini",
           _fixed("o4-mini-2025-04-16"), 20, (2_000, 6_000), (1_500, 6_000), "otel", weekend=0.2,
           reasoning=(800, 4_000)),
    Stream("search-rerank", "search", "rerank-explain", "openai", "10.0.0.7", 8000, POOL_8B, _fixed(POOL_8B), 150,
           (3_000, 8_000), (100, 300), "otel", extra={"breakeven.provider": "vllm", "breakeven.quantization": "bf16"}),
    Stream("search-rerank", "search", "burst", "together", "api.together.xyz", 443,
           "meta-llama/Meta-Llama-3.1-8B-Instruct-Turbo", _fixed("meta-llama/Meta-Llama-3.1-8B-Instruct-Turbo"), 40,
           (3_000, 8_000), (100, 300), "otel"),
    Stream("research-agent", "labs", "experiments", "together", "api.together.xyz", 443, "deepseek-ai/DeepSeek-V3",
           _fixed("deepseek-ai/DeepSeek-V3"), 8, (5_000, 30_000), (500, 3_000), "openinference", weekend=0.1),
)  # fmt: skip


@dataclass(frozen=True, slots=True)
class Usage:
    """One call's tokens: prompt (cache reads included, as every dialect here reports it)."""

    prompt: int
    cache_read: int
    output: int
    reasoning: int


def pool_of(s: Stream) -> str | None:
    """The self-hosted pool that serves a stream's calls, if any."""
    if s.response_model(0) == POOL_70B:
        return "llama-70b-fp8"
    return "llama-8b-owned" if s.address == "10.0.0.7" else None


def day_factor(s: Stream, day: date, index: int, days: int) -> float:
    """A stream's volume on the index-th of `days` days, relative to its per_day: weekends and growth."""
    weekend = s.weekend if day.weekday() >= 5 else 1.0
    return float(weekend * (1 + s.growth) ** (index - days / 2))


def call_start(rng: random.Random, day_start: datetime, hours: list[int], latest: datetime) -> datetime | None:
    """When a call starts on the day, drawn from the hourly weights; None if that is after `latest`."""
    hour = rng.choices(range(24), weights=hours)[0]
    at = day_start + timedelta(hours=hour, seconds=rng.uniform(0, 3600))
    return at if at < latest else None
