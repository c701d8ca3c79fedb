"""What a span's attribute names decide, worked out once per distinct set of names.

Spans from one emitter repeat the same attribute names, scope and resource names on every
call; only the values change. A Plan holds what follows from those alone: the key flags,
the dialects, what the audit copy keeps (normalize/keep.py), and for every field read by precedence the candidate
names the span has, in precedence order. Every present candidate stays, not only the
first: first() passes over an empty value to the next one. Per span, normalize then
reads only those few names.

Plans are memoized by (attribute names, resource names, scope, the resource values
detect() reads, settings); the memo is bounded in plans and in the characters its keys
hold, so senders that invent names cost CPU, never unbounded memory.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, NamedTuple

from breakeven.collector.config.settings import MAPPABLE_FIELDS, Settings
from breakeven.collector.normalize import conventions as c
from breakeven.collector.normalize.keep import audit_names
from breakeven.collector.normalize.redact import LONG_KEY, key_flags, may_carry_prompt
from breakeven.collector.normalize.tokens import USAGE_NAMES
from breakeven.collector.providers import canonical_provider
from breakeven.collector.records import DecodedSpan

ENGINE_DIALECTS = (c.VLLM, c.SGLANG, c.TGI)

# A mapped field's value is read from the span's attributes or from its resource.
ON_SPAN = False
ON_RESOURCE = True
MappedSource = tuple[bool, str]  # (ON_SPAN or ON_RESOURCE, attribute name)


@dataclass(frozen=True, slots=True)
class Plan:
    """What normalize reads from spans with one set of names, and what the names alone decide."""

    settings: Settings  # held, so the id in the memo key cannot be reused while the plan lives
    flags: int  # key_flags of the attribute names
    dialects: tuple[str, ...]  # c.detect()
    engine: str | None  # the first serving-engine dialect spoken (vLLM, SGLang, TGI), if any
    kept: tuple[str, ...] | None  # the names the audit copy keeps verbatim; None: every name
    summarized: tuple[str, ...]  # the names it keeps as type and size only (normalize/keep.py)
    may_carry_prompt: bool  # whether the attributes can hold a prompt (events aside)
    genai_scope: bool  # the scope makes only LLM-call spans, named "{operation} {model}"
    scope_provider: str | None  # the provider such a scope names
    emitter: str  # scope name[@version]
    reads: Reads  # per field read by precedence, the candidate names the span has
    # Per mappable field (settings.MAPPABLE_FIELDS order): where its value may be, in precedence order.
    mapped: tuple[tuple[MappedSource, ...], ...]


class Reads(NamedTuple):
    """Names per field, in precedence order; one c.firsts() over the span's attributes reads them all.

    The token counts come last, in USAGE_NAMES order. A plan keeps the names the span has:
    for ttft_seconds and streaming among all its attributes, for the rest among those
    the audit copy keeps verbatim (what it holds, the span holds too, with the same values).
    """

    operation: tuple[str, ...]
    invocation_parameters: tuple[str, ...]
    provider: tuple[str, ...]
    server_address: tuple[str, ...]
    server_port: tuple[str, ...]
    request_model: tuple[str, ...]
    response_model: tuple[str, ...]
    response_id: tuple[str, ...]
    ttft_seconds: tuple[str, ...]
    streaming: tuple[str, ...]
    input_tokens: tuple[str, ...]
    output_tokens: tuple[str, ...]
    cache_read_tokens: tuple[str, ...]
    cache_write_tokens: tuple[str, ...]
    reasoning_tokens: tuple[str, ...]
    total_tokens: tuple[str, ...]


READS = Reads(
    c.OPERATION,
    c.INVOCATION_PARAMETERS,
    c.PROVIDER,
    c.SERVER_ADDRESS,
    c.SERVER_PORT,
    c.REQUEST_MODEL,
    c.RESPONSE_MODEL,
    c.RESPONSE_ID,
    c.TTFT_SECONDS,
    c.STREAMING,
    *USAGE_NAMES,
)
_READ_ON_ALL_ATTRIBUTES = frozenset({"ttft_seconds", "streaming"})  # not on the redacted copy


PlanKey = tuple[tuple[str, ...], tuple[str, ...], str, str, tuple[bool, bool, bool], int]

_PLANS: dict[PlanKey, Plan] = {}
_PLANS_MAX = 4096
_PLAN_CHARS_MAX = 4_000_000  # characters of names held by the memo's keys, all plans together
_plan_chars = [0]  # held now


def plan_of(span: DecodedSpan, settings: Settings) -> Plan:
    """The span's plan: memoized, except for spans with a name past LONG_KEY_CHARS."""
    key = (
        tuple(span.attributes),
        tuple(span.resource),
        span.scope_name,
        span.scope_version,
        c.resource_signals(span.resource),
        id(settings),
    )
    plan = _PLANS.get(key)
    if plan is None:
        plan = make_plan(span, settings)
        if not plan.flags & LONG_KEY:
            _remember(key, plan)
    return plan


def _remember(key: PlanKey, plan: Plan) -> None:
    chars = sum(map(len, key[0])) + sum(map(len, key[1])) + len(key[2]) + len(key[3])
    if chars > _PLAN_CHARS_MAX // 64:
        return  # one huge key would crowd out every other plan
    if len(_PLANS) >= _PLANS_MAX or _plan_chars[0] + chars > _PLAN_CHARS_MAX:
        _PLANS.clear()
        _plan_chars[0] = 0
    _PLANS[key] = plan
    _plan_chars[0] += chars


def make_plan(span: DecodedSpan, settings: Settings) -> Plan:
    """The plan for spans with this span's names, scope and detect() resource values (unmemoized)."""
    source = span.attributes
    flags = key_flags(source)
    dialects = c.detect(span, flags)
    kept, summarized = audit_names(source, read_names(settings), settings.privacy.keep_attributes)
    redacted = set(kept)
    genai_scope, scope_provider = _genai_scope(span.scope_name)
    return Plan(
        settings=settings,
        flags=flags,
        dialects=dialects,
        engine=next((d for d in ENGINE_DIALECTS if d in dialects), None),
        kept=None if len(kept) == len(source) else kept,
        summarized=summarized,
        may_carry_prompt=may_carry_prompt(source, flags),
        genai_scope=genai_scope,
        scope_provider=scope_provider,
        emitter=span.scope_name + (f"@{span.scope_version}" if span.scope_version else ""),
        reads=Reads(
            *(
                _present(names, source if field in _READ_ON_ALL_ATTRIBUTES else redacted)
                for field, names in zip(Reads._fields, READS, strict=True)
            )
        ),
        mapped=tuple(mapped_sources(mapped_names(field, settings), source, span.resource) for field in MAPPABLE_FIELDS),
    )


def read_attribute_names(settings: Settings) -> frozenset[str]:
    """Every attribute name the ledger reads a value from, the user's mapping included (the
    decoder never cuts their values)."""
    user_names = {name for names in settings.attributes.values() for name in names}
    return c.READ | user_names if user_names else c.READ


def read_names(settings: Settings) -> frozenset[str]:
    """read_attribute_names and the invocation parameters (read too, but cut like audit values)."""
    return read_attribute_names(settings) | frozenset(c.INVOCATION_PARAMETERS)


def mapped_names(field: str, settings: Settings) -> tuple[str, ...]:
    """A who/what field's names in precedence: breakeven.<field>, the user's mapping, the defaults."""
    return (f"breakeven.{field}", *settings.attributes.get(field, ()), *c.FIELD_DEFAULTS[field])


def mapped_sources(
    names: tuple[str, ...], attrs: Mapping[str, Any], resource: Mapping[str, Any]
) -> tuple[MappedSource, ...]:
    """Where each name is present, span before resource, in the names' order."""
    return tuple(
        (where, name)
        for name in names
        for where, holder in ((ON_SPAN, attrs), (ON_RESOURCE, resource))
        if name in holder
    )


def _present(names: tuple[str, ...], held: Mapping[str, Any] | set[str]) -> tuple[str, ...]:
    return tuple(name for name in names if name in held)


def _genai_scope(scope_name: str) -> tuple[bool, str | None]:
    """Whether the scope makes only LLM-call spans, and the provider it names."""
    for prefix in c.GENAI_SCOPE_PREFIXES:
        if scope_name.startswith(prefix):
            return True, canonical_provider(scope_name[len(prefix) :].split(".", 1)[0])
    return False, None
