"""One call, one record: group the LLM spans of a trace that describe the same call.

The same call often arrives as several spans: an instrumentation library's span with the
provider SDK's own span beneath it, a gateway's pair (LiteLLM emits two), or an app's
client span, a router's span and the serving engine's server span across services.

Two spans of one trace describe the same call when
  - one is nested in the other: it descends from it through the LLM spans we hold, or
    its time interval lies inside the other's (within CLOCK_SKEW_NS, for spans from
    different hosts, where the path runs through HTTP spans we never store); and
  - their usage agrees: same total input and same output when both report usage; when
    one reports none (a gateway's outer span, an SDK span without usage), only direct
    descent counts, not time alone; and
  - they are not siblings (same parent: two parallel calls) and not two engine spans.
One more pair is one call, siblings included: a framework's span and a client library's
span that no descent links (LangChain's instrumentations leave their LLM span out of the
context the client runs in, so the client's span hangs beside it: layered_pairs), when each
is the other's only candidate. And a failed call that passed from one service to another (an
app's client span and a gateway's span, the HTTP hop between them unseen, neither with usage)
is one call when each failed span is the other's only candidate: failed_hops.
Grouping is transitive. Each field of the call comes from the span that knows it best:
who (service, team, feature, environment, request model, the call's identity and time)
from the outermost span, the caller; what served it (backend, backend class, provider,
response model, quantization, time to first token) from the innermost, the engine (and
the backend class from the innermost span that saw an address, before any that did not);
token counts from the span that reports the most token kinds, the innermost on a tie.

Across traces (collector/calls/crosstrace.py) calls merge by provider response id; a call with
none on one side (a failed call; a client's own span that names none) by halves_of_one_call and
HalfMemory (collector/calls/halves.py).
"""

from __future__ import annotations

import functools
import operator
from collections.abc import Iterable, Sequence
from typing import Any

from breakeven.collector.records import TOKEN_FIELDS, Call, LlmSpan

CLOCK_SKEW_NS = 250_000_000  # 250 ms


def _ancestor_ids(span: LlmSpan, by_id: dict[str, LlmSpan]) -> set[str]:
    """The ids up span's parent chain, through spans we hold (at most 64 steps)."""
    ids: set[str] = set()
    seen = 0
    parent = span.parent_span_id
    while parent is not None and seen < 64:
        ids.add(parent)
        step = by_id.get(parent)
        if step is None:
            break
        parent = step.parent_span_id
        seen += 1
    return ids


def _nested_in(inner: LlmSpan, outer: LlmSpan) -> bool:
    return outer.start_ns - CLOCK_SKEW_NS <= inner.start_ns and inner.end_ns <= outer.end_ns + CLOCK_SKEW_NS


def _has_usage(span: LlmSpan) -> bool:
    return span.input_tokens is not None or span.output_tokens is not None


def _usage_agrees(a: LlmSpan, b: LlmSpan) -> bool:
    if a.total_input() is not None and b.total_input() is not None and a.total_input() != b.total_input():
        return False
    return a.output_tokens is None or b.output_tokens is None or a.output_tokens == b.output_tokens


def _scope(span: LlmSpan) -> str:
    return span.emitter.partition("@")[0]


def two_layers(a: LlmSpan, b: LlmSpan) -> bool:
    """Whether two spans of one trace, neither descending from the other, could be one call
    seen by two instrumentation layers: a framework's span and, beside it, the client's.

    Every test is one such a pair always passes (tests/fixtures/emitters/README.md,
    LangChain): two instrumentation scopes, one process, so the same service, provider,
    request model and outcome, the same operation and token counts where both carry them
    (neither or both report usage), and the client's span inside the framework's with no
    clock skew allowed. Two parallel calls pass it too when they look alike; layered_pairs
    merges only a pair in which each is the other's only candidate.
    """
    if a.trace_id != b.trace_id or a.span_id == b.span_id or a.is_engine or b.is_engine:
        return False
    if _scope(a) == _scope(b) or a.provider is None or not a.request_model:
        return False
    if (a.provider, a.request_model, a.service, a.status) != (b.provider, b.request_model, b.service, b.status):
        return False
    if a.process is not None and b.process is not None and a.process != b.process:
        return False
    if a.operation is not None and b.operation is not None and a.operation != b.operation:
        return False
    if _has_usage(a) != _has_usage(b):
        return False
    if _has_usage(a) and (a.total_input() != b.total_input() or a.output_tokens != b.output_tokens):
        return False
    inner, outer = (a, b) if (a.start_ns, -a.end_ns) > (b.start_ns, -b.end_ns) else (b, a)
    return outer.start_ns <= inner.start_ns and inner.end_ns <= outer.end_ns


def layered_pairs(
    spans: Sequence[LlmSpan], ancestors: dict[str, set[str]] | None = None
) -> list[tuple[LlmSpan, LlmSpan]]:
    """The pairs of two_layers, (outer, inner), in which each span is the other's only candidate.

    Spans on one parent chain are left to same_call. A sweep over start times: a span can
    only contain one that starts before it ends. ancestors: _ancestor_ids of every span.
    """
    if ancestors is None:
        by_id = {s.span_id: s for s in spans}
        ancestors = {s.span_id: _ancestor_ids(s, by_id) for s in spans}
    found: dict[str, list[LlmSpan]] = {s.span_id: [] for s in spans}
    ordered = sorted(spans, key=_outer_first)
    for i, a in enumerate(ordered):
        horizon = max(a.start_ns, a.end_ns)
        for b in ordered[i + 1 :]:
            if b.start_ns > horizon:
                break
            if not two_layers(a, b) or a.span_id in ancestors[b.span_id] or b.span_id in ancestors[a.span_id]:
                continue
            found[a.span_id].append(b)
            found[b.span_id].append(a)
    pairs = []
    for a in ordered:  # outer first: each pair once, as (outer, inner)
        mine = found[a.span_id]
        if len(mine) == 1 and _outer_first(a) < _outer_first(mine[0]):
            theirs = found[mine[0].span_id]
            if len(theirs) == 1 and theirs[0] is a:
                pairs.append((a, mine[0]))
    return pairs


def _failed_bare(span: LlmSpan) -> bool:
    return span.status == "error" and not _has_usage(span)


def failed_hop(outer: LlmSpan, inner: LlmSpan) -> bool:
    """Whether two failed spans without usage could be one failed call seen on both sides of a
    hop between services: the caller's span, and inside it a gateway's (or an engine's).

    Every test is one such a pair always passes (tests/fixtures/emitters/README.md, LiteLLM
    proxy): one trace, two services, both failed, neither with usage, not siblings, not two
    engine spans, the same operation where both name one, and the inner span inside the outer
    one within the clock skew (two hosts). Usage, which settles a call that succeeded, is not
    there to tell two failures apart, so failed_hops merges only a pair in which each is the
    other's only candidate.
    """
    return (
        outer.trace_id == inner.trace_id
        and outer.span_id != inner.span_id
        and outer.service is not None
        and inner.service is not None
        and outer.service != inner.service
        and not (outer.is_engine and inner.is_engine)
        and (inner.parent_span_id is None or inner.parent_span_id != outer.parent_span_id)
        and (outer.operation is None or inner.operation is None or outer.operation == inner.operation)
        and _failed_bare(outer)
        and _failed_bare(inner)
        and _nested_in(inner, outer)
    )


def failed_hops(spans: Sequence[LlmSpan]) -> list[tuple[LlmSpan, LlmSpan]]:
    """The pairs of failed_hop, (outer, inner), in which each span is the other's only candidate."""
    failed = sorted((s for s in spans if _failed_bare(s)), key=_outer_first)
    if len(failed) < 2:
        return []
    found: dict[str, list[LlmSpan]] = {s.span_id: [] for s in failed}
    outer_of: dict[tuple[str, str], LlmSpan] = {}
    for i, a in enumerate(failed):
        horizon = max(a.start_ns, a.end_ns) + CLOCK_SKEW_NS  # a later start cannot contain a
        for b in failed[i + 1 :]:
            if b.start_ns > horizon:
                break
            outer = a if failed_hop(a, b) else b if failed_hop(b, a) else None
            if outer is not None:
                found[a.span_id].append(b)
                found[b.span_id].append(a)
                outer_of[a.span_id, b.span_id] = outer
    pairs = []
    for a in failed:  # each pair once: keyed (earlier, later) in outer_of
        mine = found[a.span_id]
        if len(mine) != 1 or (a.span_id, mine[0].span_id) not in outer_of:
            continue
        theirs = found[mine[0].span_id]
        if len(theirs) == 1 and theirs[0] is a:
            outer = outer_of[a.span_id, mine[0].span_id]
            pairs.append((outer, mine[0] if outer is a else a))
    return pairs


def same_call(a: LlmSpan, b: LlmSpan, by_id: dict[str, LlmSpan]) -> bool:
    """Whether two LLM spans of one trace describe one call (see the module docstring)."""
    return _same_call(a, b, {s.span_id: _ancestor_ids(s, by_id) for s in (a, b)})


def _same_call(a: LlmSpan, b: LlmSpan, ancestors: dict[str, set[str]]) -> bool:
    if a.trace_id != b.trace_id or a.span_id == b.span_id:
        return False
    if a.is_engine and b.is_engine:
        return False
    if a.parent_span_id is not None and a.parent_span_id == b.parent_span_id:
        return False
    for inner, outer in ((a, b), (b, a)):
        descends = outer.span_id in ancestors[inner.span_id]
        if not (descends or _nested_in(inner, outer)):
            continue
        if _has_usage(inner) and _has_usage(outer):
            if _usage_agrees(inner, outer):
                return True
        elif descends and inner.parent_span_id == outer.span_id:
            return True
    return False


def group_spans(spans: Sequence[LlmSpan]) -> list[list[LlmSpan]]:
    """Spans of one trace, grouped so that each group is one call; outermost first.

    Only pairs that could be one call are compared: spans that overlap in time (within
    the clock skew), found by a sweep over start times, and spans on one parent chain.
    Every other pair fails same_call anyway, so the groups are those of comparing every
    pair, without its cost on long traces (an agent's thousands of calls one after another).
    """
    by_id = {s.span_id: s for s in spans}
    ancestors = {s.span_id: _ancestor_ids(s, by_id) for s in spans}
    parent: dict[str, str] = {s.span_id: s.span_id for s in spans}

    def root(x: str) -> str:
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    def join(a: LlmSpan, b: LlmSpan) -> None:
        if root(a.span_id) != root(b.span_id) and _same_call(a, b, ancestors):
            parent[root(b.span_id)] = root(a.span_id)

    ordered = sorted(spans, key=_outer_first)
    for i, a in enumerate(ordered):
        # Sorted by start: once a span starts past a's end (+ skew), neither can nest in
        # the other by time, nor can any span after it.
        horizon = max(a.start_ns, a.end_ns) + CLOCK_SKEW_NS
        for j in range(i + 1, len(ordered)):
            b = ordered[j]
            if b.start_ns > horizon:
                break
            join(a, b)
    for span in ordered:  # descent counts whatever the clocks say
        for above_id in ancestors[span.span_id]:
            above = by_id.get(above_id)
            if above is not None:
                join(above, span)
    for outer, inner in [*layered_pairs(ordered, ancestors), *failed_hops(ordered)]:
        if root(outer.span_id) != root(inner.span_id):
            parent[root(inner.span_id)] = root(outer.span_id)
    groups: dict[str, list[LlmSpan]] = {}
    for span in ordered:
        groups.setdefault(root(span.span_id), []).append(span)
    return list(groups.values())


def _outer_first(span: LlmSpan) -> tuple[int, int, int, str]:
    # Earlier start, then longer, then not an engine span: the caller comes first.
    return (span.start_ns, -span.end_ns, int(span.is_engine), span.span_id)


def call_of_span(span: LlmSpan) -> Call:
    """The call a lone span describes: merge_group of one span, without the sorting.

    The hot path of ingest (most traces are one span): Call's fields positionally, in
    their declared order, and the conventions string remembered per tuple.
    """
    error = span.status == "error"
    return Call(
        span.trace_id,
        span.span_id,
        span.parent_span_id,
        span.start_ns,
        span.end_ns,
        span.ttft_ms,
        span.service,
        span.environment,
        span.team,
        span.feature,
        span.operation,
        span.provider,
        span.backend,
        span.backend_class,
        span.server_address,
        span.request_model,
        span.response_model,
        span.quantization,
        span.prompt_hash,
        span.input_tokens or 0,
        span.cache_read_tokens or 0,
        span.cache_write_tokens or 0,
        span.output_tokens or 0,
        span.reasoning_tokens or 0,
        span.input_tokens is not None or span.output_tokens is not None,  # usage_reported
        span.streaming,
        "error" if error else "ok",
        span.error_type if error else None,
        span.emitter,
        _conventions_text(span.conventions),
        (span.span_id,),  # member_span_ids
        span.response_id,
        span.process,
    )


@functools.lru_cache(maxsize=256)
def _conventions_text(conventions: tuple[str, ...]) -> str:
    """A span's conventions as a call stores them: distinct, sorted, comma-separated."""
    return ",".join(sorted(set(conventions)))


def merge_group(group: Sequence[LlmSpan]) -> Call:
    """The call a group of spans describes, each field from the span that knows it best."""
    if len(group) == 1:
        return call_of_span(group[0])
    return _merge_many(group)


# The fields a merged call takes from the first span that knows them: the caller's, in
# outer-first order, and the engine's, in engine-first order (see the module docstring).
_CALLER_FIELDS = operator.attrgetter(
    "service", "environment", "team", "feature", "operation", "request_model", "prompt_hash", "streaming",
    "response_id",
)  # fmt: skip
_ENGINE_FIELDS = operator.attrgetter(
    "ttft_ms", "provider", "backend", "server_address", "response_model", "quantization"
)
_TOKENS = operator.attrgetter(*TOKEN_FIELDS)


def _merge_many(group: Sequence[LlmSpan]) -> Call:
    outer_first = sorted(group, key=_outer_first)
    outer = outer_first[0]
    engine_first = sorted(group, key=_engine_first)
    usage_span = max(engine_first[::-1], key=_usage_rank)
    service, environment, team, feature, operation, request_model, prompt_hash, streaming, response_id = _first_known(
        map(_CALLER_FIELDS, outer_first)
    )
    ttft_ms, provider, backend, server_address, response_model, quantization = _first_known(
        map(_ENGINE_FIELDS, engine_first)
    )
    # A span that saw where the call went outranks one that could only go by the provider's
    # name: 127.0.0.1 behind an OpenAI client is unknown, not frontier.
    located = [s for s in engine_first if s.server_address or s.backend] or engine_first
    classes = [s.backend_class for s in located if s.backend_class != "unknown"]
    errors = [s for s in outer_first if s.status == "error"]
    conventions = sorted({d for s in group for d in s.conventions})
    input_tokens, cache_read_tokens, cache_write_tokens, output_tokens, reasoning_tokens = (
        count or 0 for count in _TOKENS(usage_span)
    )
    return Call(  # Call's fields in their declared order
        outer.trace_id,
        outer.span_id,
        outer.parent_span_id,
        outer.start_ns,
        outer.end_ns,
        ttft_ms,
        service,
        environment,
        team,
        feature,
        operation,
        provider,
        backend,
        classes[0] if classes else "unknown",  # backend_class
        server_address,
        request_model,
        response_model,
        quantization,
        prompt_hash,
        input_tokens,
        cache_read_tokens,
        cache_write_tokens,
        output_tokens,
        reasoning_tokens,
        any(_has_usage(s) for s in group),  # usage_reported
        streaming,
        "error" if errors else "ok",
        errors[0].error_type if errors else None,
        outer.emitter,
        ",".join(conventions),
        tuple(s.span_id for s in outer_first),  # member_span_ids
        response_id,
        outer.process,
    )


def _engine_first(span: LlmSpan) -> tuple[bool, int, int, str]:
    # Engine spans first, then the later started, the shorter: the innermost comes first.
    return (not span.is_engine, -span.start_ns, span.end_ns, span.span_id)


def _usage_rank(span: LlmSpan) -> tuple[int, bool, int]:
    # Whose token counts a merged call takes: the most token kinds, then an engine's, then the later.
    return (span.usage_detail(), span.is_engine, span.start_ns)


def _first_known(rows: Iterable[tuple[Any, ...]]) -> list[Any]:
    """Column by column, the first value of the rows that is not None (None when none is)."""
    known: list[Any] | None = None
    for row in rows:
        known = list(row) if known is None else [k if k is not None else v for k, v in zip(known, row, strict=True)]
    assert known is not None, "a group has at least one span"
    return known


def calls_of_trace(spans: Sequence[LlmSpan]) -> list[Call]:
    """Every call a trace's LLM spans describe."""
    return [merge_group(g) for g in group_spans(spans)]


def spans_by_trace(spans: Iterable[LlmSpan]) -> dict[str, list[LlmSpan]]:
    """The spans grouped by trace, traces in the order their first span came."""
    traces: dict[str, list[LlmSpan]] = {}
    for span in spans:
        traces.setdefault(span.trace_id, []).append(span)
    return traces


def calls_of_new_trace(spans: Sequence[LlmSpan]) -> list[Call]:
    """The calls of a trace none of whose spans was stored before: calls_of_trace, the lone
    span (most traffic) through call_of_span. A decode process and the writer both make a
    new trace's calls with it, so they make the same ones, in the same order."""
    return [call_of_span(spans[0])] if len(spans) == 1 else calls_of_trace(spans)
