"""Decode processes: trace exports are decoded, redacted and normalized beside the writer.

One Python process runs one thread at a time (the GIL), and the writer's merge, pricing
and commit already fill most of it; a body decoded on another thread of that process
waits its turn. Decode processes (`decode_processes`, default 2) take that stage to
the other cores. The server's process keeps the sockets, the answers and the one writer; a
body goes to a decode process as bytes and comes back as the export's Outcome: the
normalized LLM spans (prompt and completion text already gone) with their audit
attributes already JSON, counters and rejections. Nothing is acknowledged before the
writer commits it, as with threads.

A decode process that dies (killed, out of memory), hangs, or dies half-way through writing
a result costs a bounded wait, never a wedge: the pool is replaced as soon as one of its
processes dies (a watch thread, export or not), an export waits at most
`decode_timeout_seconds` for its decode, and an export a broken pool held is decoded once
more by the fresh pool (decoding changes nothing, so that is safe); only what fails again,
or ran out of time, is answered 503 with Retry-After, never 200. `problem()` says why
exports cannot be decoded right now (GET /readyz). The forkserver and its decode processes
ignore SIGINT and SIGTERM (collector/ingest/_forkserver_signals.py): a signal to the whole
process group stops the server, which stops them in order (close()).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import multiprocessing
import multiprocessing.forkserver
import multiprocessing.process
import multiprocessing.queues
import os
import signal
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from multiprocessing.connection import Connection, wait
from typing import Any

try:
    import fcntl
except ImportError:  # not a Unix
    fcntl = None  # type: ignore[assignment]

from breakeven.collector.auth import Sender
from breakeven.collector.calls.merge import calls_of_new_trace, spans_by_trace
from breakeven.collector.config.settings import Settings
from breakeven.collector.ingest import exports
from breakeven.collector.ingest.tuning import tune_garbage_collector
from breakeven.collector.price.ledger import ledger_pricer
from breakeven.collector.records import Call, CallPrice, LlmSpan, Work
from breakeven.collector.store.rows import attributes_json
from breakeven.collector.store.writer import call_rows_ipc, span_rows_ipc

log = logging.getLogger("breakeven.receive.offload")
# How much lower than the server's a decode process's CPU priority is (os.nice): where the
# cores are all busy, the writer's thread, the one serial stage, gets a core first.
DECODE_NICENESS = 10
PIPE_BYTES = 1 << 20  # each pipe to and from the decode processes holds a whole export at once
_settings: Settings | None = None  # in a decode process: the server's settings
_price: Callable[[Call], CallPrice] | None = None  # in a decode process: the writer's pricer, made alike
WARM_SECONDS = 60.0  # the first start: the forkserver imports the collector, caches cold
# A fresh pool's start, later: its processes answer their first job within this, or the
# watch tries again; START_TRIES pools in a row that cannot start (not one whose process
# died as it started: that is a death, and tried again) and it falls back to threads.
START_SECONDS = 10.0
START_TRIES = 5
# How often the watch looks again at the pool it watches (a death wakes it at once): a
# fresh pool's processes are watched from at most this long after they start.
WATCH_SECONDS = 0.5
# How often an export waiting for a fresh pool on the event loop looks whether it runs.
STARTING_POLL_SECONDS = 0.01
# close(): how long the decode processes get to finish the export under way before they are killed.
CLOSE_SECONDS = 2.0
# Preloaded by the forkserver, in this order: signals first, then what a decode process runs.
FORKSERVER_PRELOAD = ["breakeven.collector.ingest._forkserver_signals", "breakeven.collector.ingest.offload"]
_ENVIRONMENT_LOCK = threading.Lock()  # os.environ changed only while the forkserver starts


class DecoderUnavailable(Exception):
    """This export's decode failed for want of a decode process (one died or hung, or they
    are stopping); the client should retry."""


def _start_worker(settings: Settings) -> None:
    """A decode process's start: the settings, the cycle collector tuned as `serve` tunes
    it, a watch on the server's process, and SIGINT and SIGTERM ignored (as the forkserver
    already left them: collector/ingest/_forkserver_signals.py)."""
    global _settings, _price
    if _settings is None:
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        _lower_priority()
        tune_garbage_collector()
        _exit_with_the_server()
    _settings = settings
    _price = ledger_pricer(settings.pricing)


def _lower_priority() -> None:
    """Step this decode process DECODE_NICENESS below the server (no privilege needed)."""
    try:
        os.nice(DECODE_NICENESS)
    except OSError as exc:  # nothing lost but the ordering
        log.debug("decode process priority unchanged: %s", exc)


def _start_forkserver() -> None:
    """Start the forkserver, and its resource tracker, with nothing on their sys.path from
    the directory `serve` was started in.

    Both run `python -c`, which puts the working directory first on sys.path, and the
    forkserver of Python 3.11 (and of 3.12 before 3.12.8: CPython gh-117378) does not
    take the server's path before its preload imports: a `collector`
    package there (another project's, an older checkout of this one), or any module named
    like one the collector imports, is what every decode process would run. PYTHONSAFEPATH
    (Python 3.11+, `python -P`) leaves the working directory off; set here only while they
    start, as they take this process's environment then. Where the forkserver cannot start,
    the pool's first process tries again and fails as before (warm falls back to threads).
    """
    with _ENVIRONMENT_LOCK:
        before = os.environ.get("PYTHONSAFEPATH")
        os.environ["PYTHONSAFEPATH"] = "1"
        try:
            multiprocessing.forkserver.ensure_running()
        except OSError as exc:
            log.debug("forkserver did not start: %s", exc)
        finally:
            if before is None:
                del os.environ["PYTHONSAFEPATH"]
            else:
                os.environ["PYTHONSAFEPATH"] = before


def _widen_pipes(pool: ProcessPoolExecutor) -> None:
    """Give the pool's two pipes PIPE_BYTES each (Linux; 64 KiB by default).

    An export's body goes out and its records and rows come back through them; through
    64 KiB pipes that took many reads, and each read gave Python's GIL back and waited to
    take it again from the writer's thread. Where the pipes cannot be
    widened (another OS, a lower limit, a Python whose pool keeps them elsewhere) they
    stay as they are: slower, not wrong.
    """
    set_size = getattr(fcntl, "F_SETPIPE_SZ", None) if fcntl is not None else None
    queues = (getattr(pool, "_result_queue", None), getattr(pool, "_call_queue", None))
    ends = [getattr(queue, name, None) for queue in queues for name in ("_reader", "_writer")]
    for end in ends:
        if set_size is None or end is None:
            continue
        try:
            fcntl.fcntl(end.fileno(), set_size, PIPE_BYTES)
        except (OSError, ValueError) as exc:
            log.debug("decode pipe left at its size: %s", exc)


def _exit_with_the_server() -> None:
    """End this decode process when the server's process is gone, however it ended.

    A pool's workers wait on a queue whose writing end they hold themselves, so a server
    killed with SIGKILL (or by the OOM killer) would leave them, and their forkserver,
    waiting for ever. The parent's sentinel (a pipe the server holds open while it lives)
    says when it is gone.
    """
    parent = multiprocessing.parent_process()
    if parent is None:
        return

    def watch() -> None:
        wait([parent.sentinel])
        os._exit(0)

    threading.Thread(target=watch, name="breakeven-decode-watch", daemon=True).start()


def _started() -> int:
    """A decode process's first job: its pid, once it started (TraceDecoder._start)."""
    return os.getpid()


def _dismantle(pool: ProcessPoolExecutor) -> None:
    """Kill `pool`'s processes and let its thread go, whatever state they are in (_kill,
    _let_go): every export it held fails with BrokenProcessPool, none is cancelled (the
    receivers try those on the fresh pool). Reads them before shutdown(), which forgets the
    processes and the pipe."""
    processes, results = list((pool._processes or {}).values()), pool._result_queue
    _kill(processes)
    pool.shutdown(wait=False)
    _let_go(results)


def _kill(processes: Sequence[multiprocessing.process.BaseProcess]) -> None:
    """SIGKILL: a hung (or stopped) process answers nothing else, and these ignore SIGTERM.
    Not process.kill(), which does nothing once the forkserver that reports on them is gone."""
    for process in processes:
        if process.pid is None:
            continue
        with contextlib.suppress(ProcessLookupError):
            os.kill(process.pid, signal.SIGKILL)


def _let_go(results: multiprocessing.queues.SimpleQueue[Any] | None) -> None:
    """Close this process's writing end of a pool's result pipe (its processes killed).

    A process killed half-way through writing a result leaves the pool's thread reading the
    rest for ever, from a pipe whose writing end the server holds too: with that end closed,
    the reader gets its end of file once the killed processes are gone, so the pool fails
    its exports (BrokenProcessPool) and its thread ends, instead of holding the server's
    exit (the interpreter joins it).
    """
    writer: Connection | None = getattr(results, "_writer", None)
    if writer is not None:
        writer.close()


def _decode_traces(body: bytes, content_type: str, sender: Sender) -> exports.Outcome:
    """In a decode process: the export's Outcome, audit attributes made JSON for the writer,
    and on DuckDB the rows of its spans and of their calls too (the writer inserts them as
    they are, unless its traces were not all new or a span changed on its way:
    collector/calls/pipeline.py, _rows_as_received and _build_new)."""
    assert _settings is not None
    outcome = exports.body_traces_outcome(body, content_type, _settings, sender)
    # PostgreSQL's COPYs from spans and calls
    ready_for_the_writer(outcome.work, make_rows=_settings.db_dialect == "duckdb", price=_price)
    return outcome


def ready_for_the_writer(work: Work, make_rows: bool, price: Callable[[Call], CallPrice] | None = None) -> None:
    """What a decode process does to an export's spans before they go back: their audit
    attributes made JSON (and dropped as a dict), and with make_rows their rows too, and
    with a pricer the rows of the calls they make if every trace of theirs is new."""
    for span in work.spans:
        span.attributes_json = attributes_json(span.attributes)
        span.attributes = {}
    if work.spans and make_rows:
        work.span_rows = span_rows_ipc(work.spans)
        if price is not None:
            work.call_rows = _call_rows(work.spans, price)


def _call_rows(spans: list[LlmSpan], price: Callable[[Call], CallPrice]) -> bytes | None:
    """The rows of the calls these spans make, priced, were each of their traces new and
    whole in this export (calls_of_new_trace, traces in the order they came); None when a
    span comes twice (the writer counts it a duplicate)."""
    calls: list[Call] = []
    for trace in spans_by_trace(spans).values():
        if len({span.span_id for span in trace}) != len(trace):
            return None
        calls.extend(calls_of_new_trace(trace))
    return call_rows_ipc(calls, [price(call) for call in calls])


class TraceDecoder:
    """Decodes trace export bodies into Outcomes: in decode processes, else on the caller's thread.

    The pool's processes are started, and a broken pool's replacement too, by warm() and
    then by the watch thread, never by an export: the event loop that answers exports (and
    /readyz) never waits on a fork. An export that finds the pool starting waits for it,
    within its decode_timeout_seconds.
    """

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.processes = settings.decode_processes
        self.deaths = 0  # pools replaced because a decode process died or hung (GET /metrics)
        self._lock = threading.Lock()  # held to submit to, start, replace or close the pool
        self._pool: ProcessPoolExecutor | None = None
        self._running = threading.Event()  # the pool's processes have all started
        self._why = ""  # why the pool is being replaced, while it is
        self._closed = False
        self._watch: threading.Thread | None = None
        if self.processes:
            self._pool = self._new_pool()

    def _new_pool(self) -> ProcessPoolExecutor:
        """A pool whose processes have not started yet (_start starts them)."""
        # forkserver: a clean process that imported the collector once forks each worker, so
        # no thread of the server (writer, event loop, DuckDB's) is copied half-way.
        context = multiprocessing.get_context("forkserver")
        context.set_forkserver_preload(FORKSERVER_PRELOAD)
        pool = ProcessPoolExecutor(
            self.processes, mp_context=context, initializer=_start_worker, initargs=(self.settings,)
        )
        _widen_pipes(pool)
        return pool

    def _start(self, pool: ProcessPoolExecutor, seconds: float) -> None:
        """Start all of `pool`'s processes (the forkserver first, if it must start again),
        one job each rather than one per export as they come, and wait `seconds` for them:
        then the pool runs. Raises what starting them raised (BrokenProcessPool: one died
        as it started; OSError: no process could be forked; TimeoutError)."""
        _start_forkserver()
        with self._lock:  # so no process starts while the pool is being dismantled
            if self._pool is not pool or self._closed:
                return
            starting = [pool.submit(_started) for _ in range(self.processes)]
        deadline = time.monotonic() + seconds
        for started in starting:
            started.result(max(0.0, deadline - time.monotonic()))
        with self._lock:
            if self._pool is pool:
                self._why = ""
                self._running.set()

    def warm(self) -> None:
        """Start the decode processes now rather than on the first export, and their watch.

        Where they cannot start (no process may be forked here, say), decoding falls back
        to threads of this process, with a warning: slower, never refused.
        """
        if self._pool is None:
            return
        try:
            self._start(self._pool, WARM_SECONDS)
        except Exception as exc:
            self._fall_back_to_threads(exc)
            return
        self._watch = threading.Thread(target=self._watch_processes, name="breakeven-decode-pool-watch", daemon=True)
        self._watch.start()

    def _fall_back_to_threads(self, exc: Exception) -> None:
        log.warning("decode processes could not start (%s); decoding on threads of the server", exc)
        with self._lock:
            pool, self._pool, self.processes = self._pool, None, 0
        self._running.set()  # exports waiting for a pool find none: they decode on their threads
        if pool is not None:
            _dismantle(pool)

    def problem(self) -> str | None:
        """Why trace exports cannot be decoded right now, or None (GET /readyz): a process
        died or hung and the fresh pool has not started yet, or the processes are stopped.
        Reads a few attributes, no I/O: /readyz is polled."""
        if self._closed:
            return "decode processes stopped"
        if self._pool is None or self._running.is_set():
            return None  # running, or decoding on threads
        return f"{self._why or 'decode processes are starting'}; a fresh pool is starting"

    def _watch_processes(self) -> None:
        """Start each fresh pool, and replace the pool as soon as one of its processes dies,
        whether or not an export meets it: a pool broken while idle would else refuse the
        next export and keep /readyz at 503 until one came. A pool whose thread waits on the
        result a process died writing (it never marks itself broken) is replaced the same way."""
        failures = 0  # fresh pools in a row that did not start
        while not self._closed:
            pool = self._pool
            if pool is None:
                return
            if not self._running.is_set():
                try:
                    self._start(pool, START_SECONDS)
                    failures = 0
                except BrokenProcessPool:  # one died as it started: a death like any other
                    self._replace(pool, "a decode process died as it started")
                    time.sleep(WATCH_SECONDS)  # not in a tight loop
                except Exception as exc:  # none could be forked, or they did not answer in time
                    failures += 1
                    if self._closed:
                        return
                    if failures >= START_TRIES:
                        self._fall_back_to_threads(exc)
                        return
                    self._replace(pool, f"decode processes did not start ({exc})")
                    time.sleep(WATCH_SECONDS)
                continue
            try:
                processes = list((pool._processes or {}).values())
                died = wait([process.sentinel for process in processes], WATCH_SECONDS)
            except (OSError, ValueError):  # a sentinel closed under us: the pool went meanwhile
                time.sleep(WATCH_SECONDS)
                continue
            if (died or pool._broken) and not self._closed:
                self._replace(pool, "a decode process died")

    def _hand_over(
        self, body: bytes, content_type: str, sender: Sender
    ) -> tuple[Future[exports.Outcome], ProcessPoolExecutor] | None:
        """Submit the export to the running pool: its future and that pool. None when the pool
        is starting (one found broken is replaced, so starting too) or there is none (threads).
        Raises DecoderUnavailable once the processes are stopping."""
        if not self._running.is_set() and not self._closed:
            return None  # not the lock: the watch holds it while it forks the fresh pool's processes
        with self._lock:
            if self._closed:
                raise DecoderUnavailable("the decode processes are stopping (the collector is shutting down); retry")
            pool = self._pool
            if pool is None or not self._running.is_set():
                return None
            try:
                return pool.submit(_decode_traces, body, content_type, sender), pool
            except BrokenProcessPool:
                self._replace_locked(pool, "a decode process died")
                return None

    def _threads(self) -> bool:
        """Whether exports are decoded on threads of this process (no decode processes)."""
        return self._pool is None and not self._closed

    def outcome(self, body: bytes, content_type: str, sender: Sender) -> exports.Outcome:
        """Blocking: the export's Outcome (gRPC's threads), within decode_timeout_seconds."""
        deadline = time.monotonic() + self.settings.decode_timeout_seconds
        for again in (False, True):
            while (handed := self._hand_over(body, content_type, sender)) is None:
                if self._threads():
                    return exports.body_traces_outcome(body, content_type, self.settings, sender)
                if not self._running.wait(deadline - time.monotonic()):
                    raise self._not_started() from None
            (future, pool), handed_at = handed, time.monotonic()
            try:
                return future.result(timeout=max(0.0, deadline - handed_at))
            except BrokenProcessPool:
                self._died_decoding(pool, again, deadline)
            except TimeoutError:
                raise self._timed_out(pool, time.monotonic() - handed_at) from None
        raise AssertionError("unreachable: the second try returns or raises")

    async def outcome_async(self, body: bytes, content_type: str, sender: Sender) -> exports.Outcome:
        """The export's Outcome, awaited (the HTTP receiver's event loop), within decode_timeout_seconds."""
        deadline = time.monotonic() + self.settings.decode_timeout_seconds
        for again in (False, True):
            while (handed := self._hand_over(body, content_type, sender)) is None:
                if self._threads():
                    return await asyncio.to_thread(
                        exports.body_traces_outcome, body, content_type, self.settings, sender
                    )
                if time.monotonic() >= deadline:
                    raise self._not_started()
                await asyncio.sleep(STARTING_POLL_SECONDS)
            (future, pool), handed_at = handed, time.monotonic()
            try:
                return await asyncio.wait_for(asyncio.wrap_future(future), max(0.0, deadline - handed_at))
            except BrokenProcessPool:
                self._died_decoding(pool, again, deadline)
            except TimeoutError:
                raise self._timed_out(pool, time.monotonic() - handed_at) from None
        raise AssertionError("unreachable: the second try returns or raises")

    def _not_started(self) -> DecoderUnavailable:
        seconds = self.settings.decode_timeout_seconds
        return DecoderUnavailable(f"no decode process could take this export within {seconds} s; retry")

    def _died_decoding(self, pool: ProcessPoolExecutor, again: bool, deadline: float) -> None:
        """A process of `pool` died while the pool held this export (which process held it, the
        pool does not say): replace the pool (once: a pool already replaced is left alone),
        and let the caller try the fresh one, unless this was the second try or no time is
        left. A body that kills its decode process so costs two pools, not a loop."""
        self._replace(pool, "a decode process died")
        if again or self._closed or time.monotonic() >= deadline:
            raise DecoderUnavailable("a decode process died while decoding this export; retry") from None

    def _timed_out(self, pool: ProcessPoolExecutor, held: float) -> DecoderUnavailable:
        """An export's decode ran past decode_timeout_seconds, `held` of them in `pool`.

        Held at least half the bound, the pool is judged hung (a process that hangs, or
        died writing half a result the pool waits on): it is replaced, its processes killed,
        its other exports tried on the fresh one. Held less (the rest went waiting for a
        fresh pool to start), that is no proof, and a pool replaced on it would start the
        next wait: under load, a loop of fresh pools each judged by exports with no time left.
        """
        seconds = self.settings.decode_timeout_seconds
        if held >= seconds / 2:
            self._replace(pool, "a decode process did not answer")
        return DecoderUnavailable(f"decoding this export took longer than {seconds} s; retry")

    def _replace(self, pool: ProcessPoolExecutor, why: str) -> None:
        """Swap `pool`, broken or hung, for a fresh one, unless it was already swapped."""
        with self._lock:
            self._replace_locked(pool, why)

    def _replace_locked(self, pool: ProcessPoolExecutor, why: str) -> None:
        """_replace() with the lock held: the old pool's processes killed and its thread let go
        (_dismantle); the fresh pool is started by the watch (no fork here: this may be the
        event loop's thread)."""
        if self._pool is not pool or self._closed:
            return
        log.warning("%s; starting a fresh pool of %d", why, self.processes)
        self.deaths += 1
        self._running.clear()
        self._why = why
        _dismantle(pool)
        self._pool = self._new_pool()

    def close(self, timeout: float = CLOSE_SECONDS) -> None:
        """Stop the decode processes (after the receivers stopped), within about `timeout`.

        Each ends after what it holds; past `timeout` (a process that hangs, a pool waiting on
        a half-written result) they are killed, so they never hold the server's exit.
        Exports handed over after this are refused (DecoderUnavailable).
        """
        with self._lock:
            self._closed = True
            pool, self._pool = self._pool, None
            # What shutdown() forgets, read first; the interpreter joins the pool's thread at exit.
            processes = list((pool._processes or {}).values()) if pool is not None else []
            results = pool._result_queue if pool is not None else None
            thread: threading.Thread | None = getattr(pool, "_executor_manager_thread", None)
            if pool is not None:
                pool.shutdown(wait=False)  # what it holds is decoded first (or fails): never cancelled
        self._running.set()  # wakes exports waiting for a pool: they find it closed
        if thread is not None:
            thread.join(timeout)
            if thread.is_alive():
                log.warning("decode processes did not stop within %.1f s; killing them", timeout)
                _kill(processes)
                _let_go(results)
                thread.join(timeout)
        if self._watch is not None:
            self._watch.join(WATCH_SECONDS * 2)
