"""OTLP/HTTP receiver: protobuf and JSON, gzip and deflate, per the OTLP spec.

Answers: 200 with an Export*ServiceResponse (partial_success when some spans were
refused); 400 for an unusable body; 413 past a size limit; 415 for an unsupported
content type or encoding; 401 without a known ingest token (when [auth] sets
tokens); 429 with Retry-After when the queue is full; 503 with
Retry-After while the database cannot commit, or when the decode process holding the
export died (collector/ingest/offload.py). Error bodies are google.rpc.Status in
the request's content type. A 200 is sent only after the data is committed.
"""

from __future__ import annotations

import asyncio
import json
import logging
import zlib
from collections.abc import Awaitable, Callable
from typing import Any

from anyio import to_thread
from google.protobuf import json_format
from google.protobuf.message import Message
from google.rpc import status_pb2
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceResponse
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import ExportMetricsServiceResponse
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceResponse
from starlette.applications import Starlette
from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response
from starlette.routing import Route

from breakeven.collector.auth import Sender, ingest_sender
from breakeven.collector.calls.pipeline import Pipeline, PipelineStopped, QueueFull
from breakeven.collector.config.settings import Settings
from breakeven.collector.ingest import exports, parse
from breakeven.collector.ingest.gpu_metrics import GpuCommitFailed, GpuMetrics
from breakeven.collector.ingest.offload import DecoderUnavailable, TraceDecoder

log = logging.getLogger("breakeven.receive.http")
PROTOBUF = "application/x-protobuf"
JSON = "application/json"
RETRY_AFTER_SECONDS = "2"
_CHALLENGE = {"WWW-Authenticate": 'Bearer realm="breakeven-otlp"'}


class HttpError(Exception):
    """An error answer: status code, message, optional extra headers."""

    def __init__(self, status: int, message: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.headers = headers or {}


def _content_type(request: Request) -> str:
    raw = request.headers.get("content-type", "").split(";", 1)[0].strip().lower()
    if raw in (PROTOBUF, JSON):
        return raw
    raise HttpError(415, f"unsupported content type {raw or '(none)'!r}; send {PROTOBUF} or {JSON}")


async def _read_body(request: Request, limit: int) -> bytes:
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise HttpError(413, f"body of {declared} bytes exceeds max_body_bytes ({limit})")
    chunks: list[bytes] = []
    size = 0
    try:
        async for chunk in request.stream():
            size += len(chunk)
            if size > limit:
                raise HttpError(413, f"body exceeds max_body_bytes ({limit})")
            chunks.append(chunk)
    except ClientDisconnect:  # gone mid-body: nobody reads the answer, and no traceback is logged
        raise HttpError(400, "client disconnected before the body ended") from None
    return b"".join(chunks)


def decompress(body: bytes, encoding: str, limit: int) -> bytes:
    """The body with its Content-Encoding undone, refusing to grow past limit bytes."""
    encoding = encoding.strip().lower()
    if encoding in ("", "identity"):
        return body
    if encoding == "gzip":
        wbits = 16 + zlib.MAX_WBITS
    elif encoding == "deflate":
        wbits = zlib.MAX_WBITS if body[:1] == b"\x78" else -zlib.MAX_WBITS  # zlib-wrapped or raw
    else:
        raise HttpError(415, f"unsupported content encoding {encoding!r}; send gzip, deflate or none")
    inflater = zlib.decompressobj(wbits)
    try:
        out = inflater.decompress(body, limit + 1)
        if len(out) > limit or inflater.unconsumed_tail:
            raise HttpError(413, f"decompressed body exceeds max_decompressed_bytes ({limit})")
        out += inflater.flush()
    except zlib.error as exc:
        raise HttpError(400, f"body is not valid {encoding}: {exc}") from None
    if not inflater.eof:
        raise HttpError(400, f"body is not valid {encoding}: truncated stream")
    if len(out) > limit:
        raise HttpError(413, f"decompressed body exceeds max_decompressed_bytes ({limit})")
    return out


def _encode(message: Message, content_type: str) -> bytes:
    if content_type == JSON:
        return json.dumps(json_format.MessageToDict(message)).encode()
    return message.SerializeToString()


def _error_response(err: HttpError, content_type: str) -> Response:
    status = status_pb2.Status(code=err.status, message=err.message)
    return Response(_encode(status, content_type), err.status, err.headers, media_type=content_type)


Handler = Callable[[bytes, str, Sender], Awaitable[exports.Outcome]]


def _make_endpoint(
    settings: Settings, pipeline: Pipeline, handle: Handler, response_type: Any, partial_field: str
) -> Callable[[Request], Any]:
    async def endpoint(request: Request) -> Response:
        reply_type = JSON if "json" in request.headers.get("content-type", "") else PROTOBUF
        try:
            sender = ingest_sender(settings.auth, request.headers.get("authorization"))
            if sender is None:
                raise HttpError(401, "missing or unknown ingest token (Authorization: Bearer <token>)", _CHALLENGE)
            content_type = _content_type(request)
            body = await _read_body(request, settings.max_body_bytes)
            body = decompress(body, request.headers.get("content-encoding", ""), settings.max_decompressed_bytes)
            try:
                outcome = await handle(body, content_type, sender)
            except DecoderUnavailable as exc:
                raise HttpError(503, str(exc), {"Retry-After": RETRY_AFTER_SECONDS}) from None
            try:
                future = pipeline.submit(outcome.work)
            except QueueFull as exc:
                raise HttpError(429, str(exc), {"Retry-After": RETRY_AFTER_SECONDS}) from None
            except PipelineStopped as exc:
                raise HttpError(503, str(exc), {"Retry-After": RETRY_AFTER_SECONDS}) from None
            try:
                await asyncio.wrap_future(future)
            except Exception as exc:
                raise HttpError(
                    503, f"could not commit, retry later: {exc}", {"Retry-After": RETRY_AFTER_SECONDS}
                ) from None
        except HttpError as err:
            if err.status >= 500:
                log.warning("export refused (%d): %s", err.status, err.message)
            return _error_response(err, reply_type)
        except (parse.PayloadError, exports.TooLarge) as exc:
            status = 413 if isinstance(exc, exports.TooLarge) else 400
            return _error_response(HttpError(status, str(exc)), reply_type)
        reply = response_type()
        if outcome.rejected:
            partial = reply.partial_success
            setattr(partial, partial_field, outcome.rejected)
            partial.error_message = outcome.message()
        return Response(_encode(reply, content_type), 200, media_type=content_type)

    return endpoint


def build_otlp_app(
    settings: Settings, pipeline: Pipeline, decoder: TraceDecoder, gpu: GpuMetrics | None = None
) -> Starlette:
    """The Starlette app serving POST /v1/traces, /v1/logs and /v1/metrics (GPU samples go to `gpu`).

    Trace bodies go to `decoder` (collector/ingest/offload.py), logs and metrics to
    threads of this process.
    """

    def traces(body: bytes, content_type: str, sender: Sender) -> Awaitable[exports.Outcome]:
        return decoder.outcome_async(body, content_type, sender)

    def logs(body: bytes, content_type: str, sender: Sender) -> Awaitable[exports.Outcome]:
        return to_thread.run_sync(_logs, body, content_type, sender)

    def _logs(body: bytes, content_type: str, sender: Sender) -> exports.Outcome:
        return exports.logs_outcome(parse.parse_logs(body, content_type), sender)

    def metrics(body: bytes, content_type: str, sender: Sender) -> Awaitable[exports.Outcome]:
        return to_thread.run_sync(_metrics, body, content_type, sender)

    def _metrics(body: bytes, content_type: str, sender: Sender) -> exports.Outcome:
        request = parse.parse_metrics(body, content_type)
        outcome = exports.metrics_outcome(request)
        if gpu is not None:
            try:
                outcome.work.counters.update(gpu.ingest_otlp(request))
            except GpuCommitFailed as exc:
                retry = {"Retry-After": RETRY_AFTER_SECONDS}
                raise HttpError(503, f"could not commit, retry later: {exc}", retry) from None
        return outcome

    routes = [
        Route(
            "/v1/traces",
            _make_endpoint(settings, pipeline, traces, ExportTraceServiceResponse, "rejected_spans"),
            methods=["POST"],
        ),
        Route(
            "/v1/logs",
            _make_endpoint(settings, pipeline, logs, ExportLogsServiceResponse, "rejected_log_records"),
            methods=["POST"],
        ),
        Route(
            "/v1/metrics",
            _make_endpoint(settings, pipeline, metrics, ExportMetricsServiceResponse, "rejected_data_points"),
            methods=["POST"],
        ),
    ]
    return Starlette(routes=routes)
