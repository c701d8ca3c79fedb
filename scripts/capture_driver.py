"""Capture driver: runs INSIDE one emitter's virtualenv (see capture_emitters.py).

Invoked as ``python capture_driver.py '<json config>'``; the config carries
emitter, provider ("openai" | "anthropic"), kind (which instrumentation to
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

from fakeprovider import FakeProvider, expected_canonical  # noqa: E402


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
def instrument():
    kind = CONFIG["kind"]
    if kind == "otel-openai-v2":
        from opentelemetry.instrumentation.openai_v2 import OpenAIInstrumentor

        OpenAIInstrumentor().instrument(tracer_provider=TP, logger_provider=LP)
    elif kind == "otel-genai-openai":
        from opentelemetry.instrumentation.genai.openai import OpenAIInstrumentor

        OpenAIInstrumentor().instrument(tracer_provider=TP, logger_provider=LP)
    elif kind == "otel-anthropic":
        from opentelemetry.instrumentation.genai.anthropic import AnthropicInstrumentor

        AnthropicInstrumentor().instrument(tracer_provider=TP, logger_provider=LP)
    elif kind == "openllmetry-openai":
        from opentelemetry.instrumentation.openai import OpenAIInstrumentor

        OpenAIInstrumentor().instrument(tracer_provider=TP, logger_provider=LP)
    elif kind == "openllmetry-anthropic":
        from opentelemetry.instrumentation.anthropic import AnthropicInstrumentor

        AnthropicInstrumentor().instrument(tracer_provider=TP, logger_provider=LP)
    elif kind == "openinference-openai":
        from openinference.instrumentation.openai import OpenAIInstrumentor

        OpenAIInstrumentor().instrument(tracer_provider=TP)
    elif kind == "openinference-anthropic":
        from openinference.instrumentation.anthropic import AnthropicInstrumentor

        AnthropicInstrumentor().instrument(tracer_provider=TP)
    elif kind == "openlit":
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
    elif kind == "none":
        pass
    else:
        raise SystemExit(f"unknown kind {kind}")


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


# --------------------------------------------------------------------------
# Scenarios
# --------------------------------------------------------------------------
def prompt(s):
    return f"Please answer briefly. SECRET-PROMPT-{s}-7f3a"


def system(s):
    return f"You are a terse assistant. SECRET-SYSTEM-{s}-7f3a"


def openai_call(fp, scenario):
    import openai

    client = openai.OpenAI(base_url=fp.base_url + "/v1", api_key="sk-fake-capture", max_retries=0, timeout=30)
    hdr = {"X-Fake-Scenario": scenario}
    msgs = [{"role": "system", "content": system(scenario)}, {"role": "user", "content": prompt(scenario)}]
    if scenario == "chat":
        client.chat.completions.create(
            model="gpt-4o-mini", messages=msgs, max_tokens=100, temperature=0.2, extra_headers=hdr
        )
        return dict(request_model="gpt-4o-mini", operation="chat", streaming=False)
    if scenario == "chat-stream":
        stream = client.chat.completions.create(
            model="gpt-4o-mini",
            messages=msgs,
            max_tokens=100,
            temperature=0.2,
            stream=True,
            stream_options={"include_usage": True},
            extra_headers=hdr,
        )
        for _ in stream:
            pass
        if hasattr(stream, "close"):
            stream.close()
        return dict(request_model="gpt-4o-mini", operation="chat", streaming=True)
    if scenario == "chat-cached":
        client.chat.completions.create(model="gpt-4o", messages=msgs, max_tokens=100, extra_headers=hdr)
        return dict(request_model="gpt-4o", operation="chat", streaming=False)
    if scenario == "chat-reasoning":
        client.chat.completions.create(
            model="o3-mini", messages=msgs, max_completion_tokens=2000, reasoning_effort="medium", extra_headers=hdr
        )
        return dict(request_model="o3-mini", operation="chat", streaming=False)
    if scenario == "chat-cache-write":
        client.chat.completions.create(model="gpt-4o", messages=msgs, max_tokens=100, extra_headers=hdr)
        return dict(request_model="gpt-4o", operation="chat", streaming=False)
    if scenario == "chat-error":
        client.chat.completions.create(model="gpt-4o-mini", messages=msgs, max_tokens=100, extra_headers=hdr)
        return dict(request_model="gpt-4o-mini", operation="chat", streaming=False)
    if scenario == "embeddings":
        client.embeddings.create(model="text-embedding-3-small", input=prompt(scenario), extra_headers=hdr)
        return dict(request_model="text-embedding-3-small", operation="embeddings", streaming=False)
    if scenario == "responses":
        client.responses.create(
            model="o4-mini",
            instructions=system(scenario),
            input=prompt(scenario),
            max_output_tokens=2000,
            extra_headers=hdr,
        )
        return dict(request_model="o4-mini", operation="chat", streaming=False)
    raise ValueError(scenario)


def anthropic_call(fp, scenario):
    import anthropic

    client = anthropic.Anthropic(base_url=fp.base_url, api_key="sk-ant-fake-capture", max_retries=0, timeout=30)
    hdr = {"X-Fake-Scenario": scenario}
    msgs = [{"role": "user", "content": prompt(scenario)}]
    model = "claude-sonnet-4-5"
    # anthropic 2.x dropped `temperature` from Messages.create; pass it only
    # where the installed client still takes it.
    import inspect

    params = inspect.signature(anthropic.resources.messages.Messages.create).parameters
    extra = {"temperature": 0.2} if "temperature" in params else {}
    if scenario == "chat":
        client.messages.create(
            model=model, system=system(scenario), messages=msgs, max_tokens=100, extra_headers=hdr, **extra
        )
        return dict(request_model=model, operation="chat", streaming=False)
    if scenario in ("chat-stream", "chat-stream-legacy"):
        stream = client.messages.create(
            model=model, system=system(scenario), messages=msgs, max_tokens=100, stream=True, extra_headers=hdr, **extra
        )
        for _ in stream:
            pass
        if hasattr(stream, "close"):
            stream.close()
        return dict(request_model=model, operation="chat", streaming=True)
    if scenario == "chat-stream-helper":
        with client.messages.stream(
            model=model, system=system(scenario), messages=msgs, max_tokens=100, extra_headers=hdr
        ) as stream:
            for _ in stream.text_stream:
                pass
            stream.get_final_message()
        return dict(request_model=model, operation="chat", streaming=True)
    if scenario == "chat-cached":
        client.messages.create(
            model=model,
            max_tokens=100,
            extra_headers=hdr,
            messages=msgs,
            system=[
                {
                    "type": "text",
                    "text": system(scenario) + " " + "Long cached context. " * 40,
                    "cache_control": {"type": "ephemeral"},
                }
            ],
        )
        return dict(request_model=model, operation="chat", streaming=False)
    if scenario == "chat-reasoning":
        kw = {"thinking": {"type": "enabled", "budget_tokens": 1024}} if "thinking" in params else {}
        client.messages.create(
            model=model, system=system(scenario), messages=msgs, max_tokens=2000, extra_headers=hdr, **kw
        )
        return dict(request_model=model, operation="chat", streaming=False)
    if scenario == "chat-error":
        client.messages.create(model=model, system=system(scenario), messages=msgs, max_tokens=100, extra_headers=hdr)
        return dict(request_model=model, operation="chat", streaming=False)
    raise ValueError(scenario)


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
    call = openai_call if CONFIG["provider"] == "openai" else anthropic_call
    failures = 0
    with FakeProvider() as fp:
        # warm-up flush so any start-up telemetry is not attributed to scenario 1
        flush()
        for scenario in CONFIG["scenarios"]:
            fp.clear()
            mark = RECEIVER.mark()
            err = None
            meta = None
            try:
                meta = call(fp, scenario)
            except Exception as exc:  # the error scenario raises on purpose
                err = exc
                if scenario != "chat-error":
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
            if meta is None:
                # error scenario: describe the request we made
                meta = dict(
                    request_model="claude-sonnet-4-5" if CONFIG["provider"] == "anthropic" else "gpt-4o-mini",
                    operation="chat",
                    streaming=False,
                )
            last = returned[-1] if returned else {}
            usage = last.get("usage")
            expected = {
                "provider": CONFIG["provider"],
                "request_model": meta["request_model"],
                "response_model": last.get("model"),
                "operation": meta["operation"],
                "streaming": meta["streaming"],
                "status": "error" if (err is not None or last.get("status", 200) >= 400) else "ok",
                "error_type": type(err).__name__ if err is not None else None,
                "http_status": last.get("status"),
            }
            expected.update(expected_canonical(CONFIG["provider"], last.get("path", ""), usage))
            if expected["status"] == "error":
                for k in (
                    "input_tokens",
                    "cache_read_tokens",
                    "cache_write_tokens",
                    "output_tokens",
                    "reasoning_tokens",
                ):
                    expected[k] = None
            traces_json = to_json_dicts(traces, "traces")
            logs_json = to_json_dicts(logs, "logs")
            nspans = count_spans(traces_json)
            if nspans == 0 and scenario == "responses":
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
