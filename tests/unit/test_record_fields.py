"""The field order of the records the hot path builds positionally, pinned.

normalize builds LlmSpan, merge builds Call, the decoder builds SpanEvent, the pricer and
the spend queries build CallPrice and TokenUsage by position, not by keyword (a positional
call is several times cheaper). Reordering or inserting a field would shift every value
after it into the wrong field without an error: this test fails first, naming the record,
so whoever changes one also changes the places that build it (grep for the record's name).
"""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest

from breakeven.collector.price.usage import TokenUsage
from breakeven.collector.records import Call, CallPrice, LlmSpan, SpanEvent


def field_names(record: type[Any]) -> tuple[str, ...]:
    """A dataclass's or NamedTuple's fields, in declared order."""
    if dataclasses.is_dataclass(record):
        return tuple(f.name for f in dataclasses.fields(record))
    return tuple(record._fields)


@pytest.mark.parametrize(
    ("record", "order"),
    [
        pytest.param(
            LlmSpan,
            (
                "trace_id", "span_id", "parent_span_id", "name", "kind", "start_ns", "end_ns", "ttft_ms",
                "service", "environment", "team", "feature", "operation", "provider", "backend",
                "backend_class", "server_address", "request_model", "response_model", "quantization",
                "prompt_hash", "input_tokens", "cache_read_tokens", "cache_write_tokens", "output_tokens",
                "reasoning_tokens", "streaming", "status", "error_type", "emitter", "conventions",
                "is_engine", "attributes", "response_id", "process", "attributes_json",
            ),
            id="LlmSpan: built positionally by normalize_span",
        ),
        pytest.param(
            Call,
            (
                "trace_id", "span_id", "parent_span_id", "start_ns", "end_ns", "ttft_ms", "service",
                "environment", "team", "feature", "operation", "provider", "backend", "backend_class",
                "server_address", "request_model", "response_model", "quantization", "prompt_hash",
                "input_tokens", "cache_read_tokens", "cache_write_tokens", "output_tokens",
                "reasoning_tokens", "usage_reported", "streaming", "status", "error_type", "emitter",
                "conventions", "member_span_ids", "response_id", "process",
            ),
            id="Call: built positionally by merge (call_of_span, _merge_many)",
        ),
        pytest.param(SpanEvent, ("name", "time_ns", "attributes"), id="SpanEvent: built positionally by the decoder"),
        pytest.param(
            CallPrice,
            ("status", "pool", "cost_usd", "list_cost_usd", "source", "entry", "unpriced_reason"),
            id="CallPrice: its status positionally, by the pricer",
        ),
        pytest.param(
            TokenUsage,
            ("input", "cache_read", "cache_write", "output", "reasoning"),
            id="TokenUsage: positionally from query rows in token-kind order",
        ),
    ],
)  # fmt: skip
def test_field_order_is_pinned(record: type[Any], order: tuple[str, ...]) -> None:
    assert field_names(record) == order
