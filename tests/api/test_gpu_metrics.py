"""GPU metric utilization end to end: the real OTel SDK's metric exporters (HTTP and gRPC) and a
scraped DCGM exporter and vLLM (a local HTTP server serving their expositions) into a running
collector; /api/v1/pools and the Pools page report both sources side by side; endpoints that
are down, slow or broken are counted and shown, and break nothing.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest
from opentelemetry.exporter.otlp.proto.grpc.metric_exporter import OTLPMetricExporter as GrpcMetricExporter
from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter as HttpMetricExporter
from opentelemetry.metrics import CallbackOptions, Observation
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import ExportMetricsServiceRequest
from opentelemetry.proto.metrics.v1.metrics_pb2 import Gauge, Metric, NumberDataPoint, ResourceMetrics, ScopeMetrics
from opentelemetry.proto.resource.v1.resource_pb2 import Resource as ProtoResource
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import PeriodicExportingMetricReader
from opentelemetry.sdk.resources import Resource

from breakeven.collector.demo.spans import key_value
from tests.conftest import DIALECTS, RunningCollector, running_collector, wait_for

FIXTURES = Path(__file__).parents[1] / "fixtures" / "gpu"
SLOW_SECONDS = 2.5  # past the scrape timeout: min(10 s, the 1 s interval)
CONFIG = """
[[pricing.pools]]
name = "big"
boxes = 1
rent_per_hour = 2
capacity = {{ input_tps = 1000, output_tps = 100 }}
match = {{ server_address = "10.0.0.70" }}
alternative = {{ provider = "together", model = "m" }}

[pricing.pools.gpu_metrics]
match = {{ "host.name" = "gpu-70b-*" }}
scrape = ["{base}/dcgm", "{base}/vllm"]

[[pricing.pools]]
name = "small"
boxes = 1
rent_per_hour = 1
capacity = {{ input_tps = 1000, output_tps = 100 }}
match = {{ server_address = "10.0.0.8" }}
alternative = {{ provider = "together", model = "m" }}

[pricing.pools.gpu_metrics]
match = {{ Hostname = "gpu-8b-*" }}

[[pricing.pools]]
name = "flaky"
boxes = 1
rent_per_hour = 1
capacity = {{ input_tps = 1000, output_tps = 100 }}
match = {{ server_address = "10.0.0.9" }}
alternative = {{ provider = "together", model = "m" }}

[pricing.pools.gpu_metrics]
scrape = ["{base}/500", "{base}/html", "{base}/slow", "http://127.0.0.1:{closed}/metrics"]
"""


class _Exporters(BaseHTTPRequestHandler):
    """A DCGM exporter and a vLLM server on one port, and the ways a target goes wrong."""

    def do_GET(self) -> None:
        if self.path == "/slow":
            time.sleep(SLOW_SECONDS)
        if self.path == "/500":
            self._send(500, b"internal error")
        elif self.path == "/html":
            self._send(200, b"<html><body>Grafana login</body></html>", "text/html")
        else:
            name = {"/dcgm": "dcgm-exporter.txt", "/vllm": "vllm-metrics.txt", "/slow": "dcgm-exporter.txt"}[self.path]
            self._send(200, (FIXTURES / name).read_bytes())

    def _send(self, status: int, body: bytes, content_type: str = "text/plain; version=0.0.4; charset=utf-8") -> None:
        try:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
        except (BrokenPipeError, ConnectionResetError):  # the scraper gave up on /slow
            pass

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture(scope="module")
def exporters() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Exporters)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def _closed_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="module", params=DIALECTS)
def gpu(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory, exporters: str
) -> Iterator[RunningCollector]:
    tmp = tmp_path_factory.mktemp("gpu")
    config = tmp / "breakeven.toml"
    config.write_text(CONFIG.format(base=exporters, closed=_closed_port()))
    with running_collector(tmp, request.param, config=str(config), gpu_scrape_interval_seconds=1) as running:
        yield running


def _pools(running: RunningCollector) -> dict[str, dict[str, Any]]:
    body = httpx.get(f"{running.api}/api/v1/pools", timeout=10).json()
    return {p["name"]: p for p in body["pools"]}


def _export(exporter: Any, host_attrs: dict[str, str], name: str, unit: str, values: dict[str, Any]) -> None:
    """One export of an ObservableGauge through the SDK's periodic reader, flushed (then shut down)."""

    def observe(options: CallbackOptions) -> list[Observation]:
        return [Observation(value, attrs) for value, attrs in values.values()]

    reader = PeriodicExportingMetricReader(exporter, export_interval_millis=3_600_000)
    provider = MeterProvider(
        metric_readers=[reader], resource=Resource.create({"service.name": "gpu-agent", **host_attrs})
    )
    provider.get_meter("tests.breakeven.gpu").create_observable_gauge(name, callbacks=[observe], unit=unit)
    try:
        assert provider.force_flush(10_000)
    finally:
        provider.shutdown()


def test_sdk_exporters_over_http_and_grpc_reach_their_pools(gpu: RunningCollector) -> None:
    # hw.gpu.utilization over OTLP/HTTP from a box of "big": two GPUs at 42% and 62%.
    _export(
        HttpMetricExporter(endpoint=f"{gpu.otlp_http}/v1/metrics"), {"host.name": "gpu-70b-1"}, "hw.gpu.utilization", "1",
        {"0": (0.42, {"hw.id": "gpu-0"}), "1": (0.62, {"hw.id": "gpu-1"})},
    )  # fmt: skip
    # DCGM_FI_DEV_GPU_UTIL over OTLP/gRPC, as an OTel Collector that scrapes a DCGM exporter sends it: percent, labels.
    dcgm = {"gpu": "0", "UUID": "GPU-8b", "modelName": "NVIDIA L40S", "Hostname": "gpu-8b-1"}
    _export(
        GrpcMetricExporter(endpoint=gpu.otlp_grpc, insecure=True), {"service.instance.id": "10.0.0.8:9400"},
        "DCGM_FI_DEV_GPU_UTIL", "", {"0": (35, dcgm)},
    )  # fmt: skip
    # And a box no pool claims: counted, dropped.
    _export(
        HttpMetricExporter(endpoint=f"{gpu.otlp_http}/v1/metrics"), {"host.name": "cpu-box"}, "hw.gpu.utilization", "1",
        {"0": (0.9, {"hw.id": "gpu-0"})},
    )  # fmt: skip
    # Acknowledged means committed: no waiting.
    pools = _pools(gpu)
    big = {(s["source"], s["metric"]): s for s in pools["big"]["gpu_metrics"]["sources"]}
    pushed = big[("otlp", "hw.gpu.utilization")]
    assert (pushed["utilization"], pushed["peak"], pushed["gpus"], pushed["hosts"]) == ("0.52", "0.62", 2, 1)
    assert pushed["samples"] >= 2
    assert pushed["last_sample"].endswith("Z")
    small = pools["small"]["gpu_metrics"]
    assert (small["utilization"], small["source"], small["metric"]) == ("0.35", "otlp", "DCGM_FI_DEV_GPU_UTIL")
    assert small["sources"][0]["gpus"] == 1
    assert small["kv_cache"] == []
    assert pools["flaky"]["gpu_metrics"] is None  # nothing collected: null, not zero
    ingest = gpu.ingest()
    assert ingest["gpu_points"]["stored"]["otlp"] >= 3
    assert ingest["gpu_points"]["unmatched"]["otlp"] >= 1
    assert ingest["metric_points_received"] >= 4


def test_scraped_dcgm_and_vllm_beside_busy_seconds(gpu: RunningCollector) -> None:
    def scraped() -> dict[str, Any] | None:
        found = _pools(gpu)["big"]
        names = {s["metric"] for s in (found["gpu_metrics"] or {}).get("sources", []) if s["source"] == "scrape"}
        return found if {"DCGM_FI_DEV_GPU_UTIL", "DCGM_FI_PROF_GR_ENGINE_ACTIVE"} <= names else None

    big = wait_for(scraped, timeout=15)
    sources = {(s["source"], s["metric"]): s for s in big["gpu_metrics"]["sources"]}
    dcgm = sources[("scrape", "DCGM_FI_DEV_GPU_UTIL")]
    assert (dcgm["utilization"], dcgm["peak"], dcgm["gpus"], dcgm["hosts"]) == ("0.755", "0.87", 2, 1)  # (87 + 64) / 2
    profiling = sources[("scrape", "DCGM_FI_PROF_GR_ENGINE_ACTIVE")]
    assert (profiling["utilization"], profiling["gpus"]) == ("0.701173", 2)  # (0.812345 + 0.590001) / 2
    (kv,) = big["gpu_metrics"]["kv_cache"]
    assert (kv["source"], kv["metric"], kv["usage"], kv["engines"]) == (
        "scrape",
        "vllm:kv_cache_usage_perc",
        "0.4219",
        1,
    )
    assert "utilization" not in kv  # KV cache usage is never reported as utilization
    # The busy-seconds utilization stands beside it, unchanged: this pool served no calls.
    assert (big["utilization"], big["calls"]) == ("0", 0)
    health = {t["url"].rsplit("/", 1)[1]: t for t in big["gpu_scrape"]}
    assert (health["dcgm"]["up"], health["dcgm"]["last_samples"], health["vllm"]["last_samples"]) == (True, 4, 1)
    assert health["dcgm"]["last_success"] is not None
    assert health["dcgm"]["last_error"] is None


def test_broken_targets_are_counted_and_shown_and_break_nothing(gpu: RunningCollector) -> None:
    def all_failed() -> dict[str, Any] | None:
        targets = _pools(gpu)["flaky"]["gpu_scrape"]
        return {t["url"].rsplit("/", 1)[1]: t for t in targets} if all(t["up"] is False for t in targets) else None

    health = wait_for(all_failed, timeout=15)
    assert health["500"]["last_error"] == "HTTP 500 Internal Server Error"
    assert health["html"]["last_error"].startswith("not a Prometheus text exposition")
    assert health["slow"]["last_error"] == "timed out after 1 s"
    assert health["metrics"]["last_error"].startswith("ConnectionRefusedError")
    assert all(t["consecutive_failures"] >= 1 and t["last_success"] is None for t in health.values())
    assert gpu.ingest()["gpu_scrapes_failed"] >= 4
    # The server, its OTLP receivers and the good targets carry on.
    assert httpx.get(f"{gpu.api}/readyz", timeout=10).status_code == 200
    empty = ExportMetricsServiceRequest().SerializeToString()
    reply = httpx.post(f"{gpu.otlp_http}/v1/metrics", content=empty, headers={"Content-Type": "application/x-protobuf"})
    assert reply.status_code == 200
    assert all(t["up"] for t in _pools(gpu)["big"]["gpu_scrape"])


def test_pools_page_shows_the_gpu_figure(gpu: RunningCollector) -> None:
    wait_for(lambda: (_pools(gpu)["big"]["gpu_metrics"] or {}).get("utilization"), timeout=15)
    page = httpx.get(f"{gpu.api}/pools", timeout=10)
    assert page.status_code == 200
    html = page.text
    card = html[html.index('id="gpu-big"') : html.index("</div>", html.index('id="gpu-big"'))]
    assert "GPU metric utilization" in card
    assert "%" in card
    assert "DCGM_FI_DEV_GPU_UTIL (scrape)" in card
    assert "KV cache 42.2% (vllm:kv_cache_usage_perc, scrape)" in card
    flaky = html[html.index('id="gpu-flaky"') : html.index("</div>", html.index('id="gpu-flaky"'))]
    assert "not collected" in flaky
    assert "failing: HTTP 500" in flaky
    assert "GPU metric DCGM_FI_DEV_GPU_UTIL (scrape)" in html  # the chart's line, in its legend
    twin = httpx.get(f"{gpu.api}/pools.json", timeout=10).json()
    big = next(p for p in twin["pools"] if p["name"] == "big")
    lines = {(g["source"], g["metric"]): g["values"] for g in big["daily"]["gpu_utilization"]}
    assert lines[("scrape", "DCGM_FI_DEV_GPU_UTIL")][-1] == "0.755"  # today's mean, the last day of the range
    assert set(big["gpu_metrics"]) == {"utilization", "source", "metric", "sources", "kv_cache"}


def test_an_export_whose_gpu_samples_cannot_commit_is_refused(gpu: RunningCollector) -> None:
    point = NumberDataPoint(time_unix_nano=time.time_ns(), as_double=0.5, attributes=[key_value("hw.id", "gpu-9")])
    body = ExportMetricsServiceRequest(
        resource_metrics=[
            ResourceMetrics(
                resource=ProtoResource(attributes=[key_value("host.name", "gpu-70b-9")]),
                scope_metrics=[ScopeMetrics(metrics=[Metric(name="hw.gpu.utilization", unit="1", gauge=Gauge(data_points=[point]))])],
            )
        ]
    ).SerializeToString()  # fmt: skip
    headers = {"Content-Type": "application/x-protobuf"}

    def pushed_samples() -> int:
        sources = (_pools(gpu)["big"]["gpu_metrics"] or {}).get("sources", [])
        return sum(s["samples"] for s in sources if (s["source"], s["metric"]) == ("otlp", "hw.gpu.utilization"))

    before = pushed_samples()
    engine = gpu.app.engine
    with engine.begin() as conn:  # the table is gone: a real database error, not a stub
        conn.exec_driver_sql("ALTER TABLE gpu_metric_minutes RENAME TO gpu_metric_minutes_away")
    try:
        refused = httpx.post(f"{gpu.otlp_http}/v1/metrics", content=body, headers=headers, timeout=10)
    finally:
        with engine.begin() as conn:
            conn.exec_driver_sql("ALTER TABLE gpu_metric_minutes_away RENAME TO gpu_metric_minutes")
    assert refused.status_code == 503
    assert refused.headers["Retry-After"] == "2"
    accepted = httpx.post(f"{gpu.otlp_http}/v1/metrics", content=body, headers=headers, timeout=10)
    assert accepted.status_code == 200
    assert pushed_samples() == before + 1  # stored once: after the retry, not before
