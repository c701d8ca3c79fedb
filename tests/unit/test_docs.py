"""A setting the configuration page does not document fails the build (Datasette's habit)."""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path

from breakeven.collector.config.settings import Settings

ROOT = Path(__file__).parents[2]
README = (ROOT / "README.md").read_text()
CONFIGURATION = (ROOT / "docs" / "configuration.md").read_text()


def test_every_setting_is_documented() -> None:
    for field in dataclasses.fields(Settings):
        assert f"| `{field.name}` |" in CONFIGURATION, f"docs/configuration.md does not document setting {field.name}"


def test_readme_opens_with_the_two_commands_and_ci_runs_the_test_one() -> None:
    commands = re.findall(r"```sh\n(.+?)\n```", README)
    assert commands[:2] == [
        "python3 -m pip install -e . && breakeven serve",
        "bash scripts/install-system-deps && python3 -m pip install -e '.[test]' && python3 -m pytest",
    ]
    ci = (Path(__file__).parents[2] / ".ci" / "run").read_text()
    assert commands[1] in ci
