"""One meaning for token counts, whatever the provider and the emitter.

Canonical: the prompt's total input is input + cache_read + cache_write (so `input`
was neither read from nor written to a cache); output counts every generated token,
reasoning included; reasoning says how many of those were reasoning.

Providers differ (OpenAI and Gemini count cached tokens inside prompt tokens, Anthropic
reports them beside input) and so do emitters (some sum Anthropic's fields into their
input count, some pass the raw field on). HABITS records, per dialect and provider,
whether the emitter's input count includes the cache counts, learned from each
emitter's source and output (tests/fixtures/emitters/README.md has the evidence).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, NamedTuple

from breakeven.collector.normalize import conventions as c
from breakeven.collector.providers import GOOGLE

# (dialect, provider) -> does the emitter's input count include cache reads and writes?
# Missing pairs fall back to PROVIDER_INPUT_INCLUDES_CACHE, then True (the OTel rule).
HABITS: Mapping[tuple[str, str], bool] = {
    (c.OTEL_GENAI, "anthropic"): True,
    (c.OTEL_GENAI_LEGACY, "anthropic"): True,
    (c.OPENLLMETRY, "anthropic"): True,
    (c.OPENINFERENCE, "anthropic"): True,
    (c.OPENLIT, "anthropic"): False,
}
# What each provider's own API reports, used for emitters we have no entry for.
PROVIDER_INPUT_INCLUDES_CACHE: Mapping[str, bool] = {"anthropic": False}
# Providers whose own API's output count leaves reasoning ("thoughts") out: Gemini's
# candidatesTokenCount. Used for emitters we have no entry for.
PROVIDER_OUTPUT_EXCLUDES_REASONING = GOOGLE
# (dialect, provider) -> does the emitter's output count leave reasoning out? The OTel
# contrib and OpenInference instrumentations of google-genai add the thoughts in (as the OTel
# conventions count output); OpenLLMetry's passes Gemini's candidates count on as it is, and
# reports the thoughts only inside its total (tests/fixtures/emitters/README.md, Gemini).
OUTPUT_HABITS: Mapping[tuple[str, str], bool] = {
    **{(c.OTEL_GENAI, provider): False for provider in GOOGLE},
    **{(c.OPENINFERENCE, provider): False for provider in GOOGLE},
    **{(c.OPENLLMETRY, provider): True for provider in GOOGLE},
}
_REASONING_HABIT_PROVIDERS = PROVIDER_OUTPUT_EXCLUDES_REASONING | {provider for _, provider in OUTPUT_HABITS}


class TokenError(ValueError):
    """A token count that is not a count (negative, fractional, absurd)."""


class Usage(NamedTuple):
    """Token counts in the canonical meaning; None where the span did not say.

    A NamedTuple, not a frozen dataclass: as immutable, and cheaper to build.
    """

    input_tokens: int | None
    cache_read_tokens: int | None
    cache_write_tokens: int | None
    output_tokens: int | None
    reasoning_tokens: int | None


# Where each count is read (input, output, cache read, cache write, reasoning, total).
USAGE_NAMES = (
    c.INPUT_TOKENS,
    c.OUTPUT_TOKENS,
    c.CACHE_READ_TOKENS,
    c.CACHE_WRITE_TOKENS,
    c.REASONING_TOKENS,
    c.TOTAL_TOKENS,
)


def as_count(value: Any, limit: int) -> int | None:
    """A token count from an attribute value; raises TokenError when it is not one."""
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, int):
        count = value
    elif isinstance(value, float) and value.is_integer():
        count = int(value)
    elif isinstance(value, str) and value.strip().lstrip("-").isdigit():
        try:
            count = int(value.strip())
        except ValueError:  # "--5", "²" (a digit to isdigit, not to int), 5000 digits
            raise TokenError(f"token count {value[:40]!r} is not a whole number") from None
    else:
        raise TokenError(f"token count {value!r} is not a whole number")
    if count < 0 or count > limit:
        raise TokenError(f"token count {count} is outside 0..{limit}")
    return count


def input_includes_cache(dialects: tuple[str, ...], provider: str | None) -> bool:
    """Whether this emitter's input count already contains the cache counts."""
    for dialect in dialects:
        habit = HABITS.get((dialect, provider or ""))
        if habit is not None:
            return habit
    return PROVIDER_INPUT_INCLUDES_CACHE.get(provider or "", True)


def output_excludes_reasoning(dialects: tuple[str, ...], provider: str | None) -> bool:
    """Whether this emitter's output count leaves the reasoning tokens out."""
    for dialect in dialects:
        habit = OUTPUT_HABITS.get((dialect, provider or ""))
        if habit is not None:
            return habit
    return provider in PROVIDER_OUTPUT_EXCLUDES_REASONING


def canonical_usage(attrs: Mapping[str, Any], dialects: tuple[str, ...], provider: str | None, limit: int) -> Usage:
    """The span's usage in the canonical meaning; raises TokenError on a bad count."""
    return usage_from_values(c.firsts(attrs, USAGE_NAMES), dialects, provider, limit)


def usage_from_values(values: Sequence[Any], dialects: tuple[str, ...], provider: str | None, limit: int) -> Usage:
    """canonical_usage, given the first value of each of USAGE_NAMES; raises TokenError on a bad count."""
    counts = list(values)
    for i, value in enumerate(counts):
        if value is not None:
            counts[i] = as_count(value, limit)
    raw_input, raw_output, cache_read, cache_write, reasoning, total = counts

    input_tokens = raw_input
    if raw_input is not None:
        cached = (cache_read or 0) + (cache_write or 0)
        # An input smaller than its own cached part cannot include it, whatever the habit.
        if cached and raw_input >= cached and input_includes_cache(dialects, provider):
            input_tokens = raw_input - cached

    output_tokens = raw_output
    # One set lookup for every other provider: none has a reasoning habit.
    excludes = provider in _REASONING_HABIT_PROVIDERS and output_excludes_reasoning(dialects, provider)
    if reasoning is None and excludes and total is not None and raw_input is not None and raw_output is not None:
        # The reasoning is reported only inside the total (prompt + output + thoughts).
        reasoning = max(total - raw_input - raw_output, 0) or None
    if raw_output is not None and reasoning:
        excluded = excludes
        if total is not None and raw_input is not None:
            # The total settles it when it is there: prompt + output (+ reasoning if apart).
            excluded = total == raw_input + raw_output + reasoning and total != raw_input + raw_output
        if excluded or raw_output < reasoning:
            output_tokens = raw_output + reasoning
    return Usage(input_tokens, cache_read, cache_write, output_tokens, reasoning)
