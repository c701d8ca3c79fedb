"""The repository's scripts, loaded as modules for the tests that share their code."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from typing import Any

SCRIPTS = Path(__file__).parents[1] / "scripts"


def bench_ingest() -> Any:
    """scripts/bench_ingest.py (its realistic bodies, its process-tree walk), loaded once."""
    loaded = sys.modules.get("bench_ingest")
    if loaded is not None:
        return loaded
    spec = importlib.util.spec_from_file_location("bench_ingest", SCRIPTS / "bench_ingest.py")
    assert spec is not None
    assert spec.loader is not None
    bench = importlib.util.module_from_spec(spec)
    sys.modules["bench_ingest"] = bench
    spec.loader.exec_module(bench)
    return bench
