"""Decode processes killed, stopped and signalled under load: no hang, no loss, no duplicate.

A real `breakeven serve` takes exports from client threads over HTTP and gRPC. Each client
sends the same body again until it is acknowledged, as an OTel exporter retries, and
records every answer and how long it took: the bound is about one answer, which the SDK
exporters' export() hides behind their retries, so the clients here speak OTLP themselves.

- Decode processes SIGKILLed at random moments (an OOM kill), their forkserver once, and
  one SIGSTOPped while it decodes (a hang): no answer waits past decode_timeout_seconds
  while processes only die, none past the exporters' 10 s when one hangs, and /readyz says
  so and comes back by itself. (A kill that lands while a process writes its result, which
  once wedged the pool, is rare with 1 MiB pipes: tests/api/test_decode_processes.py makes
  it certain.)
- SIGTERM to the server's whole process group (Ctrl-C, systemd's stop), again and again:
  the decode processes ignore it, so the pool does not break under the exports being
  drained, and the server exits 0 well within DRAIN_SECONDS.

Either way every acknowledged span is stored exactly once, and nothing that was not sent.
"""

from __future__ import annotations

import contextlib
import os
import random
import signal
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import grpc
import httpx
import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from breakeven.collector.app import DRAIN_SECONDS
from breakeven.collector.config.settings import Settings
from tests.conftest import wait_for
from tests.reliability.server import ServerProcess
from tests.reliability.test_crash import stored_counts
from tests.scripts import bench_ingest

pytestmark = pytest.mark.slow

DECODE_TIMEOUT_SECONDS = Settings().decode_timeout_seconds  # the default, under test
EXPORTER_TIMEOUT_SECONDS = 10.0  # the OTel SDK exporters' default: an answer later than this is lost on them
SPANS_PER_EXPORT = 128
KILLS = 25  # decode processes SIGKILLed, one after another
EXPORT_METHOD = "/opentelemetry.proto.collector.trace.v1.TraceService/Export"
SpanKey = tuple[str, str]


@dataclass
class Answer:
    began: float  # time.monotonic() when the export was sent
    seconds: float
    what: str  # "ok", an HTTP status, a gRPC code, or an error's class


@dataclass
class Load:
    """Client threads, half HTTP and half gRPC, each sending fresh bodies one after another
    and each body again until it is acknowledged."""

    server: ServerProcess
    clients: int = 4
    sent: set[SpanKey] = field(default_factory=set)
    acked: set[SpanKey] = field(default_factory=set)
    answers: list[Answer] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)
    _give_up_at: float = float("inf")
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _threads: list[threading.Thread] = field(default_factory=list)

    def start(self) -> None:
        templates = [bench_ingest().build_template(SPANS_PER_EXPORT, seed) for seed in range(4)]
        for n in range(self.clients):
            send = self._http_sender() if n % 2 == 0 else self._grpc_sender()
            thread = threading.Thread(target=self._run, args=(send, templates, random.Random(n)), daemon=True)
            thread.start()
            self._threads.append(thread)

    def stop(self, within: float = 60.0) -> None:
        """No new bodies; the ones under way are sent until acknowledged (or `within` ends)."""
        self._give_up_at = time.monotonic() + within
        self._stop.set()
        for thread in self._threads:
            thread.join(within + 5)
        assert not any(thread.is_alive() for thread in self._threads), "a client still waits on an answer"

    def wait_acked(self, within: float) -> None:
        """Until the next export is acknowledged."""
        before = len(self.answers)
        wait_for(lambda: any(answer.what == "ok" for answer in self.answers[before:]), timeout=within)

    def acked_while(self, seconds: float) -> int:
        """How many exports were acknowledged over the next `seconds`."""
        before = sum(answer.what == "ok" for answer in self.answers)
        time.sleep(seconds)
        return sum(answer.what == "ok" for answer in self.answers) - before

    def _run(self, send: Callable[[bytes], str], templates: list[Any], rng: random.Random) -> None:
        while not self._stop.is_set():
            body = rng.choice(templates).body()
            keys = _span_keys(body)
            with self._lock:
                self.sent |= keys
            while time.monotonic() < self._give_up_at:
                began = time.monotonic()
                what = send(body)
                with self._lock:
                    self.answers.append(Answer(began, time.monotonic() - began, what))
                if what == "ok":
                    with self._lock:
                        self.acked |= keys
                    break
                time.sleep(0.05)  # an exporter waits Retry-After; shorter here, to keep the load on

    def _http_sender(self) -> Callable[[bytes], str]:
        client = httpx.Client(timeout=60)
        headers = {"Content-Type": "application/x-protobuf"}

        def send(body: bytes) -> str:
            try:
                reply = client.post(f"{self.server.otlp_http}/v1/traces", content=body, headers=headers)
            except httpx.HTTPError as exc:
                return exc.__class__.__name__
            return "ok" if reply.status_code == 200 else str(reply.status_code)

        return send

    def _grpc_sender(self) -> Callable[[bytes], str]:
        channel = grpc.insecure_channel(
            self.server.otlp_grpc,
            options=[("grpc.initial_reconnect_backoff_ms", 100), ("grpc.max_reconnect_backoff_ms", 500)],
        )
        export: Callable[..., Any] = channel.unary_unary(
            EXPORT_METHOD, request_serializer=None, response_deserializer=None
        )

        def send(body: bytes) -> str:
            try:
                export(body, timeout=60)
            except grpc.RpcError as exc:
                return str(exc.code())
            return "ok"

        return send


def _span_keys(body: bytes) -> set[SpanKey]:
    request = ExportTraceServiceRequest.FromString(body)
    return {
        (span.trace_id.hex(), span.span_id.hex())
        for resource in request.resource_spans
        for scope in resource.scope_spans
        for span in scope.spans
    }


@dataclass
class Readiness:
    """/readyz polled every 50 ms on a thread: every answer, 503s with their problems."""

    server: ServerProcess
    answers: list[tuple[float, int, list[str]]] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)

    def start(self) -> None:
        threading.Thread(target=self._run, daemon=True).start()

    def stop(self) -> None:
        self._stop.set()

    def wait_ready(self, within: float = 10.0) -> None:
        """Until /readyz answers 200 again (the poll's next answer)."""
        since = time.monotonic()
        wait_for(lambda: any(t > since and status == 200 for t, status, _ in self.answers[-5:]), timeout=within)

    def _run(self) -> None:
        with httpx.Client(timeout=5) as client:
            while not self._stop.wait(0.05):
                try:
                    reply = client.get(f"http://127.0.0.1:{self.server.api_port}/readyz")
                except httpx.HTTPError:
                    continue
                problems = reply.json().get("problems", []) if reply.status_code == 503 else []
                self.answers.append((time.monotonic(), reply.status_code, problems))


def _proc_stat(pid: int) -> tuple[int, str] | None:
    """(parent pid, state) of a process, None once it is gone."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as stat:
            fields = stat.read().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return int(fields[1]), fields[0]


def _alive(pid: int) -> bool:
    found = _proc_stat(pid)
    return found is not None and found[1] not in "ZX"


def _children(pid: int) -> list[int]:
    return [int(p) for p in os.listdir("/proc") if p.isdigit() and (_proc_stat(int(p)) or (0,))[0] == pid]


def _forkservers(server: ServerProcess) -> list[int]:
    assert server.proc is not None
    found = []
    for child in _children(server.proc.pid):
        try:
            with open(f"/proc/{child}/cmdline", "rb") as cmdline:
                if b"multiprocessing.forkserver" in cmdline.read():
                    found.append(child)
        except OSError:
            continue
    return found


def _decode_processes(server: ServerProcess) -> list[int]:
    """The server's decode processes: its forkserver's children (not the forkserver itself,
    nor the resource tracker), the dead ones left out."""
    return [pid for fork in _forkservers(server) for pid in _children(fork) if _alive(pid)]


def _assert_every_acknowledged_span_stored_once(load: Load, db: Path) -> None:
    stored, twice_calls = stored_counts(db)
    assert load.acked == load.sent, f"{len(load.sent - load.acked)} spans sent were never acknowledged"
    assert [key for key, n in stored.items() if n > 1] == [], "a span was stored twice"
    assert twice_calls == 0, "a call was stored twice"
    assert load.acked - stored.keys() == set(), f"{len(load.acked - stored.keys())} acknowledged spans lost"
    assert stored.keys() <= load.sent, "stored a span that was never sent"


def _stop_one_that_decodes(server: ServerProcess, rng: random.Random) -> int | None:
    """SIGSTOP a decode process caught running (so it holds an export, or a pipe's lock):
    a hang. None when none was caught running within a few seconds."""
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        running = [pid for pid in _decode_processes(server) if (_proc_stat(pid) or (0, ""))[1] == "R"]
        if running:
            pid = rng.choice(running)
            os.kill(pid, signal.SIGSTOP)
            return pid
        time.sleep(0.002)
    return None


@contextlib.contextmanager
def _running(server: ServerProcess) -> Iterator[ServerProcess]:
    """The server, SIGKILLed with its whole tree should the test fail with it running."""
    try:
        yield server
    finally:
        if server.proc is not None and server.proc.poll() is None:
            for pid in reversed(bench_ingest().process_tree(server.proc.pid)):
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
            server.proc.wait(10)


@contextlib.contextmanager
def _killed_after(pids: list[int]) -> Iterator[None]:
    """SIGKILL these (decode processes a test stopped) when done: stopped, they could not
    even see their server go."""
    try:
        yield
    finally:
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)


def test_decode_processes_that_die_or_hang_under_load_cost_a_bounded_wait_and_no_span(tmp_path: Path) -> None:
    db = tmp_path / "ledger.duckdb"
    with _running(ServerProcess(f"duckdb:///{db}", tmp_path)) as server:
        _die_or_hang_under_load(server, db)


def _die_or_hang_under_load(server: ServerProcess, db: Path) -> None:
    server.start()
    readiness = Readiness(server)
    readiness.start()
    load = Load(server)
    load.start()
    seed = int(os.environ.get("DECODE_FAULTS_SEED", random.randrange(1 << 30)))
    rng = random.Random(seed)
    print(f"DECODE_FAULTS_SEED={seed}")
    stopped_pids: list[int] = []
    try:
        assert load.acked_while(2.0) > 5, "the load did not get going"
        # Deaths only: decode processes SIGKILLed at random moments.
        kills = 0
        deaths_until = time.monotonic() + 90
        while kills < KILLS and time.monotonic() < deaths_until:
            readiness.wait_ready()  # an OOM kill is rare: it finds a pool running, not one starting
            time.sleep(rng.uniform(0.05, 0.5))
            pids = _decode_processes(server)
            if pids:
                os.kill(rng.choice(pids), signal.SIGKILL)
                kills += 1
        deaths_ended = time.monotonic()
        # The forkserver too: a fresh one starts (a second or two) with the fresh pool.
        (forkserver,) = _forkservers(server)
        os.kill(forkserver, signal.SIGKILL)
        wait_for(lambda: _decode_processes(server) and forkserver not in _forkservers(server), timeout=30)
        assert load.acked_while(1.0) > 0
        # A hang: the export it holds waits decode_timeout_seconds, then the pool is replaced.
        hung = None
        for _ in range(3):
            stopped = _stop_one_that_decodes(server, rng)
            if stopped is None:
                continue
            stopped_pids.append(stopped)
            try:
                wait_for(lambda pid=stopped: not _alive(pid), timeout=DECODE_TIMEOUT_SECONDS + 5)
                hung = stopped
                break
            except AssertionError:  # caught running but holding nothing: idle, it delays no export
                os.kill(stopped, signal.SIGCONT)
        assert hung is not None, "no stopped decode process held an export"
        assert load.acked_while(1.0) > 0
    finally:
        with _killed_after(stopped_pids):
            load.stop()
    wait_for(lambda: readiness.answers and readiness.answers[-1][1] == 200, timeout=10)
    readiness.stop()
    assert server.stop() == 0

    deaths_only = [a for a in load.answers if a.began + a.seconds < deaths_ended]
    slowest_while_dying = max(a.seconds for a in deaths_only)
    slowest = max(a.seconds for a in load.answers)
    refused = Counter(a.what for a in load.answers if a.what != "ok")
    problems = {p for _, status, found in readiness.answers if status == 503 for p in found}
    print(
        f"{kills} decode processes killed, then the forkserver, then one stopped; {len(load.answers)} answers, "
        f"refused {dict(refused)}; slowest {slowest_while_dying:.2f} s while they only died, {slowest:.2f} s in all; "
        f"/readyz 503 {sum(s == 503 for _, s, _ in readiness.answers)} of {len(readiness.answers)}: {problems}"
    )
    assert kills == KILLS
    # A death is seen at once (its sentinel), so no export waits for a timeout then: one
    # that did was held by a pool waiting on a half-written result.
    assert slowest_while_dying < DECODE_TIMEOUT_SECONDS
    assert slowest < EXPORTER_TIMEOUT_SECONDS
    assert any("fresh pool is starting" in p for p in problems), problems
    _assert_every_acknowledged_span_stored_once(load, db)


def test_sigterm_to_the_process_group_under_load_drains_and_exits_in_time(tmp_path: Path) -> None:
    db = tmp_path / "ledger.duckdb"
    with _running(ServerProcess(f"duckdb:///{db}", tmp_path, new_session=True)) as server:
        _sigterm_to_the_group_under_load(server, db, tmp_path)


def _sigterm_to_the_group_under_load(server: ServerProcess, db: Path, logs: Path) -> None:
    load = Load(server)
    rng = random.Random(int(os.environ.get("DECODE_FAULTS_SEED", random.randrange(1 << 30))))
    exits: list[float] = []
    load.start()
    try:
        for _ in range(10):
            server.start()
            load.wait_acked(within=20)
            time.sleep(rng.uniform(0.1, 1.0))  # a random moment under load
            assert server.proc is not None
            signalled = time.monotonic()
            os.killpg(server.proc.pid, signal.SIGTERM)  # the server, its forkserver and decode processes
            code = server.proc.wait(DRAIN_SECONDS + 5)
            exits.append(time.monotonic() - signalled)
            log = (logs / f"collector-{server.starts}.log").read_text()
            assert code == 0, log[-3000:]
            assert "decode process died" not in log, "the group's SIGTERM broke the pool under the drain"
        server.start()  # the clients' last bodies land
    finally:
        load.stop()
    assert server.stop() == 0
    print(f"exits after SIGTERM to the group: {', '.join(f'{s:.2f}' for s in exits)} s")
    assert max(exits) < DRAIN_SECONDS
    _assert_every_acknowledged_span_stored_once(load, db)


def test_a_second_signal_ends_the_drain_at_once(tmp_path: Path) -> None:
    """The drain waits for an export held by a hung decode process; a second SIGTERM does not."""
    server = ServerProcess(
        f"duckdb:///{tmp_path / 'ledger.duckdb'}", tmp_path, env={"BREAKEVEN_DECODE_TIMEOUT_SECONDS": "30"}
    )
    with _running(server):
        _a_second_signal(server)


def _a_second_signal(server: ServerProcess) -> None:
    server.start()
    assert server.proc is not None
    stopped = _decode_processes(server)
    for pid in stopped:
        os.kill(pid, signal.SIGSTOP)
    body = bench_ingest().build_template(8, 0).body()
    headers = {"Content-Type": "application/x-protobuf"}
    with httpx.Client(timeout=60) as client, _killed_after(stopped):

        def send() -> None:
            with contextlib.suppress(httpx.HTTPError):  # the server is gone before it answers
                client.post(f"{server.otlp_http}/v1/traces", content=body, headers=headers)

        held = threading.Thread(target=send, daemon=True)
        held.start()
        time.sleep(0.5)
        server.proc.send_signal(signal.SIGTERM)
        time.sleep(1.0)
        assert server.proc.poll() is None, "the drain did not wait for the export under way"
        signalled = time.monotonic()
        server.proc.send_signal(signal.SIGTERM)
        assert server.proc.wait(5) == 128 + signal.SIGTERM
        assert time.monotonic() - signalled < 2
