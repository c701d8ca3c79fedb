"""breakeven serve | migrate | version."""

from __future__ import annotations

import argparse
import logging
import signal
import sys
import threading
from collections.abc import Sequence
from typing import Any

from collector import __version__
from collector.settings import Settings, SettingsError, load_settings


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
    serve.add_argument("--otlp-http-port", dest="otlp_http_port", type=int, help="OTLP/HTTP port (4318)")
    serve.add_argument("--otlp-grpc-port", dest="otlp_grpc_port", type=int, help="OTLP/gRPC port (4317)")
    serve.add_argument("--http-port", dest="http_port", type=int, help="API and dashboard port (8000)")
    serve.add_argument(
        "--no-migrate", dest="migrate", action="store_false", default=None, help="do not migrate on start"
    )

    migrate = sub.add_parser("migrate", help="migrate the database to the current schema")
    _add_common(migrate)
    migrate.add_argument("--revision", default="head", help="target revision (default head)")

    sub.add_parser("version", help="print the version")
    return parser


def _settings(args: argparse.Namespace) -> Settings:
    flags: dict[str, Any] = {k: v for k, v in vars(args).items() if k not in ("command", "revision")}
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
    """Run until SIGTERM or SIGINT, then shut down gracefully (exit 0)."""
    from collector.app import Collector

    collector = Collector(settings)
    collector.start()
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    print(
        f"breakeven {__version__}: dashboard http://{settings.host}:{collector.http_port}/  "
        f"OTLP http://{settings.host}:{collector.otlp_http_port} grpc {settings.host}:{collector.otlp_grpc_port}",
        flush=True,
    )
    stop.wait()
    logging.getLogger("breakeven").info("shutting down: draining the ingest queue")
    collector.stop()
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the `breakeven` console script."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command == "version":
        print(__version__)
        return 0
    try:
        settings = _settings(args)
        _logging(settings)
        if args.command == "migrate":
            from collector.store.engine import current_revision, make_engine, migrate

            engine = make_engine(settings.db, settings.duckdb_memory_limit)
            migrate(engine, args.revision)
            print(f"database at revision {current_revision(engine)}")
            return 0
        return serve(settings)
    except SettingsError as exc:
        print(f"breakeven: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    raise SystemExit(main())
