"""The interpreter tuning `breakeven serve` applies once started (collector/cli.py)."""

from __future__ import annotations

import sys
from collections.abc import Iterator

import pytest

from breakeven.collector.ingest.tuning import GIL_SWITCH_INTERVAL_SECONDS, tune_thread_switching


@pytest.fixture
def restored_switch_interval() -> Iterator[None]:
    before = sys.getswitchinterval()
    yield
    sys.setswitchinterval(before)


@pytest.mark.usefixtures("restored_switch_interval")
def test_serve_hands_the_gil_over_in_a_fraction_of_a_millisecond() -> None:
    # DuckDB's bindings take the GIL back several times per statement; at CPython's 5 ms
    # slice each take can wait behind the event loop (scripts/bench_gil_handoff.py).
    sys.setswitchinterval(0.005)
    tune_thread_switching()
    assert sys.getswitchinterval() == pytest.approx(GIL_SWITCH_INTERVAL_SECONDS)
    assert GIL_SWITCH_INTERVAL_SECONDS < 0.001
