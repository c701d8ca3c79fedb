"""The console script: bad settings stop start-up naming the setting; SIGTERM drains and exits 0."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time

import httpx
import pytest

from tests.conftest import wait_for
from tests.otel import chat_attributes, tracer

BREAKEVEN = [sys.executable, "-m", "collector.cli"]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.parametrize(
    ("args", "env", "named"),
    [
        pytest.param(["--db", "mysql://x/y"], {}, "db", id="bad db"),
        pytest.param(["--http-port", "4318"], {}, "http_port", id="port clash"),
        pytest.param([], {"BREAKEVEN_HOST": "not-an-ip"}, "host", id="bad env host"),
    ],
)
def test_bad_setting_stops_startup_with_its_name(args: list[str], env: dict, named: str) -> None:
    proc = subprocess.run(
        [*BREAKEVEN, "serve", *args], capture_output=True, text=True, timeout=60, env={**os.environ, **env}
    )
    assert proc.returncode == 2
    assert proc.stderr.startswith("breakeven: error: ") and named in proc.stderr
    assert "Traceback" not in proc.stderr


def test_busy_port_is_a_named_error(tmp_path) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        proc = subprocess.run(
            [
                *BREAKEVEN,
                "serve",
                "--db",
                f"duckdb:///{tmp_path / 'x.duckdb'}",
                "--http-port",
                str(port),
                "--otlp-http-port",
                "0",
                "--otlp-grpc-port",
                "0",
            ],
            capture_output=True,
            text=True,
            timeout=60,
        )
    assert proc.returncode == 2 and "http_port" in proc.stderr


@pytest.mark.slow
def test_serve_ingests_and_sigterm_drains_and_exits_zero(tmp_path) -> None:
    ports = [_free_port() for _ in range(3)]
    db = tmp_path / "ledger.duckdb"
    proc = subprocess.Popen(
        [
            *BREAKEVEN,
            "serve",
            "--db",
            f"duckdb:///{db}",
            "--otlp-http-port",
            str(ports[0]),
            "--otlp-grpc-port",
            str(ports[1]),
            "--http-port",
            str(ports[2]),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    api = f"http://127.0.0.1:{ports[2]}"
    try:

        def ready() -> bool:
            try:
                return httpx.get(f"{api}/readyz", timeout=1).status_code == 200
            except httpx.HTTPError:
                return False

        wait_for(ready, timeout=60)
        with tracer(f"http://127.0.0.1:{ports[0]}", "cli-test") as t:
            with t.start_as_current_span("chat", attributes=chat_attributes()):
                pass
        assert len(httpx.get(f"{api}/api/v1/calls").json()["calls"]) == 1
        started = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=60) == 0
        assert time.monotonic() - started < 30
    finally:
        if proc.poll() is None:
            proc.kill()
    assert db.exists()
