"""Decode processes: trace exports are decoded, redacted and normalized beside the writer.

One Python process runs one thread at a time (the GIL), and the writer's merge, pricing
and commit already fill most of it; a body decoded on another thread of that process
waits its turn. Decode processes (`decode_processes`, default 2) take that stage to
the other cores. The server's process keeps the sockets, the answers and the one writer; a
body goes to a decode process as bytes and comes back as the export's Outcome: the
normalized LLM spans (prompt and completion text already gone) with their audit
attributes already JSON, counters and rejections. Nothing is acknowledged before the
writer commits it, as with threads.

A decode process that dies (killed, out of memory) fails the exports it held: they are
answered 503 with Retry-After, never 200, and a fresh pool takes the next ones.
"""

from __future__ import annotations

import asyncio
import logging
import multiprocessing
import multiprocessing.forkserver
import os
import threading
from collections.abc import Callable
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from multiprocessing.connection import wait

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
WARM_SECONDS = 60.0
_ENVIRONMENT_LOCK = threading.Lock()  # os.environ changed only while the forkserver starts


class DecoderUnavailable(Exception):
    """A decode process died holding this export; the client should retry."""


def _start_worker(settings: Settings) -> None:
    """A decode process's start: the settings, the cycle collector tuned as `serve` tunes
    it, and a watch on the server's process."""
    global _settings, _price
    if _settings is None:
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
    """Decodes trace export bodies into Outcomes: in decode processes, else on the caller's thread."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.processes = settings.decode_processes
        self.deaths = 0  # pools replaced because a decode process died (GET /metrics)
        self._lock = threading.Lock()
        self._pool: ProcessPoolExecutor | None = None
        if self.processes:
            self._pool = self._new_pool()

    def _new_pool(self) -> ProcessPoolExecutor:
        # forkserver: a clean process that imported the collector once forks each worker, so
        # no thread of the server (writer, event loop, DuckDB's) is copied half-way.
        context = multiprocessing.get_context("forkserver")
        context.set_forkserver_preload(["breakeven.collector.ingest.offload"])
        _start_forkserver()
        pool = ProcessPoolExecutor(
            self.processes, mp_context=context, initializer=_start_worker, initargs=(self.settings,)
        )
        _widen_pipes(pool)
        return pool

    def warm(self) -> None:
        """Start the decode processes now rather than on the first export.

        Where they cannot start (no process may be forked here, say), decoding falls back
        to threads of this process, with a warning: slower, never refused.
        """
        if self._pool is None:
            return
        try:
            self._pool.submit(_start_worker, self.settings).result(WARM_SECONDS)
        except Exception as exc:
            log.warning("decode processes could not start (%s); decoding on threads of the server", exc)
            with self._lock:
                pool, self._pool, self.processes = self._pool, None, 0
            pool.shutdown(wait=False, cancel_futures=True)

    def submit(self, body: bytes, content_type: str, sender: Sender) -> Future[exports.Outcome]:
        """The export's Outcome, to come; raises DecoderUnavailable when the pool broke."""
        return self._submit(body, content_type, sender)[0]

    def _submit(
        self, body: bytes, content_type: str, sender: Sender
    ) -> tuple[Future[exports.Outcome], ProcessPoolExecutor | None]:
        """submit(), and the pool the export went to (None: decoded here, on this thread)."""
        future: Future[exports.Outcome]
        if self._pool is None:
            future = Future()
            try:
                future.set_result(exports.body_traces_outcome(body, content_type, self.settings, sender))
            except Exception as exc:  # the caller sees the same errors either way
                future.set_exception(exc)
            return future, None
        with self._lock:
            pool = self._pool
            try:
                return pool.submit(_decode_traces, body, content_type, sender), pool
            except BrokenProcessPool:
                self._replace(pool)
                raise DecoderUnavailable("a decode process died; retry") from None

    def outcome(self, body: bytes, content_type: str, sender: Sender) -> exports.Outcome:
        """Blocking: the export's Outcome (gRPC's threads), within decode_timeout_seconds."""
        future, pool = self._submit(body, content_type, sender)
        try:
            return future.result(timeout=None if pool is None else self.settings.decode_timeout_seconds)
        except BrokenProcessPool:
            raise self._died_decoding(pool) from None
        except TimeoutError:
            raise self._hung(pool) from None

    async def outcome_async(self, body: bytes, content_type: str, sender: Sender) -> exports.Outcome:
        """The export's Outcome, awaited (the HTTP receiver's event loop)."""
        if self._pool is None:
            return await asyncio.to_thread(exports.body_traces_outcome, body, content_type, self.settings, sender)
        future, pool = self._submit(body, content_type, sender)
        try:
            return await asyncio.wait_for(asyncio.wrap_future(future), self.settings.decode_timeout_seconds)
        except BrokenProcessPool:
            raise self._died_decoding(pool) from None
        except TimeoutError:
            raise self._hung(pool) from None

    def _died_decoding(self, pool: ProcessPoolExecutor | None) -> DecoderUnavailable:
        """A decode process of `pool` died holding an export: the pool is broken, so replace
        it (once: a pool already replaced is left alone), and say so."""
        if pool is not None:
            with self._lock:
                self._replace(pool)
        return DecoderUnavailable("a decode process died while decoding this export; retry")

    def _hung(self, pool: ProcessPoolExecutor | None) -> DecoderUnavailable:
        """An export's decode took past decode_timeout_seconds: a process of `pool` hangs, or
        wrote half a result the pool waits on for ever. Kill the pool's processes (its other
        exports fail too, each refused with a retry), start a fresh pool, and say so."""
        if pool is not None:
            with self._lock:
                if self._pool is pool:
                    for process in list((pool._processes or {}).values()):  # None once shut down
                        process.kill()
                    self._replace(pool)
        seconds = self.settings.decode_timeout_seconds
        return DecoderUnavailable(f"decoding this export took longer than {seconds} s; retry")

    def _replace(self, pool: ProcessPoolExecutor) -> None:
        """Swap a broken pool for a fresh one (the lock is held)."""
        if self._pool is not pool:
            return
        log.warning("a decode process died; starting a fresh pool of %d", self.processes)
        self.deaths += 1
        pool.shutdown(wait=False, cancel_futures=True)
        self._pool = self._new_pool()

    def close(self) -> None:
        """Stop the decode processes (after the receivers stopped)."""
        with self._lock:
            pool, self._pool = self._pool, None
        if pool is not None:
            pool.shutdown(wait=True, cancel_futures=True)
