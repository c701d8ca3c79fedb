"""Restart benchmark: how long `breakeven serve` takes to answer /readyz 200 after a SIGKILL.

What it measures
  A DuckDB ledger replays its write-ahead log when it is opened after a crash. The WAL is
  at its worst when the crash comes just before a checkpoint: DuckDB checkpoints once the
  WAL passes duckdb_checkpoint_threshold (256MB by default), so the worst case is a WAL
  just under it. For each ledger (a fresh one, and with --calls one holding that many
  calls already checkpointed) the script
    1. starts `breakeven serve` with duckdb_checkpoint_threshold = --wal-mb MB and times its
       start to /readyz 200 (the WAL is empty: a clean start);
    2. posts OTLP/HTTP protobuf exports of 512 LLM spans (scripts/bench_ingest.py's bodies)
       until the WAL file (<db>.wal) is within a few exports of the threshold;
    3. SIGKILLs the server; opens a copy of the files with serve's DuckDB settings and
       times the open (DuckDB's replay of the WAL) and the CHECKPOINT that serve's migrate
       step runs next; then starts `breakeven serve` again and times it from process start
       to /readyz 200, noting the peak RSS of the restarted server (decode processes summed);
  --runs times (steps 2-3). It prints a table of the WAL size at each kill and the times.
  The --calls ledger is filled as scripts/bench_dashboard.py fills its own, which stamps
  every call received at the fill: all of them fall in the six hours the seen-trace filter
  is warmed from at start, the warm's worst case too.

Run
  python scripts/bench_restart.py                           # fresh ledger, WAL up to 256MB, 3 runs
  python scripts/bench_restart.py --calls 1000000 --runs 3  # also a ledger of 1M calls
  python scripts/bench_restart.py --wal-mb 16               # DuckDB's own default threshold
"""

from __future__ import annotations

import argparse
import contextlib
import http.client
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

from bench_dashboard import fill, roll
from bench_ingest import HOST, Template, build_template, free_port, proc_status, process_tree, wait_ready

from breakeven.collector.config.settings import Settings, load_settings
from breakeven.collector.store.engine import make_engine

CLIENTS = 4
MB = 10**6  # DuckDB's unit: checkpoint_threshold = '256MB' is 256,000,000 bytes
BATCH = 512
READY_WITHIN_SECONDS = 600.0
STUCK_SECONDS = 120.0  # refused this long: the server is broken, stop


@dataclass
class Server:
    """One `breakeven serve` on fresh ports over the ledger."""

    db: Path
    config: Path
    log: Path
    proc: subprocess.Popen[bytes] | None = None
    otlp_port: int = 0
    ready_seconds: float = 0.0
    peak_rss_mib: float = 0.0

    def start(self) -> None:
        """Start it; ready_seconds is the time from process start to /readyz 200."""
        self.otlp_port, grpc_port, api_port = free_port(), free_port(), free_port()
        command = [
            shutil.which("breakeven") or "breakeven", "serve", "--db", f"duckdb:///{self.db}",
            "--config", str(self.config), "--log-level", "warning",
            "--otlp-http-port", str(self.otlp_port), "--otlp-grpc-port", str(grpc_port), "--http-port", str(api_port),
        ]  # fmt: skip
        started = time.monotonic()
        with open(self.log, "ab") as log:
            self.proc = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)
        wait_ready(self.proc, f"http://{HOST}:{api_port}/readyz", READY_WITHIN_SECONDS)
        self.ready_seconds = time.monotonic() - started
        self.peak_rss_mib = proc_status(self.proc.pid).get("VmHWM", 0) / 1024

    def kill(self) -> None:
        """SIGKILL the server process alone, as the kernel's OOM killer would; then its orphans."""
        assert self.proc is not None
        tree = process_tree(self.proc.pid)
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(timeout=30)
        for pid in tree[1:]:  # decode processes left behind would only skew the next run
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)

    def stop(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGTERM)
        self.proc.wait(timeout=600)


@dataclass
class Filler:
    """Posts exports until the WAL is within a few exports' growth of the threshold."""

    wal: Path
    threshold: int
    templates: list[Template]
    acked_exports: int = 0  # since the WAL was last seen empty (or this fill began)
    acked_spans: int = 0
    errors: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    checkpoints: int = 0  # seen during the fill: the WAL shrank
    last_ack: float = field(default_factory=time.monotonic)
    failure: str | None = None
    _start_bytes: int = -1

    def wal_bytes(self) -> int:
        return self.wal.stat().st_size if self.wal.exists() else 0

    def full(self, in_flight: float) -> bool:
        """Whether `in_flight` more exports might push the WAL past the threshold."""
        size = self.wal_bytes()
        with self.lock:
            if size < self._start_bytes:  # a checkpoint emptied it: the estimate below was too low
                self.checkpoints += 1
            if self._start_bytes < 0 or size < self._start_bytes:
                self._start_bytes, self.acked_exports = size, 0
            if self.checkpoints >= 3:
                return True
            growth = (size - self._start_bytes) / self.acked_exports if self.acked_exports else 2**20
        return size + in_flight * growth >= self.threshold

    def client(self, port: int, seed: int, in_flight: float) -> None:
        conn = http.client.HTTPConnection(HOST, port, timeout=120)
        n = seed
        while not self.full(in_flight) and self.failure is None:
            n += 1
            body = self.templates[n % len(self.templates)].body()
            try:
                conn.request("POST", "/v1/traces", body, {"Content-Type": "application/x-protobuf"})
                response = conn.getresponse()
                response.read()
                refused = None if response.status == 200 else str(response.status)
            except (OSError, http.client.HTTPException) as exc:
                refused = exc.__class__.__name__
                conn.close()
                conn = http.client.HTTPConnection(HOST, port, timeout=120)
            with self.lock:
                if refused is None:
                    self.last_ack = time.monotonic()
                    self.acked_exports += 1
                    self.acked_spans += self.templates[0].spans
                    continue
                self.errors.append(refused)
                if time.monotonic() - self.last_ack > STUCK_SECONDS:
                    self.failure = f"no export acknowledged for {STUCK_SECONDS:.0f} s, the last refused: {refused}"
            time.sleep(0.5)
        conn.close()

    def run(self, port: int) -> None:
        """All clients while the WAL has room for one export each and one more, then one client alone."""
        threads = [threading.Thread(target=self.client, args=(port, i * 1_000, CLIENTS + 1)) for i in range(CLIENTS)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        self.client(port, CLIENTS * 1_000, 1.5)
        if self.failure is not None:
            raise RuntimeError(f"{self.failure} (see the server's log)")


def duckdb_seconds(db: Path, settings: Settings, scratch: Path) -> tuple[float, float]:
    """Open a copy of the ledger and its WAL with serve's DuckDB settings, then CHECKPOINT, as
    serve's migrate step does: the seconds of each, DuckDB's share of a restart."""
    copy = scratch / "replay.duckdb"
    shutil.copyfile(db, copy)
    if Path(f"{db}.wal").exists():
        shutil.copyfile(f"{db}.wal", f"{copy}.wal")
    engine = make_engine(
        f"duckdb:///{copy}",
        settings.duckdb_memory_limit,
        settings.duckdb_checkpoint_threshold,
        settings.duckdb_threads,
    )
    started = time.monotonic()
    with engine.connect() as conn:
        opened = time.monotonic()
        conn.exec_driver_sql("CHECKPOINT")
        checkpointed = time.monotonic()
    engine.dispose()
    copy.unlink()
    Path(f"{copy}.wal").unlink(missing_ok=True)
    return opened - started, checkpointed - opened


@dataclass
class Run:
    wal_mb: float
    spans: int
    replay: float
    checkpoint: float
    ready: float
    peak_rss_mib: float


def measure_ledger(
    label: str, db: Path, args: argparse.Namespace, templates: list[Template]
) -> tuple[float, list[Run]]:
    """The clean start's seconds, and each kill-and-restart run over this ledger."""
    config = db.parent / f"{db.stem}.toml"
    config.write_text(f'duckdb_checkpoint_threshold = "{args.wal_mb}MB"\n')
    settings = load_settings({"config": str(config)}, environ={})
    server = Server(db, config, db.parent / f"{db.stem}.log")
    server.start()
    clean = server.ready_seconds
    print(f"{label}: clean start to /readyz 200 in {clean:.2f} s", flush=True)
    runs = []
    try:
        for run in range(1, args.runs + 1):
            filler = Filler(Path(f"{db}.wal"), args.wal_mb * MB, templates)
            started = time.monotonic()
            filler.run(server.otlp_port)
            wal = filler.wal_bytes()
            server.kill()
            filled = time.monotonic() - started
            replay, checkpoint = duckdb_seconds(db, settings, db.parent)
            server.start()
            runs.append(
                Run(wal / MB, filler.acked_spans, replay, checkpoint, server.ready_seconds, server.peak_rss_mib)
            )
            print(
                f"{label}, run {run}: {filler.acked_spans:,} spans in {filled:.0f} s, WAL {wal / MB:.1f} MB at the kill"
                f"{f' (after {filler.checkpoints} checkpoints)' if filler.checkpoints else ''};"
                f" DuckDB open {replay:.2f} s, checkpoint {checkpoint:.2f} s; restart to /readyz 200 {server.ready_seconds:.2f} s,"
                f" peak RSS {server.peak_rss_mib:.0f} MiB"
                + (f" (refused: {len(filler.errors)})" if filler.errors else ""),
                flush=True,
            )
    except BaseException:
        if server.proc is not None and server.proc.poll() is None:
            server.kill()
        raise
    server.stop()
    return clean, runs


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", 1)[0])
    parser.add_argument("--wal-mb", type=int, default=256, help="duckdb_checkpoint_threshold in MB (serve's 256)")
    parser.add_argument(
        "--calls", type=int, default=0, help="also a ledger holding this many calls (0: only a fresh one)"
    )
    parser.add_argument("--runs", type=int, default=3, help="kills and restarts per ledger (3)")
    parser.add_argument("--keep", action="store_true", help="keep the temporary folder")
    args = parser.parse_args(argv)

    tmp = Path(tempfile.mkdtemp(prefix="breakeven-restart-"))
    templates = [build_template(BATCH, seed) for seed in range(8)]
    ledgers = [("fresh ledger", tmp / "fresh.duckdb")]
    if args.calls:
        big = tmp / "filled.duckdb"
        pricing = load_settings({}, environ={}).pricing
        fill(big, pricing, args.calls, min(args.calls, 200_000), 30, 11)
        roll(f"duckdb:///{big}")
        ledgers.append((f"{args.calls:,} calls", big))

    results = []
    try:
        for label, db in ledgers:
            results.append((label, *measure_ledger(label, db, args, templates)))
    finally:
        if not args.keep:
            shutil.rmtree(tmp, ignore_errors=True)

    print(f"\n=== restart after SIGKILL, duckdb_checkpoint_threshold {args.wal_mb}MB, {args.runs} runs per ledger")
    columns = ("ledger", "WAL at kill, MB", "DuckDB open, s", "checkpoint, s", "to /readyz 200, s", "peak RSS, MiB")
    row = "{:<16} {:>16} {:>15} {:>14} {:>18} {:>14}"
    print(row.format(*columns))
    for label, clean, runs in results:
        print(row.format(label, "0 (clean stop)", "", "", f"{clean:.2f}", ""))
        for r in runs:
            print(
                row.format(
                    "",
                    f"{r.wal_mb:.1f}",
                    f"{r.replay:.2f}",
                    f"{r.checkpoint:.2f}",
                    f"{r.ready:.2f}",
                    f"{r.peak_rss_mib:.0f}",
                )
            )
        if len(runs) > 1:
            median = {k: statistics.median(getattr(r, k) for r in runs) for k in ("replay", "checkpoint", "ready")}
            print(
                row.format(
                    "", "median", f"{median['replay']:.2f}", f"{median['checkpoint']:.2f}", f"{median['ready']:.2f}", ""
                )
            )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
