"""Who may do what: ingest tokens (HTTP and gRPC) bound to services, dashboard/API login with
roles, TLS on every listener. Real OTel SDK exporters, a real collector."""

from __future__ import annotations

import ssl
import subprocess
from collections.abc import Iterator
from pathlib import Path

import grpc
import httpx
import pytest
from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter as GrpcSpanExporter
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter as HttpSpanExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExporter
from opentelemetry.trace import SpanKind

from breakeven.collector.auth import hash_password, sha256_hex
from tests.conftest import RunningCollector, require_program, start_collector
from tests.otel import chat_attributes

CHECKOUT_TOKEN = "ingest-token-checkout-0123456789"
GATEWAY_TOKEN = "ingest-token-gateway-0123456789"
ADMIN_TOKEN = "api-token-admin-0123456789abcdef"


@pytest.fixture(scope="module")
def guarded(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningCollector]:
    tmp = tmp_path_factory.mktemp("guarded")
    (tmp / "breakeven.toml").write_text(
        f"""
[[auth.ingest_tokens]]
name = "checkout"
token_sha256 = "{sha256_hex(CHECKOUT_TOKEN)}"
services = ["checkout"]

[[auth.ingest_tokens]]
name = "gateway"
token_sha256 = "{sha256_hex(GATEWAY_TOKEN)}"

[[auth.users]]
name = "finance"
role = "viewer"
password_scrypt = "{hash_password("ledger-reader")}"

[[auth.users]]
name = "ops"
role = "admin"
token_sha256 = "{sha256_hex(ADMIN_TOKEN)}"
"""
    )
    running = start_collector(tmp, config=str(tmp / "breakeven.toml"))
    yield running
    running.app.stop()


def _send(exporter: SpanExporter, service: str, model: str) -> None:
    provider = TracerProvider(resource=Resource.create({"service.name": service}))
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    with provider.get_tracer("tests.security").start_as_current_span(
        "chat", kind=SpanKind.CLIENT, attributes=chat_attributes(**{"gen_ai.request.model": model})
    ):
        pass
    provider.shutdown()


def _api(running: RunningCollector, path: str, **kwargs: object) -> httpx.Response:
    return httpx.get(f"{running.api}{path}", timeout=10, **kwargs)  # type: ignore[arg-type]


def _models(running: RunningCollector) -> set[str]:
    response = _api(running, "/api/v1/calls?limit=1000", headers={"Authorization": f"Bearer {ADMIN_TOKEN}"})
    return {c["request_model"] for c in response.json()["calls"]}


@pytest.mark.parametrize("protocol", ["http", "grpc"])
def test_ingest_needs_a_known_token_and_a_bound_token_speaks_for_its_service_only(
    guarded: RunningCollector, protocol: str
) -> None:
    def exporter(token: str | None) -> SpanExporter:
        headers = {"authorization": f"Bearer {token}"} if token else {}
        if protocol == "http":
            return HttpSpanExporter(endpoint=f"{guarded.otlp_http}/v1/traces", headers=headers, timeout=5)
        return GrpcSpanExporter(endpoint=guarded.otlp_grpc, insecure=True, headers=headers, timeout=5)

    _send(exporter(None), "checkout", f"no-token-{protocol}")
    _send(exporter("not-a-known-token-at-all"), "checkout", f"bad-token-{protocol}")
    _send(exporter(CHECKOUT_TOKEN), "checkout", f"own-service-{protocol}")
    _send(exporter(CHECKOUT_TOKEN), "billing", f"other-service-{protocol}")
    _send(exporter(GATEWAY_TOKEN), "billing", f"unbound-{protocol}")
    models = _models(guarded)
    assert {f"own-service-{protocol}", f"unbound-{protocol}"} <= models
    assert not {f"no-token-{protocol}", f"bad-token-{protocol}", f"other-service-{protocol}"} & models
    ingest = _api(guarded, "/api/v1/ingest", headers={"Authorization": f"Bearer {ADMIN_TOKEN}"}).json()
    assert ingest["rejected"]["service_not_allowed"] >= 1


def test_ingest_answers_401_and_unauthenticated_with_a_reason(guarded: RunningCollector) -> None:
    response = httpx.post(
        f"{guarded.otlp_http}/v1/traces", content=b"", headers={"Content-Type": "application/x-protobuf"}
    )
    assert response.status_code == 401
    assert "ingest token" in response.text
    assert response.headers["WWW-Authenticate"].startswith("Bearer")
    from opentelemetry.proto.collector.trace.v1 import trace_service_pb2, trace_service_pb2_grpc

    with grpc.insecure_channel(guarded.otlp_grpc) as channel:
        stub = trace_service_pb2_grpc.TraceServiceStub(channel)
        with pytest.raises(grpc.RpcError) as raised:
            stub.Export(trace_service_pb2.ExportTraceServiceRequest(), timeout=5)
    assert raised.value.code() == grpc.StatusCode.UNAUTHENTICATED


@pytest.mark.parametrize(
    ("path", "auth", "status"),
    [
        ("/healthz", None, 200),
        ("/readyz", None, 200),
        ("/api/v1/calls", None, 401),
        ("/", None, 401),
        ("/metrics", None, 401),
        ("/api/v1/calls", ("finance", "ledger-reader"), 200),
        ("/api/v1/calls", ("finance", "wrong"), 401),
        ("/api/v1/calls", ("ops", "no password set"), 401),
        ("/api/v1/spend", f"Bearer {ADMIN_TOKEN}", 200),
        ("/api/v1/calls", "Bearer nope", 401),
    ],
)
def test_dashboard_and_api_need_a_login(
    guarded: RunningCollector, path: str, auth: tuple[str, str] | str | None, status: int
) -> None:
    if isinstance(auth, str):
        response = _api(guarded, path, headers={"Authorization": auth})
    else:
        response = _api(guarded, path, auth=auth)
    assert response.status_code == status, response.text
    if status == 401:
        assert response.headers["WWW-Authenticate"].startswith("Basic")


def test_viewers_read_and_only_admins_change(guarded: RunningCollector) -> None:
    viewer = httpx.post(f"{guarded.api}/api/v1/calls", auth=("finance", "ledger-reader"), timeout=10)
    admin = httpx.post(f"{guarded.api}/api/v1/calls", headers={"Authorization": f"Bearer {ADMIN_TOKEN}"}, timeout=10)
    assert viewer.status_code == 403
    assert "may only read" in viewer.text
    assert admin.status_code == 405  # let through; the route itself takes no POST


def test_secrets_never_reach_the_logs(guarded: RunningCollector, caplog: pytest.LogCaptureFixture) -> None:
    _api(guarded, "/api/v1/calls", auth=("finance", "ledger-reader"))
    _send(
        HttpSpanExporter(endpoint=f"{guarded.otlp_http}/v1/traces", headers={"authorization": "Bearer x" * 3}), "a", "m"
    )
    text = caplog.text
    assert "ledger-reader" not in text
    assert CHECKOUT_TOKEN not in text
    assert ADMIN_TOKEN not in text


@pytest.fixture(scope="module")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    openssl = require_program("openssl")
    tmp = tmp_path_factory.mktemp("tls")
    cert, key = tmp / "cert.pem", tmp / "key.pem"
    subprocess.run(
        [
            openssl,
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "1",
            "-subj",
            "/CN=localhost",
            "-addext",
            "subjectAltName=DNS:localhost,IP:127.0.0.1",
            "-keyout",
            str(key),
            "-out",
            str(cert),
        ],
        check=True,
        capture_output=True,
    )
    return cert, key


def test_tls_on_every_listener(tmp_path: Path, certificate: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch) -> None:
    cert, key = certificate
    # requests lets REQUESTS_CA_BUNDLE override a session's own CA file (the exporter's
    # certificate_file); this machine sets it, so take it away for the test.
    monkeypatch.delenv("REQUESTS_CA_BUNDLE", raising=False)
    monkeypatch.delenv("CURL_CA_BUNDLE", raising=False)
    running = start_collector(tmp_path, tls_cert_file=str(cert), tls_key_file=str(key))
    try:
        https = f"https://127.0.0.1:{running.app.otlp_http_port}"
        _send(
            HttpSpanExporter(endpoint=f"{https}/v1/traces", certificate_file=str(cert), timeout=5), "tls", "over-https"
        )
        credentials = grpc.ssl_channel_credentials(cert.read_bytes())
        _send(GrpcSpanExporter(endpoint=running.otlp_grpc, credentials=credentials, timeout=5), "tls", "over-grpcs")
        api = f"https://127.0.0.1:{running.app.http_port}"
        trusted = ssl.create_default_context(cafile=str(cert))
        calls = httpx.get(f"{api}/api/v1/calls", verify=trusted, timeout=10).json()["calls"]
        assert {c["request_model"] for c in calls} == {"over-https", "over-grpcs"}
        with pytest.raises(httpx.HTTPError):  # plain HTTP is not served next to TLS
            httpx.get(f"http://127.0.0.1:{running.app.http_port}/healthz", timeout=5)
    finally:
        running.app.stop()


@pytest.mark.parametrize(
    ("overrides", "named"),
    [
        ({"tls_cert_file": "/nonexistent.pem"}, "tls_cert_file, tls_key_file: give both"),
        ({"tls_cert_file": "/nonexistent.pem", "tls_key_file": "/nonexistent.key"}, "tls_cert_file: file not found"),
    ],
)
def test_bad_tls_settings_name_the_setting(overrides: dict[str, str], named: str) -> None:
    from breakeven.collector.config.checks import SettingsError
    from breakeven.collector.config.settings import load_settings

    with pytest.raises(SettingsError, match=named):
        load_settings(overrides, {})
