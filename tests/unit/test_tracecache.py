"""The seen-trace Bloom filter: the bits it sets and the answers it gives, against a plain reference."""

from __future__ import annotations

import random

import pytest

from breakeven.collector.calls import tracecache
from breakeven.collector.calls.tracecache import SeenTraces, TraceCache, TraceState

IMPLEMENTATIONS = [
    pytest.param("native", id="C (collector/calls/_bloom.c)", marks=pytest.mark.skipif(
        not tracecache.native_filter, reason="collector/calls/_bloom.c was not built")),
    pytest.param("python", id="Python"),
]  # fmt: skip


@pytest.fixture(params=IMPLEMENTATIONS)
def loops(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """The filter's hot loops: the C ones where built, and the Python ones they stand in for."""
    if request.param == "python":
        monkeypatch.setattr(tracecache, "_set_bits", tracecache._py_set_bits)
        monkeypatch.setattr(tracecache, "_any_generation_has", tracecache._py_any_generation_has)
    return str(request.param)


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
@pytest.mark.parametrize("batched", [False, True], ids=["one by one", "in batches"])
def test_the_filter_sets_the_reference_bits_and_answers_alike(
    loops: str, batched: bool, bits: int, capacity: int, added: int
) -> None:
    rng = random.Random(bits + capacity + added)
    ours, reference = SeenTraces(bits, capacity), ReferenceFilter(bits, capacity)
    stored, others = _ids(rng, added), _ids(rng, 2_000)
    answers = []
    done = 0
    while done < len(stored):
        batch = stored[done : done + (rng.randint(1, 2 * capacity) if batched else 1)]  # across rotations too
        answers += [(ours.maybe_seen(t), reference.maybe_seen(t)) for t in batch]
        ours.add_all(batch) if batched else ours.add(batch[0])
        for trace_id in batch:
            reference.add(trace_id)
        done += len(batch)
    assert ours._current == reference.current
    assert ours._previous == reference.previous
    answers += [(ours.maybe_seen(t), reference.maybe_seen(t)) for t in stored + others]
    assert all(a == b for a, b in answers)
    assert all(ours.maybe_seen(t) for t in stored[-capacity:])  # no false negatives within the two generations


def test_the_cache_keeps_the_most_recently_touched() -> None:
    cache = TraceCache(2)
    for trace_id in ("a", "b", "a", "c"):
        cache.put(trace_id, TraceState())
    assert "a" in cache
    assert "c" in cache
    assert "b" not in cache
    assert len(cache) == 2


def test_the_native_loops_refuse_a_filter_smaller_than_its_bits() -> None:
    if not tracecache.native_filter:
        pytest.skip("collector/calls/_bloom.c was not built")
    with pytest.raises(ValueError, match="fewer bits"):
        tracecache._set_bits(1 << 12, 6, bytearray(10), ["a"])
    with pytest.raises(ValueError, match="fewer bits"):
        tracecache._any_generation_has(0, 6, bytearray(10), bytearray(10), "a")
