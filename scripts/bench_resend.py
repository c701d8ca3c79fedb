"""Re-sent spans of any age on a big ledger: recognised, and what it costs.

What it does
  Fills a ledger (a fresh temporary DuckDB file, or --db-url) with --rows one-span calls
  received over the last 400 days (rows and calls made by SQL, in minutes even at tens of
  millions), starts `breakeven serve` on it (printing the time to /readyz 200), then sends
  again, over OTLP/HTTP, --resend of those spans picked evenly over the 400 days (an
  exporter's retry after an outage, a replay from a file), and as many new spans. It
  prints the time each set took and the server's ingest counters: every re-sent span
  must be counted a duplicate and none stored again (exit 1 otherwise).

Run
  python scripts/bench_resend.py --rows 20000000
  python scripts/bench_resend.py --rows 5000000 --db-url postgresql+psycopg://postgres@127.0.0.1/bench
"""

from __future__ import annotations

import argparse
import hashlib
import json
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import sqlalchemy as sa

from breakeven.collector.store.engine import make_engine, migrate

DAYS = 400
BATCH = 100  # spans per export
SPAN_COLUMNS = (
    "trace_id, span_id, name, kind, is_engine, start_time, end_time, backend_class, status, emitter,"
    " conventions, received_at, attributes, service, operation, provider, request_model, input_tokens, output_tokens"
)
CALL_COLUMNS = (
    "trace_id, span_id, start_time, end_time, backend_class, status, emitter, conventions, received_at,"
    " service, operation, provider, request_model, input_tokens, cache_read_tokens, cache_write_tokens,"
    " output_tokens, reasoning_tokens, usage_reported, span_count, member_span_ids, price_status"
)


def ids(i: int) -> tuple[str, str]:
    """Row i's trace and span id, as the fill's SQL makes them (md5 of the row number)."""
    return hashlib.md5(str(i).encode()).hexdigest(), hashlib.md5(f"s{i}".encode()).hexdigest()[:16]


def fill(url: str, rows: int, t0: float, step: float) -> float:
    """Migrate and fill the ledger with `rows` aged one-span calls; returns the seconds it took."""
    engine = make_engine(url)
    migrate(engine)
    started = time.perf_counter()
    duckdb = engine.dialect.name == "duckdb"
    source = "range(:n) AS t(i)" if duckdb else "generate_series(0, :n - 1) AS t(i)"
    text = "VARCHAR" if duckdb else "text"
    trace, span = f"md5(CAST(i AS {text}))", f"substr(md5('s' || CAST(i AS {text})), 1, 16)"
    start, end, received = (f"to_timestamp(:t0 + i * :step + {offset})" for offset in (0, 1, 2))
    chunk = 5_000_000
    with engine.begin() as conn:
        for lo in range(0, rows, chunk):
            n = min(chunk, rows - lo)
            params = {"n": n, "t0": t0 + lo * step, "step": step}
            shift = f"(i + {lo})"
            conn.execute(
                sa.text(
                    f"INSERT INTO llm_spans ({SPAN_COLUMNS}) SELECT {trace.replace('i AS', f'{shift} AS')},"
                    f" {span.replace('i AS', f'{shift} AS')}, 'chat gpt-4o', 3, false, {start}, {end}, 'frontier',"
                    f" 'ok', 'bench', 'otel_genai', {received}, '{{}}', 'bench', 'chat', 'openai', 'gpt-4o', 100, 20"
                    f" FROM {source}"
                ),
                params,
            )
            conn.execute(
                sa.text(
                    f"INSERT INTO calls ({CALL_COLUMNS}) SELECT {trace.replace('i AS', f'{shift} AS')},"
                    f" {span.replace('i AS', f'{shift} AS')}, {start}, {end}, 'frontier', 'ok', 'bench',"
                    f" 'otel_genai', {received}, 'bench', 'chat', 'openai', 'gpt-4o', 100, 0, 0, 20, 0, true, 1,"
                    f" {span.replace('i AS', f'{shift} AS')}, 'unpriced' FROM {source}"
                ),
                params,
            )
            print(f"  filled {lo + n:,} of {rows:,} rows", file=sys.stderr, flush=True)
    if duckdb:
        with engine.connect() as conn:
            conn.exec_driver_sql("CHECKPOINT")
    engine.dispose()
    return time.perf_counter() - started


def span_json(trace_id: str, span_id: str, start_ns: int) -> dict[str, object]:
    attributes = {
        "gen_ai.operation.name": "chat",
        "gen_ai.provider.name": "openai",
        "gen_ai.request.model": "gpt-4o",
        "gen_ai.usage.input_tokens": 100,
        "gen_ai.usage.output_tokens": 20,
    }
    return {
        "traceId": trace_id,
        "spanId": span_id,
        "name": "chat gpt-4o",
        "kind": 3,
        "startTimeUnixNano": str(start_ns),
        "endTimeUnixNano": str(start_ns + 10**9),
        "attributes": [{"key": k, "value": _value(v)} for k, v in attributes.items()],
    }


def _value(v: object) -> dict[str, object]:
    return {"intValue": str(v)} if isinstance(v, int) else {"stringValue": str(v)}


def post(port: int, spans: list[dict[str, object]]) -> None:
    body = {"resourceSpans": [{"resource": {"attributes": [{"key": "service.name", "value": {"stringValue": "bench"}}]},
                               "scopeSpans": [{"scope": {"name": "bench"}, "spans": spans}]}]}  # fmt: skip
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}/v1/traces", json.dumps(body).encode(), {"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(request, timeout=120) as answer:
        assert answer.status == 200, answer.status


def counters(api_port: int) -> dict[str, int]:
    with urllib.request.urlopen(f"http://127.0.0.1:{api_port}/api/v1/ingest", timeout=30) as answer:
        ingest = json.load(answer)
    return {name: int(ingest.get(name, 0)) for name in ("llm_spans_stored", "duplicates_ignored")}


def send(port: int, spans: list[dict[str, object]]) -> float:
    started = time.perf_counter()
    for lo in range(0, len(spans), BATCH):
        post(port, spans[lo : lo + BATCH])
    return time.perf_counter() - started


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", 1)[0])
    parser.add_argument("--rows", type=int, default=20_000_000, help="aged one-span calls to fill (20,000,000)")
    parser.add_argument("--resend", type=int, default=1_000, help="stored spans to send again (1,000)")
    parser.add_argument("--db-url", help="database URL (default: a fresh temporary DuckDB file)")
    args = parser.parse_args(argv)
    tmpdir = Path(tempfile.mkdtemp(prefix="breakeven-resend-"))
    url = args.db_url or f"duckdb:///{tmpdir / 'ledger.duckdb'}"
    now = time.time()
    t0, step = now - DAYS * 86_400, (DAYS - 1) * 86_400 / args.rows
    print(f"filling {args.rows:,} rows received over {DAYS} days into {url}", flush=True)
    print(f"filled in {fill(url, args.rows, t0, step):.1f} s", flush=True)
    ports = free_ports(3)
    breakeven = (
        [shutil.which("breakeven")] if shutil.which("breakeven") else [sys.executable, "-m", "breakeven.collector.cli"]
    )
    command = [
        *breakeven, "serve", "--db", url, "--otlp-http-port", str(ports[0]),
        "--otlp-grpc-port", str(ports[1]), "--http-port", str(ports[2]), "--log-level", "warning",
    ]  # fmt: skip
    log = open(tmpdir / "server.log", "wb")  # noqa: SIM115
    started = time.perf_counter()
    server = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)
    try:
        ready = wait_ready(server, ports[2], started)
        print(f"serve answered /readyz 200 after {ready:.2f} s", flush=True)
        picks = [args.rows * k // args.resend for k in range(args.resend)]
        resent = [span_json(*ids(i), int((t0 + i * step) * 1e9)) for i in picks]
        fresh = [span_json(f"{k + 1:032x}", f"{k + 1:016x}", time.time_ns() - 2 * 10**9) for k in range(args.resend)]
        before = counters(ports[2])
        resend_seconds = send(ports[0], resent)
        middle = counters(ports[2])
        fresh_seconds = send(ports[0], fresh)
        after = counters(ports[2])
    finally:
        server.terminate()
        server.wait(120)
        log.close()
    duplicates = middle["duplicates_ignored"] - before["duplicates_ignored"]
    stored_again = middle["llm_spans_stored"] - before["llm_spans_stored"]
    print(f"re-sent {len(resent):,} stored spans aged 1-{DAYS} days: {resend_seconds * 1e3 / len(resent):.2f} ms per span,"
          f" {duplicates:,} counted duplicates, {stored_again:,} stored again")  # fmt: skip
    print(f"sent {len(fresh):,} new spans: {fresh_seconds * 1e3 / len(fresh):.2f} ms per span,"
          f" {after['llm_spans_stored'] - middle['llm_spans_stored']:,} stored")  # fmt: skip
    if not args.db_url:
        shutil.rmtree(tmpdir, ignore_errors=True)
    ok = duplicates == len(resent) and stored_again == 0
    print("OK" if ok else "RE-SENT SPANS STORED AGAIN")
    return 0 if ok else 1


def free_ports(count: int) -> list[int]:
    """`count` distinct free loopback ports."""
    import socket

    ports: set[int] = set()
    while len(ports) < count:
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            ports.add(int(sock.getsockname()[1]))
    return sorted(ports)


def wait_ready(server: subprocess.Popen[bytes], api_port: int, started: float, within: float = 600.0) -> float:
    """Seconds from `started` until /readyz answers 200."""
    while time.perf_counter() - started < within:
        if server.poll() is not None:
            raise RuntimeError(f"breakeven serve exited with {server.returncode}")
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{api_port}/readyz", timeout=2) as answer:
                if answer.status == 200:
                    return time.perf_counter() - started
        except OSError:
            pass
        time.sleep(0.05)
    raise RuntimeError(f"/readyz did not answer 200 within {within:.0f} s")


if __name__ == "__main__":
    sys.exit(main())
