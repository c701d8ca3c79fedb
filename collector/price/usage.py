"""The tokens of one call, by kind, with breakeven's single meaning (docs/one-call-one-record.md)."""

from __future__ import annotations

from dataclasses import dataclass

from breakeven.collector.records import Call


@dataclass(frozen=True, slots=True)
class TokenUsage:
    """Token counts of one call (or a sum of calls).

    input is uncached input; the prompt's total input is input + cache_read + cache_write.
    output counts every generated token; reasoning is the reasoning share of output.
    """

    input: int = 0
    cache_read: int = 0
    cache_write: int = 0
    output: int = 0
    reasoning: int = 0

    @property
    def total_input(self) -> int:
        """Every prompt token, cached or not: what context tiers are measured on."""
        return self.input + self.cache_read + self.cache_write

    @property
    def total(self) -> int:
        """Every token in and out."""
        return self.total_input + self.output

    @property
    def visible_output(self) -> int:
        """Output tokens that are not reasoning (reasoning is inside output; never counted twice)."""
        return self.output - min(self.reasoning, self.output)

    def __add__(self, other: TokenUsage) -> TokenUsage:
        return TokenUsage(
            self.input + other.input,
            self.cache_read + other.cache_read,
            self.cache_write + other.cache_write,
            self.output + other.output,
            self.reasoning + other.reasoning,
        )

    @classmethod
    def of_call(cls, call: Call) -> TokenUsage:
        """The usage a stored call reported."""
        return cls(
            input=call.input_tokens,
            cache_read=call.cache_read_tokens,
            cache_write=call.cache_write_tokens,
            output=call.output_tokens,
            reasoning=call.reasoning_tokens,
        )
