"""breakeven serve | migrate | reprice | demo | version."""

from __future__ import annotations

import argparse
import gc
import getpass
import logging
import os
import signal
import sys
import threading
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from breakeven.collector import __version__, demo
from breakeven.collector.config.checks import SettingsError
from breakeven.collector.config.settings import Settings, load_settings
from breakeven.collector.ingest.tuning import tune_garbage_collector, tune_thread_switching
from breakeven.collector.records import BilledLine


def _add_common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", help="TOML config file (env BREAKEVEN_CONFIG)")
    parser.add_argument("--db", help="SQLAlchemy URL: duckdb:///file.duckdb or postgresql://... (env BREAKEVEN_DB)")
    parser.add_argument("--log-level", dest="log_level", help="debug, info, warning or error")


def build_parser() -> argparse.ArgumentParser:
    """The command-line interface."""
    parser = argparse.ArgumentParser(prog="breakeven", description="What your LLM traffic really costs.")
    sub = parser.add_subparsers(dest="command", required=True)

    serve = sub.add_parser("serve", help="run the OTLP collector, API and dashboard")
    _add_common(serve)
    serve.add_argument("--host", help="address to listen on (default 127.0.0.1)")
    serve.add_argument("--tls-cert-file", dest="tls_cert_file", help="PEM certificate: TLS on all listeners")
    serve.add_argument("--tls-key-file", dest="tls_key_file", help="PEM private key of --tls-cert-file")
    serve.add_argument("--otlp-http-port", dest="otlp_http_port", type=int, help="OTLP/HTTP port (4318)")
    serve.add_argument("--otlp-grpc-port", dest="otlp_grpc_port", type=int, help="OTLP/gRPC port (4317)")
    serve.add_argument("--http-port", dest="http_port", type=int, help="API and dashboard port (8000)")
    serve.add_argument(
        "--decode-processes", dest="decode_processes", type=int, help="trace decode processes (2; 0: threads)"
    )
    serve.add_argument(
        "--no-migrate", dest="migrate", action="store_false", default=None, help="do not migrate on start"
    )

    migrate = sub.add_parser("migrate", help="migrate the database to the current schema")
    _add_common(migrate)
    migrate.add_argument("--revision", default="head", help="target revision (default head)")

    reprice = sub.add_parser(
        "reprice",
        help="recompute stored call prices with the current prices",
        description="Price the calls that started in [--since, --until) again with the current config's prices "
        "and rewrite the ones whose price changed; leaves an audit row in reprice_runs.",
    )
    _add_common(reprice)
    reprice.add_argument("--since", required=True, help="first day (YYYY-MM-DD, or an ISO 8601 datetime; UTC)")
    reprice.add_argument("--until", help="end, excluded (default: now)")
    reprice.add_argument("--actor", help="who runs it, for the audit row (default: the login name)")
    reprice.add_argument("--dry-run", dest="dry_run", action="store_true", help="count and total; change nothing")
    reprice.add_argument("--batch-size", dest="batch_size", type=int, default=10_000, help="calls per transaction")

    reconcile = sub.add_parser("reconcile", help="the providers' and clouds' own bills, beside the ledger")
    reconcile_sub = reconcile.add_subparsers(dest="reconcile_command", required=True)
    load = reconcile_sub.add_parser(
        "import",
        help="load a source's bill from files",
        description="Read usage or cost pages (JSON, as the provider's API returns them) or FOCUS exports "
        "(CSV, CSV.gz, Parquet) of one [[reconcile.sources]] entry into the ledger; each report read "
        "replaces what was stored of it for the days it covers.",
    )
    _add_common(load)
    load.add_argument("--source", required=True, help="the [[reconcile.sources]] name")
    load.add_argument("files", nargs="+", type=Path, help="the files to read")
    fetch = reconcile_sub.add_parser(
        "fetch",
        help="fetch the API sources' usage and cost reports",
        description="Fetch each API source's usage and cost reports day by day over [--since, --until) and "
        "store them, replacing what was stored of those days (providers restate recent days).",
    )
    _add_common(fetch)
    fetch.add_argument("--source", help="one [[reconcile.sources]] name (default: every API source)")
    fetch.add_argument("--since", help="first day, YYYY-MM-DD (default: refetch_days before --until)")
    fetch.add_argument("--until", help="day after the last, YYYY-MM-DD (default: tomorrow, UTC: today included)")

    demo.add_parser(sub)
    sub.add_parser("version", help="print the version")
    sub.add_parser(
        "hash-password",
        help="read a password (twice, hidden) and print its scrypt hash for [[auth.users]] password_scrypt",
    )
    return parser


# Arguments of subcommands that are not settings.
_NOT_SETTINGS = (
    "command", "revision", "since", "until", "actor", "dry_run", "batch_size", "reconcile_command", "source", "files",
)  # fmt: skip


def _settings(args: argparse.Namespace) -> Settings:
    flags: dict[str, Any] = {k: v for k, v in vars(args).items() if k not in _NOT_SETTINGS}
    return load_settings(flags)


def _logging(settings: Settings) -> None:
    logging.basicConfig(
        level=settings.log_level.upper(),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    # Alembic narrates every plugin at INFO; its migrations still log at WARNING and above.
    logging.getLogger("alembic").setLevel(max(logging.WARNING, logging.getLogger().level))


def serve(settings: Settings) -> int:
    """Run until SIGTERM or SIGINT, then drain and exit: 0 when the drain finished, 1 when
    it was cut short at DRAIN_SECONDS (collector/app.py). A second signal exits at once
    (128 + its number); nothing acknowledged is lost either way, as on SIGKILL."""
    from breakeven.collector.app import DRAIN_SECONDS, Collector

    collector = Collector(settings)
    collector.start()
    tune_garbage_collector()
    tune_thread_switching()
    stop = threading.Event()

    def on_signal(signum: int, frame: object) -> None:
        if stop.is_set():
            os._exit(128 + signum)
        stop.set()

    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, on_signal)
    print(
        f"breakeven {__version__}: dashboard http://{settings.host}:{collector.http_port}/  "
        f"OTLP http://{settings.host}:{collector.otlp_http_port} grpc {settings.host}:{collector.otlp_grpc_port}",
        flush=True,
    )
    # Woken twice a second: a signal the kernel hands to another thread (a decode pool's, the
    # event loop's) only sets a flag, which the main thread reads between bytecodes, never while
    # it sleeps in an unbounded wait (found by test_decode_faults.py: SIGTERM to the group, no drain).
    while not stop.wait(0.5):
        pass
    logging.getLogger("breakeven").info("shutting down: draining within %d s", DRAIN_SECONDS)
    _exit_after(DRAIN_SECONDS)
    finished = collector.stop()
    # Frozen objects are never collected: thaw them so the interpreter's exit frees them
    # (else nanobind, under DuckDB's bindings, reports its start-up objects as leaked).
    gc.unfreeze()
    gc.collect()
    return 0 if finished else 1


def _exit_after(seconds: float) -> None:
    """End the process `seconds` from now, if it has not ended: the bound on the drain holds
    even where a thread the interpreter joins at exit (a decode pool's, a gRPC handler's)
    still waits on something."""

    def exit_now() -> None:
        logging.getLogger("breakeven").warning("the drain took longer than %.0f s; exiting now", seconds)
        logging.shutdown()
        os._exit(1)

    timer = threading.Timer(seconds, exit_now)
    timer.daemon = True
    timer.start()


def reprice(settings: Settings, args: argparse.Namespace) -> int:
    """Reprice a date range: progress on stderr, the summary on stdout; 2 on bad input, 130 when interrupted."""
    from sqlalchemy.exc import SQLAlchemyError

    from breakeven.collector.store import reprice as rp

    try:
        since = rp.parse_bound("--since", args.since)
        until = rp.parse_bound("--until", args.until) if args.until else datetime.now(UTC)
        if args.batch_size < 1:
            raise rp.RepriceError(f"--batch-size: must be positive, got {args.batch_size}")
        run = rp.plan_run(settings.pricing, since, until, actor=args.actor or _login_name(), dry_run=args.dry_run)
        engine = rp.open_ledger(settings.db, settings.duckdb_memory_limit)
    except rp.RepriceError as exc:
        print(f"breakeven: error: {exc}", file=sys.stderr)
        return 2
    bar = rp.ProgressBar(sys.stderr)
    try:
        rp.reprice(engine, settings.pricing, run, batch_size=args.batch_size, progress=bar)
    except (KeyboardInterrupt, SQLAlchemyError) as exc:
        bar.close()
        kept = (
            "nothing was written (dry run)"
            if run.dry_run
            else f"the {run.repriced:,} calls repriced in committed batches stay so; its audit row has no finished_at"
        )
        why = "interrupted" if isinstance(exc, KeyboardInterrupt) else f"failed: {str(exc).splitlines()[0]}"
        print(f"breakeven: reprice {run.run_id} {why}; {kept}", file=sys.stderr)
        return 130 if isinstance(exc, KeyboardInterrupt) else 1
    finally:
        engine.dispose()
    bar.close()
    print(rp.summary(run))
    return 0


def _login_name() -> str:
    try:
        return getpass.getuser()
    except (OSError, KeyError):  # no USER/LOGNAME and no passwd entry (some containers)
        return "unknown"


def reconcile_import(settings: Settings, source_name: str, files: Sequence[Path]) -> int:
    """Read a source's bill files and store their lines, each report replacing its own days;
    a summary on stdout, 2 (and nothing stored) when a file cannot be read as the source's."""
    from collections import defaultdict

    from breakeven.collector.reconcile.errors import BillError
    from breakeven.collector.reconcile.files import read_bill_file
    from breakeven.collector.store.bills import replace_lines
    from breakeven.collector.store.engine import settings_engine

    source = settings.reconcile.source(source_name)
    if source is None:
        known = ", ".join(s.name for s in settings.reconcile.sources) or "none configured"
        print(f"breakeven: error: --source: no [[reconcile.sources]] named {source_name!r} ({known})", file=sys.stderr)
        return 2
    by_report: dict[str, list[BilledLine]] = defaultdict(list)
    try:
        for path in files:
            for line in read_bill_file(source, path):
                by_report[line.report].append(line)
    except BillError as exc:
        print(f"breakeven: error: {exc}", file=sys.stderr)
        return 2
    engine = settings_engine(settings)
    try:
        for report, lines in sorted(by_report.items()):
            stored = replace_lines(engine, source.name, report, [], lines)
            days = sorted({line.day for line in lines})
            print(f"{source.name}: {report}: {stored} lines stored for {len(days)} days, {days[0]} to {days[-1]}")
    finally:
        engine.dispose()
    if not by_report:
        print(f"{source.name}: the files hold no lines")
    return 0


def reconcile_fetch(settings: Settings, source_name: str | None, since: str | None, until: str | None) -> int:
    """Fetch the API sources' reports over [since, until) and store them, each report replacing
    those days, noting each attempt (as `serve` does); 2 on a bad argument, 1 when a source
    failed (the others are stored)."""
    from datetime import date

    from breakeven.collector.app import bill_ledger
    from breakeven.collector.reconcile.sync import describe, fetch_source, refetch_window
    from breakeven.collector.store.engine import settings_engine

    apis = [s for s in settings.reconcile.sources if s.kind != "focus"]
    if source_name is not None:
        apis = [s for s in apis if s.name == source_name]
        if not apis:
            print(f"breakeven: error: --source: no API source named {source_name!r}", file=sys.stderr)
            return 2
    window = refetch_window(datetime.now(UTC).date(), settings.reconcile.refetch_days)
    try:
        last = date.fromisoformat(until) if until else window[1]
        first = date.fromisoformat(since) if since else last - (window[1] - window[0])
    except ValueError as exc:
        print(f"breakeven: error: --since/--until: {exc}", file=sys.stderr)
        return 2
    if first >= last:
        print("breakeven: error: --since must be before --until", file=sys.stderr)
        return 2
    engine = settings_engine(settings)
    ledger = bill_ledger(engine)
    failed = 0
    try:
        for source in apis:
            try:
                synced = fetch_source(ledger, source, first, last)
            except Exception as exc:  # the attempt could not be noted (the database); the next source is tried
                print(f"breakeven: error: {describe(exc, source)}", file=sys.stderr)
                failed += 1
                continue
            for report, stored in synced.stored.items():
                print(f"{source.name}: {report}: {stored} lines stored for {first} to {last} (excluded)")
            if synced.error is not None:
                print(f"breakeven: error: {synced.error}", file=sys.stderr)
                failed += 1
    finally:
        engine.dispose()
    return 1 if failed else 0


def hash_password_command() -> int:
    """Print a password's scrypt hash; the password is read without echo (or from stdin)."""
    from breakeven.collector.auth import hash_password

    if sys.stdin.isatty():
        first, second = getpass.getpass("password: "), getpass.getpass("again: ")
    else:
        first = second = sys.stdin.readline().rstrip("\n")
    if not first or first != second:
        print("breakeven: error: the passwords are empty or differ", file=sys.stderr)
        return 2
    print(hash_password(first))
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the `breakeven` console script."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command == "version":
        print(__version__)
        return 0
    if args.command == "demo":
        return demo.run(args)
    if args.command == "hash-password":
        return hash_password_command()
    try:
        settings = _settings(args)
        _logging(settings)
        if args.command == "migrate":
            from breakeven.collector.store.engine import current_revision, migrate, settings_engine

            engine = settings_engine(settings)
            migrate(engine, args.revision)
            print(f"database at revision {current_revision(engine)}")
            return 0
        if args.command == "reprice":
            return reprice(settings, args)
        if args.command == "reconcile" and args.reconcile_command == "fetch":
            return reconcile_fetch(settings, args.source, args.since, args.until)
        if args.command == "reconcile":
            return reconcile_import(settings, args.source, args.files)
        return serve(settings)
    except SettingsError as exc:
        print(f"breakeven: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    raise SystemExit(main())
