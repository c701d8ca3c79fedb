"""Decode processes (collector/ingest/offload.py): the same records as threads, and no loss.

Every other API suite runs on the default (two decode processes); these hold that path to
the threads' one (`decode_processes = 0`) and try what processes add: one dying, and
shutting down.
"""

from __future__ import annotations

import base64
import fcntl
import json
import os
import signal
import struct
import sys
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest

from breakeven.collector.ingest import offload
from breakeven.collector.ingest.offload import TraceDecoder
from tests.conftest import RunningCollector, running_collector, wait_for
from tests.otel import chat_attributes, chat_export, tracer
from tests.scripts import bench_ingest

FIXTURES = sorted((Path(__file__).parents[1] / "fixtures" / "emitters").glob("*/*.json"))
PROTOBUF = {"Content-Type": "application/x-protobuf"}


def _replay_all(running: RunningCollector) -> list[dict]:
    for path in FIXTURES:
        capture = json.loads(path.read_text())
        for body in capture.get("logs", []):
            reply = httpx.post(f"{running.otlp_http}/v1/logs", content=base64.b64decode(body), headers=PROTOBUF)
            assert reply.status_code == 200
        for body in capture["traces"]:
            reply = httpx.post(f"{running.otlp_http}/v1/traces", content=base64.b64decode(body), headers=PROTOBUF)
            assert reply.status_code == 200, reply.content
    calls = running.calls()
    for call in calls:
        call.pop("received_at")
    return sorted(calls, key=lambda c: (c["trace_id"], c["span_id"]))


@pytest.mark.slow  # every capture replayed twice: some 40 s
def test_decode_processes_store_what_threads_store(tmp_path: Path) -> None:
    with running_collector(tmp_path / "threads", "duckdb", decode_processes=0) as threads:
        assert threads.app.decoder is not None
        assert threads.app.decoder.processes == 0
        by_threads = _replay_all(threads)
        ingest_threads = threads.ingest()
    with running_collector(tmp_path / "processes", "duckdb", decode_processes=2) as processes:
        by_processes = _replay_all(processes)
        ingest_processes = processes.ingest()
    assert len(by_threads) >= len(FIXTURES) - 5
    assert by_processes == by_threads
    assert ingest_processes == ingest_threads


def _decode_pids(running: RunningCollector) -> list[int]:
    decoder = running.app.decoder
    assert isinstance(decoder, TraceDecoder)
    assert decoder._pool is not None
    return list(decoder._pool._processes or {})


def _export(running: RunningCollector, service: str) -> httpx.Response:
    request = chat_export(service)
    return httpx.post(f"{running.otlp_http}/v1/traces", content=request.SerializeToString(), headers=PROTOBUF)


def _ready(running: RunningCollector) -> httpx.Response:
    return httpx.get(f"{running.api}/readyz", timeout=10)


def test_a_dead_decode_process_is_replaced_before_the_next_export_comes(tmp_path: Path) -> None:
    with running_collector(tmp_path, "duckdb") as running:
        assert _export(running, "before").status_code == 200
        killed = _decode_pids(running)
        for pid in killed:
            os.kill(pid, signal.SIGKILL)
        # No export needed: the watch swaps the pool and /readyz comes back by itself...
        wait_for(lambda: _ready(running).status_code == 200 and not set(_decode_pids(running)) & set(killed))
        # ...and the next export, through a real SDK exporter, lands at once.
        service = f"svc-{uuid.uuid4().hex[:8]}"
        with tracer(running.otlp_http, service) as t:
            with t.start_as_current_span("chat gpt-4o", attributes=chat_attributes()):
                pass
        assert len(running.calls(service=service)) == 1
        assert len(running.calls(service="before")) == 1
        metrics = httpx.get(f"{running.api}/metrics", timeout=10).text
        assert "breakeven_ingest_decode_processes 2.0" in metrics
        assert "breakeven_ingest_decode_process_deaths_total 1.0" in metrics


def test_an_export_held_by_a_dying_decode_process_is_decoded_again_by_the_fresh_pool(tmp_path: Path) -> None:
    """Decoding changes nothing, so what a broken pool held is tried once on the fresh one:
    the death costs its exports a moment, not a 503."""
    with running_collector(tmp_path, "duckdb", decode_timeout_seconds=10) as running:
        assert _export(running, "before").status_code == 200
        held = _decode_pids(running)
        for pid in held:
            os.kill(pid, signal.SIGSTOP)  # whichever takes the export holds it
        with ThreadPoolExecutor(1) as sending:
            reply = sending.submit(_export, running, "held")
            time.sleep(0.5)
            assert not reply.done()
            for pid in held:
                os.kill(pid, signal.SIGKILL)
            assert reply.result(10).status_code == 200
        assert len(running.calls(service="held")) == 1


def _die_writing_half_a_result() -> None:
    """Run in a decode process: start a result (its length, 10 of its bytes), then die, as a
    process the OOM killer takes while it writes one. The pool reads the rest for ever."""
    results = sys._getframe(1).f_locals["result_queue"]  # concurrent.futures.process._process_worker's
    results._writer._send(struct.pack("!i", 100_000) + b"x" * 10)
    os.kill(os.getpid(), signal.SIGKILL)


def test_a_decode_process_killed_half_way_through_a_result_wedges_nothing(tmp_path: Path) -> None:
    """The pool waits on the rest of that result and never marks itself broken, so exports
    sent to it waited for ever (then for decode_timeout_seconds). The watch sees the death,
    kills the rest and lets the pool's thread go (the interpreter joins it at exit: it held
    the server's exit too), and a fresh pool takes the next export at once."""
    with running_collector(tmp_path, "duckdb", decode_timeout_seconds=10) as running:
        decoder = running.app.decoder
        assert isinstance(decoder, TraceDecoder)
        assert _export(running, "before").status_code == 200
        wedged = decoder._pool
        assert wedged is not None
        thread = wedged._executor_manager_thread
        wedged.submit(_die_writing_half_a_result)
        began = time.monotonic()
        assert _export(running, "after").status_code == 200
        assert time.monotonic() - began < 5  # the death seen at once, not the 10 s bound
        assert thread is not None
        thread.join(5)
        assert not thread.is_alive(), "the wedged pool's thread still waits: the server could not exit"
        assert decoder._pool is not wedged
        wait_for(lambda: _ready(running).status_code == 200)
        assert len(running.calls(service="after")) == 1
        assert decoder.deaths == 1


def test_readyz_names_a_fresh_pool_that_has_not_started(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """While the fresh pool starts (a forkserver started again takes a second or two), an
    export cannot be decoded: /readyz says so, and comes back to 200 by itself."""
    with running_collector(tmp_path, "duckdb") as running:
        release = threading.Event()
        start_forkserver = offload._start_forkserver

        def slow_start() -> None:
            release.wait(10)
            start_forkserver()

        monkeypatch.setattr(offload, "_start_forkserver", slow_start)
        os.kill(_decode_pids(running)[0], signal.SIGKILL)
        reply = wait_for(lambda: (r := _ready(running)).status_code == 503 and r)
        assert reply.json()["problems"] == ["a decode process died; a fresh pool is starting"]
        release.set()
        wait_for(lambda: _ready(running).status_code == 200)
        assert _export(running, "after").status_code == 200


def test_readyz_says_shutting_down_while_the_collector_drains(tmp_path: Path) -> None:
    """The API stays up till the end of the drain, answering 503, so a load balancer stops
    sending before the receivers are gone; an export held then is answered, not dropped."""
    with running_collector(tmp_path, "duckdb", decode_timeout_seconds=2) as running:
        assert _export(running, "before").status_code == 200
        held = _decode_pids(running)
        for pid in held:
            os.kill(pid, signal.SIGSTOP)
        with ThreadPoolExecutor(2) as work:
            reply = work.submit(_export, running, "held")
            time.sleep(0.3)
            stopped = work.submit(running.app.stop)
            draining = wait_for(lambda: (r := _ready(running)).status_code == 503 and r)
            assert draining.json()["problems"][0].startswith("shutting down")
            assert reply.result(10).status_code == 503  # past its decode bound: refused, never lost
            assert stopped.result(30) is True
        assert all(not _alive(pid) for pid in held)


def test_a_hung_decode_process_costs_a_bounded_wait_and_a_retry_not_a_wedge(tmp_path: Path) -> None:
    """A decode process that stops answering (SIGSTOP: a hang, or a half-written result the pool
    waits on) fails the export it held within decode_timeout_seconds; a fresh pool takes the next."""
    with running_collector(tmp_path, "duckdb", decode_timeout_seconds=1) as running:
        assert _export(running, "before").status_code == 200
        stopped = _decode_pids(running)
        for pid in stopped:
            os.kill(pid, signal.SIGSTOP)
        try:
            began = time.monotonic()
            reply = _export(running, "held")
            waited = time.monotonic() - began
            assert reply.status_code == 503
            assert reply.headers["Retry-After"] == "2"
            assert "longer than 1 s" in reply.text
            assert waited < 5  # the bound (1 s) and the pool's replacement, never the exporter's 10 s
            assert _export(running, "after").status_code == 200
            assert running.calls(service="held") == []
            assert len(running.calls(service="after")) == 1
            assert not set(_decode_pids(running)) & set(stopped)
            assert all(not _alive(pid) for pid in stopped)  # killed, not left stopped
        finally:
            for pid in stopped:
                if _alive(pid):
                    os.kill(pid, signal.SIGKILL)


def test_grpc_exports_survive_a_dead_decode_process(tmp_path: Path) -> None:
    with running_collector(tmp_path, "duckdb") as running:
        service = f"svc-{uuid.uuid4().hex[:8]}"
        with tracer(running.otlp_grpc, service, protocol="grpc") as t:
            with t.start_as_current_span("chat gpt-4o", attributes=chat_attributes()):
                pass
            for pid in _decode_pids(running):
                os.kill(pid, signal.SIGKILL)
            with t.start_as_current_span("chat gpt-4o", attributes=chat_attributes()):
                pass  # UNAVAILABLE with RetryInfo first, then the exporter's retry lands
        assert len(running.calls(service=service)) == 2


def test_stopping_the_collector_ends_its_decode_processes(tmp_path: Path) -> None:
    with running_collector(tmp_path, "duckdb") as running:
        assert _export(running, "one").status_code == 200
        pids = _decode_pids(running)
        assert pids
    for pid in pids:
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)


def test_decode_processes_run_below_the_server_through_wide_pipes(tmp_path: Path) -> None:
    """The writer's thread gets a core first (README Scaling), and an export crosses a pipe in one go."""
    with running_collector(tmp_path, "duckdb") as running:
        assert _export(running, "one").status_code == 200
        pids = _decode_pids(running)
        assert pids
        server = os.getpriority(os.PRIO_PROCESS, 0)
        assert {os.getpriority(os.PRIO_PROCESS, pid) for pid in pids} == {min(19, server + offload.DECODE_NICENESS)}
        pool = running.app.decoder._pool  # type: ignore[union-attr]
        ends = (pool._result_queue._reader, pool._call_queue._writer)  # type: ignore[union-attr]
        assert [fcntl.fcntl(end.fileno(), fcntl.F_GETPIPE_SZ) for end in ends] == [offload.PIPE_BYTES] * 2


def test_decode_processes_that_cannot_start_fall_back_to_threads(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    from concurrent.futures.process import ProcessPoolExecutor

    def cannot_start(self: ProcessPoolExecutor) -> None:
        raise OSError(1, "Operation not permitted")  # as a sandbox that forbids fork answers

    monkeypatch.setattr(ProcessPoolExecutor, "_spawn_process", cannot_start)
    with running_collector(tmp_path, "duckdb") as running:
        assert running.app.decoder is not None
        assert running.app.decoder.processes == 0
        assert _export(running, "threads").status_code == 200
        assert len(running.calls(service="threads")) == 1
        assert "breakeven_ingest_decode_processes 0.0" in httpx.get(f"{running.api}/metrics", timeout=10).text
    assert "decode processes could not start" in caplog.text


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def test_decode_processes_end_with_a_server_killed_by_sigkill(tmp_path: Path) -> None:
    from tests.reliability.server import ServerProcess

    server = ServerProcess(f"duckdb:///{tmp_path / 'ledger.duckdb'}", tmp_path)
    server.start()
    assert server.proc is not None
    tree = bench_ingest().process_tree  # the server and its descendants
    helpers = wait_for(lambda: len(found := set(tree(server.proc.pid)) - {server.proc.pid}) >= 3 and found)
    server.proc.send_signal(signal.SIGKILL)
    server.proc.wait(10)
    assert wait_for(lambda: not any(_alive(pid) for pid in helpers)), [p for p in helpers if _alive(p)]


def test_decode_processes_import_the_servers_collector_not_one_in_its_working_directory(tmp_path: Path) -> None:
    """`python -c` puts the working directory first on the forkserver's path, and Python
    3.11 does not give it the server's: started beside another `collector` package (another
    project's, an older checkout), the decode processes imported that one."""
    from tests.reliability.server import ServerProcess

    console_script = Path(sys.executable).with_name("breakeven")
    assert console_script.exists(), "the test suite runs on an installed breakeven (README)"
    workdir = tmp_path / "elsewhere"
    (workdir / "collector").mkdir(parents=True)
    imported = workdir / "collector" / "imported"
    (workdir / "collector" / "__init__.py").write_text(
        f"open({str(imported)!r}, 'w').close()\nraise ImportError('not the collector')\n"
    )
    server = ServerProcess(
        f"duckdb:///{tmp_path / 'ledger.duckdb'}", tmp_path, entry=(str(console_script),), cwd=workdir
    )
    server.start()
    try:
        reply = httpx.post(
            f"{server.otlp_http}/v1/traces", content=chat_export("cwd").SerializeToString(), headers=PROTOBUF
        )
        assert reply.status_code == 200, reply.content
        metrics = httpx.get(f"http://127.0.0.1:{server.api_port}/metrics", timeout=10).text
        assert "breakeven_ingest_decode_processes 2.0" in metrics
        assert not imported.exists()
    finally:
        server.stop()
