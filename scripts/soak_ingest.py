"""Soak benchmark: 30 minutes of steady OTLP load, printing memory and latency over time.

The ingest benchmark (bench_ingest.py) at a fixed rate instead of flat out: a real
`breakeven serve`, 4 keep-alive clients posting realistic LLM span exports at --rate
spans per second in all, and every --sample-seconds a line with the server's RSS and
the p50/p99 latency of that interval, then the benchmark's summary. What to look for:
RSS levelling off (the trace cache, the seen-filter and DuckDB's memory_limit bound it)
and latency staying flat as the ledger grows.

    python scripts/soak_ingest.py                      # 30 min at 2,000 spans/s, DuckDB
    python scripts/soak_ingest.py --minutes 5 --rate 1000 --db-url postgresql://...
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

from bench_ingest import main as bench


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--minutes", type=float, default=30.0)
    parser.add_argument("--rate", type=float, default=2000.0, help="spans per second (2,000)")
    parser.add_argument("--sample-seconds", type=float, default=30.0)
    parser.add_argument("--db-url", help="database URL (default: a fresh temporary DuckDB file)")
    args = parser.parse_args()
    argv = [
        "--spans", str(10**12), "--batch", "512", "--clients", "4", "--rate", str(args.rate),
        "--max-seconds", str(args.minutes * 60), "--sample-seconds", str(args.sample_seconds),
    ]  # fmt: skip
    if args.db_url:
        argv += ["--db-url", args.db_url]
    return bench(argv)


if __name__ == "__main__":
    raise SystemExit(main())
