"""OTLP/gRPC receiver: TraceService, LogsService and MetricsService Export.

Same decode and hand-off as HTTP: TraceService receives the request's bytes (no
deserializer), so a trace export takes the same decode_trace_body as an HTTP protobuf
body, the native decoder included, in a decode process (collector/ingest/offload.py).
A full queue answers RESOURCE_EXHAUSTED, a database that cannot commit or a decode
process that died UNAVAILABLE (both retryable for OTel SDK exporters), a bad payload
INVALID_ARGUMENT, a missing or unknown ingest token UNAUTHENTICATED; partial success is reported in the response.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from concurrent import futures
from pathlib import Path
from typing import Any

import grpc
from google.protobuf import duration_pb2
from google.rpc import error_details_pb2
from opentelemetry.proto.collector.logs.v1 import logs_service_pb2, logs_service_pb2_grpc
from opentelemetry.proto.collector.metrics.v1 import metrics_service_pb2, metrics_service_pb2_grpc
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2

from breakeven.collector.auth import Sender, ingest_sender
from breakeven.collector.calls.pipeline import Pipeline, PipelineStopped, QueueFull
from breakeven.collector.config.settings import Settings
from breakeven.collector.ingest import decode, exports, parse
from breakeven.collector.ingest.gpu_metrics import GpuCommitFailed, GpuMetrics
from breakeven.collector.ingest.offload import DecoderUnavailable, TraceDecoder

log = logging.getLogger("breakeven.receive.grpc")
COMMIT_TIMEOUT_SECONDS = 60.0
RETRY_AFTER_SECONDS = 2  # as HTTP's Retry-After
TRACE_SERVICE = trace_service_pb2.DESCRIPTOR.services_by_name["TraceService"].full_name


def _retry_later(context: grpc.ServicerContext) -> None:
    """The OTLP retry hint: google.rpc.RetryInfo in the trailers (OTel exporters wait that long)."""
    info = error_details_pb2.RetryInfo(retry_delay=duration_pb2.Duration(seconds=RETRY_AFTER_SECONDS))
    context.set_trailing_metadata((("google.rpc.retryinfo-bin", info.SerializeToString()),))


def _sender(settings: Settings, context: grpc.ServicerContext) -> Sender:
    """The ingest token's sender, or abort UNAUTHENTICATED (token from `authorization` metadata)."""
    metadata = {key.lower(): value for key, value in context.invocation_metadata() if isinstance(value, str)}
    sender = ingest_sender(settings.auth, metadata.get("authorization"))
    if sender is None:
        context.abort(grpc.StatusCode.UNAUTHENTICATED, "missing or unknown ingest token (authorization: Bearer ...)")
    assert sender is not None
    return sender


def _export(
    pipeline: Pipeline,
    outcome_of: Callable[[], exports.Outcome],
    context: grpc.ServicerContext,
    response: Any,
    partial_field: str,
) -> Any:
    try:
        outcome = outcome_of()
    except (exports.TooLarge, parse.PayloadError) as exc:
        context.abort(grpc.StatusCode.INVALID_ARGUMENT, str(exc))
    except DecoderUnavailable as exc:
        _retry_later(context)
        context.abort(grpc.StatusCode.UNAVAILABLE, str(exc))
    try:
        future = pipeline.submit(outcome.work)
    except QueueFull as exc:
        _retry_later(context)
        context.abort(grpc.StatusCode.RESOURCE_EXHAUSTED, str(exc))
    except PipelineStopped as exc:
        _retry_later(context)
        context.abort(grpc.StatusCode.UNAVAILABLE, str(exc))
    try:
        future.result(COMMIT_TIMEOUT_SECONDS)
    except Exception as exc:
        log.warning("export refused: %s", exc)
        _retry_later(context)
        context.abort(grpc.StatusCode.UNAVAILABLE, f"could not commit, retry later: {exc}")
    if outcome.rejected:
        setattr(response.partial_success, partial_field, outcome.rejected)
        response.partial_success.error_message = outcome.message()
    return response


class _Traces:
    """TraceService Export over the serialized request (see traces_handler)."""

    def __init__(self, settings: Settings, pipeline: Pipeline, decoder: TraceDecoder) -> None:
        self.settings, self.pipeline, self.decoder = settings, pipeline, decoder

    def export(self, body: bytes, context: grpc.ServicerContext) -> Any:
        """Export, given the request's bytes."""
        return _export(
            self.pipeline,
            lambda: self.decoder.outcome(body, decode.PROTOBUF, _sender(self.settings, context)),
            context,
            trace_service_pb2.ExportTraceServiceResponse(),
            "rejected_spans",
        )


def traces_handler(settings: Settings, pipeline: Pipeline, decoder: TraceDecoder) -> grpc.GenericRpcHandler:
    """TraceService with Export handed the raw request bytes (request_deserializer None)."""
    export: grpc.RpcMethodHandler[bytes, trace_service_pb2.ExportTraceServiceResponse] = (
        grpc.unary_unary_rpc_method_handler(
            _Traces(settings, pipeline, decoder).export,
            request_deserializer=None,
            response_serializer=trace_service_pb2.ExportTraceServiceResponse.SerializeToString,
        )
    )
    return grpc.method_handlers_generic_handler(TRACE_SERVICE, {"Export": export})


class _Logs(logs_service_pb2_grpc.LogsServiceServicer):
    def __init__(self, settings: Settings, pipeline: Pipeline) -> None:
        self.settings, self.pipeline = settings, pipeline

    def Export(self, request: Any, context: grpc.ServicerContext) -> Any:  # noqa: N802
        return _export(
            self.pipeline,
            lambda: exports.logs_outcome(request, _sender(self.settings, context)),
            context,
            logs_service_pb2.ExportLogsServiceResponse(),
            "rejected_log_records",
        )


class _Metrics(metrics_service_pb2_grpc.MetricsServiceServicer):
    def __init__(self, settings: Settings, pipeline: Pipeline, gpu: GpuMetrics | None) -> None:
        self.settings, self.pipeline, self.gpu = settings, pipeline, gpu

    def Export(self, request: Any, context: grpc.ServicerContext) -> Any:  # noqa: N802
        _sender(self.settings, context)
        return _export(
            self.pipeline,
            lambda: self._outcome(request, context),
            context,
            metrics_service_pb2.ExportMetricsServiceResponse(),
            "rejected_data_points",
        )

    def _outcome(self, request: Any, context: grpc.ServicerContext) -> exports.Outcome:
        outcome = exports.metrics_outcome(request)
        if self.gpu is not None:
            try:
                outcome.work.counters.update(self.gpu.ingest_otlp(request))
            except GpuCommitFailed as exc:
                _retry_later(context)
                context.abort(grpc.StatusCode.UNAVAILABLE, f"could not commit, retry later: {exc}")
        return outcome


def build_grpc_server(
    settings: Settings, pipeline: Pipeline, decoder: TraceDecoder, gpu: GpuMetrics | None = None
) -> tuple[grpc.Server, int]:
    """A started-ready gRPC server bound to host:otlp_grpc_port, and the port it got.

    Trace requests go to `decoder` (collector/ingest/offload.py).
    """
    server = grpc.server(
        futures.ThreadPoolExecutor(max_workers=8, thread_name_prefix="breakeven-grpc"),
        options=[
            ("grpc.max_receive_message_length", settings.max_decompressed_bytes),
            ("grpc.so_reuseport", 0),
        ],
    )
    server.add_generic_rpc_handlers((traces_handler(settings, pipeline, decoder),))
    logs_service_pb2_grpc.add_LogsServiceServicer_to_server(_Logs(settings, pipeline), server)
    metrics_service_pb2_grpc.add_MetricsServiceServicer_to_server(_Metrics(settings, pipeline, gpu), server)
    host = f"[{settings.host}]" if ":" in settings.host else settings.host
    address = f"{host}:{settings.otlp_grpc_port}"
    if settings.tls_cert_file and settings.tls_key_file:
        key = Path(settings.tls_key_file).read_bytes()
        cert = Path(settings.tls_cert_file).read_bytes()
        port = server.add_secure_port(address, grpc.ssl_server_credentials([(key, cert)]))
    else:
        port = server.add_insecure_port(address)
    if port == 0:
        raise OSError(f"otlp_grpc_port: cannot listen on {settings.host}:{settings.otlp_grpc_port}")
    return server, port
