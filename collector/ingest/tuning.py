"""Interpreter tuning for the ingest path, applied by `breakeven serve` and by each decode process.

Both are about throughput of a long-running collector; docs/performance.md has the figures.
"""

from __future__ import annotations

import gc
import sys

GC_YOUNG_THRESHOLD = 50_000  # allocations between young collections (CPython's default: 700)
GIL_SWITCH_INTERVAL_SECONDS = 0.0002  # CPython's default: 0.005


def tune_garbage_collector() -> None:
    """Fewer, cheaper cycle collections for a long-running collector.

    Ingest allocates a few dicts and records per span, nearly all freed by reference
    counting; at CPython's default threshold the cycle collector runs every few spans and
    its older generations walk the whole trace cache. What start-up built (modules,
    settings, price tables) is frozen out of every collection; the young threshold is
    raised so a collection comes every few hundred spans.
    """
    gc.collect()
    gc.freeze()
    _, older, oldest = gc.get_threshold()
    gc.set_threshold(GC_YOUNG_THRESHOLD, older, oldest)


def tune_thread_switching() -> None:
    """Hand the GIL over after 0.2 ms rather than 5 ms when another thread waits for it.

    DuckDB's bindings release the GIL while a statement runs and take it back many times
    before it ends; each take waits out the running thread's slice. Beside a busy Python
    thread (the event loop, the decode processes' result thread) a short insert waits for
    whole slices (scripts/bench_gil_handoff.py measures it). The writer's commits are the
    server's critical path, so `serve` shortens the slice.
    """
    sys.setswitchinterval(GIL_SWITCH_INTERVAL_SECONDS)
