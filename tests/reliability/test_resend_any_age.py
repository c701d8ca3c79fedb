"""Re-sent spans of any age on a filled ledger, both dialects: scripts/bench_resend.py, small.

The script fills a ledger with one-span calls received over 400 days, starts `breakeven
serve` on it, sends 200 of those spans again (picked evenly over the 400 days) and 200 new
ones, and exits 1 unless every re-sent span was counted a duplicate and none stored again.
Its figures at tens of millions of rows are in docs/performance.md.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import postgres_schema

pytestmark = pytest.mark.slow
SCRIPT = Path(__file__).parents[2] / "scripts" / "bench_resend.py"


@pytest.mark.parametrize("dialect", ["duckdb", pytest.param("postgresql", marks=pytest.mark.postgres)])
def test_spans_resent_after_up_to_400_days_are_recognised(dialect: str, tmp_path: Path) -> None:
    args = [sys.executable, str(SCRIPT), "--rows", "100000", "--resend", "200"]
    if dialect == "postgresql":
        with postgres_schema("resend") as url:
            done = subprocess.run([*args, "--db-url", url], capture_output=True, text=True, timeout=600, cwd=tmp_path)
    else:
        done = subprocess.run(args, capture_output=True, text=True, timeout=600, cwd=tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "200 counted duplicates, 0 stored again" in done.stdout
    assert "sent 200 new spans" in done.stdout
    assert ", 200 stored" in done.stdout
