"""A failed call across two traces: which two failed calls are one (collector/calls/crosstrace.py links them).

A failed call has no provider response id to link its two traces by (the provider client's
own tracing beside the instrumentation's, docs/one-call-one-record.md), so two failures are
one call only when each is the other's only candidate under halves_of_one_call, among every
failure seen (FailureMemory).
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass, field

from breakeven.collector.records import Call

# Provider clients that trace their own calls, each in a trace of its own beside an
# instrumentation library's (evidence: tests/fixtures/emitters/README.md): their scopes.
SELF_TRACING_SCOPES = frozenset({"com.anthropic.sdk.python"})
FAILURES_REMEMBERED = 10_000


def is_self_traced(emitter: str) -> bool:
    """Whether a call's emitter (scope[@version]) is a provider client's own tracing."""
    name, _, _version = emitter.partition("@")
    return name in SELF_TRACING_SCOPES


@dataclass(frozen=True, slots=True)
class Failure:
    """A failed call without a response id, as the cross-trace rule compares it."""

    key: tuple[str, str]  # the call's (trace id, span id)
    start_ns: int
    end_ns: int
    self_traced: bool  # the provider client's own span (SELF_TRACING_SCOPES)
    origin: tuple[str | None, ...]  # provider, request model, operation, service, process
    prompt_hash: str | None


def failure_of(call: Call, process: str | None) -> Failure | None:
    """The call as the cross-trace rule sees it; None when the rule is not for it.

    process: the sending process of the call's own span (LlmSpan.process).
    """
    if call.status != "error" or call.response_id is not None or call.provider is None or not call.request_model:
        return None
    origin = (call.provider, call.request_model, call.operation, call.service, process)
    return Failure(call.key, call.start_ns, call.end_ns, is_self_traced(call.emitter), origin, call.prompt_hash)


def halves_of_one_call(a: Failure, b: Failure) -> bool:
    """Whether two failed calls could be one call seen twice: by the client's own tracing,
    in its own trace, and by the instrumentation around it (docs/one-call-one-record.md).

    Every test is one that a real pair always passes: one process made both spans, so they
    name the same provider, request model, operation, service and process, the same prompt
    when both carry one, and the client's span lies inside the instrumentation's (one
    clock: no skew allowed). Whether each is the other's only candidate is FailureMemory.pair's test.
    """
    if a.key[0] == b.key[0] or a.self_traced == b.self_traced or a.origin != b.origin:
        return False
    if a.prompt_hash is not None and b.prompt_hash is not None and a.prompt_hash != b.prompt_hash:
        return False
    client, caller = (a, b) if a.self_traced else (b, a)
    return caller.start_ns <= client.start_ns and client.end_ns <= caller.end_ns


def candidates(failures: Sequence[Failure]) -> dict[tuple[str, str], list[Failure]]:
    """Every failure's candidates among the others (halves_of_one_call), by key.

    A sweep over start times: a call can only contain one that starts before it ends.
    """
    found: dict[tuple[str, str], list[Failure]] = {f.key: [] for f in failures}
    ordered = sorted(failures, key=lambda f: (f.start_ns, -f.end_ns, f.key))
    for i, a in enumerate(ordered):
        for b in ordered[i + 1 :]:
            if b.start_ns > a.end_ns:
                break
            if halves_of_one_call(a, b):
                found[a.key].append(b)
                found[b.key].append(a)
    return found


@dataclass(slots=True)
class FailurePairs:
    """What FailureMemory.pair decided for one batch."""

    pairs: list[tuple[Failure, Failure]] = field(default_factory=list)  # (the one kept, the one merged in)
    again: dict[tuple[str, str], tuple[str, str]] = field(default_factory=dict)  # linked before: key -> kept key
    ambiguous: int = 0  # new failures left alone because they had more than one candidate


class FailureMemory:
    """Links failed calls across traces and batches: a pair merges only when each is the
    other's only candidate among every failure seen (halves_of_one_call).

    Remembers the last FAILURES_REMEMBERED failures without a partner: those with no
    candidate yet may still pair (the other half may come in a later batch); those that
    had one but did not pair are kept as witnesses (never paired, but a candidate all the
    same, so that they make a later pair ambiguous). It also remembers which calls were
    linked, so one that comes back (its trace's call recomputed) stays linked.
    """

    def __init__(self, limit: int = FAILURES_REMEMBERED) -> None:
        self.limit = limit
        self._seen: OrderedDict[tuple[str, str], Failure] = OrderedDict()
        self._witnesses: set[tuple[str, str]] = set()
        self._by_origin: dict[tuple[str | None, ...], set[tuple[str, str]]] = {}
        self._linked: OrderedDict[tuple[str, str], tuple[str, str]] = OrderedDict()

    def __len__(self) -> int:
        return len(self._seen)

    def pair(self, new: Sequence[Failure]) -> FailurePairs:
        """Pair a batch's failures with each other and with the remembered ones.

        In each pair the remembered failure (already stored) is kept, else the caller's
        (the instrumentation's, around the client's own span).
        """
        out = FailurePairs()
        fresh = self._fresh(new, out.again)
        if not fresh:
            return out
        pool, witnesses = self._pool(fresh)
        found = candidates(pool)
        out.pairs, paired = _choose_pairs(fresh, found, witnesses)
        self._link(out.pairs)
        out.ambiguous += self._keep_unpaired(pool, fresh, found, witnesses, paired)
        self._trim()
        return out

    def _fresh(
        self, new: Sequence[Failure], again: dict[tuple[str, str], tuple[str, str]]
    ) -> dict[tuple[str, str], Failure]:
        """The batch's failures not linked before, by key; a call linked before goes into again instead."""
        fresh: dict[tuple[str, str], Failure] = {}
        for failure in new:
            linked_to = self._linked.get(failure.key)
            if linked_to is None:
                fresh[failure.key] = failure
            elif linked_to != failure.key:
                again[failure.key] = linked_to
        return fresh

    def _pool(self, fresh: dict[tuple[str, str], Failure]) -> tuple[list[Failure], set[tuple[str, str]]]:
        """The new failures and the remembered ones that could nest with them, and which of those are witnesses."""
        witnesses = {k for k in fresh if k in self._witnesses}
        for key in fresh:
            self._forget(key)  # a call that comes back is compared as it is now
        pool = list(fresh.values())
        for origin, (lo, hi) in _extents(pool).items():
            for key in self._by_origin.get(origin, ()):
                old = self._seen[key]
                if old.start_ns <= hi and lo <= old.end_ns:  # only overlapping ones can nest
                    pool.append(old)
                    if key in self._witnesses:
                        witnesses.add(key)
        return pool, witnesses

    def _link(self, pairs: list[tuple[Failure, Failure]]) -> None:
        """Remember the pairs as linked (each half to the kept key) and forget them as unpaired failures."""
        for a, b in pairs:
            self._forget(a.key)
            self._forget(b.key)
            for key in (a.key, b.key):
                self._linked[key] = a.key

    def _keep_unpaired(
        self,
        pool: list[Failure],
        fresh: dict[tuple[str, str], Failure],
        found: dict[tuple[str, str], list[Failure]],
        witnesses: set[tuple[str, str]],
        paired: set[tuple[str, str]],
    ) -> int:
        """Keep the new unpaired failures, mark those with a candidate as witnesses; count the new ambiguous ones."""
        ambiguous = 0
        for failure in pool:
            if failure.key in paired:
                continue
            if found[failure.key] or failure.key in witnesses:
                ambiguous += failure.key in fresh and bool(found[failure.key])
                self._witnesses.add(failure.key)
            if failure.key in fresh:
                self._seen[failure.key] = failure
                self._by_origin.setdefault(failure.origin, set()).add(failure.key)
        return ambiguous

    def _trim(self) -> None:
        """Forget the oldest failures and links past the limit."""
        while len(self._seen) > self.limit:
            self._forget(next(iter(self._seen)))
        while len(self._linked) > self.limit:
            self._linked.popitem(last=False)

    def _forget(self, key: tuple[str, str]) -> None:
        failure = self._seen.pop(key, None)
        self._witnesses.discard(key)
        if failure is not None:
            keys = self._by_origin[failure.origin]
            keys.discard(key)
            if not keys:
                del self._by_origin[failure.origin]


def _extents(failures: Sequence[Failure]) -> dict[tuple[str | None, ...], tuple[int, int]]:
    """Each origin's range of times (first start, last end) among the failures."""
    spans: dict[tuple[str | None, ...], tuple[int, int]] = {}
    for f in failures:
        lo, hi = spans.get(f.origin, (f.start_ns, f.end_ns))
        spans[f.origin] = (min(lo, f.start_ns), max(hi, f.end_ns))
    return spans


def _choose_pairs(
    fresh: dict[tuple[str, str], Failure],
    found: dict[tuple[str, str], list[Failure]],
    witnesses: set[tuple[str, str]],
) -> tuple[list[tuple[Failure, Failure]], set[tuple[str, str]]]:
    """The pairs (kept, merged) of a new failure and its only candidate, whose only candidate it is; and their keys."""
    pairs: list[tuple[Failure, Failure]] = []
    paired: set[tuple[str, str]] = set()
    for a in fresh.values():
        if len(found[a.key]) != 1 or a.key in paired:
            continue
        (b,) = found[a.key]
        if len(found[b.key]) != 1 or a.key in witnesses or b.key in witnesses:
            continue
        kept, merged = (b, a) if b.key not in fresh or a.self_traced else (a, b)
        pairs.append((kept, merged))
        paired |= {a.key, b.key}
    return pairs, paired
