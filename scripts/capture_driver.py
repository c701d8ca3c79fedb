"""Capture driver: runs INSIDE one emitter's virtualenv (see capture_emitters.py).

Invoked as ``python capture_driver.py '<json config>'``; the config carries
emitter, provider ("openai" | "anthropic" | "gemini" | "bedrock" | "mistral" | "groq" |
"cohere"), kind (which instrumentation to
set up), scenarios, packages (distributions whose versions to record),
out_dir and tests_dir (where ``fakeprovider.py`` lives).

For each scenario it makes one real client call against the fake provider,
force-flushes the OTel SDK and writes ``<out_dir>/<scenario>.json`` with the
raw OTLP/HTTP protobuf bodies the exporters POSTed to a local capture
receiver.  Only the standard library, the OTel SDK/exporter, protobuf (a
dependency of the exporter) and the provider client are used.
"""

from __future__ import annotations

import base64
import contextlib
import gc
import gzip
import importlib
import importlib.metadata as md
import json
import os
import sys
import tempfile
import threading
import time
import traceback
import zlib
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

CONFIG = json.loads(sys.argv[1])
sys.path.insert(0, CONFIG["tests_dir"])

from emitters import call_scenario, request_meta  # noqa: E402
from fakeprovider import FakeProvider, expected_record  # noqa: E402


def say(msg):
    print(f"[driver] {CONFIG['emitter']}: {msg}", flush=True)


# --------------------------------------------------------------------------
# OTLP/HTTP capture receiver
# --------------------------------------------------------------------------
class Receiver:
    def __init__(self):
        self.bodies = []  # (signal, raw bytes as received, content-encoding)
        self.lock = threading.Lock()
        recv = self

        class H(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *a):
                pass

            def do_POST(self):
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

    def mark(self):
        with self.lock:
            return len(self.bodies)

    def since(self, mark):
        with self.lock:
            return list(self.bodies[mark:])


def _decode(raw, enc):
    if enc == "gzip":
        return gzip.decompress(raw)
    if enc == "deflate":
        return zlib.decompress(raw)
    return raw


# --------------------------------------------------------------------------
# OTel SDK setup
# --------------------------------------------------------------------------
RECEIVER = Receiver()
os.environ.setdefault("OTEL_EXPORTER_OTLP_ENDPOINT", RECEIVER.url)
os.environ["OTEL_EXPORTER_OTLP_ENDPOINT"] = RECEIVER.url
os.environ["OTEL_EXPORTER_OTLP_PROTOCOL"] = "http/protobuf"
os.environ["OTEL_SERVICE_NAME"] = f"capture-{CONFIG['emitter']}"

from opentelemetry import _logs, trace  # noqa: E402
from opentelemetry.exporter.otlp.proto.http._log_exporter import OTLPLogExporter  # noqa: E402
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter  # noqa: E402
from opentelemetry.sdk._logs import LoggerProvider  # noqa: E402
from opentelemetry.sdk._logs.export import BatchLogRecordProcessor  # noqa: E402
from opentelemetry.sdk.resources import Resource  # noqa: E402
from opentelemetry.sdk.trace import TracerProvider  # noqa: E402
from opentelemetry.sdk.trace.export import BatchSpanProcessor  # noqa: E402

RESOURCE = Resource.create({"service.name": f"capture-{CONFIG['emitter']}"})
TP = TracerProvider(resource=RESOURCE)
TP.add_span_processor(
    BatchSpanProcessor(
        OTLPSpanExporter(endpoint=RECEIVER.url + "/v1/traces"), schedule_delay_millis=600000, max_export_batch_size=512
    )
)
trace.set_tracer_provider(TP)
LP = LoggerProvider(resource=RESOURCE)
LP.add_log_record_processor(
    BatchLogRecordProcessor(OTLPLogExporter(endpoint=RECEIVER.url + "/v1/logs"), schedule_delay_millis=600000)
)
_logs.set_logger_provider(LP)


def flush():
    gc.collect()
    time.sleep(0.2)  # let instrumentations finish spans ended from other threads / finalizers
    TP.force_flush(30000)
    LP.force_flush(30000)
    time.sleep(0.1)


# --------------------------------------------------------------------------
# Instrumentation
# --------------------------------------------------------------------------
# kind -> (module, instrumentor class, whether it takes a logger_provider): one entry per
# instrumentation library the captures drive.
INSTRUMENTORS: dict[str, tuple[str, str, bool]] = {
    "otel-openai-v2": ("opentelemetry.instrumentation.openai_v2", "OpenAIInstrumentor", True),
    "otel-genai-openai": ("opentelemetry.instrumentation.genai.openai", "OpenAIInstrumentor", True),
    "otel-anthropic": ("opentelemetry.instrumentation.genai.anthropic", "AnthropicInstrumentor", True),
    "openllmetry-openai": ("opentelemetry.instrumentation.openai", "OpenAIInstrumentor", True),
    "openllmetry-anthropic": ("opentelemetry.instrumentation.anthropic", "AnthropicInstrumentor", True),
    "openinference-openai": ("openinference.instrumentation.openai", "OpenAIInstrumentor", False),
    "openinference-anthropic": ("openinference.instrumentation.anthropic", "AnthropicInstrumentor", False),
    "otel-google-genai": ("opentelemetry.instrumentation.google_genai", "GoogleGenAiSdkInstrumentor", True),
    "openllmetry-google-genai": (
        "opentelemetry.instrumentation.google_generativeai", "GoogleGenerativeAiInstrumentor", True
    ),
    "openinference-google-genai": ("openinference.instrumentation.google_genai", "GoogleGenAIInstrumentor", False),
    "openllmetry-bedrock": ("opentelemetry.instrumentation.bedrock", "BedrockInstrumentor", True),
    "otel-botocore": ("opentelemetry.instrumentation.botocore", "BotocoreInstrumentor", True),
    "openllmetry-mistral": ("opentelemetry.instrumentation.mistralai", "MistralAiInstrumentor", True),
    "openllmetry-groq": ("opentelemetry.instrumentation.groq", "GroqInstrumentor", True),
    "openllmetry-cohere": ("opentelemetry.instrumentation.cohere", "CohereInstrumentor", True),
}  # fmt: skip


def instrument():
    kind = CONFIG["kind"]
    if kind in INSTRUMENTORS:
        module, name, takes_logs = INSTRUMENTORS[kind]
        instrumentor = getattr(importlib.import_module(module), name)()
        instrumentor.instrument(tracer_provider=TP, **({"logger_provider": LP} if takes_logs else {}))
    elif kind == "openlit":
        _instrument_openlit()
    elif kind != "none":
        raise SystemExit(f"unknown kind {kind}")


def _instrument_openlit():
    import openlit
    from openlit._instrumentors import MODULE_NAME_MAP

    keep = CONFIG["provider"]
    pricing = Path(tempfile.mkdtemp()) / "pricing.json"
    pricing.write_text(json.dumps(OPENLIT_PRICING))
    openlit.init(
        service_name=f"capture-{CONFIG['emitter']}",
        environment="capture",
        otlp_endpoint=RECEIVER.url,
        capture_message_content=True,
        disabled_instrumentors=[k for k in MODULE_NAME_MAP if k != keep],
        disable_metrics=True,
        collect_gpu_stats=False,
        collect_system_metrics=False,
        pricing_json=str(pricing),
    )


# A small local pricing table so openlit does not try to download its JSON
# (there is no internet); the numbers are per 1k tokens like openlit's file.
OPENLIT_PRICING = {
    "chat": {
        "gpt-4o-mini": {"promptPrice": 0.00015, "completionPrice": 0.0006},
        "gpt-4o": {"promptPrice": 0.0025, "completionPrice": 0.01},
        "o3-mini": {"promptPrice": 0.0011, "completionPrice": 0.0044},
        "o4-mini": {"promptPrice": 0.0011, "completionPrice": 0.0044},
        "claude-sonnet-4-5": {"promptPrice": 0.003, "completionPrice": 0.015},
        "claude-haiku-4-5": {"promptPrice": 0.001, "completionPrice": 0.005},
    },
    "embeddings": {"text-embedding-3-small": 0.00002},
}


def packages():
    out = {}
    for name in CONFIG["packages"]:
        with contextlib.suppress(md.PackageNotFoundError):
            out[name] = md.version(name)
    return out


def to_json_dicts(bodies, kind):
    from google.protobuf.json_format import MessageToDict

    if kind == "traces":
        from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest as M
    else:
        from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest as M
    return [MessageToDict(M.FromString(b)) for b in bodies]


def count_spans(trace_dicts):
    return sum(
        len(ss.get("spans", []))
        for d in trace_dicts
        for rs in d.get("resourceSpans", [])
        for ss in rs.get("scopeSpans", [])
    )


def run():
    out_dir = Path(CONFIG["out_dir"])
    out_dir.mkdir(parents=True, exist_ok=True)
    pkgs = packages()
    say("packages " + json.dumps(pkgs))
    instrument()
    failures = 0
    with FakeProvider() as fp:
        # warm-up flush so any start-up telemetry is not attributed to scenario 1
        flush()
        for scenario in CONFIG["scenarios"]:
            fp.clear()
            mark = RECEIVER.mark()
            err = None
            try:
                call_scenario(CONFIG["provider"], fp.base_url, scenario)
            except Exception as exc:  # the error scenario raises on purpose
                err = exc
                if not scenario.startswith("chat-error"):
                    say(f"{scenario}: unexpected exception {type(exc).__name__}: {exc}")
                    traceback.print_exc()
                    failures += 1
            flush()
            bodies = RECEIVER.since(mark)
            traces = [_decode(b, e) for s, b, e, _ in bodies if s == "traces"]
            logs = [_decode(b, e) for s, b, e, _ in bodies if s == "logs"]
            raw_traces = [b for s, b, e, _ in bodies if s == "traces"]
            raw_logs = [b for s, b, e, _ in bodies if s == "logs"]
            returned = list(fp.returned)
            expected = expected_record(CONFIG["provider"], request_meta(CONFIG["provider"], scenario), returned, err)
            traces_json = to_json_dicts(traces, "traces")
            logs_json = to_json_dicts(logs, "logs")
            nspans = count_spans(traces_json)
            if nspans == 0 and scenario in ("responses", "embeddings"):
                say(f"{scenario}: no spans emitted -> instrumentation does not cover it; fixture skipped")
                stale = out_dir / f"{scenario}.json"
                if stale.exists():
                    stale.unlink()
                continue
            if nspans == 0 and CONFIG["kind"] != "none":
                failures += 1
            fixture = {
                "emitter": CONFIG["emitter"],
                "scenario": scenario,
                "packages": pkgs,
                "provider_returned": [
                    {k: r.get(k) for k in ("path", "model", "usage", "stream", "status")} for r in returned
                ],
                "expected": expected,
                "traces": [base64.b64encode(b).decode() for b in raw_traces],
                "logs": [base64.b64encode(b).decode() for b in raw_logs],
                "traces_json": traces_json,
                "logs_json": logs_json,
            }
            path = out_dir / f"{scenario}.json"
            path.write_text(json.dumps(fixture, indent=1, sort_keys=False) + "\n")
            say(
                f"{scenario}: {len(raw_traces)} trace bodies ({nspans} spans), {len(raw_logs)} log bodies, "
                f"provider returned {[(r['path'], r['status']) for r in returned]}"
                + (f", raised {type(err).__name__}" if err is not None else "")
            )
    TP.shutdown()
    LP.shutdown()
    return failures


if __name__ == "__main__":
    sys.exit(1 if run() else 0)
