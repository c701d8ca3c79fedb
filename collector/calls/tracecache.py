"""What the writer remembers of recent traces, so spans of one call merge across exports.

TraceCache holds the LLM spans and calls of the most recent traces (bounded by count).
SeenTraces is a Bloom filter over every trace id stored since start (and warmed from
the database at start), in two rotating generations of fixed size: a trace that is
not in the cache but may have been seen is looked up in the database (the slow path
for late spans); a trace the filter has never seen is new, with no query, unless its
spans started before what the filter holds (SeenTraces.complete_since_ns).
"""

from __future__ import annotations

import time
from collections import OrderedDict
from dataclasses import dataclass, field

from breakeven.collector.records import Call, LlmSpan


@dataclass(slots=True)
class TraceState:
    """The LLM spans of one trace we hold, and the calls they make."""

    spans: dict[str, LlmSpan] = field(default_factory=dict)
    calls: dict[tuple[str, str], Call] = field(default_factory=dict)
    # None: every span of the trace this process stored (it was new here). A (lo, hi)
    # range in ns: loaded from the database; holds every stored span starting inside it.
    covers: tuple[int, int] | None = None

    def covers_window(self, lo: int, hi: int) -> bool:
        """Whether every stored span starting in [lo, hi] is held."""
        return self.covers is None or (self.covers[0] <= lo and hi <= self.covers[1])


class TraceCache:
    """Most recently touched traces first out of memory, bounded by count."""

    def __init__(self, max_traces: int) -> None:
        self.max_traces = max_traces
        self._states: OrderedDict[str, TraceState] = OrderedDict()

    def get(self, trace_id: str) -> TraceState | None:
        """The state of a trace, if it is still held."""
        return self._states.get(trace_id)

    def put(self, trace_id: str, state: TraceState) -> bool:
        """Hold (or refresh) a trace's state, evicting the least recently touched; whether it was held."""
        states = self._states
        held = trace_id in states
        states[trace_id] = state
        if held:
            states.move_to_end(trace_id)
        while len(states) > self.max_traces:
            states.popitem(last=False)
        return held

    def __len__(self) -> int:
        return len(self._states)

    def __contains__(self, trace_id: str) -> bool:
        return trace_id in self._states


class SeenTraces:
    """A two-generation Bloom filter of trace ids; false positives cost one query.

    complete_since_ns: every trace stored at or after this time (the ledger's received_at)
    is in the filter: the warm-up's start (Pipeline.start), then, whenever the oldest
    generation is dropped, the time the one kept began. A trace stored before may be
    missing, so the pipeline looks up a span that started before it (pipeline._before_memory):
    a re-sent span is recognised at any age, and new traffic still costs no query.

    Its two hot loops run in C (collector/calls/_bloom.c) where that was built, else in Python
    (_set_bits, _any_generation_has): the same bits either way.
    """

    HASHES = 6

    def __init__(self, bits_per_generation: int = 1 << 26, capacity: int = 4_000_000) -> None:
        self.bits = bits_per_generation
        self.capacity = capacity
        self._current = bytearray(self.bits // 8)
        self._previous = bytearray(self.bits // 8)
        self._count = 0
        self.complete_since_ns = 0
        self._current_since_ns = 0  # every trace stored since is in the current generation or later

    def warm(self, trace_ids: list[str], complete_since_ns: int) -> None:
        """Start from these trace ids: every trace stored since complete_since_ns (ns) among them."""
        self.add_all(trace_ids)
        self.complete_since_ns = self._current_since_ns = complete_since_ns

    def add(self, trace_id: str) -> None:
        """Remember a trace id."""
        self.add_all([trace_id])

    def add_all(self, trace_ids: list[str]) -> None:
        """Remember these trace ids, a new generation starting whenever one is full."""
        done = 0
        while done < len(trace_ids):
            if self._count >= self.capacity:
                self._previous, self._current = self._current, bytearray(self.bits // 8)
                self._count = 0
                # Ids are added after their commit: a trace stored from now on lands in the new
                # generation, and the one kept holds every trace stored since it began.
                self.complete_since_ns = self._current_since_ns
                self._current_since_ns = time.time_ns()
            chunk = trace_ids[done : done + self.capacity - self._count]
            _set_bits(self.bits, self.HASHES, self._current, chunk)
            self._count += len(chunk)
            done += len(chunk)

    def maybe_seen(self, trace_id: str) -> bool:
        """False: never seen. True: probably seen (or a false positive)."""
        return _any_generation_has(self.bits, self.HASHES, self._current, self._previous, trace_id)


def _probes(hashes: int, trace_id: str) -> range:
    """The trace id's positions before reduction modulo the filter's size.

    The filter lives in one process (warmed from the database at start), so the process's
    own string hash will do: its two 32-bit halves are the two hashes of double hashing
    (h1 + i * h2), enough for filters of up to 2**32 bits.
    """
    h = hash(trace_id)
    h1 = h & 0xFFFFFFFF
    h2 = (h >> 32 & 0xFFFFFFFF) | 1
    return range(h1, h1 + hashes * h2, h2)


def _py_set_bits(bits: int, hashes: int, current: bytearray, trace_ids: list[str]) -> None:
    for trace_id in trace_ids:
        for probe in _probes(hashes, trace_id):
            pos = probe % bits
            current[pos >> 3] |= 1 << (pos & 7)


def _py_any_generation_has(bits: int, hashes: int, current: bytearray, previous: bytearray, trace_id: str) -> bool:
    """Whether each of the id's bits is set in one generation; both are probed together,
    stopping at the first position clear in both (a new id's first, as a rule)."""
    in_current = in_previous = True
    for probe in _probes(hashes, trace_id):
        pos = probe % bits
        byte, mask = pos >> 3, 1 << (pos & 7)
        in_current = in_current and current[byte] & mask != 0
        in_previous = in_previous and previous[byte] & mask != 0
        if not (in_current or in_previous):
            return False
    return True


try:
    from breakeven.collector.calls._bloom import add_all as _set_bits
    from breakeven.collector.calls._bloom import maybe_seen as _any_generation_has

    native_filter = True
except ImportError:  # not built (no C compiler): the same bits in Python
    _set_bits, _any_generation_has = _py_set_bits, _py_any_generation_has
    native_filter = False
