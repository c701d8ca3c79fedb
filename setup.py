"""Packaging that pyproject.toml cannot say alone: the package list under one namespace, and
the optional native parts.

The source folders sit at the root (collector/, dashboard/, migrations/) and install as
breakeven.collector, breakeven.dashboard and breakeven.migrations (package_dir), so the
product claims no generic top-level import name. `breakeven` itself is a namespace package.

The native parts are the decoder (collector/ingest/_otlp.c) and the seen-trace filter's hot
loops (collector/calls/_bloom.c). optional=True: without a C compiler the build says so and
goes on; the decoder keeps to the pure-Python (upb) path and the filter to its Python loops.
"""

import sys
from pathlib import Path

from setuptools import Extension, setup

ROOT = Path(__file__).parent
SOURCES = {"breakeven.collector": "collector", "breakeven.dashboard": "dashboard", "breakeven.migrations": "migrations"}


def packages() -> list[str]:
    """Every folder holding an __init__.py under the three source folders, as a dotted name."""
    found = []
    for package, folder in SOURCES.items():
        for init in sorted((ROOT / folder).rglob("__init__.py")):
            relative = init.parent.relative_to(ROOT / folder).parts
            found.append(".".join((package, *relative)))
    return found


# The decoder reads fixed64 fields with memcpy: little-endian hosts only (x86-64, arm64).
native = sys.byteorder == "little" and sys.implementation.name == "cpython"

setup(
    package_dir=SOURCES,
    packages=packages(),
    ext_modules=[
        Extension("breakeven.collector.ingest._otlp", ["collector/ingest/_otlp.c"], optional=True),
        Extension("breakeven.collector.calls._bloom", ["collector/calls/_bloom.c"], optional=True),
    ]
    if native
    else [],
)
