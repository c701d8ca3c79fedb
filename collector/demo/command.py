"""The `breakeven demo` command: its arguments, and the run that fills a fresh database and writes its config."""

from __future__ import annotations

import argparse
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from breakeven.collector.config.checks import SettingsError
from breakeven.collector.config.settings import load_settings
from breakeven.collector.demo.config import CONFIG_NAME, config_text
from breakeven.collector.demo.plan import plan_month
from breakeven.collector.demo.send import send

DB_NAME = "breakeven-demo.duckdb"


def add_parser(sub: Any) -> None:
    """The `demo` subcommand's arguments."""
    demo = sub.add_parser(
        "demo",
        help="generate a month of hybrid LLM traffic into a fresh database, with its config",
        description="Send a realistic month of hybrid traffic (frontier, managed, two self-hosted vLLM pools) "
        "through the real OTLP path into a fresh database, write the matching config next to it, and print the "
        "command that serves it.",
    )
    demo.add_argument("--out", default="breakeven-demo", help="directory for the config and DuckDB file")
    demo.add_argument("--db", help=f"SQLAlchemy URL of an empty database (default: duckdb:///OUT/{DB_NAME})")
    demo.add_argument("--days", type=int, default=30, help="days of traffic, ending now (default 30)")
    demo.add_argument("--port", type=int, default=8000, help="dashboard port the config serves on (8000)")
    demo.add_argument("--seed", type=int, default=7, help="random seed (the same seed, the same month)")
    demo.add_argument("--force", action="store_true", help="replace an existing demo database")


def _fail(message: str) -> int:
    print(f"breakeven: error: {message}", file=sys.stderr)
    return 2


def run(args: argparse.Namespace) -> int:
    """Generate, send, write the config; print how to serve it. 2 on bad arguments."""
    # Loaded here, not at the top: every other `breakeven` command would pay for the server.
    from breakeven.collector.app import Collector

    if not 1 <= args.days <= 366:
        return _fail(f"--days: between 1 and 366, got {args.days}")
    out = Path(args.out).resolve()
    out.mkdir(parents=True, exist_ok=True)
    db_path = out / DB_NAME
    db_url = args.db or f"duckdb:///{db_path}"
    if args.db is None and db_path.exists():
        if not args.force:
            return _fail(f"{db_path} exists: pass --force to replace it, or --out another directory")
        db_path.unlink()
        Path(f"{db_path}.wal").unlink(missing_ok=True)
    now = datetime.now(UTC)
    first_day = (now - timedelta(days=args.days - 1)).date()
    config = out / CONFIG_NAME
    config.write_text(config_text(db_url, args.port, first_day), encoding="utf-8")
    started = time.monotonic()
    try:
        settings = load_settings(
            {"config": str(config), "otlp_http_port": 0, "otlp_grpc_port": 0, "http_port": 0, "log_level": "warning"},
            environ={},
        )
        collector = Collector(settings)
        collector.start()
    except SettingsError as exc:
        return _fail(str(exc))
    try:
        with collector.engine.connect() as conn:
            existing = conn.execute(sa.text("SELECT count(*) FROM calls")).scalar_one()
        if existing:
            return _fail(f"{db_url} already holds {existing:,} calls: the demo needs an empty database")
        plan = plan_month(args.days, now, args.seed)
        send(collector.otlp_http_port, plan.bodies)
        send(collector.otlp_http_port, plan.metric_bodies, path="/v1/metrics")
    finally:
        collector.stop()
    elapsed = time.monotonic() - started
    shown = _relative(config)
    print(
        f"breakeven demo: {plan.calls:,} calls ({plan.spans:,} spans) and {plan.metric_points:,} GPU metric points "
        f"over {args.days} days, sent over OTLP/HTTP into {db_url} in {elapsed:.1f} s\n"
        f"config: {shown}\n\n"
        f"serve it:\n  breakeven serve --config {shown}\n"
        f"then open http://127.0.0.1:{args.port}/",
        flush=True,
    )
    return 0


def _relative(path: Path) -> str:
    try:
        return str(path.relative_to(Path.cwd()))
    except ValueError:
        return str(path)
