"""Cross-trace linking by response id: CrossTraceLinks against the loop it replaced, batch after batch."""

from __future__ import annotations

import copy
import random
from collections import OrderedDict

import pytest

from breakeven.collector.calls import crosstrace
from breakeven.collector.calls.crosstrace import CrossTraceLinks
from breakeven.collector.calls.halves import HalfMemory
from breakeven.collector.calls.merge import CLOCK_SKEW_NS, call_of_span, merge_group
from breakeven.collector.calls.tracecache import TraceState
from breakeven.collector.records import Call, WriteBatch
from tests.spans import T0, llm

MS = 1_000_000


class ReferenceLinks:
    """The response-id half as the pipeline first wrote it: one list per response id."""

    def __init__(self) -> None:
        self.responses: OrderedDict[tuple[str | None, str], tuple[tuple[str, str], int, int]] = OrderedDict()
        self.halves = HalfMemory()

    def drop(self, batch: WriteBatch, states: dict[str, TraceState]) -> int:
        groups = _by_response(batch)
        if not groups:
            return 0
        replaced: dict[tuple[str, str], Call | None] = {}
        for key, group in groups.items():
            owner = self._link(key, group, states, replaced)
            if owner is not None:
                self.responses[key] = (owner.key, owner.start_ns, owner.end_ns)
                self.responses.move_to_end(key)
        while len(self.responses) > crosstrace.RESPONSES_REMEMBERED:
            self.responses.popitem(last=False)
        if not replaced:
            return 0
        return _replace(batch, replaced, states)

    def _link(
        self,
        key: tuple[str | None, str],
        group: list[Call],
        states: dict[str, TraceState],
        replaced: dict[tuple[str, str], Call | None],
    ) -> Call | None:
        """One response id's calls of a batch: marks the ones to drop or merge, returns its owner."""
        if len(group) > 1:
            group.sort(key=lambda c: (c.start_ns, -c.end_ns))
        prior = self.responses.get(key)
        owner: Call | None = None
        for call in group:
            if prior is not None and prior[0][0] != call.trace_id and _nested(call, prior[1], prior[2]):
                replaced[call.key] = None
            elif owner is not None and owner.trace_id != call.trace_id and _nested(call, owner.start_ns, owner.end_ns):
                replaced[call.key] = None
                merged = merge_group(_members(owner, states) + _members(call, states))
                if merged.key == owner.key:
                    owner = replaced[owner.key] = merged
            elif owner is None:
                owner = call
        return owner


def _by_response(batch: WriteBatch) -> dict[tuple[str | None, str], list[Call]]:
    groups: dict[tuple[str | None, str], list[Call]] = {}
    for call in batch.calls:
        if call.response_id is not None:
            groups.setdefault((call.provider, call.response_id), []).append(call)
    return groups


def _replace(batch: WriteBatch, replaced: dict[tuple[str, str], Call | None], states: dict[str, TraceState]) -> int:
    """Drops (None) or swaps the replaced calls in the batch and their trace states; returns how many went."""
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


def _nested(call: Call, start_ns: int, end_ns: int) -> bool:
    inside = start_ns - CLOCK_SKEW_NS <= call.start_ns and call.end_ns <= end_ns + CLOCK_SKEW_NS
    around = call.start_ns - CLOCK_SKEW_NS <= start_ns and end_ns <= call.end_ns + CLOCK_SKEW_NS
    return inside or around


def _members(call: Call, states: dict[str, TraceState]) -> list:
    held = states[call.trace_id].spans if call.trace_id in states else {}
    return [held[s] for s in call.member_span_ids if s in held]


def _random_batch(rng: random.Random, number: int) -> tuple[WriteBatch, dict[str, TraceState]]:
    """Lone-span traces; a few response ids named more than once, in and around each other's time."""
    batch, states = WriteBatch(), {}
    for i in range(rng.randint(1, 30)):
        trace_id = f"{number:08x}{i:024x}"
        start = rng.choice([0, 0, 100, 400, 2_000]) * MS
        response_id = rng.choice([None, f"r{rng.randint(0, 12)}", f"r{rng.randint(0, 12)}"])
        # the anthropic SDK's own spans name the response (without one, halves.py's rule links them)
        emitter = rng.choice(["tests", "com.anthropic.sdk.python"]) if response_id else "tests"
        span = llm(
            f"{number:08x}{i:08x}",
            start=start // MS,
            end=(start // MS) + rng.choice([50, 300, 1_000, 3_000]),
            trace_id=trace_id,
            provider=rng.choice(["openai", "anthropic"]),
            response_id=response_id,
            output_tokens=rng.choice([20, 21]),
            emitter=emitter,
        )
        call = call_of_span(span)
        batch.calls.append(call)
        states[trace_id] = TraceState({span.span_id: span}, {call.key: call})
    return batch, states


def _outcome(batch: WriteBatch, states: dict[str, TraceState], dropped: int) -> tuple:
    return (dropped, batch.calls, {t: dict(s.calls) for t, s in states.items()}, batch.counters)


@pytest.mark.parametrize("seed", range(6))
def test_linking_equals_the_loop_it_replaced(seed: int) -> None:
    rng = random.Random(seed)
    ours, reference = CrossTraceLinks(), ReferenceLinks()
    for number in range(40):
        batch, states = _random_batch(rng, number)
        their_batch, their_states = copy.deepcopy((batch, states))
        got = ours.drop_calls_answered_in_other_traces(batch, states)
        want = reference.drop(their_batch, their_states)
        assert _outcome(batch, states, got) == _outcome(their_batch, their_states, want)
        assert list(ours.responses.items()) == list(reference.responses.items())  # the same order: the same evictions


def test_the_oldest_responses_go_first(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(crosstrace, "RESPONSES_REMEMBERED", 3)
    links = CrossTraceLinks()
    for number, response in enumerate(["a", "b", "a", "c", "d"]):
        span = llm(
            f"{number:016x}",
            trace_id=f"{number:032x}",
            start=number * 10_000,
            end=number * 10_000 + 1_000,
            response_id=response,
        )
        call = call_of_span(span)
        batch = WriteBatch(calls=[call])
        links.drop_calls_answered_in_other_traces(batch, {call.trace_id: TraceState({span.span_id: span})})
    assert [r for _, r in links.responses] == ["a", "c", "d"]
    assert links.responses[("openai", "a")][1] == T0 + 20_000 * MS  # the later call holds it now
