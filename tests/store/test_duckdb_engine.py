"""The DuckDB engine takes the configured memory limit, checkpoint threshold and threads, and checkpoints without vacuum."""

from __future__ import annotations

from pathlib import Path

import pytest

from breakeven.collector.config.settings import load_settings
from breakeven.collector.store.engine import settings_engine


@pytest.mark.parametrize(
    ("flags", "memory", "checkpoint", "threads"),
    [
        pytest.param({}, "953.6 MiB", "244.1 MiB", 1, id="defaults: 1GB, 256MB (DuckDB shows MiB), one thread"),
        pytest.param(
            {"duckdb_memory_limit": "512MiB", "duckdb_checkpoint_threshold": "64MiB", "duckdb_threads": 2},
            "512.0 MiB",
            "64.0 MiB",
            2,
            id="set",
        ),
    ],
)
def test_the_engine_applies_the_duckdb_settings(
    tmp_path: Path, flags: dict, memory: str, checkpoint: str, threads: int
) -> None:
    settings = load_settings({"db": f"duckdb:///{tmp_path}/ledger.duckdb", **flags}, environ={})
    engine = settings_engine(settings)
    try:
        with engine.connect() as conn:
            found = conn.exec_driver_sql(
                "SELECT current_setting('memory_limit'), current_setting('checkpoint_threshold'),"
                " current_setting('max_vacuum_tasks'), current_setting('threads')"
            ).one()
    finally:
        engine.dispose()
    assert tuple(found) == (memory, checkpoint, 0, threads)  # no vacuum at checkpoints: collector/store/engine.py
