"""The records that cross stages: a decoded span, an LLM span, a call, its price, the writer's
work and batch, and a line of a provider's bill. No I/O here, and nothing of ours is imported:
every stage may use them."""

from __future__ import annotations

import operator
from dataclasses import dataclass, field, fields
from datetime import date
from decimal import Decimal
from typing import Any, NamedTuple

# Value types an OTLP AnyValue decodes to.
AttrValue = Any
Attributes = dict[str, AttrValue]

BACKEND_CLASSES = ("frontier", "managed", "self_hosted", "unknown")
TOKEN_FIELDS = (
    "input_tokens",
    "cache_read_tokens",
    "cache_write_tokens",
    "output_tokens",
    "reasoning_tokens",
)


@dataclass(slots=True)
class SpanEvent:
    """One span event: name, time and attributes."""

    name: str
    time_ns: int
    attributes: Attributes


@dataclass(slots=True)
class DecodedSpan:
    """One OTLP span as decoded, before any GenAI interpretation.

    `resource` and `scope_*` are shared between the spans of one resource/scope,
    never copied.
    """

    trace_id: str  # 32 lowercase hex
    span_id: str  # 16 lowercase hex
    parent_span_id: str | None
    name: str
    kind: int
    start_ns: int
    end_ns: int
    attributes: Attributes
    events: list[SpanEvent]
    status_code: int  # 0 unset, 1 ok, 2 error
    status_message: str
    resource: Attributes
    scope_name: str
    scope_version: str


@dataclass(slots=True)
class Rejection:
    """A span the decoder or normalizer refused, and why (a short stable reason)."""

    reason: str
    detail: str = ""


@dataclass(slots=True)
class LlmSpan:
    """One span that describes an LLM call, normalized, content already removed.

    Token fields follow one meaning for every emitter: the prompt's total input is
    input_tokens + cache_read_tokens + cache_write_tokens; output_tokens counts every
    generated token, reasoning included. None means the span did not report it.
    """

    trace_id: str
    span_id: str
    parent_span_id: str | None
    name: str
    kind: int
    start_ns: int
    end_ns: int
    ttft_ms: float | None
    service: str | None
    environment: str | None
    team: str | None
    feature: str | None
    operation: str | None
    provider: str | None
    backend: str | None
    backend_class: str
    server_address: str | None
    request_model: str | None
    response_model: str | None
    quantization: str | None
    prompt_hash: str | None
    input_tokens: int | None
    cache_read_tokens: int | None
    cache_write_tokens: int | None
    output_tokens: int | None
    reasoning_tokens: int | None
    streaming: bool | None
    status: str  # "ok" | "error"
    error_type: str | None
    emitter: str  # instrumentation scope name[@version]
    conventions: tuple[str, ...]
    is_engine: bool  # a serving engine's own span (vLLM, SGLang, TGI)
    attributes: Attributes = field(default_factory=dict)  # audit copy, content removed
    response_id: str | None = None  # the provider's id of the response (gen_ai.response.id)
    # The process that sent it (resource service.instance.id, else host.name:process.pid), to
    # tell apart two processes of one service (stored since migration 0012; None before).
    process: str | None = None
    # The audit copy as stored JSON, when a decode process made it before the hand-off
    # (collector/ingest/offload.py); `attributes` is then empty.
    attributes_json: str | None = None

    def __reduce__(self) -> tuple[type[LlmSpan], tuple[Any, ...]]:
        # Positional: a third of the default slots pickle's cost to load, for the decode
        # processes' hand-off of every span to the writer's process.
        return (LlmSpan, _llm_span_fields(self))

    @property
    def key(self) -> tuple[str, str]:
        """The span's identity."""
        return (self.trace_id, self.span_id)

    def usage_detail(self) -> int:
        """How much usage this span knows: the number of token kinds it reported."""
        return (
            (self.input_tokens is not None)
            + (self.cache_read_tokens is not None)
            + (self.cache_write_tokens is not None)
            + (self.output_tokens is not None)
            + (self.reasoning_tokens is not None)
        )  # TOKEN_FIELDS, spelled out: the merge asks it of every span of every multi-span call

    def total_input(self) -> int | None:
        """Total prompt tokens, cached included, or None when unknown."""
        if self.input_tokens is None:
            return None
        return self.input_tokens + (self.cache_read_tokens or 0) + (self.cache_write_tokens or 0)


_llm_span_fields = operator.attrgetter(*(f.name for f in fields(LlmSpan)))


@dataclass(slots=True)
class Call:
    """One LLM call: the merge of every span in a trace that describes it."""

    trace_id: str
    span_id: str  # the outermost (caller's) span
    parent_span_id: str | None
    start_ns: int
    end_ns: int
    ttft_ms: float | None
    service: str | None
    environment: str | None
    team: str | None
    feature: str | None
    operation: str | None
    provider: str | None
    backend: str | None
    backend_class: str
    server_address: str | None
    request_model: str | None
    response_model: str | None
    quantization: str | None
    prompt_hash: str | None
    input_tokens: int
    cache_read_tokens: int
    cache_write_tokens: int
    output_tokens: int
    reasoning_tokens: int
    usage_reported: bool
    streaming: bool | None
    status: str
    error_type: str | None
    emitter: str
    conventions: str
    member_span_ids: tuple[str, ...]
    response_id: str | None = None
    process: str | None = None  # the process that sent its own (outermost) span: LlmSpan.process

    @property
    def key(self) -> tuple[str, str]:
        """The call's identity: its trace and outermost span."""
        return (self.trace_id, self.span_id)


@dataclass(slots=True)
class PromptHashHint:
    """A prompt hash learned from a log record, for the span it names."""

    trace_id: str
    span_id: str
    prompt_hash: str
    time_ns: int = 0  # the log record's time (0: unknown), near the span's; bounds the lookup


# ----------------------------------------------------------------------------- prices

PRICED = "priced"
POOL = "pool"
UNPRICED = "unpriced"


class CallPrice(NamedTuple):
    """What the ledger stores of a call's price.

    A NamedTuple, not a frozen dataclass: one is made per new call on the writer's
    thread, and a frozen dataclass's __init__ sets each field through a setattr.
    """

    status: str  # PRICED, POOL or UNPRICED
    pool: str | None = None
    cost_usd: Decimal | None = None  # at the storage quantum; after discount
    list_cost_usd: Decimal | None = None
    source: str | None = None
    entry: str | None = None
    unpriced_reason: str | None = None


NOT_PRICED = CallPrice(UNPRICED, unpriced_reason="pricing is off")


# ----------------------------------------------------------------------------- the writer's work


@dataclass(slots=True)
class Work:
    """What one export hands to the writer."""

    spans: list[LlmSpan] = field(default_factory=list)
    hints: list[PromptHashHint] = field(default_factory=list)
    counters: dict[tuple[str, str], int] = field(default_factory=dict)
    span_rows: bytes | None = None  # the spans' rows, made by a decode process (writer.span_rows_ipc)
    call_rows: bytes | None = None  # their calls' rows, were their traces new (offload._call_rows)

    @property
    def weight(self) -> int:
        """Its size against the queue bound."""
        return max(1, len(self.spans) + len(self.hints))


@dataclass(slots=True)
class SpanKey:
    """A stored row's identity and start time (which bounds the search for it)."""

    trace_id: str
    span_id: str
    start_ns: int


@dataclass(slots=True)
class WriteBatch:
    """Everything one commit writes."""

    new_spans: list[LlmSpan] = field(default_factory=list)
    replaced_calls: list[SpanKey] = field(default_factory=list)  # call rows to delete first
    calls: list[Call] = field(default_factory=list)
    prices: list[CallPrice] = field(default_factory=list)  # one per call, same order
    span_hashes: list[tuple[SpanKey, str]] = field(default_factory=list)  # stored spans given a prompt hash
    # A shared PostgreSQL's prompt_hash_hints: hints to park there (their spans not stored
    # yet), and the (trace id, span id) of parked ones now used
    parked_hints: list[PromptHashHint] = field(default_factory=list)
    used_hints: list[tuple[str, str]] = field(default_factory=list)
    counters: dict[tuple[str, str], int] = field(default_factory=dict)
    # DuckDB: new_spans' rows but their audit attributes, in new_spans' order, made by the
    # decode processes (span_rows_ipc), when they are exactly those spans as received
    # (pipeline._build checks); None: made here from new_spans.
    span_rows: list[bytes] | None = None
    # DuckDB: the calls' rows, priced, in calls' order, made by the decode processes
    # (call_rows_ipc), when the calls are exactly the ones they made (pipeline._build_new
    # checks); None: made here from calls and prices.
    call_rows: list[bytes] | None = None


# ----------------------------------------------------------------------------- bills


@dataclass(frozen=True, slots=True)
class BilledLine:
    """One line of what a provider or cloud says it billed: a UTC day's usage and/or cost of one
    model (or resource) for one account, as its usage and cost reports or a FOCUS export give
    it (collector/reconcile/). Reconciliation sets these beside the ledger's calls.

    Token counts mean what they mean in the ledger (TOKEN_FIELDS): input_tokens is input
    neither read from nor written to a cache. A cost line may carry no tokens, a usage line
    no cost.
    """

    source: str  # the [[reconcile.sources]] name it came from
    day: date  # the UTC day the usage or charge falls in
    provider: str  # the ledger's provider name (collector/providers.py): openai, anthropic, aws.bedrock ...
    model: str | None = None  # as the bill names it
    account: str | None = None  # project, workspace or API key id; a FOCUS SubAccountId or ResourceId
    tier: str | None = None  # service tier where the bill tells: batch, priority, flex, standard
    line_item: str | None = None  # what the bill calls the charge ("gpt-4o, input"; a FOCUS SkuId)
    input_tokens: int = 0
    cache_read_tokens: int = 0
    cache_write_tokens: int = 0
    output_tokens: int = 0
    requests: int = 0
    cost: Decimal | None = None  # billed, after discounts, in `currency`
    list_cost: Decimal | None = None  # before discounts, where the bill gives it
    currency: str | None = None  # ISO 4217
    # Which of the source's reports it came from: usage, cost or focus. A report read again
    # replaces its own lines of the days it covers, not the other reports'.
    report: str = "usage"
    resource_id: str | None = None  # a FOCUS line's ResourceId (a pool's invoice_match reads it)
    tags: str | None = None  # a FOCUS line's Tags as a JSON object, keys sorted
