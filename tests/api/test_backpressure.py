"""A full queue answers 429 with Retry-After (HTTP) or RESOURCE_EXHAUSTED with RetryInfo
(gRPC), memory stays at the queue's bound, and the real OTel SDK exporter, honouring the
hint, delivers everything once the writer catches up."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import grpc
import httpx
import pytest
from google.rpc import error_details_pb2
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2, trace_service_pb2_grpc

from tests.conftest import RunningCollector, start_collector, wait_for
from tests.otel import chat_attributes, chat_export, tracer


def _export(model: str) -> trace_service_pb2.ExportTraceServiceRequest:
    return chat_export(start_ns=1_800_000_000_000_000_000, **{"gen_ai.request.model": model})


@pytest.fixture
def held(tmp_path) -> Iterator[tuple[RunningCollector, threading.Event]]:
    """A collector whose queue holds two spans, and whose writer waits until released."""
    running = start_collector(tmp_path, queue_max_spans=2, batch_max_spans=1)
    assert running.app.pipeline is not None
    writer = running.app.pipeline.writer
    real_write, release = writer.write, threading.Event()

    def slow_write(batch, received_at_us):  # type: ignore[no-untyped-def]
        release.wait(30)
        return real_write(batch, received_at_us)

    writer.write = slow_write  # type: ignore[method-assign]
    try:
        yield running, release
    finally:
        release.set()
        running.app.stop()


def _post(running: RunningCollector, model: str) -> httpx.Response:
    return httpx.post(
        f"{running.otlp_http}/v1/traces",
        content=_export(model).SerializeToString(),
        headers={"Content-Type": "application/x-protobuf"},
        timeout=30,
    )


def test_a_full_queue_says_retry_later_on_both_protocols(held: tuple[RunningCollector, threading.Event]) -> None:
    running, release = held
    pipeline = running.app.pipeline
    assert pipeline is not None
    answers: list[int] = []
    waiting = [threading.Thread(target=lambda m=m: answers.append(_post(running, m).status_code)) for m in "ab"]
    for depth, thread in enumerate(waiting, start=1):  # one in the writer, one queued: the bound of 2
        thread.start()
        wait_for(lambda depth=depth: pipeline.depth == depth)

    refused = _post(running, "c")
    assert refused.status_code == 429
    assert refused.headers["Retry-After"] == "2"
    with grpc.insecure_channel(running.otlp_grpc) as channel:
        with pytest.raises(grpc.RpcError) as raised:
            trace_service_pb2_grpc.TraceServiceStub(channel).Export(_export("d"), timeout=10)
    assert raised.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    trailers = dict(raised.value.trailing_metadata() or ())
    assert error_details_pb2.RetryInfo.FromString(trailers["google.rpc.retryinfo-bin"]).retry_delay.seconds == 2
    assert pipeline.depth == 2  # refused exports hold no memory

    release.set()
    for thread in waiting:
        thread.join(30)
    assert answers == [200, 200]
    assert {c["request_model"] for c in running.calls()} == {"a", "b"}


def test_the_sdk_exporter_backs_off_and_delivers(held: tuple[RunningCollector, threading.Event]) -> None:
    running, release = held
    pipeline = running.app.pipeline
    assert pipeline is not None
    blockers = [threading.Thread(target=_post, args=(running, m)) for m in ("x", "y")]
    for thread in blockers:
        thread.start()
    wait_for(lambda: pipeline.depth == 2)
    threading.Timer(1.0, release.set).start()  # the writer catches up while the SDK backs off
    with tracer(running.otlp_http, "backoff") as t:
        with t.start_as_current_span("chat", attributes=chat_attributes(**{"gen_ai.request.model": "z"})):
            pass
    for thread in blockers:
        thread.join(30)
    wait_for(lambda: {c["request_model"] for c in running.calls()} == {"x", "y", "z"})
