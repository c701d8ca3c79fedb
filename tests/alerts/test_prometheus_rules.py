"""The shipped Prometheus rules (deploy/prometheus/rules/breakeven.yml): promtool checks them and runs their unit tests."""

from __future__ import annotations

import subprocess
from pathlib import Path

from tests.conftest import require_program

RULES = Path(__file__).parents[2] / "deploy" / "prometheus" / "rules" / "breakeven.yml"
UNIT_TESTS = Path(__file__).parent / "promtool"


def test_promtool_checks_the_shipped_rules() -> None:
    promtool = require_program("promtool")
    result = subprocess.run([promtool, "check", "rules", str(RULES)], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS: 8 rules found" in result.stdout


def test_promtool_unit_tests_fire_the_shipped_rules_as_the_built_in_ones_fire() -> None:
    promtool = require_program("promtool")
    files = sorted(p.name for p in UNIT_TESTS.glob("*_test.yml"))
    assert files == ["breakeven_test.yml", "breakeven_week_test.yml"]
    result = subprocess.run(
        [promtool, "test", "rules", *files], cwd=UNIT_TESTS, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stdout + result.stderr
