"""Composition root: engine, migrations, writer, pipeline, receivers, API; start and stop."""

from __future__ import annotations

import asyncio
import logging
import socket
import threading
import time
from collections.abc import Callable
from functools import partial

import grpc
import sqlalchemy as sa
import uvicorn
from starlette.types import ASGIApp

from breakeven.collector.alerts.runner import AlertRunner, default_dashboard_url
from breakeven.collector.api.alerts import alerts_router
from breakeven.collector.api.login import require_login
from breakeven.collector.api.metrics import Metrics, metrics_router
from breakeven.collector.api.routes import build_api
from breakeven.collector.calls.pipeline import Pipeline
from breakeven.collector.config.checks import SettingsError
from breakeven.collector.config.settings import Settings
from breakeven.collector.gpu.scrape import Scraper
from breakeven.collector.ingest.gpu_metrics import GpuMetrics
from breakeven.collector.ingest.grpc import build_grpc_server
from breakeven.collector.ingest.http import build_otlp_app
from breakeven.collector.ingest.offload import CLOSE_SECONDS, TraceDecoder
from breakeven.collector.price.ledger import ledger_pricer
from breakeven.collector.reconcile.schedule import FetchScheduler
from breakeven.collector.reconcile.sync import Ledger
from breakeven.collector.records import Work
from breakeven.collector.store.bills import fetch_statuses, record_fetch, replace_lines
from breakeven.collector.store.engine import current_revision, head_revision, migrate, settings_engine
from breakeven.collector.store.rollup import Roller
from breakeven.collector.store.writer import LedgerWriter
from breakeven.dashboard.routes import add_dashboard

log = logging.getLogger("breakeven")
# The longest stop() takes, and so `serve` from SIGTERM to its exit (docs/operations.md,
# Shutdown); `serve` ends the process at this bound whatever is left.
DRAIN_SECONDS = 30
# How long exports in flight get, once the receivers take no new ones, to decode, commit and
# be answered: the OTel exporters' own timeout, past which their clients stopped waiting
# for the answer (an export cut off here was never acknowledged; its client sends it again).
RECEIVERS_GRACE_SECONDS = 10
# How long API requests under way (a dashboard page, /metrics) get once the rest has stopped.
API_GRACE_SECONDS = 2
# Kept from DRAIN_SECONDS for what follows stop(): the interpreter's exit.
EXIT_SECONDS = 2


def _bind(host: str, port: int, setting: str) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        raise SettingsError(f"{setting}: cannot listen on {host}:{port}: {exc.strerror}") from None
    sock.listen(1024)
    sock.setblocking(False)
    return sock


def bill_ledger(engine: sa.Engine) -> Ledger:
    """The bills' store on this engine, as the reconcile package takes it (it sits below the store)."""
    return Ledger(partial(replace_lines, engine), partial(record_fetch, engine), partial(fetch_statuses, engine))


class Collector:
    """The running product: start() brings everything up, stop() drains and shuts down."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.engine = settings_engine(settings)
        self.pipeline: Pipeline | None = None
        self.otlp_http_port = settings.otlp_http_port
        self.otlp_grpc_port = settings.otlp_grpc_port
        self.http_port = settings.http_port
        self._servers: list[uvicorn.Server] = []  # the OTLP/HTTP receiver's, then the API's
        self._served: list[threading.Event] = []  # set as each of _servers has stopped
        self.stopping = False  # stop() began: /readyz says so
        self._loop_thread: threading.Thread | None = None
        self._grpc: grpc.Server | None = None
        self.alerts: AlertRunner | None = None
        self.roller: Roller | None = None
        self.gpu = GpuMetrics(self.engine, settings.pricing.pools)
        self.scraper: Scraper | None = None
        self.reconcile: FetchScheduler | None = None
        self.decoder: TraceDecoder | None = None

    def start(self) -> None:
        """Migrate (unless told not to), start the writer, then listen.

        If any step fails (a busy port, say), what already started is stopped before the
        error goes up: threads left holding the database would crash the process at exit.
        """
        try:
            self._start()
        except BaseException:
            self.stop()
            raise

    def _start(self) -> None:
        s = self.settings
        if s.migrate:
            migrate(self.engine)
        elif current_revision(self.engine) != head_revision(self.engine):
            raise SettingsError("migrate: database is not at the current schema; run `breakeven migrate`")
        self.pipeline = Pipeline(
            LedgerWriter(self.engine),
            s.queue_max_spans,
            s.batch_max_spans,
            s.trace_cache_traces,
            price=ledger_pricer(s.pricing),
        )
        self.pipeline.start()
        self.roller = Roller(self.engine, s.retention_days)
        self.roller.start()
        metrics = Metrics(self.engine, s, self.pipeline)
        self.pipeline.on_commit = metrics.observe_commit
        self.decoder = metrics.decoder = TraceDecoder(s)
        self.decoder.warm()
        otlp_sock = _bind(s.host, s.otlp_http_port, "otlp_http_port")
        api_sock = _bind(s.host, s.http_port, "http_port")
        self.otlp_http_port = otlp_sock.getsockname()[1]
        self.http_port = api_sock.getsockname()[1]
        self._grpc, self.otlp_grpc_port = build_grpc_server(s, self.pipeline, self.decoder, self.gpu)
        self._grpc.start()

        api = build_api(self.engine, self.pipeline, s.pricing, self.ingest_problems, s.reconcile)
        add_dashboard(api, self.engine, s.pricing, reconcile=s.reconcile)
        dashboard = default_dashboard_url(s.host, self.http_port)
        self.alerts = metrics.alerts = AlertRunner(
            self.engine, s.alerts, s.pricing, dashboard, metrics.refused_total, reconcile=s.reconcile
        )
        api.include_router(alerts_router(self.engine, s.alerts, self.alerts))
        api.include_router(metrics_router(metrics))
        apps: list[tuple[ASGIApp, socket.socket]] = [
            (build_otlp_app(s, self.pipeline, self.decoder, self.gpu), otlp_sock),
            (require_login(api, s.auth), api_sock),
        ]
        self._servers = [
            uvicorn.Server(
                uvicorn.Config(
                    app,
                    log_level="warning",
                    access_log=False,
                    lifespan="off",
                    ssl_certfile=s.tls_cert_file,
                    ssl_keyfile=s.tls_key_file,
                    timeout_graceful_shutdown=grace,
                )
            )
            for (app, _), grace in zip(apps, (RECEIVERS_GRACE_SECONDS, API_GRACE_SECONDS), strict=True)
        ]
        self._served = [threading.Event() for _ in self._servers]
        started = threading.Event()

        async def serve(server: uvicorn.Server, sock: socket.socket, served: threading.Event) -> None:
            try:
                await server.serve(sockets=[sock])
            finally:
                served.set()

        async def serve_all() -> None:
            tasks = [
                asyncio.create_task(serve(srv, sock, served))
                for srv, (_, sock), served in zip(self._servers, apps, self._served, strict=True)
            ]
            while not all(srv.started for srv in self._servers):
                await asyncio.sleep(0.01)
            started.set()
            await asyncio.gather(*tasks)

        self._loop_thread = threading.Thread(
            target=lambda: asyncio.run(serve_all()), name="breakeven-http", daemon=True
        )
        self._loop_thread.start()
        if not started.wait(30):
            raise RuntimeError("HTTP listeners did not start within 30 s")
        self.alerts.start()
        self.scraper = Scraper(
            self.gpu.store, s.pricing.pools, s.gpu_scrape_interval_seconds, s.retention_days, self._count
        )
        if self.scraper.needed:
            self.scraper.start()
        self.reconcile = FetchScheduler(bill_ledger(self.engine), s.reconcile)
        if self.reconcile.needed:
            self.reconcile.start()
        log.info(
            "breakeven listening: OTLP/HTTP %s:%d, OTLP/gRPC %s:%d, API and dashboard http://%s:%d/ (db %s)",
            s.host, self.otlp_http_port, s.host, self.otlp_grpc_port, s.host, self.http_port,
            self.engine.url.render_as_string(hide_password=True),
        )  # fmt: skip

    def _count(self, counters: dict[tuple[str, str], int]) -> None:
        """Add ingest counters (the scraper's) through the writer, the one that bumps them."""
        if counters and self.pipeline is not None:
            self.pipeline.submit(Work(counters=counters))

    def ingest_problems(self) -> list[str]:
        """What keeps this collector from taking exports right now, beside its database and
        writer (GET /readyz asks those itself): shutting down, or no decode process to take
        an export (one died and its fresh pool is starting). No I/O: /readyz is polled."""
        if self.stopping:
            return ["shutting down: the receivers take no new exports"]
        problem = self.decoder.problem() if self.decoder is not None else None
        return [problem] if problem else []

    def stop(self) -> bool:
        """Drain and shut down within DRAIN_SECONDS; False when something had to be cut short.

        In order: /readyz answers 503 (the API stays up till the end); the receivers take
        no new export and give those in flight RECEIVERS_GRACE_SECONDS to commit and be
        answered; the decode processes stop; the writer commits what is queued; then the
        API, rollups, alerts, GPU scraper and reconcile fetches stop (a fetch under way is
        not waited for: it writes nothing once stop() began) and the database closes. An
        export cut off on the way was never acknowledged, so its client sends it again:
        nothing acknowledged is lost, as on SIGKILL.
        """
        deadline = time.monotonic() + DRAIN_SECONDS - EXIT_SECONDS

        def left() -> float:
            return max(0.0, deadline - time.monotonic())

        self.stopping = True
        beside = [_stopping(part.stop) for part in (self.alerts, self.scraper, self.reconcile) if part is not None]
        receivers = self._servers[:1]
        for server in receivers:
            server.should_exit = True
        grpc_stopped = self._grpc.stop(grace=RECEIVERS_GRACE_SECONDS) if self._grpc is not None else None
        finished = all(self._wait_served(served, left()) for served in self._served[: len(receivers)])
        if grpc_stopped is not None:
            finished &= grpc_stopped.wait(left())
        if self.decoder is not None:
            self.decoder.close(min(left(), CLOSE_SECONDS))
        if self.pipeline is not None:
            self.pipeline.stop(left())
            finished &= not self.pipeline.writer_alive
        for server in self._servers[1:]:
            server.should_exit = True
        if self._loop_thread is not None:
            self._loop_thread.join(left())
            finished &= not self._loop_thread.is_alive()
        if self.roller is not None:
            self.roller.stop(left())
        for thread in beside:
            thread.join(left())
            finished &= not thread.is_alive()
        self.engine.dispose()
        if not finished:
            log.warning("the %d s drain ran out: what was cut short was not acknowledged", DRAIN_SECONDS)
        return finished

    def _wait_served(self, served: threading.Event, seconds: float) -> bool:
        """Wait for a server to stop, unless its loop is not running (it failed, or start() did)."""
        if self._loop_thread is None or not self._loop_thread.is_alive():
            return True
        return served.wait(seconds)


def _stopping(stop: Callable[[], None]) -> threading.Thread:
    """Run `stop` (one that joins its own thread for up to 30 s) beside the drain, to be joined within it."""
    thread = threading.Thread(target=stop, name="breakeven-stopping", daemon=True)
    thread.start()
    return thread
