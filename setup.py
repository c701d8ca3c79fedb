"""The optional native decoder (collector/_otlp.c); everything else is in pyproject.toml.

optional=True: without a C compiler the build says so and goes on, and collector.decode
keeps to the pure-Python (upb) path.
"""

import sys

from setuptools import Extension, setup

# The decoder reads fixed64 fields with memcpy: little-endian hosts only (x86-64, arm64).
native = sys.byteorder == "little" and sys.implementation.name == "cpython"

setup(
    ext_modules=[Extension("collector._otlp", ["collector/_otlp.c"], optional=True)] if native else [],
)
