"""Ingest benchmark: how many LLM spans per second `breakeven serve` acknowledges.

What it measures
  Starts `breakeven serve` on free loopback ports with a fresh temporary DuckDB file
  (or --db-url), then N client threads POST OTLP/HTTP protobuf exports
  (`/v1/traces`, keep-alive connections) until --spans spans were acknowledged or
  --max-seconds passed. The collector answers 200 only once the spans are committed,
  so "acknowledged" means "on disk". It prints
    - acknowledged-and-committed spans per second (200 answers x spans per body / wall time),
    - p50/p99 request latency, and every non-200 answer by status,
    - the server's ingest counters (delta over the run), checking that llm_spans_stored
      equals the acknowledged spans (a MISMATCH line otherwise) and that calls_stored
      equals spans minus the nested spans that must merge into their parent's call,
    - the server's RSS sampled every ~5 s, its peak RSS (VmHWM), and the DuckDB file size,
      each summed over the server and its decode processes (an upper bound: pages a forked
      process shares count twice, and peaks of different moments add up),
    - the server's CPU time (all threads, decode processes included) per acknowledged
      span, which other load on the machine skews far less than spans/s.

Several collectors (--collectors N, PostgreSQL only)
  Runs `breakeven migrate` once, then starts N `breakeven serve --no-migrate` on the same
  --db-url, each on its own free ports. Client i posts to collector i % N; a body holds
  whole traces, so no trace's spans are split across collectors (routing by trace id, as a
  load balancer in front of them would). Spans/s count every collector's 200 answers; CPU
  time and RSS are summed over every server's process tree; the ingest counters live in
  the shared database, so they are read from the first collector (the gauges queue_depth
  and cached_traces are per process and summed). All servers get SIGTERM at the end.

The load
  Bodies look like real emitters' exports: LLM spans in the current OTel GenAI dialect
  (gen_ai.provider.name), the legacy one (gen_ai.system, prompt/completion tokens),
  OpenInference (llm.token_count.*) and OpenLLMetry/Traceloop (llm.request.type,
  llm.usage.total_tokens), ~20 attributes each (models, provider, server.address, token
  counts incl. cache reads, request parameters, breakeven.team), no message content.
  Resources carry service.name from a pool of 20 services. Most traces hold one span;
  ~10% carry a second, nested span (parent_span_id = the first, same usage) that the
  collector must merge into one call. A few template bodies are built up front with
  placeholder ids; each request patches in fresh random trace and span ids (a join of
  precomputed byte slices), so the clients only POST bytes and no id repeats.

Run
  python scripts/bench_ingest.py --spans 1000000 --batch 512 --clients 4
  python scripts/bench_ingest.py --spans 200000 --db-url postgresql+psycopg://u:p@127.0.0.1/bench
  python scripts/bench_ingest.py --spans 200000 --collectors 3 --db-url postgresql+psycopg://u:p@127.0.0.1/bench
"""

from __future__ import annotations

import argparse
import http.client
import itertools
import json
import os
import random
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from opentelemetry.proto.common.v1.common_pb2 import InstrumentationScope
from opentelemetry.proto.resource.v1.resource_pb2 import Resource
from opentelemetry.proto.trace.v1.trace_pb2 import ResourceSpans, ScopeSpans, Span

from breakeven.collector.demo.spans import key_value

HOST = "127.0.0.1"
RESPONSE_ID_MARK = "RRRR"  # response ids are 16 chars after "chatcmpl-", refreshed per request
TEMPLATES = 16  # distinct template bodies; ids are fresh on every request anyway
NESTED_SHARE = 0.10  # share of traces that carry a second, nested span of the same call
RSS_EVERY_SECONDS = 5.0
GAUGES = ("queue_depth", "cached_traces")  # in /api/v1/ingest, not cumulative

SERVICES = [
    f"{name}-{suffix}"
    for name, suffix in itertools.product(
        ("checkout", "support-bot", "search", "summarizer", "rag-api"), ("api", "worker", "batch", "canary")
    )
]
TEAMS = ("payments", "support", "search", "platform", "growth", "ml-infra")
# provider, server.address, server.port, request model, response model
MODELS = (
    ("openai", "api.openai.com", 443, "gpt-4o", "gpt-4o-2024-08-06"),
    ("openai", "api.openai.com", 443, "gpt-4o-mini", "gpt-4o-mini-2024-07-18"),
    ("openai", "api.openai.com", 443, "gpt-4.1", "gpt-4.1-2025-04-14"),
    ("anthropic", "api.anthropic.com", 443, "claude-sonnet-4-5", "claude-sonnet-4-5-20250929"),
    ("anthropic", "api.anthropic.com", 443, "claude-haiku-4-5", "claude-haiku-4-5-20251001"),
    (
        "openai",
        "vllm-llama.inference.svc",
        8000,
        "meta-llama/Llama-3.1-8B-Instruct-FP8",
        "meta-llama/Llama-3.1-8B-Instruct-FP8",
    ),
)
DIALECTS = ("otel", "otel_legacy", "openinference", "openllmetry")
SCOPES = {
    "otel": ("opentelemetry.instrumentation.openai_v2", "2.4b0"),
    "otel_legacy": ("opentelemetry.instrumentation.openai_v2", "2.0b0"),
    "openinference": ("openinference.instrumentation.openai", "0.1.66"),
    "openllmetry": ("opentelemetry.instrumentation.openai.v1", "0.62.4"),
}
INNER_SCOPE = ("opentelemetry.instrumentation.genai.sdk", "0.4b0")


# ---------------------------------------------------------------- body templates


@dataclass(slots=True)
class Usage:
    prompt: int  # total prompt tokens, cache reads included (what every dialect here reports)
    cache_read: int
    output: int
    reasoning: int


def _usage(rng: random.Random) -> Usage:
    prompt = int(rng.lognormvariate(7.0, 1.0)) + 20
    cache_read = rng.choice((0, 0, 0, int(prompt * rng.uniform(0.3, 0.9))))
    reasoning = rng.choice((0, 0, 0, 64, 256))
    # Output counts every generated token, reasoning included (as OpenAI and Anthropic report it).
    return Usage(prompt, cache_read, int(rng.lognormvariate(5.0, 0.8)) + 1 + reasoning, reasoning)


def _attributes(dialect: str, model: tuple[Any, ...], u: Usage, rng: random.Random, team: str) -> dict[str, Any]:
    """About 20 attributes, as the named emitter family writes them."""
    provider, address, port, request_model, response_model = model
    temperature = rng.choice((0.0, 0.2, 0.7, 1.0))
    max_tokens = rng.choice((256, 512, 1024, 4096))
    response_id = f"chatcmpl-{RESPONSE_ID_MARK}{rng.getrandbits(48):012x}"  # made unique per request
    finish = rng.choice(("stop", "stop", "stop", "length", "tool_calls"))
    if dialect == "otel":
        return {
            "gen_ai.operation.name": "chat",
            "gen_ai.provider.name": provider,
            "gen_ai.request.model": request_model,
            "gen_ai.response.model": response_model,
            "gen_ai.response.id": response_id,
            "gen_ai.response.finish_reasons": [finish],
            "gen_ai.request.temperature": temperature,
            "gen_ai.request.max_tokens": max_tokens,
            "gen_ai.request.top_p": 1.0,
            "server.address": address,
            "server.port": port,
            "gen_ai.usage.input_tokens": u.prompt,
            "gen_ai.usage.output_tokens": u.output,
            "gen_ai.usage.cache_read.input_tokens": u.cache_read,
            "gen_ai.usage.reasoning.output_tokens": u.reasoning,
            "gen_ai.request.stream": False,
            "openai.response.service_tier": "default",
            "gen_ai.conversation.id": f"conv_{rng.getrandbits(48):012x}",
            "breakeven.team": team,
            "feature": rng.choice(("answer", "classify", "extract", "rerank-explain")),
        }
    if dialect == "otel_legacy":
        return {
            "gen_ai.operation.name": "chat",
            "gen_ai.system": provider,
            "gen_ai.request.model": request_model,
            "gen_ai.response.model": response_model,
            "gen_ai.response.id": response_id,
            "gen_ai.response.finish_reasons": [finish],
            "gen_ai.request.temperature": temperature,
            "gen_ai.request.max_tokens": max_tokens,
            "gen_ai.request.frequency_penalty": 0.0,
            "server.address": address,
            "server.port": port,
            "gen_ai.usage.prompt_tokens": u.prompt,
            "gen_ai.usage.completion_tokens": u.output,
            "gen_ai.usage.cache_read_input_tokens": u.cache_read,
            "gen_ai.openai.request.seed": rng.randrange(1000),
            "gen_ai.openai.response.service_tier": "default",
            "gen_ai.openai.response.system_fingerprint": "fp_f33640a400",
            "deployment.environment": "prod",
            "breakeven.team": team,
            "http.response.status_code": 200,
        }
    if dialect == "openinference":
        params = {"model": request_model, "temperature": temperature, "max_tokens": max_tokens, "stream": False}
        return {
            "openinference.span.kind": "LLM",
            "llm.system": provider,
            "llm.provider": provider,
            "llm.model_name": response_model,
            "llm.invocation_parameters": json.dumps(params),
            "llm.token_count.prompt": u.prompt,
            "llm.token_count.completion": u.output,
            "llm.token_count.total": u.prompt + u.output,
            "llm.token_count.prompt_details.cache_read": u.cache_read,
            "llm.token_count.prompt_details.audio": 0,
            "llm.token_count.completion_details.reasoning": u.reasoning,
            "llm.token_count.completion_details.audio": 0,
            "input.mime_type": "application/json",
            "output.mime_type": "application/json",
            "llm.finish_reason": finish,
            "server.address": address,
            "session.id": f"sess-{rng.getrandbits(48):012x}",
            "user.id": f"user-{rng.randrange(50_000)}",
            "metadata": json.dumps({"tier": rng.choice(("free", "pro", "enterprise"))}),
            "breakeven.team": team,
        }
    return {  # OpenLLMetry / Traceloop
        "llm.request.type": "chat",
        "gen_ai.system": provider,
        "gen_ai.request.model": request_model,
        "gen_ai.response.model": response_model,
        "gen_ai.response.id": response_id,
        "gen_ai.request.temperature": temperature,
        "gen_ai.request.max_tokens": max_tokens,
        "gen_ai.openai.api_base": f"https://{address}/v1/" if port == 443 else f"http://{address}:{port}/v1/",
        "gen_ai.usage.prompt_tokens": u.prompt,
        "gen_ai.usage.completion_tokens": u.output,
        "gen_ai.usage.cache_read_input_tokens": u.cache_read,
        "gen_ai.usage.reasoning_tokens": u.reasoning,
        "llm.usage.total_tokens": u.prompt + u.output,
        "llm.is_streaming": False,
        "llm.headers": "None",
        "traceloop.workflow.name": rng.choice(("answer_question", "triage_ticket", "summarize_doc")),
        "traceloop.association.properties.customer": f"cust-{rng.randrange(5000)}",
        "gen_ai.openai.response.system_fingerprint": "fp_f33640a400",
        "breakeven.team": team,
        "feature": rng.choice(("answer", "classify", "extract")),
    }


def _resource(service: str, rng: random.Random) -> Resource:
    attrs = {
        "service.name": service,
        "service.version": f"1.{rng.randrange(40)}.{rng.randrange(10)}",
        "service.instance.id": f"{rng.getrandbits(128):032x}",
        "deployment.environment.name": "prod",
        "host.name": f"ip-10-0-{rng.randrange(256)}-{rng.randrange(256)}",
        "telemetry.sdk.language": "python",
        "telemetry.sdk.name": "opentelemetry",
        "telemetry.sdk.version": "1.37.0",
    }
    return Resource(attributes=[key_value(k, v) for k, v in attrs.items()])


@dataclass(slots=True)
class Template:
    """A serialized body cut at its id placeholders; patching is one bytes.join."""

    pieces: list[bytes]  # len(slots) + 1 literal byte runs
    slots: list[tuple[int, int]]  # (offset into the fresh-id buffer, length) between the pieces
    id_bytes: int  # fresh random bytes one body needs
    spans: int
    nested: int
    hex_slots: frozenset[int] = frozenset()  # slots that take hex text (response ids), not raw bytes

    def body(self) -> bytes:
        fresh = os.urandom(self.id_bytes)
        fresh_hex = fresh.hex().encode("ascii")  # response ids: text, so hex of the same bytes
        parts = [self.pieces[0]]
        for i, ((start, length), piece) in enumerate(zip(self.slots, self.pieces[1:], strict=True)):
            if i in self.hex_slots:
                parts.append(fresh_hex[2 * start : 2 * start + length])
            else:
                parts.append(fresh[start : start + length])
            parts.append(piece)
        return b"".join(parts)


def build_template(batch: int, seed: int) -> Template:
    """One export of `batch` spans with placeholder ids, cut into a Template."""
    rng = random.Random(seed)
    magic_t, magic_s = os.urandom(8), os.urandom(4)
    traces = 0
    span_count = 0
    nested = 0
    now_ns = time.time_ns()
    by_service: dict[str, dict[tuple[str, str], list[Span]]] = {}
    while span_count < batch:
        trace_id = magic_t + traces.to_bytes(8, "big")
        traces += 1
        service = rng.choice(SERVICES)
        dialect = rng.choice(DIALECTS)
        model = rng.choice(MODELS)
        usage = _usage(rng)
        team = rng.choice(TEAMS)
        duration = int(rng.lognormvariate(0.0, 0.7) * 1e9)
        start = now_ns - rng.randrange(0, 30_000_000_000) - duration
        outer_id = magic_s + span_count.to_bytes(4, "big")
        span_count += 1
        outer = Span(
            trace_id=trace_id,
            span_id=outer_id,
            name=f"chat {model[3]}" if dialect.startswith("otel") else "ChatCompletion",
            kind=Span.SPAN_KIND_CLIENT if dialect != "openinference" else Span.SPAN_KIND_INTERNAL,
            start_time_unix_nano=start,
            end_time_unix_nano=start + duration,
            attributes=[key_value(k, v) for k, v in _attributes(dialect, model, usage, rng, team).items()],
        )
        scopes = by_service.setdefault(service, {})
        scopes.setdefault(SCOPES[dialect], []).append(outer)
        if span_count < batch and rng.random() < NESTED_SHARE:
            # The provider SDK's own span under the instrumentation's: same call, same usage.
            inner = Span(
                trace_id=trace_id,
                span_id=magic_s + span_count.to_bytes(4, "big"),
                parent_span_id=outer_id,
                name=f"chat {model[3]}",
                kind=Span.SPAN_KIND_CLIENT,
                start_time_unix_nano=start + 2_000_000,
                end_time_unix_nano=start + duration - 1_000_000,
                attributes=[key_value(k, v) for k, v in _attributes("otel", model, usage, rng, team).items()],
            )
            span_count += 1
            nested += 1
            scopes.setdefault(INNER_SCOPE, []).append(inner)
    request = ExportTraceServiceRequest(
        resource_spans=[
            ResourceSpans(
                resource=_resource(service, rng),
                scope_spans=[
                    ScopeSpans(scope=InstrumentationScope(name=name, version=version), spans=spans)
                    for (name, version), spans in scopes.items()
                ],
                schema_url="https://opentelemetry.io/schemas/1.37.0",
            )
            for service, scopes in by_service.items()
        ]
    )
    raw = request.SerializeToString()
    mark = RESPONSE_ID_MARK.encode()
    pattern = re.compile(
        re.escape(magic_t) + b".{8}|" + re.escape(magic_s) + b".{4}|" + re.escape(mark) + b"[0-9a-f]{12}", re.DOTALL
    )
    pieces: list[bytes] = []
    slots: list[tuple[int, int]] = []
    hex_slots: set[int] = set()
    response_ids: dict[bytes, int] = {}  # one fresh value per distinct id: a nested span shares its call's
    last = 0
    id_bytes = traces * 16 + span_count * 8
    for match in pattern.finditer(raw):
        token = match.group()
        if token.startswith(mark):
            n = response_ids.setdefault(token, len(response_ids))
            hex_slots.add(len(slots))
            slots.append((id_bytes + n * 8, 16))
        elif token.startswith(magic_t) and len(token) == 16:
            slots.append((int.from_bytes(token[8:], "big") * 16, 16))
        else:
            slots.append((traces * 16 + int.from_bytes(token[4:], "big") * 8, 8))
        pieces.append(raw[last : match.start()])
        last = match.end()
    pieces.append(raw[last:])
    expected = span_count * 2 + nested  # trace_id and span_id per span, parent_span_id per nested span
    if len(slots) - len(hex_slots) != expected:  # a placeholder collided with other bytes: try another seed
        return build_template(batch, seed + 1_000_003)
    return Template(pieces, slots, id_bytes + len(response_ids) * 8, span_count, nested, hex_slots=frozenset(hex_slots))


# ---------------------------------------------------------------- server process


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


def free_ports(count: int) -> list[int]:
    """`count` distinct free loopback ports."""
    ports: list[int] = []
    while len(ports) < count:
        port = free_port()
        if port not in ports:
            ports.append(port)
    return ports


@dataclass
class Collector:
    """One `breakeven serve` process of the run, on its own ports."""

    proc: subprocess.Popen[bytes]
    otlp_port: int
    api_port: int
    log_path: Path

    @property
    def api(self) -> str:
        return f"http://{HOST}:{self.api_port}"


def breakeven_command() -> str:
    return shutil.which("breakeven") or "breakeven"


def migrate_once(db_url: str, log_path: Path) -> None:
    """`breakeven migrate` before several collectors start with --no-migrate: no race for the schema."""
    started = time.monotonic()
    with open(log_path, "wb") as log_file:
        result = subprocess.run(
            [breakeven_command(), "migrate", "--db", db_url, "--log-level", "warning"],
            stdout=log_file,
            stderr=subprocess.STDOUT,
            check=False,
        )
    if result.returncode != 0:
        tail = "\n".join(log_path.read_text(errors="replace").splitlines()[-30:])
        raise RuntimeError(f"breakeven migrate exited with {result.returncode}:\n{tail}")
    print(f"migrated {db_url} once in {time.monotonic() - started:.1f} s", flush=True)


def start_collector(db_url: str, ports: list[int], log_path: Path, migrate: bool) -> Collector:
    """Start one `breakeven serve` on ports (OTLP/HTTP, OTLP/gRPC, API); not yet ready."""
    otlp_port, grpc_port, api_port = ports
    command = [
        breakeven_command(), "serve", "--db", db_url,
        "--otlp-http-port", str(otlp_port), "--otlp-grpc-port", str(grpc_port), "--http-port", str(api_port),
        "--log-level", "warning",
    ]  # fmt: skip
    if not migrate:
        command.append("--no-migrate")
    with open(log_path, "wb") as log_file:
        proc = subprocess.Popen(command, stdout=log_file, stderr=subprocess.STDOUT)
    return Collector(proc, otlp_port, api_port, log_path)


def stop_collectors(collectors: list[Collector]) -> bool:
    """SIGTERM every server at once, then wait for each; False if one did not exit with 0."""
    for collector in collectors:
        if collector.proc.poll() is None:
            collector.proc.send_signal(signal.SIGTERM)
    ok = True
    for i, collector in enumerate(collectors):
        proc = collector.proc
        name = "server" if len(collectors) == 1 else f"server {i} (pid {proc.pid})"
        try:
            proc.wait(timeout=120)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
            print(f"{name} did not exit within 120 s of SIGTERM: killed")
        print(f"{name} exit code after SIGTERM: {proc.returncode}" + ("" if proc.returncode == 0 else "  (NOT 0)"))
        if proc.returncode != 0:
            ok = False
            print(f"--- last lines of {collector.log_path}:")
            print("\n".join(collector.log_path.read_text(errors="replace").splitlines()[-30:]))
    return ok


def get_json(url: str, timeout: float = 10.0) -> tuple[int, Any]:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, None


def wait_ready(proc: subprocess.Popen[bytes], url: str, deadline_seconds: float) -> float:
    started = time.monotonic()
    while time.monotonic() - started < deadline_seconds:
        if proc.poll() is not None:
            raise RuntimeError(f"breakeven serve exited with {proc.returncode} before it was ready")
        try:
            if get_json(url, timeout=2.0)[0] == 200:
                return time.monotonic() - started
        except (OSError, ValueError):
            pass
        time.sleep(0.05)
    raise RuntimeError(f"{url} did not answer 200 within {deadline_seconds:.0f} s")


def process_tree(pid: int) -> list[int]:
    """The process and its descendants (the server's decode processes and their forkserver)."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat", encoding="ascii") as stat:
                    parent = int(stat.read().rsplit(")", 1)[1].split()[1])
            except OSError:
                continue
            children.setdefault(parent, []).append(int(entry))
    tree, todo = [], [pid]
    while todo:
        current = todo.pop()
        tree.append(current)
        todo.extend(children.get(current, ()))
    return tree


def proc_status(pid: int) -> dict[str, int]:
    """VmRSS and VmHWM in kB, summed over the process tree (empty once it is gone).

    The sum counts the pages a forked decode process shares with its forkserver twice:
    an upper bound of the memory the server takes.
    """
    found: dict[str, int] = {}
    for member in process_tree(pid):
        try:
            with open(f"/proc/{member}/status", encoding="ascii") as status:
                for line in status:
                    if line.startswith(("VmRSS:", "VmHWM:")):
                        key, value = line.split(":", 1)
                        found[key] = found.get(key, 0) + int(value.split()[0])
        except OSError:
            pass
    return found


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of the process tree, all threads (0 once it is gone)."""
    total = 0
    for member in process_tree(pid):
        try:
            with open(f"/proc/{member}/stat", encoding="ascii") as stat:
                fields = stat.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += int(fields[11]) + int(fields[12])  # utime, stime
    return total / os.sysconf("SC_CLK_TCK")


def total_status(collectors: list[Collector]) -> dict[str, int]:
    """proc_status summed over every collector's process tree."""
    found: Counter[str] = Counter()
    for collector in collectors:
        found.update(proc_status(collector.proc.pid))
    return dict(found)


def total_cpu_seconds(collectors: list[Collector]) -> float:
    return sum(cpu_seconds(collector.proc.pid) for collector in collectors)


def ingest_totals(collectors: list[Collector]) -> dict[str, Any]:
    """/api/v1/ingest: the counters from the first collector (they live in the shared
    database), the gauges (per process) summed over all."""
    totals: dict[str, Any] = get_json(f"{collectors[0].api}/api/v1/ingest")[1]
    for other in collectors[1:]:
        theirs = get_json(f"{other.api}/api/v1/ingest")[1]
        for key in GAUGES:
            if key in theirs:
                totals[key] = totals.get(key, 0) + theirs[key]
    return totals


def duckdb_path(url: str) -> Path | None:
    if not url.startswith("duckdb:///"):
        return None
    return Path(url[len("duckdb:///") :].split("?", 1)[0])


# ---------------------------------------------------------------- load


@dataclass
class Tally:
    lock: threading.Lock = field(default_factory=threading.Lock)
    acked_requests: int = 0
    acked_spans: int = 0
    acked_nested: int = 0
    claimed_spans: int = 0  # acknowledged + in flight
    partial_rejected: int = 0
    statuses: Counter[str] = field(default_factory=Counter)
    latencies: list[float] = field(default_factory=list)
    body_bytes: int = 0
    acked_by_port: Counter[int] = field(default_factory=Counter)


def client(
    port: int, templates: list[Template], target: int, deadline: float, tally: Tally, seed: int, rate: float = 0.0
) -> None:
    """POST bodies until the target or deadline; rate > 0 paces this client to rate spans/s."""
    rng = random.Random(seed)
    conn: http.client.HTTPConnection | None = None
    headers = {"Content-Type": "application/x-protobuf"}
    next_send = time.monotonic()
    while time.monotonic() < deadline:
        if rate > 0:
            pause = next_send - time.monotonic()
            if pause > 0:
                time.sleep(pause)
            next_send = max(next_send, time.monotonic() - 1.0) + templates[0].spans / rate
        template = templates[rng.randrange(len(templates))]
        with tally.lock:  # stop once acknowledged + in flight covers the target
            if tally.claimed_spans >= target:
                break
            tally.claimed_spans += template.spans
        body = template.body()
        if conn is None:
            conn = http.client.HTTPConnection(HOST, port, timeout=120)
        started = time.perf_counter()
        try:
            conn.request("POST", "/v1/traces", body, headers)
            response = conn.getresponse()
            payload = response.read()
        except (OSError, http.client.HTTPException) as exc:
            with tally.lock:
                tally.statuses[f"error {exc.__class__.__name__}"] += 1
                tally.claimed_spans -= template.spans
            conn.close()
            conn = None
            continue
        elapsed = time.perf_counter() - started
        if response.status == 200:
            rejected = ExportTraceServiceResponse.FromString(payload).partial_success.rejected_spans if payload else 0
            with tally.lock:
                tally.latencies.append(elapsed)
                tally.acked_requests += 1
                tally.acked_spans += template.spans
                tally.acked_nested += template.nested
                tally.acked_by_port[port] += template.spans
                tally.partial_rejected += rejected
                tally.body_bytes += len(body)
        else:
            with tally.lock:
                tally.statuses[str(response.status)] += 1
                tally.claimed_spans -= template.spans
            retry_after = response.getheader("Retry-After")
            if retry_after and retry_after.isdigit():  # back off as an OTLP exporter would
                time.sleep(min(float(retry_after), max(0.0, deadline - time.monotonic())))
    if conn is not None:
        conn.close()


def percentile(sorted_values: list[float], q: float) -> float:
    if not sorted_values:
        return float("nan")
    return sorted_values[min(len(sorted_values) - 1, int(q * len(sorted_values)))]


# ---------------------------------------------------------------- main


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", 1)[0])
    parser.add_argument("--spans", type=int, default=1_000_000, help="acknowledged spans to reach (1,000,000)")
    parser.add_argument("--batch", type=int, default=512, help="spans per export request (512)")
    parser.add_argument("--clients", type=int, default=4, help="concurrent client connections (4)")
    parser.add_argument("--max-seconds", type=float, default=600.0, help="stop sending after this long (600)")
    parser.add_argument("--db-url", help="database URL for the server (default: a fresh temporary DuckDB file)")
    parser.add_argument("--keep", action="store_true", help="keep the temporary DuckDB file")
    parser.add_argument("--rate", type=float, default=0.0, help="steady load: spans/s over all clients (0: flat out)")
    parser.add_argument("--sample-seconds", type=float, default=RSS_EVERY_SECONDS, help="RSS and latency every N s")
    parser.add_argument("--collectors", type=int, default=1, help="servers on the same --db-url, PostgreSQL only (1)")
    args = parser.parse_args(argv)
    if args.collectors < 1:
        parser.error("--collectors must be at least 1")
    if args.collectors > 1 and not (args.db_url or "").startswith("postgresql"):
        parser.error(
            f"--collectors {args.collectors} needs a PostgreSQL --db-url (postgresql+psycopg://...): "
            "a DuckDB file is opened by one process only, so collectors cannot share it"
        )
    if args.clients < args.collectors:
        print(f"NOTE: {args.clients} clients for {args.collectors} collectors: some collectors get no load")
    return args


def build_templates(batch: int) -> list[Template]:
    t0 = time.perf_counter()
    templates = [build_template(batch, seed) for seed in range(TEMPLATES)]
    print(
        f"built {len(templates)} template bodies of {templates[0].spans} spans "
        f"(~{sum(len(b) for t in templates for b in t.pieces) // len(templates) // 1024} KiB each) "
        f"in {time.perf_counter() - t0:.1f} s; patching ids costs "
        f"{_patch_cost(templates[0]) * 1e3:.2f} ms per body",
        flush=True,
    )
    return templates


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    tmpdir = Path(tempfile.mkdtemp(prefix="breakeven-bench-"))
    db_url = args.db_url or f"duckdb:///{tmpdir / 'bench.duckdb'}"
    ports = free_ports(3 * args.collectors)
    templates = build_templates(args.batch)

    collectors: list[Collector] = []
    exit_code = 1
    try:
        several = args.collectors > 1
        if several:  # one migration, then every server with --no-migrate
            migrate_once(db_url, tmpdir / "migrate.log")
        for i in range(args.collectors):
            log_path = tmpdir / (f"server-{i}.log" if several else "server.log")
            collectors.append(start_collector(db_url, ports[3 * i : 3 * i + 3], log_path, migrate=not several))
        for collector in collectors:
            ready_after = wait_ready(collector.proc, f"{collector.api}/readyz", 120.0)
            print(f"server pid {collector.proc.pid} ready after {ready_after:.2f} s on {db_url}", flush=True)
        exit_code = run_load(args, db_url, templates, collectors)
    finally:
        if not stop_collectors(collectors):
            exit_code = 1
        clean_up(args, db_url, tmpdir)
    return exit_code


def sample_rss(
    collectors: list[Collector],
    tally: Tally,
    samples: list[tuple[float, int, int, int]],
    started: float,
    done: threading.Event,
    every: float,
) -> None:
    """Every `every` seconds until done: RSS and peak RSS of all servers, and recent latency."""
    seen_latencies = 0
    while True:
        status = total_status(collectors)
        with tally.lock:
            acked = tally.acked_spans
            recent = sorted(tally.latencies[seen_latencies:])
            seen_latencies = len(tally.latencies)
        row = (time.monotonic() - started, acked, status.get("VmRSS", 0), status.get("VmHWM", 0))
        samples.append(row)
        latency = (
            f" p50={percentile(recent, 0.5) * 1e3:6.0f} ms p99={percentile(recent, 0.99) * 1e3:6.0f} ms"
            if recent
            else ""
        )
        print(
            f"  t={row[0]:6.1f}s acked={acked:>9,} rss={row[2] / 1024:7.1f} MiB{latency}",
            file=sys.stderr,
            flush=True,
        )
        if done.wait(every):
            return


def run_load(args: argparse.Namespace, db_url: str, templates: list[Template], collectors: list[Collector]) -> int:
    """The clients against ready servers (client i posts to collector i % N), then the report."""
    before = ingest_totals(collectors)
    cpu_before = total_cpu_seconds(collectors)
    tally = Tally()
    samples: list[tuple[float, int, int, int]] = []  # (seconds, acked spans, VmRSS kB, VmHWM kB)
    done = threading.Event()
    started = time.monotonic()
    sampler = threading.Thread(
        target=sample_rss, args=(collectors, tally, samples, started, done, args.sample_seconds), daemon=True
    )
    sampler.start()
    deadline = started + args.max_seconds
    threads = [
        threading.Thread(
            target=client,
            args=(
                collectors[i % len(collectors)].otlp_port,
                templates,
                args.spans,
                deadline,
                tally,
                1000 + i,
                args.rate / args.clients,
            ),
        )
        for i in range(args.clients)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    wall = time.monotonic() - started
    final = total_status(collectors)
    cpu = total_cpu_seconds(collectors) - cpu_before
    done.set()
    sampler.join()
    samples.append((wall, tally.acked_spans, final.get("VmRSS", 0), final.get("VmHWM", 0)))
    after = ingest_totals(collectors)
    exit_code = report(args, db_url, templates[0].spans, templates, tally, wall, before, after, samples)
    # CPU per span moves far less than spans/s when other work shares the machine.
    per_span = f"{cpu / tally.acked_spans * 1e6:.0f} us per acknowledged span" if tally.acked_spans else "-"
    label = "server CPU" if len(collectors) == 1 else f"server CPU, {len(collectors)} summed"
    print(f"{label:<26}{cpu:.1f} s over the run, {per_span}")
    if len(collectors) > 1:
        by_collector = ", ".join(f"{tally.acked_by_port[c.otlp_port]:,}" for c in collectors)
        print(f"acknowledged by collector {by_collector} spans")
    return exit_code


def clean_up(args: argparse.Namespace, db_url: str, tmpdir: Path) -> None:
    path = duckdb_path(db_url)
    if path is not None and path.exists():
        wal = path.with_name(path.name + ".wal")
        wal_size = wal.stat().st_size if wal.exists() else 0
        print(f"DuckDB file: {path.stat().st_size / 2**20:.1f} MiB (+ {wal_size / 2**20:.1f} MiB WAL)")
    if args.keep or args.db_url:
        if not args.db_url:
            print(f"kept {path}")
    else:
        shutil.rmtree(tmpdir, ignore_errors=True)


def _patch_cost(template: Template) -> float:
    started = time.perf_counter()
    for _ in range(20):
        template.body()
    return (time.perf_counter() - started) / 20


def report(
    args: argparse.Namespace,
    db_url: str,
    spans_per_body: int,
    templates: list[Template],
    tally: Tally,
    wall: float,
    before: dict[str, Any],
    after: dict[str, Any],
    samples: list[tuple[float, int, int, int]],
) -> int:
    latencies = sorted(tally.latencies)
    nested_share = sum(t.nested for t in templates) / sum(t.spans for t in templates)
    print()
    servers = "" if args.collectors == 1 else f", {args.collectors} collectors"
    print(f"=== breakeven ingest benchmark: {args.clients} clients x {spans_per_body} spans/request{servers}, {db_url}")
    print(f"wall time                 {wall:.1f} s")
    print(f"acknowledged requests     {tally.acked_requests:,} (200)")
    print(f"acknowledged spans        {tally.acked_spans:,}")
    print(
        f"throughput                {tally.acked_spans / wall:,.0f} spans/s committed "
        f"({tally.acked_requests / wall:.1f} requests/s, {tally.body_bytes / wall / 2**20:.1f} MiB/s of protobuf)"
    )
    print(
        f"request latency           p50 {percentile(latencies, 0.50) * 1e3:.0f} ms, "
        f"p99 {percentile(latencies, 0.99) * 1e3:.0f} ms, max {latencies[-1] * 1e3 if latencies else 0:.0f} ms"
    )
    print(f"non-200 answers           {dict(tally.statuses) if tally.statuses else 'none'}")
    if tally.partial_rejected:
        print(f"partial-success rejects   {tally.partial_rejected:,} spans refused inside 200 answers")
    if tally.acked_spans < args.spans:
        print(f"NOTE: stopped by --max-seconds before reaching {args.spans:,} spans")

    gauges = {k: after.pop(k) for k in GAUGES if k in after}
    delta = {k: v - before.get(k, 0) for k, v in after.items() if isinstance(v, int)}
    print("server counters (delta)   " + json.dumps({k: v for k, v in delta.items() if v}, sort_keys=True))
    print("server gauges at the end  " + json.dumps(gauges, sort_keys=True))
    if after.get("rejected"):
        print(f"server rejects by reason  {after['rejected']}")
    ok = True
    expected_stored = tally.acked_spans - tally.partial_rejected
    if delta.get("llm_spans_stored") != expected_stored:
        ok = False
        print(f"MISMATCH: llm_spans_stored {delta.get('llm_spans_stored'):,} != acknowledged spans {expected_stored:,}")
    else:
        print(f"check: llm_spans_stored == acknowledged spans ({expected_stored:,})")
    expected_calls = tally.acked_spans - tally.acked_nested - tally.partial_rejected
    print(
        f"nested spans              {nested_share:.1%} of spans (each merges into its parent's call): "
        f"calls_stored {delta.get('calls_stored', 0):,}, spans_merged {delta.get('spans_merged', 0):,}"
    )
    if delta.get("calls_stored") != expected_calls:
        ok = False
        print(f"MISMATCH: calls_stored {delta.get('calls_stored'):,} != expected {expected_calls:,}")
    else:
        print(f"check: calls_stored == acknowledged spans - nested spans ({expected_calls:,})")

    summed = "" if args.collectors == 1 else f", summed over {args.collectors} collectors"
    print(f"server RSS over the run   (seconds, acknowledged spans, RSS MiB{summed})")
    for seconds, acked, rss, _hwm in samples:
        print(f"  {seconds:7.1f}  {acked:>10,}  {rss / 1024:8.1f}")
    peak = max((hwm for *_, hwm in samples), default=0)
    print(f"server peak RSS (VmHWM)   {peak / 1024:.1f} MiB")
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
