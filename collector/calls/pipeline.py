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
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from dataclasses import dataclass

import sqlalchemy as sa

from breakeven.collector.calls.crosstrace import CrossTraceLinks
from breakeven.collector.calls.merge import call_of_span, calls_of_new_trace, calls_of_trace, spans_by_trace
from breakeven.collector.calls.tracecache import SeenTraces, TraceCache, TraceState
from breakeven.collector.records import Call, CallPrice, LlmSpan, PromptHashHint, SpanKey, Work, WriteBatch
from breakeven.collector.store.shared import LockedLedger, locked
from breakeven.collector.store.writer import TRACE_LOOKUP_WINDOW_NS, LedgerWriter

log = logging.getLogger("breakeven.pipeline")
WARM_WINDOW_SECONDS = 6 * 3600
# On a shared PostgreSQL a commit holds an advisory lock per trace (and per provider response
# of its calls) until it ends; PostgreSQL's lock table holds max_locks_per_transaction x
# max_connections of them in all (6,400 by default). A group commit of more traces is made
# as several commits of at most this many, each holding at most twice as many locks.
TRACES_PER_LOCKED_COMMIT = 512


class QueueFull(Exception):
    """The ingest queue is at its bound; the client should retry later."""


class PipelineStopped(Exception):
    """The pipeline is shutting down and takes no more work."""


@dataclass(slots=True)
class _Pending:
    work: Work
    future: Future[None]


class Pipeline:
    """The single writer of its process and the queue in front of it."""

    def __init__(
        self,
        writer: LedgerWriter,
        queue_max_spans: int,
        batch_max_spans: int,
        cache_traces: int,
        price: Callable[[Call], CallPrice] | None = None,
    ) -> None:
        self.writer = writer
        self.price = price
        # PostgreSQL may be shared by several collectors: each commit locks its traces and
        # reads what is stored of them, whatever this one remembers (_commit_shared).
        self.shared_store = not writer.is_duckdb
        self.queue_max = queue_max_spans
        self.batch_max = batch_max_spans
        self.cache = TraceCache(cache_traces)
        self.seen = SeenTraces()
        self._hints: OrderedDict[tuple[str, str], str] = OrderedDict()
        self._links = CrossTraceLinks()  # calls of other traces that name one provider response
        self._queue: deque[_Pending] = deque()
        self._queued_weight = 0
        self._cond = threading.Condition()
        self._running = False
        self._thread: threading.Thread | None = None
        self.commit_seconds_last = 0.0
        self.commits = 0
        self.on_commit: Callable[[float, list[Future[None]]], None] = lambda seconds, futures: None  # metrics.py

    # ------------------------------------------------------------ lifecycle

    def start(self) -> None:
        """Warm the seen-trace filter from the database (not a shared one, where every trace
        is read: _commit_shared) and start the writer thread."""
        if not self.shared_store:
            since_us = int((time.time() - WARM_WINDOW_SECONDS) * 1e6)
            trace_ids, complete_since_us = self.writer.trace_ids_received_since(since_us, self.seen.capacity)
            self.seen.warm(trace_ids, complete_since_us * 1000)
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
                self._commit(taken)
            except Exception as exc:
                # One bad export (say a string PostgreSQL will not store) must not fail the
                # others that shared its transaction: commit them one by one.
                alone = taken if len(taken) > 1 else []
                failed = [p for p in alone if not self._commit_alone(p)] if alone else taken
                log.warning("commit failed, %d of %d exports refused: %s", len(failed), len(taken), exc)
                for pending in taken if not alone else []:
                    pending.future.set_exception(exc)
            finally:
                with self._cond:
                    self._queued_weight -= sum(p.work.weight for p in taken)
                self.commit_seconds_last = time.perf_counter() - started
                self.commits += 1
                self.on_commit(self.commit_seconds_last, [p.future for p in taken])

    def _commit(self, taken: list[_Pending]) -> None:
        works = [p.work for p in taken]
        if self.shared_store:
            self._commit_shared(works)
        else:
            batch, states = self._build(works)
            self.writer.write(batch, int(time.time() * 1e6))
            self._remember(batch, states)
        for pending in taken:
            pending.future.set_result(None)

    def _commit_shared(self, works: Sequence[Work]) -> None:
        """Commit on a PostgreSQL that other collectors may share: exactly the ledger one
        collector would make, whichever collector each span reached and in whatever order.

        Each commit first takes an advisory lock per trace it touches (store/shared.py), so
        no other collector commits to those traces meanwhile; then reads what is stored of
        them, whatever this collector remembers (another may have stored spans since), merges
        the new spans into that, and replaces the traces' changed calls, all in the lock's
        transaction. A call naming a provider response is looked up, under a lock of that
        response, among the calls every collector stored (LockedLedger.stored_responses). The
        trace cache and the seen-trace filter are not used here: a read per trace is the
        price of any routing. More than TRACES_PER_LOCKED_COMMIT traces are committed in
        parts; the exports are answered once every part committed, and an export sent again
        after a part failed finds its committed spans stored (duplicates, ignored).
        """
        for trace_ids, part in _parts(works, TRACES_PER_LOCKED_COMMIT):
            with locked(self.writer.engine, trace_ids) as ledger:
                batch, _ = self._build(part, ledger)
                self.writer.write_in(ledger.conn, batch, int(time.time() * 1e6))

    def _commit_alone(self, pending: _Pending) -> bool:
        try:
            self._commit([pending])
        except Exception as exc:
            pending.future.set_exception(exc)
            return False
        return True

    def _build(
        self, works: Sequence[Work], shared: LockedLedger | None = None
    ) -> tuple[WriteBatch, dict[str, TraceState]]:
        """Merge new spans and hints with what is known of their traces.

        The trace cache and the seen-trace filter are left alone (_remember updates them
        after the commit). Three memories change here, before the commit, and stay changed
        if it fails: the parked prompt-hash hints (a hint given to a span is used up), and
        the remembered provider responses and failed calls of cross-trace linking
        (collector/calls/crosstrace.py), which a retry of the same export meets again.

        shared: a shared database's locked transaction (_commit_shared), which the traces'
        stored spans, the hints parked for them and the calls stored that name the batch's
        responses or could be the other halves of its calls are read in.
        """
        built = self._build_new(works) if shared is None else None
        if built is not None:
            return built
        batch = WriteBatch()
        by_trace, hints_by_trace = _group(works, batch)
        parked: list[PromptHashHint] = []
        if shared is not None:  # hints another collector parked for these traces
            parked = shared.parked_hints(list(by_trace.keys() | hints_by_trace.keys()))
            for hint in parked:
                hints_by_trace.setdefault(hint.trace_id, []).append(hint)
        states = self._known_states(by_trace, hints_by_trace, shared.conn if shared is not None else None)
        duplicates, calls_added = self._merge_traces(batch, by_trace, hints_by_trace, states, shared is not None)
        if parked:  # used: those whose span is held now; still parked: the others, not parked again
            batch.used_hints = [_key(h) for h in parked if h.span_id in states[h.trace_id].spans]
            parked_before = set(map(_key, parked))
            batch.parked_hints = [h for h in batch.parked_hints if _key(h) not in parked_before]
        if duplicates == 0 and self.writer.is_duckdb:
            batch.span_rows = _rows_as_received(works, batch)
        if shared is not None:
            responses = sorted({(c.provider, c.response_id) for c in batch.calls if c.response_id is not None}, key=str)
            self._links.know_stored(shared.stored_responses(responses))
        dropped = self._links.drop_calls_answered_in_other_traces(batch, states, shared)
        if self.price is not None:
            batch.prices = [self.price(call) for call in batch.calls]
        _count(batch, duplicates, calls_added - dropped)
        return batch, states

    def _merge_traces(
        self,
        batch: WriteBatch,
        by_trace: dict[str, list[LlmSpan]],
        hints_by_trace: dict[str, list[PromptHashHint]],
        states: dict[str, TraceState],
        shared: bool = False,
    ) -> tuple[int, int]:
        """Merge each trace's new spans and hints into its known state, adding what changed to the batch.

        A hint whose span is not held is parked: in memory, or with `shared` (a database
        other collectors share) in batch.parked_hints, for the database.
        Updates states in place; returns (duplicate spans ignored, calls added).
        """
        duplicates = calls_added = 0
        new_spans_out, calls_out = batch.new_spans, batch.calls
        for trace_id in by_trace.keys() | hints_by_trace.keys():
            old = states.get(trace_id)
            new_spans = by_trace.get(trace_id, ())
            if old is None and len(new_spans) == 1 and (not hints_by_trace or trace_id not in hints_by_trace):
                # a new trace's lone span: most traffic
                span = new_spans[0]
                if self._hints:
                    span = self._hinted(span)
                call = call_of_span(span)
                new_spans_out.append(span)
                calls_out.append(call)
                states[trace_id] = TraceState({span.span_id: span}, {(trace_id, span.span_id): call}, None)
                calls_added += 1
                continue
            hints = hints_by_trace.get(trace_id, ())
            held = dict(old.spans) if old else {}
            fresh: dict[str, LlmSpan] = {}
            for span in new_spans:
                if span.span_id in held:
                    duplicates += 1
                    continue
                span = self._hinted(span)
                held[span.span_id] = fresh[span.span_id] = span
            hashed: list[tuple[SpanKey, str]] = []
            for hint in hints:
                target = held.get(hint.span_id)
                if target is None:
                    if shared:
                        batch.parked_hints.append(hint)
                    else:
                        self._park(hint)
                elif target.prompt_hash is None:
                    target = dataclasses.replace(target, prompt_hash=hint.prompt_hash)
                    held[hint.span_id] = target
                    if hint.span_id in fresh:
                        fresh[hint.span_id] = target
                    else:
                        hashed.append((SpanKey(trace_id, hint.span_id, target.start_ns), hint.prompt_hash))
            if not fresh and not hashed:
                continue
            new_calls = {c.key: c for c in calls_of_trace(list(held.values()))}
            old_calls = old.calls if old else {}
            batch.replaced_calls.extend(
                SpanKey(k[0], k[1], c.start_ns) for k, c in old_calls.items() if new_calls.get(k) != c
            )
            batch.calls.extend(c for k, c in new_calls.items() if old_calls.get(k) != c)
            batch.new_spans.extend(fresh.values())
            batch.span_hashes.extend(hashed)
            calls_added += len(new_calls) - len(old_calls)
            states[trace_id] = TraceState(held, new_calls, old.covers if old else None)
        return duplicates, calls_added

    def _build_new(self, works: Sequence[Work]) -> tuple[WriteBatch, dict[str, TraceState]] | None:
        """_build for a group whose traces are all new, each whole in one export, and whose
        exports all brought their rows from a decode process: most traffic, on DuckDB. None
        for any other group, which _build's general path takes.

        Each trace's calls are made as the decode process made them (calls_of_new_trace,
        traces in the order they came), so its priced call rows are these calls' rows and
        are used as they are, unless cross-trace linking changed a call; then they are
        priced here. No query: a trace the seen-filter never saw has nothing stored.
        """
        if self._hints or self.price is None or self.shared_store or not any(work.spans for work in works):
            return None
        for work in works:
            if work.hints or (work.spans and (work.span_rows is None or work.call_rows is None)):
                return None
        batch = WriteBatch()
        states: dict[str, TraceState] = {}
        cache, seen, made = self.cache, self.seen, batch.calls
        for work in works:
            if work.spans and self._before_memory(min(span.start_ns for span in work.spans)):
                return None
            for trace_id, spans in spans_by_trace(work.spans).items():
                if trace_id in states or trace_id in cache or seen.maybe_seen(trace_id):
                    return None
                calls = calls_of_new_trace(spans)
                states[trace_id] = TraceState({s.span_id: s for s in spans}, {c.key: c for c in calls}, None)
                made.extend(calls)
            batch.new_spans.extend(work.spans)
            for name_reason, value in work.counters.items():
                batch.counters[name_reason] = batch.counters.get(name_reason, 0) + value
        batch.span_rows = [work.span_rows for work in works if work.spans and work.span_rows is not None]
        made = list(made)
        dropped = self._links.drop_calls_answered_in_other_traces(batch, states)
        if len(batch.calls) == len(made) and all(kept is call for kept, call in zip(batch.calls, made, strict=True)):
            batch.call_rows = [work.call_rows for work in works if work.spans and work.call_rows is not None]
        else:
            batch.prices = [self.price(call) for call in batch.calls]
        _count(batch, 0, len(made) - dropped)
        return batch, states

    def _known_states(
        self,
        by_trace: dict[str, list[LlmSpan]],
        hints_by_trace: dict[str, list[PromptHashHint]],
        conn: sa.Connection | None = None,
    ) -> dict[str, TraceState]:
        """What is known of these traces: from the cache, else from the database when seen before.

        A trace the seen-filter never saw is new: no state, no query. Else its stored
        spans that started within TRACE_LOOKUP_WINDOW_NS of the new ones (_window) are
        loaded (and added to a cached state that does not cover that stretch of time).
        With conn (a shared database's locked transaction), every trace's stored spans are
        read there, and the cache is not used.
        """
        states: dict[str, TraceState] = {}
        to_load: dict[str, tuple[int, int]] = {}
        now = time.time_ns()
        cache, seen = self.cache, self.seen
        for trace_id in {**by_trace, **hints_by_trace} if hints_by_trace else by_trace:
            if conn is not None:
                lo, hi = _window(by_trace.get(trace_id, ()), hints_by_trace.get(trace_id, ()), now)
                to_load[trace_id] = (lo - TRACE_LOOKUP_WINDOW_NS, hi + TRACE_LOOKUP_WINDOW_NS)
                continue
            state = cache.get(trace_id)
            if state is not None:
                states[trace_id] = state
                if state.covers is None:  # it holds every span of the trace
                    continue
                lo, hi = _window(by_trace.get(trace_id, ()), hints_by_trace.get(trace_id, ()), now)
                if state.covers_window(lo, hi):
                    continue
            else:
                lo, hi = _window(by_trace.get(trace_id, ()), hints_by_trace.get(trace_id, ()), now)
                if not seen.maybe_seen(trace_id) and not self._before_memory(lo):
                    continue
            to_load[trace_id] = (lo - TRACE_LOOKUP_WINDOW_NS, hi + TRACE_LOOKUP_WINDOW_NS)
        if not to_load:
            return states
        loaded: dict[str, list[LlmSpan]] = {}
        for span in self.writer.spans_of_traces(to_load, conn):
            loaded.setdefault(span.trace_id, []).append(span)
        for trace_id, (lo, hi) in to_load.items():
            cached = states.get(trace_id)
            spans = {s.span_id: s for s in loaded.get(trace_id, ())}
            covers = (lo, hi)
            if cached is not None:
                spans.update(cached.spans)
                assert cached.covers is not None
                if cached.covers[0] <= hi and lo <= cached.covers[1]:
                    covers = (min(lo, cached.covers[0]), max(hi, cached.covers[1]))
            calls = {c.key: c for c in calls_of_trace(list(spans.values()))}
            states[trace_id] = TraceState(spans, calls, covers)
        return states

    def _before_memory(self, start_ns: int) -> bool:
        """Whether a span that started then may be of a trace stored before the seen-trace
        filter's memory (SeenTraces.complete_since_ns), so is looked up whatever the filter says.

        A span is received after it starts, so a copy stored before the filter's memory
        started before it too; TRACE_LOOKUP_WINDOW_NS of margin covers a sender's clock
        running ahead. New traffic starts later: no query. A re-sent span of any age, after
        any restart, is looked up, and recognised.
        """
        return start_ns < self.seen.complete_since_ns + TRACE_LOOKUP_WINDOW_NS

    def _hinted(self, span: LlmSpan) -> LlmSpan:
        """The span with the prompt hash a log record brought before it, if any."""
        if span.prompt_hash is not None or not self._hints:
            return span
        hinted = self._hints.pop(span.key, None)
        return span if hinted is None else dataclasses.replace(span, prompt_hash=hinted)

    def _park(self, hint: PromptHashHint) -> None:
        """Keep a hint whose span has not arrived yet (bounded; the oldest go first)."""
        self._hints[(hint.trace_id, hint.span_id)] = hint.prompt_hash
        while len(self._hints) > 10_000:
            self._hints.popitem(last=False)

    def _remember(self, batch: WriteBatch, states: dict[str, TraceState]) -> None:
        """After the commit: cache the traces' states, without the attributes already stored."""
        for span in batch.new_spans:
            span.attributes = {}
            span.attributes_json = None
        put = self.cache.put
        self.seen.add_all(
            [trace_id for trace_id, state in states.items() if not put(trace_id, state) and state.covers is None]
        )  # the new traces


def _group(
    works: Sequence[Work], batch: WriteBatch
) -> tuple[dict[str, list[LlmSpan]], dict[str, list[PromptHashHint]]]:
    """The works' spans and hints by trace, in the order they came; their counters summed into the batch."""
    by_trace: dict[str, list[LlmSpan]] = {}
    hints_by_trace: dict[str, list[PromptHashHint]] = {}
    for work in works:
        for name_reason, value in work.counters.items():
            batch.counters[name_reason] = batch.counters.get(name_reason, 0) + value
        for span in work.spans:
            by_trace.setdefault(span.trace_id, []).append(span)
        for hint in work.hints:
            hints_by_trace.setdefault(hint.trace_id, []).append(hint)
    return by_trace, hints_by_trace


def _parts(works: Sequence[Work], most_traces: int) -> list[tuple[list[str], list[Work]]]:
    """The works as parts of at most most_traces traces each, with those traces' ids: the
    works themselves when they touch that few (most groups), else works made of their
    spans and hints split by trace, the counters all in the first part's."""
    touched = [s.trace_id for w in works for s in w.spans] + [h.trace_id for w in works for h in w.hints]
    trace_ids = list(dict.fromkeys(touched))
    if len(trace_ids) <= most_traces:
        return [(trace_ids, list(works))]
    ids_of_parts = [trace_ids[i : i + most_traces] for i in range(0, len(trace_ids), most_traces)]
    part_of = {trace_id: n for n, ids in enumerate(ids_of_parts) for trace_id in ids}
    parts = [Work() for _ in ids_of_parts]
    for work in works:
        for name_reason, value in work.counters.items():
            parts[0].counters[name_reason] = parts[0].counters.get(name_reason, 0) + value
        for span in work.spans:
            parts[part_of[span.trace_id]].spans.append(span)
        for hint in work.hints:
            parts[part_of[hint.trace_id]].hints.append(hint)
    return [(ids, [part]) for ids, part in zip(ids_of_parts, parts, strict=True)]


def _key(hint: PromptHashHint) -> tuple[str, str]:
    return (hint.trace_id, hint.span_id)


def _count(batch: WriteBatch, duplicates: int, calls_added: int) -> None:
    """The batch's counters of what it stores."""
    for key, value in (
        (("llm_spans_stored", ""), len(batch.new_spans)),
        (("duplicates_ignored", ""), duplicates),
        (("calls_stored", ""), calls_added),
        (("spans_merged", ""), len(batch.new_spans) - calls_added),
    ):
        if value:
            batch.counters[key] = batch.counters.get(key, 0) + value


def _rows_as_received(works: Sequence[Work], batch: WriteBatch) -> list[bytes] | None:
    """The decode processes' rows of the works' spans, when they are exactly the new spans.

    So they are when every work with spans brought its rows and every span it brought is
    new and unchanged: none was a duplicate (the caller checks), and none took a prompt
    hash from a log record (that makes a new object). Then the batch's new spans are put in
    the rows' order, which the writer takes their audit attributes in. Else None: the
    writer makes the rows.
    """
    rows, received = [], []
    for work in works:
        if work.spans:
            if work.span_rows is None:
                return None
            rows.append(work.span_rows)
            received.extend(work.spans)
    if not rows or len(received) != len(batch.new_spans):
        return None
    ids = {id(span) for span in received}
    if not all(id(span) in ids for span in batch.new_spans):
        return None
    batch.new_spans = received
    return rows


def _window(spans: Sequence[LlmSpan], hints: Sequence[PromptHashHint], now_ns: int) -> tuple[int, int]:
    """The range of start times (ns) a trace's new spans and hints fall in (a hint of unknown time: now)."""
    times = [s.start_ns for s in spans] + [h.time_ns or now_ns for h in hints]
    return min(times), max(times)
