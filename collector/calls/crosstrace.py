"""One call, one record across traces: the writer's link of calls that name one provider response.

Some clients trace themselves in a trace of their own beside the instrumentation's (the
anthropic SDK's spans next to OpenLLMetry's): two roots, two traces, one provider
response. CrossTraceLinks.drop_calls_answered_in_other_traces (below) decides, per batch,
which calls are one; the pipeline's writer thread (collector/calls/pipeline.py) is its only user.
"""

from __future__ import annotations

from collections import OrderedDict, deque
from typing import Protocol

from breakeven.collector.calls.halves import (
    INSTRUMENTATION,
    Half,
    HalfMemory,
    extents_by_origin,
    half_of,
    layer_of,
)
from breakeven.collector.calls.merge import CLOCK_SKEW_NS, merge_group
from breakeven.collector.calls.tracecache import TraceState
from breakeven.collector.records import Call, LlmSpan, WriteBatch

RESPONSES_REMEMBERED = 100_000
# Successful calls of providers not watched yet (halves.HalfMemory.watched), kept in case the
# outer layer's span of one of them comes later: a framework's span ends after the client's.
RECENT_REMEMBERED = 4_096

ResponseKey = tuple[str | None, str]  # (provider, response id)
CallKey = tuple[str, str]  # (trace id, span id)
Origin = tuple[str | None, ...]  # Half.origin


class SharedLedger(Protocol):
    """A database other collectors share, read in the batch's locked transaction
    (pipeline._commit_shared; store/shared.py does it): what the other collectors remembered."""

    def watch(self, providers: set[str], newly: set[str]) -> set[str]:
        """Record `newly` as watched (HalfMemory.watched) and return which of `providers` are, each
        provider locked first so no other collector changes that meanwhile."""
        ...

    def stored_calls(self, origins: dict[Origin, tuple[int, int]]) -> list[Call]:
        """Each origin locked, the stored calls of that origin overlapping its range (ns)."""
        ...


class CrossTraceLinks:
    """What the writer remembers to link calls across traces and batches."""

    def __init__(self) -> None:
        # (provider, response id) -> (call key, start ns, end ns) of the call that holds it
        self.responses: OrderedDict[ResponseKey, tuple[CallKey, int, int]] = OrderedDict()
        self.halves = HalfMemory()  # calls that a response id does not link: failed ones, and others'
        self.recent: deque[tuple[Call, str | None]] = deque(maxlen=RECENT_REMEMBERED)  # (call, its process)

    def drop_calls_answered_in_other_traces(
        self, batch: WriteBatch, states: dict[str, TraceState], shared: SharedLedger | None = None
    ) -> int:
        """One response, one call, even across traces; returns how many calls were dropped.

        Two calls of different traces are one call when they name the same (provider,
        response id) AND one lies inside the other in time (within CLOCK_SKEW_NS): a
        reused or fake id alone merges nothing. Within one batch their spans merge as one
        call's do within a trace (collector/calls/merge.py): the outer one's identity and caller
        fields, the client's own span for where it went, its token counts and time to
        first token; member_span_ids lists the spans of both traces. A call stored in an
        earlier commit keeps its place, and a later one naming its response is dropped.
        Dropped calls' spans stay in llm_spans for audit. The last RESPONSES_REMEMBERED
        responses are remembered.

        A failed call has no response id, and some layers' spans name none (mistralai 1.x's
        own, a LangChain stream's). Such a call's two halves are linked when each is the
        other's only candidate under halves.halves_of_one_call (the inner layer's span a
        root inside the outer one's, same provider, request model, service, process and
        outcome, and the same operation, prompt and usage where both carry them) among
        every half seen: merged as above
        within a batch, a later one dropped across batches (halves.HalfMemory). A half left
        alone because its match was not unique is counted (failed_calls_unlinked, or
        sdk_calls_unlinked for a successful one).

        shared: a database other collectors share (pipeline._commit_shared). The calls
        stored there that could be the other halves of the batch's are candidates too (a
        call stored by another collector stays, one of the batch is dropped); the watched
        providers are those every collector watched; recent calls are not kept (they are
        stored). The responses stored there the pipeline reads itself (know_stored).

        Updates `states` (the dropped and merged calls) and batch.calls and counters.
        """
        firsts: dict[ResponseKey, Call] = {}  # each response, the first call that names it
        repeats: dict[ResponseKey, list[Call]] = {}  # a response several calls name: all of them
        no_id: list[Call] = []
        for call in batch.calls:
            if call.response_id is None:
                no_id.append(call)
            else:
                key = (call.provider, call.response_id)
                first = firsts.setdefault(key, call)
                if first is not call:
                    repeats.setdefault(key, [first]).append(call)
        halves = self._halves_of(batch.calls, no_id, shared)
        if not firsts and not halves:
            return 0
        replaced: dict[CallKey, Call | None] = {}  # call key -> its new value, None: dropped
        responses = self.responses
        for key, call in firsts.items():
            prior = responses.get(key)
            group = repeats.get(key) if repeats else None
            if group is None:  # the common case: one call of the batch names the response
                owner: Call | None = call
                if prior is not None and prior[0][0] != call.trace_id and _nested_calls(call, prior[1], prior[2]):
                    replaced[call.key] = owner = None
            else:
                owner = _owner_of_group(group, prior, states, replaced)
            if owner is not None:
                responses[key] = (owner.key, owner.start_ns, owner.end_ns)
                if prior is not None:  # a new key is inserted last already
                    responses.move_to_end(key)
        while len(responses) > RESPONSES_REMEMBERED:
            responses.popitem(last=False)
        if halves:
            self._link_halves(batch, states, halves, replaced)
        if not replaced:
            return 0
        return _apply(replaced, batch, states)

    def know_stored(self, stored: dict[ResponseKey, tuple[CallKey, int, int]]) -> None:
        """Remember responses whose calls are stored (read from a database other collectors
        share, under the responses' locks: store/shared.py's stored_responses), as this collector's own."""
        responses = self.responses
        for key, where in stored.items():
            responses[key] = where
            responses.move_to_end(key)

    def _halves_of(self, calls: list[Call], no_id: list[Call], shared: SharedLedger | None) -> list[Half]:
        """The batch's calls that the rule without a response id is for (halves.half_of), and
        with a shared database, its stored calls that could pair with them remembered."""
        memory = self.halves
        watched = memory.watched
        newly: set[str] = set()
        for call in no_id:
            provider = call.provider
            if provider is None or call.status == "error" or provider in watched:
                continue
            if layer_of(call.emitter) != INSTRUMENTATION:
                newly.add(provider)
        if shared is not None:
            providers = {c.provider for c in calls if c.provider is not None and c.status != "error"}
            for provider in shared.watch(providers, newly):
                memory.watch(provider)
        elif newly:
            self._remember_recent({provider for provider in newly if memory.watch(provider)})
        maybe = no_id if not watched else [c for c in calls if c.response_id is None or c.provider in watched]
        halves = []
        for call in maybe:
            half = half_of(call, call.process, watched)
            if half is not None:
                halves.append(half)
        if shared is not None:
            if halves:
                in_batch = {c.key for c in calls}
                stored = (half_of(c, c.process, watched) for c in shared.stored_calls(extents_by_origin(halves)))
                memory.remember([h for h in stored if h is not None and h.key not in in_batch])
            return halves
        recent = self.recent
        for call in calls:
            if call.status != "error" and call.provider is not None and call.provider not in watched:
                recent.append((call, call.process))
        return halves

    def _remember_recent(self, providers: set[str]) -> None:
        """The recent successful calls of providers watched from now on, remembered as stored halves."""
        watched = self.halves.watched
        halves = []
        for call, process in self.recent:
            if call.provider in providers:
                half = half_of(call, process, watched)
                if half is not None:
                    halves.append(half)
        self.halves.remember(halves)
        self.recent = deque(((c, p) for c, p in self.recent if c.provider not in providers), maxlen=RECENT_REMEMBERED)

    def _link_halves(
        self,
        batch: WriteBatch,
        states: dict[str, TraceState],
        halves: list[Half],
        replaced: dict[CallKey, Call | None],
    ) -> None:
        """The half of drop_calls_answered_in_other_traces for calls without a response id: fills `replaced`."""
        paired = self.halves.pair(halves)
        for key in paired.again:  # merged before; its trace's call was recomputed since
            replaced[key] = None
        in_batch = {c.key: c for c in batch.calls}
        for kept, merged_in in paired.pairs:
            replaced[merged_in.key] = None
            owner = in_batch.get(kept.key)
            if owner is not None:  # both in this batch: one call of both traces' spans
                merged = merge_group(_member_spans(owner, states) + _member_spans(in_batch[merged_in.key], states))
                if merged.key == owner.key:
                    replaced[owner.key] = merged
        for half in paired.ambiguous:
            counter = ("failed_calls_unlinked" if half.failed else "sdk_calls_unlinked", "")
            batch.counters[counter] = batch.counters.get(counter, 0) + 1


def _owner_of_group(
    group: list[Call],
    prior: tuple[CallKey, int, int] | None,
    states: dict[str, TraceState],
    replaced: dict[CallKey, Call | None],
) -> Call | None:
    """The call of a batch that keeps a response several of its calls name (None: an earlier
    commit's does); fills `replaced` with the ones dropped and the owner merged with them."""
    group.sort(key=lambda c: (c.start_ns, -c.end_ns))
    owner: Call | None = None
    for call in group:
        if prior is not None and prior[0][0] != call.trace_id and _nested_calls(call, prior[1], prior[2]):
            replaced[call.key] = None
        elif (
            owner is not None and owner.trace_id != call.trace_id and _nested_calls(call, owner.start_ns, owner.end_ns)
        ):
            replaced[call.key] = None
            merged = merge_group(_member_spans(owner, states) + _member_spans(call, states))
            if merged.key == owner.key:  # the outer one keeps its identity
                owner = replaced[owner.key] = merged
        elif owner is None:
            owner = call
    return owner


def _apply(replaced: dict[CallKey, Call | None], batch: WriteBatch, states: dict[str, TraceState]) -> int:
    """Drop and replace calls in the batch and in their traces' states; returns how many were dropped."""
    kept: list[Call] = []
    for call in batch.calls:
        new = replaced.get(call.key, call)
        state = states.get(call.trace_id)
        if new is None:
            if state is not None:
                state.calls.pop(call.key, None)
            continue
        if new is not call and state is not None:
            state.calls[call.key] = new
        kept.append(new)
    dropped = len(batch.calls) - len(kept)
    batch.calls = kept
    return dropped


def _member_spans(call: Call, states: dict[str, TraceState]) -> list[LlmSpan]:
    state = states.get(call.trace_id)
    held = state.spans if state is not None else {}
    return [held[span_id] for span_id in call.member_span_ids if span_id in held]


def _nested_calls(call: Call, start_ns: int, end_ns: int) -> bool:
    """Whether the call and the interval lie one inside the other (within clock skew)."""
    inside = start_ns - CLOCK_SKEW_NS <= call.start_ns and call.end_ns <= end_ns + CLOCK_SKEW_NS
    around = call.start_ns - CLOCK_SKEW_NS <= start_ns and end_ns <= call.end_ns + CLOCK_SKEW_NS
    return inside or around
