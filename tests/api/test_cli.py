"""The console script: bad settings stop start-up naming the setting; SIGTERM drains and exits 0."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time

import httpx
import pytest

from tests.conftest import wait_for
from tests.otel import chat_attributes, tracer

BREAKEVEN = [sys.executable, "-m", "breakeven.collector.cli"]


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
    assert proc.stderr.startswith("breakeven: error: ")
    assert named in proc.stderr
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
    assert proc.returncode == 2
    assert "http_port" in proc.stderr


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
        output = proc.stdout.read() if proc.stdout else ""
        assert "leaked" not in output, output  # the start-up objects frozen out of the GC are thawed at exit
    finally:
        if proc.poll() is None:
            proc.kill()
    assert db.exists()


# breakeven reprice: the calls and price books of tests/store/test_reprice.py, through the console script.
NEW_BOOK_TOML = """
[[pricing.prices]]
provider = "openai"
model = "acme-chat"
effective_from = 2025-01-01
input = 1.00
output = 2.00

[[pricing.prices]]
provider = "openai"
model = "acme-chat"
effective_from = 2025-06-10
input = 0.50
output = 1.50

[[pricing.prices]]
provider = "openai"
model = "acme-new"
effective_from = 2025-01-01
input = 3
output = 6

[[pricing.prices]]
provider = "anthropic"
model = "acme-claude"
effective_from = 2025-01-01
input = 2
output = 10

[[pricing.discounts]]
provider = "anthropic"
percent = 10
effective_from = 2025-01-01

[[pricing.pools]]
name = "vllm-a"
match = { backend = "vllm-a" }
boxes = 1
rent_per_month = 900
capacity = { input_tps = 1000, output_tps = 100 }
alternative = { provider = "together", model = "x" }
"""


@pytest.fixture
def priced_ledger(tmp_path) -> tuple[str, str]:
    """A DuckDB ledger priced with the old book, and a config holding the new one: (db URL, config path)."""
    from breakeven.collector.config.pricing import parse_pricing
    from breakeven.collector.price.ledger import ledger_pricer
    from breakeven.collector.records import WriteBatch
    from breakeven.collector.store.engine import make_engine, migrate
    from breakeven.collector.store.writer import LedgerWriter
    from tests.store.test_reprice import CALLS, CHAT_V1, CLAUDE, OLD_ONLY

    url = f"duckdb:///{tmp_path / 'ledger.duckdb'}"
    config = tmp_path / "breakeven.toml"
    # The collector ran with the old book in this same file (book prices name it as their source).
    price = ledger_pricer(parse_pricing({"prices": [CHAT_V1, OLD_ONLY, CLAUDE]}, str(config)))
    engine = make_engine(url)
    migrate(engine)
    LedgerWriter(engine).write(WriteBatch(calls=list(CALLS), prices=[price(c) for c in CALLS]), 1_750_000_000_000_000)
    engine.dispose()  # DuckDB: one process may hold the file
    config.write_text(NEW_BOOK_TOML)
    return url, str(config)


def test_reprice_shows_progress_and_a_summary_and_exits_zero(priced_ledger: tuple[str, str]) -> None:
    url, config = priced_ledger
    flags = ["--since", "2025-06-01", "--until", "2025-07-01", "--actor", "ci", "--batch-size", "2"]
    proc = subprocess.run(
        [*BREAKEVEN, "reprice", "--db", url, "--config", config, *flags],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stderr
    progress = proc.stderr.splitlines()  # not a terminal: a line every 10%, the last at 100%
    assert progress[-1] == "reprice: 100% (7 of 7 calls)"
    assert all(line.startswith("reprice: ") for line in progress)
    out = proc.stdout
    assert "calls examined  7\n" in out
    assert "calls repriced  5\n" in out
    assert "newly priced    1\n" in out
    assert "newly unpriced  1\n" in out
    assert "total before    12.545674 USD" in out
    assert "total after     7.2207336 USD (-5.3249404)" in out
    assert re.search(r"^run id          [0-9a-f]{32}$", out, re.M)


@pytest.mark.parametrize(
    ("args", "named"),
    [
        pytest.param(["--since", "last-tuesday"], "--since: not a date", id="since not a date"),
        pytest.param(
            ["--since", "2025-06-10", "--until", "2025-06-01"],
            "--until: must be after --since",
            id="until before since",
        ),
        pytest.param(["--since", "2025-06-01", "--until", "2025-13-01"], "--until: not a date", id="until not a date"),
        pytest.param(["--since", "2025-06-01", "--batch-size", "0"], "--batch-size: must be positive", id="no batch"),
    ],
)
def test_reprice_bad_flags_exit_2_naming_the_flag(
    args: list[str], named: str, priced_ledger: tuple[str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    from breakeven.collector.cli import main

    assert main(["reprice", "--db", priced_ledger[0], *args]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"breakeven: error: {named}")
    assert "Traceback" not in err


def test_reprice_against_a_duckdb_file_a_collector_holds_exits_2_saying_so(
    priced_ledger: tuple[str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    from breakeven.collector.cli import main

    path = priced_ledger[0].removeprefix("duckdb:///")
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import duckdb, sys; c = duckdb.connect(sys.argv[1]); print('open', flush=True); sys.stdin.read()",
            path,
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None
        assert holder.stdout.readline() == "open\n"
        assert main(["reprice", "--since", "2025-06-01", "--db", priced_ledger[0]]) == 2
    finally:
        holder.communicate("", timeout=30)
    err = capsys.readouterr().err
    assert f"in use by a running collector (PID {holder.pid}); stop it" in err
    assert "Traceback" not in err
