"""Bounded queue + single writer thread: merge spans into calls, group-commit, acknowledge.

Receivers decode, redact and normalize on their own threads, then submit a Work item
and wait for its future: the future resolves only after the transaction holding it
committed, so a 2xx answer means the data is on disk. Concurrent exports share one
transaction (group commit). A full queue refuses new work at once (QueueFull -> 429).
"""

from __future__ import annotations

import dataclasses
import logging
import threading
import time
from collections import OrderedDict, deque
from collections.abc import Iterable
from concurrent.futures import Future
from dataclasses import dataclass, field

from collector.merge import calls_of_trace, merge_group
from collector.records import Call, LlmSpan, PromptHashHint
from collector.store.writer import LedgerWriter, WriteBatch
from collector.tracecache import SeenTraces, TraceCache, TraceState

log = logging.getLogger("breakeven.pipeline")
WARM_WINDOW_SECONDS = 6 * 3600


class QueueFull(Exception):
    """The ingest queue is at its bound; the client should retry later."""


class PipelineStopped(Exception):
    """The pipeline is shutting down and takes no more work."""


@dataclass(slots=True)
class Work:
    """What one export hands to the writer."""

    spans: list[LlmSpan] = field(default_factory=list)
    hints: list[PromptHashHint] = field(default_factory=list)
    counters: dict[tuple[str, str], int] = field(default_factory=dict)

    @property
    def weight(self) -> int:
        """Its size against the queue bound."""
        return max(1, len(self.spans) + len(self.hints))


@dataclass(slots=True)
class _Pending:
    work: Work
    future: Future[None]


class Pipeline:
    """The single writer of its process and the queue in front of it."""

    def __init__(self, writer: LedgerWriter, queue_max_spans: int, batch_max_spans: int, cache_traces: int) -> None:
        self.writer = writer
        self.queue_max = queue_max_spans
        self.batch_max = batch_max_spans
        self.cache = TraceCache(cache_traces)
        self.seen = SeenTraces()
        self._hints: OrderedDict[tuple[str, str], str] = OrderedDict()
        self._queue: deque[_Pending] = deque()
        self._queued_weight = 0
        self._cond = threading.Condition()
        self._running = False
        self._thread: threading.Thread | None = None
        self.commit_seconds_last = 0.0
        self.commits = 0

    # ------------------------------------------------------------ lifecycle

    def start(self) -> None:
        """Warm the seen-trace filter from the database and start the writer thread."""
        since_us = int((time.time() - WARM_WINDOW_SECONDS) * 1e6)
        for trace_id in self.writer.trace_ids_received_since(since_us, self.seen.capacity):
            self.seen.add(trace_id)
        self._running = True
        self._thread = threading.Thread(target=self._run, name="breakeven-writer", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 30.0) -> None:
        """Stop taking work, commit what is queued, and end the writer thread."""
        with self._cond:
            self._running = False
            self._cond.notify_all()
        if self._thread is not None:
            self._thread.join(timeout)

    @property
    def writer_alive(self) -> bool:
        """Whether the writer thread is running."""
        return self._thread is not None and self._thread.is_alive()

    @property
    def depth(self) -> int:
        """Queued weight (spans and hints) not yet committed."""
        return self._queued_weight

    # ------------------------------------------------------------ intake

    def submit(self, work: Work) -> Future[None]:
        """Queue work; the future resolves once it is committed. Raises QueueFull."""
        future: Future[None] = Future()
        with self._cond:
            if not self._running:
                raise PipelineStopped("the collector is shutting down")
            if self._queued_weight + work.weight > self.queue_max and self._queue:
                raise QueueFull(f"ingest queue is full ({self._queued_weight} spans waiting)")
            self._queue.append(_Pending(work, future))
            self._queued_weight += work.weight
            self._cond.notify()
        return future

    # ------------------------------------------------------------ writer thread

    def _take(self) -> list[_Pending]:
        with self._cond:
            while not self._queue and self._running:
                self._cond.wait(0.5)
            taken: list[_Pending] = []
            weight = 0
            while self._queue and (not taken or weight + self._queue[0].work.weight <= self.batch_max):
                item = self._queue.popleft()
                weight += item.work.weight
                taken.append(item)
            return taken

    def _run(self) -> None:
        while True:
            taken = self._take()
            if not taken:
                if not self._running:
                    return
                continue
            started = time.perf_counter()
            try:
                batch, states = self._build([p.work for p in taken])
                self.writer.write(batch, int(time.time() * 1e6))
            except Exception as exc:
                log.warning("commit failed, %d exports refused: %s", len(taken), exc)
                for pending in taken:
                    pending.future.set_exception(exc)
            else:
                self._remember(states)
                for pending in taken:
                    pending.future.set_result(None)
            finally:
                with self._cond:
                    self._queued_weight -= sum(p.work.weight for p in taken)
                self.commit_seconds_last = time.perf_counter() - started
                self.commits += 1

    def _build(self, works: Iterable[Work]) -> tuple[WriteBatch, dict[str, TraceState]]:
        """Merge new spans with what is known of their traces; mutate nothing shared."""
        batch = WriteBatch()
        by_trace: dict[str, list[LlmSpan]] = {}
        for work in works:
            for name_reason, value in work.counters.items():
                batch.counters[name_reason] = batch.counters.get(name_reason, 0) + value
            for span in work.spans:
                by_trace.setdefault(span.trace_id, []).append(span)
            batch.hints.extend(work.hints)

        states = self._known_states(by_trace)
        duplicates = 0
        calls_before = calls_after = 0
        for trace_id, spans in by_trace.items():
            old = states.get(trace_id)
            held = dict(old.spans) if old else {}
            fresh: list[LlmSpan] = []
            for span in spans:
                if span.span_id in held:
                    duplicates += 1
                    continue
                if span.prompt_hash is None:
                    hinted = self._hints.get(span.key)
                    if hinted is not None:
                        span = dataclasses.replace(span, prompt_hash=hinted)
                held[span.span_id] = span
                fresh.append(span)
            if not fresh:
                continue
            if old is None and len(fresh) == 1:
                calls: list[Call] = [merge_group(fresh)]
            else:
                calls = calls_of_trace(list(held.values()))
            new_calls = {c.key: c for c in calls}
            old_calls = old.calls if old else {}
            batch.replaced_calls.extend(k for k, c in old_calls.items() if new_calls.get(k) != c)
            batch.calls.extend(c for k, c in new_calls.items() if old_calls.get(k) != c)
            batch.new_spans.extend(fresh)
            calls_before += len(old_calls)
            calls_after += len(new_calls)
            states[trace_id] = TraceState(held, new_calls)

        self._apply_hints_to_states(batch.hints, states)
        for key, value in (
            (("llm_spans_stored", ""), len(batch.new_spans)),
            (("duplicates_ignored", ""), duplicates),
            (("calls_stored", ""), calls_after - calls_before),
            (("spans_merged", ""), len(batch.new_spans) - (calls_after - calls_before)),
        ):
            if value:
                batch.counters[key] = batch.counters.get(key, 0) + value
        return batch, states

    def _known_states(self, by_trace: dict[str, list[LlmSpan]]) -> dict[str, TraceState]:
        states: dict[str, TraceState] = {}
        to_load: list[str] = []
        for trace_id in by_trace:
            state = self.cache.get(trace_id)
            if state is not None:
                states[trace_id] = state
            elif self.seen.maybe_seen(trace_id):
                to_load.append(trace_id)
        if to_load:
            loaded: dict[str, list[LlmSpan]] = {}
            for span in self.writer.spans_of_traces(to_load):
                loaded.setdefault(span.trace_id, []).append(span)
            for trace_id, spans in loaded.items():
                calls = calls_of_trace(spans)
                states[trace_id] = TraceState({s.span_id: s for s in spans}, {c.key: c for c in calls})
        return states

    def _apply_hints_to_states(self, hints: list[PromptHashHint], states: dict[str, TraceState]) -> None:
        """Put log-borne prompt hashes on the spans and calls they name (copies, never the cache's)."""
        for hint in hints:
            state = states.get(hint.trace_id) or self.cache.get(hint.trace_id)
            span = state.spans.get(hint.span_id) if state else None
            if state is None or span is None:
                self._hints[(hint.trace_id, hint.span_id)] = hint.prompt_hash
                while len(self._hints) > 10_000:
                    self._hints.popitem(last=False)
                continue
            if span.prompt_hash is not None:
                continue
            spans = {**state.spans, hint.span_id: dataclasses.replace(span, prompt_hash=hint.prompt_hash)}
            calls = {
                k: dataclasses.replace(c, prompt_hash=hint.prompt_hash)
                if hint.span_id in c.member_span_ids and c.prompt_hash is None
                else c
                for k, c in state.calls.items()
            }
            states[hint.trace_id] = TraceState(spans, calls)

    def _remember(self, states: dict[str, TraceState]) -> None:
        for trace_id, state in states.items():
            slim = {
                sid: (dataclasses.replace(s, attributes={}) if s.attributes else s) for sid, s in state.spans.items()
            }
            self.cache.put(trace_id, TraceState(slim, state.calls))
            self.seen.add(trace_id)
