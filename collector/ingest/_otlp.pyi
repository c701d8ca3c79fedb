"""Types of the native decoder (collector/ingest/_otlp.c)."""

from collections.abc import Callable

from breakeven.collector.records import DecodedSpan, Rejection

def setup(
    span: type, span_fields: tuple[str, ...], event: type, event_fields: tuple[str, ...], rejection: type
) -> None: ...
def decode_traces(
    body: bytes,
    attributes: int,
    value_bytes: int,
    events: int,
    array_items: int,
    max_spans: int,
    is_content: Callable[[str], bool],
) -> tuple[list[DecodedSpan], list[Rejection]] | None: ...
