"""Every package the product imports is a runtime dependency: `pip install -e .` (README's first
command) must be enough to serve. A test-extra package imported by the product works in the test
suite and fails on a user's machine (reconcile/fetch.py's httpx did, found in a fresh venv)."""

from __future__ import annotations

import ast
import re
import sys
import tomllib
from importlib.metadata import PackageNotFoundError, packages_distributions, requires
from pathlib import Path

ROOT = Path(__file__).parents[2]
PRODUCT = ("collector", "dashboard", "migrations")


def _name(requirement: str) -> str:
    return re.split(r"[\s\[<>=!~;(]", requirement.strip(), maxsplit=1)[0].lower().replace("_", "-")


def _runtime_closure() -> set[str]:
    """The runtime dependencies and theirs, without optional extras."""
    declared = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    todo = [_name(r) for r in declared]
    seen: set[str] = set()
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        seen.add(name)
        try:
            reqs = requires(name) or []
        except PackageNotFoundError:
            continue
        todo += [_name(r) for r in reqs if "extra ==" not in r]
    return seen


def _imported_top_levels() -> set[str]:
    out: set[str] = set()
    for folder in PRODUCT:
        for path in (ROOT / folder).rglob("*.py"):
            for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
                if isinstance(node, ast.Import):
                    out.update(alias.name.split(".")[0] for alias in node.names)
                elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                    out.add(node.module.split(".")[0])
    return out - set(sys.stdlib_module_names) - {"breakeven", "__future__"}


def test_every_package_the_product_imports_is_a_runtime_dependency() -> None:
    closure = _runtime_closure()
    owners = packages_distributions()
    missing = {
        module: owners.get(module, ["?"])
        for module in sorted(_imported_top_levels())
        if not any(dist.lower().replace("_", "-") in closure for dist in owners.get(module, []))
    }
    assert missing == {}, f"imported by the product but not installed by `pip install -e .`: {missing}"
