"""The seen-trace Bloom filter: the bits it sets and the answers it gives, against a plain reference."""

from __future__ import annotations

import random

import pytest

from collector.tracecache import SeenTraces, TraceCache, TraceState


class ReferenceFilter:
    """The filter as first written: the same double hashing, every position listed, any() of all()."""

    def __init__(self, bits: int, capacity: int) -> None:
        self.bits, self.capacity = bits, capacity
        self.current, self.previous = bytearray(bits // 8), bytearray(bits // 8)
        self.count = 0

    def positions(self, trace_id: str) -> list[int]:
        h = hash(trace_id)
        h1, h2 = h & 0xFFFFFFFF, (h >> 32 & 0xFFFFFFFF) | 1
        return [(h1 + i * h2) % self.bits for i in range(SeenTraces.HASHES)]

    def add(self, trace_id: str) -> None:
        if self.count >= self.capacity:
            self.previous, self.current = self.current, bytearray(self.bits // 8)
            self.count = 0
        for pos in self.positions(trace_id):
            self.current[pos >> 3] |= 1 << (pos & 7)
        self.count += 1

    def maybe_seen(self, trace_id: str) -> bool:
        positions = self.positions(trace_id)
        return any(all(bits[p >> 3] & 1 << (p & 7) for p in positions) for bits in (self.current, self.previous))


def _ids(rng: random.Random, n: int) -> list[str]:
    return [f"{rng.getrandbits(128):032x}" for _ in range(n)]


@pytest.mark.parametrize(
    ("bits", "capacity", "added"),
    [
        pytest.param(1 << 12, 1_000, 50, id="sparse"),
        pytest.param(1 << 12, 1_000, 900, id="nearly full: false positives"),
        pytest.param(1 << 12, 300, 1_000, id="rotated three times"),
        pytest.param(3 * 1024, 200, 450, id="a size that is not a power of two"),
    ],
)
def test_the_filter_sets_the_reference_bits_and_answers_alike(bits: int, capacity: int, added: int) -> None:
    rng = random.Random(bits + capacity + added)
    ours, reference = SeenTraces(bits, capacity), ReferenceFilter(bits, capacity)
    stored, others = _ids(rng, added), _ids(rng, 2_000)
    answers = []
    for trace_id in stored:
        answers.append((ours.maybe_seen(trace_id), reference.maybe_seen(trace_id)))
        ours.add(trace_id)
        reference.add(trace_id)
    assert ours._current == reference.current and ours._previous == reference.previous
    answers += [(ours.maybe_seen(t), reference.maybe_seen(t)) for t in stored + others]
    assert all(a == b for a, b in answers)
    assert all(ours.maybe_seen(t) for t in stored[-capacity:])  # no false negatives within the two generations


def test_the_cache_keeps_the_most_recently_touched() -> None:
    cache = TraceCache(2)
    for trace_id in ("a", "b", "a", "c"):
        cache.put(trace_id, TraceState())
    assert "a" in cache and "c" in cache and "b" not in cache and len(cache) == 2
