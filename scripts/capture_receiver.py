"""The OTLP/HTTP capture receiver the emitter captures share (capture_driver.py, capture_node.py).

Stores every POSTed body byte for byte, with its signal (traces | logs | metrics), content
encoding and content type, and answers 200. Standard library only at import time, so it runs
inside every capture virtualenv; ``to_json_dicts`` needs opentelemetry-proto and protobuf.
"""

from __future__ import annotations

import gzip
import threading
import zlib
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


class Receiver:
    """A local OTLP/HTTP endpoint that keeps what it was sent; ``url`` is its base URL."""

    def __init__(self) -> None:
        self.bodies: list[tuple[str, bytes, str | None, str | None]] = []
        self.lock = threading.Lock()
        recv = self

        class H(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *a: Any) -> None:
                pass

            def do_POST(self) -> None:
                if "chunked" in (self.headers.get("Transfer-Encoding") or "").lower():
                    raw = _read_chunked(self.rfile)  # OTel JS's exporter streams its body
                else:
                    n = int(self.headers.get("Content-Length") or 0)
                    raw = self.rfile.read(n) if n else b""
                sig = self.path.rstrip("/").rsplit("/", 1)[-1]  # traces | logs | metrics
                with recv.lock:
                    recv.bodies.append(
                        (sig, raw, self.headers.get("Content-Encoding"), self.headers.get("Content-Type"))
                    )
                self.send_response(200)
                self.send_header("Content-Type", "application/x-protobuf")
                self.send_header("Content-Length", "0")
                self.end_headers()

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), H)
        self.httpd.daemon_threads = True
        threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"

    def mark(self) -> int:
        with self.lock:
            return len(self.bodies)

    def since(self, mark: int) -> list[tuple[str, bytes, str | None, str | None]]:
        with self.lock:
            return list(self.bodies[mark:])

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


def _read_chunked(stream: Any) -> bytes:
    """An HTTP/1.1 chunked body, trailers skipped."""
    body = bytearray()
    while True:
        size = int(stream.readline().split(b";", 1)[0].strip() or b"0", 16)
        if size == 0:
            while stream.readline() not in (b"\r\n", b"\n", b""):
                pass
            return bytes(body)
        body += stream.read(size)
        stream.readline()  # the CRLF after each chunk


def decode(raw: bytes, enc: str | None) -> bytes:
    """A body as the exporter meant it (gzip and deflate undone)."""
    if enc == "gzip":
        return gzip.decompress(raw)
    if enc == "deflate":
        return zlib.decompress(raw)
    return raw


def to_json_dicts(bodies: list[bytes], kind: str) -> list[dict[str, Any]]:
    """OTLP protobuf bodies through MessageToDict (kind: "traces" or "logs")."""
    from google.protobuf.json_format import MessageToDict

    if kind == "traces":
        from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest as M
    else:
        from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest as M  # type: ignore[assignment]
    return [MessageToDict(M.FromString(b)) for b in bodies]


def count_spans(trace_dicts: list[dict[str, Any]]) -> int:
    """Spans in traces_json bodies."""
    return sum(
        len(ss.get("spans", []))
        for d in trace_dicts
        for rs in d.get("resourceSpans", [])
        for ss in rs.get("scopeSpans", [])
    )
