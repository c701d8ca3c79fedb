"""Per-stage cost of the ingest path, in microseconds per span, without HTTP.

CPU time (process_time, DuckDB threads included), so other load on the machine
skews it less than wall time would. Runs the benchmark's realistic bodies through each stage the collector runs for an
export (decode, normalize, pipeline build, rows, store) in one process, so a
change to one stage shows up as its own figure. Complements bench_ingest.py, which
measures the whole server end to end.

The decode stage is what the receivers call, decode.decode_trace_body: the native
decoder when it is built (its parse and decode are one step), else upb's parse and the
Python walk. --no-native-decode measures the latter; --compare-decode times both on the
same bodies, interleaved, and prints the two figures side by side.

    python scripts/profile_stages.py --spans 100000 --batch 512
    python scripts/profile_stages.py --spans 50000 --compare-decode
"""

from __future__ import annotations

import argparse
import gc
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

from bench_ingest import build_template

from breakeven.collector.calls.pipeline import Pipeline
from breakeven.collector.config.settings import load_settings
from breakeven.collector.ingest.decode import PROTOBUF, decode_trace_body, native_available
from breakeven.collector.ingest.exports import limits_of
from breakeven.collector.ingest.offload import ready_for_the_writer
from breakeven.collector.ingest.tuning import tune_garbage_collector
from breakeven.collector.normalize import normalize_span
from breakeven.collector.price.ledger import ledger_pricer
from breakeven.collector.records import LlmSpan, Work
from breakeven.collector.store.engine import migrate, settings_engine
from breakeven.collector.store.writer import LedgerWriter


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--spans", type=int, default=100_000)
    parser.add_argument("--batch", type=int, default=512)
    parser.add_argument("--db-url", default=None, help="default: a fresh DuckDB file")
    parser.add_argument("--no-native-decode", action="store_true", help="decode through upb, as native_decode=false")
    parser.add_argument("--compare-decode", action="store_true", help="time native and upb decode, interleaved")
    parser.add_argument(
        "--writer-rows",
        action="store_true",
        help="the writer makes the rows of spans and calls (as on PostgreSQL), not decode",
    )
    args = parser.parse_args()
    native = not args.no_native_decode
    if native and not native_available():
        print("the native decoder is not built: decoding through upb")
        native = False

    with tempfile.TemporaryDirectory() as tmp:
        url = args.db_url or f"duckdb:///{tmp}/profile.duckdb"
        settings = load_settings({"db": url}, {})
        engine = settings_engine(settings)
        migrate(engine)
        writer = LedgerWriter(engine)
        pipeline = Pipeline(
            writer,
            settings.queue_max_spans,
            settings.batch_max_spans,
            settings.trace_cache_traces,
            price=ledger_pricer(settings.pricing),
        )
        decode_price = None if args.writer_rows else ledger_pricer(settings.pricing)  # a decode process's own
        templates = [build_template(args.batch, seed) for seed in range(8)]
        tune_garbage_collector()  # as `breakeven serve` does once started: the figures are the server's
        seconds: dict[str, float] = defaultdict(float)
        compared: dict[str, float] = defaultdict(float)
        done = 0
        limits = limits_of(settings)
        while done < args.spans:
            body = templates[done // args.batch % len(templates)].body()
            if args.compare_decode:
                for name, on in (("decode (native)", True), ("decode (upb)", False)):
                    t = time.process_time()
                    decode_trace_body(body, PROTOBUF, limits, settings.max_spans_per_request, native=on)
                    compared[name] += time.process_time() - t
            t1 = time.process_time()
            decoded = decode_trace_body(body, PROTOBUF, limits, settings.max_spans_per_request, native=native)
            t2 = time.process_time()
            spans = [s for s in (normalize_span(d, settings) for d in decoded.spans) if isinstance(s, LlmSpan)]
            work = Work(spans=spans)
            ready_for_the_writer(work, make_rows=not args.writer_rows, price=decode_price)  # as a decode process does
            t3 = time.process_time()
            batch, states = pipeline._build([work])
            t4 = time.process_time()
            writer.write(batch, int(time.time() * 1e6))
            t5 = time.process_time()
            pipeline._remember(batch, states)
            t6 = time.process_time()
            for name, a, b in (
                ("decode", t1, t2),
                ("redact+normalize" + ("" if args.writer_rows else "+rows"), t2, t3),
                ("merge (build)", t3, t4),
                ("rows+store", t4, t5),
                ("cache", t5, t6),
            ):
                seconds[name] += b - a
            done += len(decoded.spans)
        gc.unfreeze()  # as serve does at shutdown: DuckDB's bindings report frozen objects as leaked
        total = sum(seconds.values())
        print(f"{done} spans, batch {args.batch}, {url.split(':')[0]}, decode {'native' if native else 'upb'}")
        for name, value in seconds.items():
            print(f"  {name:23s} {value / done * 1e6:7.1f} us/span")
        print(f"  {'total':23s} {total / done * 1e6:7.1f} us/span  ->  {done / total:,.0f} spans/s on one core")
        for name, value in compared.items():
            print(f"  {name:18s} {value / done * 1e6:7.1f} us/span (same bodies, interleaved)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
