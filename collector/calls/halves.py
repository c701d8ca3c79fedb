"""A call seen twice across traces with nothing to link the two by: which two calls are one
(collector/calls/crosstrace.py links them).

One call can be traced by two layers in two traces: a provider client that traces itself
beside an instrumentation library's span (each its own root, docs/one-call-one-record.md),
or a framework's instrumentation whose span is never made current, so that the client
instrumentation's span under it starts a trace of its own (OpenInference's LangChain
tracer). Where both spans name the provider's response id, crosstrace.py links them by it.
Where one names none, two calls are one call only when each is the other's only candidate
under halves_of_one_call, among every such half seen (HalfMemory): a failed call (no
response id on either span), a client's own span without one (mistralai 1.x), a
framework's span without one (a LangChain stream), each beside the other layer's span.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass, field

from breakeven.collector.records import Call

# The layers that trace one call, outermost first, by instrumentation scope (evidence:
# tests/fixtures/emitters/README.md). A framework's instrumentation calls a client that
# an instrumentation library traces, which may call a client that traces itself.
FRAMEWORK = 0
INSTRUMENTATION = 1
SELF_TRACED = 2
# Frameworks' instrumentations whose span of a model call may stand in another trace than
# the client's span under it: their scopes.
FRAMEWORK_SCOPES = frozenset({"openinference.instrumentation.langchain", "opentelemetry.instrumentation.langchain"})
# Provider clients that trace their own calls, each in a trace of its own beside an
# instrumentation library's: their scopes.
SELF_TRACING_SCOPES = frozenset({"com.anthropic.sdk.python", "mistralai_sdk_tracer"})
HALVES_REMEMBERED = 10_000
# Providers whose framework or self-tracing client was seen succeeding without a response
# id: only their successful calls are remembered as candidates (a bound, against made-up
# provider names).
WATCHED_PROVIDERS = 64


def layer_of(emitter: str) -> int:
    """Which layer a call's emitter (scope[@version]) traces: FRAMEWORK, INSTRUMENTATION or SELF_TRACED."""
    name, _, _version = emitter.partition("@")
    if name in SELF_TRACING_SCOPES:
        return SELF_TRACED
    return FRAMEWORK if name in FRAMEWORK_SCOPES else INSTRUMENTATION


@dataclass(frozen=True, slots=True)
class Half:
    """A call that may be one half of a call seen in two traces, as halves_of_one_call compares it."""

    key: tuple[str, str]  # the call's (trace id, span id)
    start_ns: int
    end_ns: int
    layer: int  # FRAMEWORK, INSTRUMENTATION or SELF_TRACED
    origin: tuple[str | None, ...]  # provider, request model, service, process, status
    operation: str | None
    usage: tuple[int, int] | None  # (all input, output) tokens (output holds reasoning); None: none reported
    prompt_hash: str | None
    root: bool = True  # the call's outermost span is its trace's root

    @property
    def failed(self) -> bool:
        return self.origin[-1] == "error"


def half_of(call: Call, process: str | None, watched: set[str] | frozenset[str] = frozenset()) -> Half | None:
    """The call as the cross-trace rule sees it; None when the rule is not for it.

    The rule is for a failed call without a response id; for a framework's or a
    self-tracing client's call without one; and for any successful call of a provider in
    `watched` (HalfMemory.watched: the other layer's half of such a call). process: the
    sending process of the call's own span (LlmSpan.process).
    """
    if call.provider is None or not call.request_model:
        return None
    layer = layer_of(call.emitter)
    if call.status == "error" or layer != INSTRUMENTATION:
        if call.response_id is not None:  # the response-id rule's
            return None
    elif call.provider not in watched:
        return None
    origin = (call.provider, call.request_model, call.service, process, call.status)
    usage = None
    if call.usage_reported:
        usage = (call.input_tokens + call.cache_read_tokens + call.cache_write_tokens, call.output_tokens)
    root = call.parent_span_id is None
    return Half(call.key, call.start_ns, call.end_ns, layer, origin, call.operation, usage, call.prompt_hash, root)


def halves_of_one_call(a: Half, b: Half) -> bool:
    """Whether two calls could be one call seen twice, by two layers in two traces
    (docs/one-call-one-record.md).

    Every test is one that a real pair always passes: one process made both spans, so they
    name the same provider, request model, service and process and ended the same way; the
    same operation, prompt and token counts where both carry them; and the inner layer's
    span is the root of its trace and lies inside the outer one's (one clock: no skew
    allowed). Whether each is the other's only candidate is HalfMemory.pair's test.
    """
    if a.key[0] == b.key[0] or a.layer == b.layer or a.origin != b.origin:
        return False
    inner, outer = (a, b) if a.layer > b.layer else (b, a)
    if inner.operation is not None and outer.operation is not None and inner.operation != outer.operation:
        return False
    if a.prompt_hash is not None and b.prompt_hash is not None and a.prompt_hash != b.prompt_hash:
        return False
    if a.usage is not None and b.usage is not None and a.usage != b.usage:
        return False
    return inner.root and outer.start_ns <= inner.start_ns and inner.end_ns <= outer.end_ns


def candidates(halves: Sequence[Half]) -> dict[tuple[str, str], list[Half]]:
    """Every half's candidates among the others (halves_of_one_call), by key.

    A sweep over start times: a call can only contain one that starts before it ends.
    """
    found: dict[tuple[str, str], list[Half]] = {h.key: [] for h in halves}
    ordered = sorted(halves, key=lambda h: (h.start_ns, -h.end_ns, h.key))
    for i, a in enumerate(ordered):
        for b in ordered[i + 1 :]:
            if b.start_ns > a.end_ns:
                break
            if halves_of_one_call(a, b):
                found[a.key].append(b)
                found[b.key].append(a)
    return found


@dataclass(slots=True)
class HalfPairs:
    """What HalfMemory.pair decided for one batch."""

    pairs: list[tuple[Half, Half]] = field(default_factory=list)  # (the one kept, the one merged in)
    again: dict[tuple[str, str], tuple[str, str]] = field(default_factory=dict)  # linked before: key -> kept key
    ambiguous: list[Half] = field(default_factory=list)  # new halves left alone: more than one candidate


class HalfMemory:
    """Links calls across traces and batches: a pair merges only when each is the other's
    only candidate among every half seen (halves_of_one_call).

    Remembers the last HALVES_REMEMBERED halves without a partner: those with no candidate
    yet may still pair (the other half may come in a later batch); those that had one but
    did not pair are kept as witnesses (never paired, but a candidate all the same, so that
    they make a later pair ambiguous). It also remembers which calls were linked, so one
    that comes back (its trace's call recomputed) stays linked, and which providers have a
    client that traces its successful calls without a response id (watched: their other
    successful calls are the candidates, half_of).
    """

    def __init__(self, limit: int = HALVES_REMEMBERED) -> None:
        self.limit = limit
        self._seen: OrderedDict[tuple[str, str], Half] = OrderedDict()
        self._witnesses: set[tuple[str, str]] = set()
        self._by_origin: dict[tuple[str | None, ...], set[tuple[str, str]]] = {}
        self._linked: OrderedDict[tuple[str, str], tuple[str, str]] = OrderedDict()
        self.watched: set[str] = set()

    def watch(self, provider: str) -> bool:
        """Remember that a framework or client of this provider traces successful calls without a
        response id; whether it is watched now (at most WATCHED_PROVIDERS are)."""
        if len(self.watched) < WATCHED_PROVIDERS:
            self.watched.add(provider)
        return provider in self.watched

    def remember(self, stored: Sequence[Half]) -> None:
        """Remember halves already stored as unpaired candidates (crosstrace.py's recent calls of a
        provider watched from now on)."""
        for half in stored:
            if half.key not in self._linked and half.key not in self._seen:
                self._seen[half.key] = half
                self._by_origin.setdefault(half.origin, set()).add(half.key)
        self._trim()

    def __len__(self) -> int:
        return len(self._seen)

    def pair(self, new: Sequence[Half]) -> HalfPairs:
        """Pair a batch's halves with each other and with the remembered ones.

        In each pair the remembered half (already stored) is kept, else the outer layer's.
        """
        out = HalfPairs()
        fresh = self._fresh(new, out.again)
        if not fresh:
            return out
        pool, witnesses = self._pool(fresh)
        found = candidates(pool)
        out.pairs, paired = _choose_pairs(fresh, found, witnesses)
        self._link(out.pairs)
        out.ambiguous = self._keep_unpaired(pool, fresh, found, witnesses, paired)
        self._trim()
        return out

    def _fresh(self, new: Sequence[Half], again: dict[tuple[str, str], tuple[str, str]]) -> dict[tuple[str, str], Half]:
        """The batch's halves not linked before, by key; a call linked before goes into again instead."""
        fresh: dict[tuple[str, str], Half] = {}
        for half in new:
            linked_to = self._linked.get(half.key)
            if linked_to is None:
                fresh[half.key] = half
            elif linked_to != half.key:
                again[half.key] = linked_to
        return fresh

    def _pool(self, fresh: dict[tuple[str, str], Half]) -> tuple[list[Half], set[tuple[str, str]]]:
        """The new halves and the remembered ones that could nest with them, and which of those are witnesses."""
        witnesses = {k for k in fresh if k in self._witnesses}
        for key in fresh:
            self._forget(key)  # a call that comes back is compared as it is now
        pool = list(fresh.values())
        for origin, (lo, hi) in extents_by_origin(pool).items():
            for key in self._by_origin.get(origin, ()):
                old = self._seen[key]
                if old.start_ns <= hi and lo <= old.end_ns:  # only overlapping ones can nest
                    pool.append(old)
                    if key in self._witnesses:
                        witnesses.add(key)
        return pool, witnesses

    def _link(self, pairs: list[tuple[Half, Half]]) -> None:
        """Remember the pairs as linked (each half to the kept key) and forget them as unpaired halves."""
        for a, b in pairs:
            self._forget(a.key)
            self._forget(b.key)
            for key in (a.key, b.key):
                self._linked[key] = a.key

    def _keep_unpaired(
        self,
        pool: list[Half],
        fresh: dict[tuple[str, str], Half],
        found: dict[tuple[str, str], list[Half]],
        witnesses: set[tuple[str, str]],
        paired: set[tuple[str, str]],
    ) -> list[Half]:
        """Keep the new unpaired halves, mark those with a candidate as witnesses; return the new ambiguous ones."""
        ambiguous = []
        for half in pool:
            if half.key in paired:
                continue
            if found[half.key] or half.key in witnesses:
                if half.key in fresh and found[half.key]:
                    ambiguous.append(half)
                self._witnesses.add(half.key)
            if half.key in fresh:
                self._seen[half.key] = half
                self._by_origin.setdefault(half.origin, set()).add(half.key)
        return ambiguous

    def _trim(self) -> None:
        """Forget the oldest halves and links past the limit."""
        while len(self._seen) > self.limit:
            self._forget(next(iter(self._seen)))
        while len(self._linked) > self.limit:
            self._linked.popitem(last=False)

    def _forget(self, key: tuple[str, str]) -> None:
        half = self._seen.pop(key, None)
        self._witnesses.discard(key)
        if half is not None:
            keys = self._by_origin[half.origin]
            keys.discard(key)
            if not keys:
                del self._by_origin[half.origin]


def extents_by_origin(halves: Sequence[Half]) -> dict[tuple[str | None, ...], tuple[int, int]]:
    """Each origin's range of times (first start, last end) among the halves."""
    spans: dict[tuple[str | None, ...], tuple[int, int]] = {}
    for f in halves:
        lo, hi = spans.get(f.origin, (f.start_ns, f.end_ns))
        spans[f.origin] = (min(lo, f.start_ns), max(hi, f.end_ns))
    return spans


def _choose_pairs(
    fresh: dict[tuple[str, str], Half],
    found: dict[tuple[str, str], list[Half]],
    witnesses: set[tuple[str, str]],
) -> tuple[list[tuple[Half, Half]], set[tuple[str, str]]]:
    """The pairs (kept, merged) of a new half and its only candidate, whose only candidate it is; and their keys."""
    pairs: list[tuple[Half, Half]] = []
    paired: set[tuple[str, str]] = set()
    for a in fresh.values():
        if len(found[a.key]) != 1 or a.key in paired:
            continue
        (b,) = found[a.key]
        if len(found[b.key]) != 1 or a.key in witnesses or b.key in witnesses:
            continue
        kept, merged = (b, a) if b.key not in fresh or a.layer > b.layer else (a, b)
        pairs.append((kept, merged))
        paired |= {a.key, b.key}
    return pairs, paired
